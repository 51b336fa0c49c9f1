"""toolchain/up.py: which pulumi commands `make up` and `make preview` run."""

import socket

from toolchain.up import commands, port_answers, servers_down

OUTPUTS = {"vault_addr": "https://127.0.0.1:1", "vault_ca_pem": "", "db_host": "127.0.0.1", "db_port": 1}


def test_a_new_stack_is_not_refreshed():
    assert commands("dev", {}, [], [], preview=False) == [["up", "--yes", "--skip-preview", "--stack", "dev"]]
    assert commands("dev", {}, [], [], preview=True) == [["preview", "--diff", "--stack", "dev"]]


def test_a_running_stack_is_refreshed_first():
    assert commands("dev", OUTPUTS, [], [], preview=False) == [
        ["up", "--yes", "--skip-preview", "--stack", "dev", "--refresh", "--run-program"]]
    assert commands("dev", OUTPUTS, [], [], preview=True) == [
        ["preview", "--diff", "--stack", "dev", "--refresh", "--run-program"]]


def test_servers_down_are_started_by_an_up_of_their_keepers_before_the_refresh():
    keepers = ["urn:pulumi:dev::dbcreds::x$pulumi-python:dynamic:Resource::vault-running",
               "urn:pulumi:dev::dbcreds::x$pulumi-python:dynamic:Resource::db-running"]
    assert commands("dev", OUTPUTS, ["Vault"], keepers, preview=False) == [
        ["up", "--yes", "--skip-preview", "--stack", "dev", "--target", keepers[0], "--target", keepers[1]],
        ["up", "--yes", "--skip-preview", "--stack", "dev", "--refresh", "--run-program"]]
    assert commands("dev", OUTPUTS, ["Vault"], keepers, preview=True) == [["preview", "--diff", "--stack", "dev"]]


def test_servers_that_do_not_answer_are_named():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert port_answers("127.0.0.1", port)
        # Vault's address answers TCP but not as Vault; the database's port does.
        down = servers_down({**OUTPUTS, "vault_addr": f"https://127.0.0.1:{port}", "db_port": port})
    assert down == [f"Vault at https://127.0.0.1:{port} (down or sealed)"]
    assert not port_answers("127.0.0.1", port)
