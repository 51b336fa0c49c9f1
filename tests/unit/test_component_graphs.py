"""The components' resource graphs, with Pulumi's mocks (no engine, no servers)."""

import pulumi

from tests.unit.graph import is_secret, registered, unwrap


def test_bootstrap_pki_children_are_parented_named_and_keys_are_secret(monitor, ran):
    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs

    @pulumi.runtime.test
    def build():
        pki = BootstrapPki("boot", BootstrapPkiArgs(ca_common_name="unit CA"))

        def check(values):
            ca_cert, vault_cert, secret, database_secret = values
            assert (ca_cert, vault_cert) == ("certPem of boot-ca", "certPem of boot-vault-listener")
            assert secret and database_secret, "the private keys are not secret"

        return pulumi.Output.all(pki.ca_cert_pem, pki.vault_cert_pem, is_secret(pki.vault_private_key_pem),
                                 is_secret(pki.database_private_key_pem)).apply(ran(check))

    build()
    child = "urn:pulumi:unit::dbcreds::dbcreds:pki:BootstrapPki$"
    urns = set(monitor.get_registered_resources())
    assert {child + "tls:index/selfSignedCert:SelfSignedCert::boot-ca",
            child + "tls:index/locallySignedCert:LocallySignedCert::boot-vault-listener",
            child + "tls:index/locallySignedCert:LocallySignedCert::boot-database"} <= urns
    ca = registered(monitor, "tls:index/selfSignedCert:SelfSignedCert")["boot-ca"]
    assert ca["isCaCertificate"] is True and ca["subject"]["commonName"] == "unit CA"
    assert ca["validityPeriodHours"] == 24 * 365 and ca["earlyRenewalHours"] == 24 * 365 // 10
    listener = registered(monitor, "tls:index/certRequest:CertRequest")["boot-vault-listener-request"]
    assert listener["ipAddresses"] == ["127.0.0.1"] and listener["dnsNames"] == ["localhost"]
    signed = registered(monitor, "tls:index/locallySignedCert:LocallySignedCert")["boot-vault-listener"]
    assert "server_auth" in signed["allowedUses"] and "cert_signing" not in signed["allowedUses"]
    assert {k["ecdsaCurve"] for k in registered(monitor, "tls:index/privateKey:PrivateKey").values()} == {"P256"}


def urns_under(monitor, component_type: str) -> set[str]:
    """The names of the dynamic resources (of any dynamic type) the component registered."""
    prefix = f"urn:pulumi:unit::dbcreds::{component_type}$pulumi-python:dynamic"
    return {u.rsplit("::", 1)[1] for u in monitor.get_registered_resources() if u.startswith(prefix)}


def test_vault_server_keeps_its_token_secret(monitor, ran):
    from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs

    @pulumi.runtime.test
    def build():
        server = VaultServer("v", VaultServerArgs(data_dir="/d/openbao", nodes=(VaultNodeArgs(18200, 18201, "cert", "key"),),
                                                  ca_pem="ca", database_ca_pem="db ca"))

        def check(values):
            token_secret, ca_pem = values
            assert token_secret and ca_pem == "ca"

        return pulumi.Output.all(is_secret(server.admin_token), server.ca_pem).apply(ran(check))

    build()
    # Once every registration is done: the server, the resource that keeps it running, and its release.
    assert urns_under(monitor, "dbcreds:vault:VaultServer") == {"v-openbao", "v-running", "v-release"}
    openbao = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoServer")["v-openbao"]
    running = registered(monitor, "pulumi-python:dynamic:Resource")["v-running"]
    assert (openbao["port"], openbao["key_shares"], openbao["database_ca_pem"]) == (18200, 1, "db ca")
    assert (running["kind"], running["data_dir"], running["second_port"]) == ("openbao", "/d/openbao", 18201)
    # A single Shamir server's inputs are the ones stacks made before clusters recorded.
    assert not {"peers", "seal", "seal_key", "initialises"} & set(openbao)


def test_vault_cluster_nodes_join_the_first_and_share_a_secret_seal_key(monitor, ran):
    from components.local.vault_server import VaultNodeArgs, VaultServer, VaultServerArgs

    @pulumi.runtime.test
    def build():
        nodes = tuple(VaultNodeArgs(18300 + i, 18303 + i, f"cert {i}", f"key {i}") for i in range(3))
        server = VaultServer("v", VaultServerArgs(data_dir="/d/openbao", nodes=nodes, ca_pem="ca",
                                                  database_ca_pem="db ca", key_shares=5, key_threshold=3,
                                                  seal="static", seal_key="a key"))

        def check(values):
            addresses, keys_secret = values
            assert addresses == [f"https://127.0.0.1:{18300 + i}" for i in range(3)] and keys_secret

        return pulumi.Output.all(server.addresses, is_secret(server.recovery_keys)).apply(ran(check))

    build()
    assert urns_under(monitor, "dbcreds:vault:VaultServer") == {
        "v-openbao", "v-1-openbao", "v-2-openbao", "v-running", "v-1-running", "v-2-running", "v-release"}
    # One rollout moves every node (none holds a key: each unseals itself).
    release = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoRollout")["v-release"]
    assert [n["data_dir"] for n in release["nodes"]] == ["/d/openbao", "/d/openbao-1", "/d/openbao-2"]
    assert release["binary"] == "" and unwrap(release["unseal_keys"]) == []
    nodes = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoServer")
    assert [nodes[n]["initialises"] for n in ("v-openbao", "v-1-openbao", "v-2-openbao")] == [True, False, False]
    assert nodes["v-2-openbao"]["data_dir"] == "/d/openbao-2" and nodes["v-2-openbao"]["cert_pem"] == "cert 2"
    assert nodes["v-1-openbao"]["peers"] == ["https://127.0.0.1:18300", "https://127.0.0.1:18302"]
    assert {n["seal"] for n in nodes.values()} == {"static"}
    # Every node unseals itself: its keeper holds no key.
    keepers = registered(monitor, "pulumi-python:dynamic:Resource")
    assert [unwrap(keepers[f"v{suffix}-running"]["unseal_keys"]) for suffix in ("", "-1", "-2")] == [[], [], []]


def test_postgres_server_has_a_random_secret_bootstrap_password(monitor, ran):
    from components.local.postgres_server import PostgresServer, PostgresServerArgs

    @pulumi.runtime.test
    def build():
        server = PostgresServer("db", PostgresServerArgs(data_dir="/d/postgres", port=15432,
                                                         ca_pem="ca", cert_pem="cert", key_pem="key"))

        def check(values):
            password_secret, database, admin = values
            assert password_secret and (database, admin) == ("app", "dbcreds_admin")

        return pulumi.Output.all(is_secret(server.admin_bootstrap_password), server.database,
                                 server.admin).apply(ran(check))

    build()
    assert urns_under(monitor, "dbcreds:database:PostgresServer") == {"db-postgres", "db-running"}
    (password,) = registered(monitor, "random:index/randomPassword:RandomPassword").items()
    assert password[0] == "db-admin-bootstrap" and (password[1]["length"], password[1]["special"]) == (32, False)
    postgres = registered(monitor, "pulumi-python:dynamic:Resource")["db-postgres"]
    # Passed to the server resource as a secret (the wire form of a secret value).
    assert postgres["admin_password"]["value"] == "result of db-admin-bootstrap"
    assert pulumi.runtime.rpc._special_secret_sig in postgres["admin_password"].values()


def test_external_postgres_makes_the_stacks_roles_as_the_stack_admin_whose_password_stays_secret(monitor, ran):
    from components.external import ExternalPostgres, ExternalPostgresArgs
    from components.grants import GrantSpec

    spec = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",))

    @pulumi.runtime.test
    def build():
        db = ExternalPostgres("db", ExternalPostgresArgs(
            host="db.internal", port=5432, database="app", ca_pem="ca", stack_admin="rds_master",
            stack_admin_password=pulumi.Output.secret("master-password"), grant_specs=(spec,),
            service_users=(("svc_reporting", "reader"),)))

        def check(values):
            groups, admin, bootstrap_secret = values
            # Known from the args at a first preview (the policy gate judges the roles built on them).
            assert groups == {"reader": "dbcreds_group_reader"} and admin == "dbcreds_admin" and bootstrap_secret

        return pulumi.Output.all(db.group_roles, db.admin, is_secret(db.admin_bootstrap_password)).apply(ran(check))

    build()
    made = registered(monitor, "pulumi-python:dynamic:Resource")
    assert set(made) == {"db-admin", "db-group-reader", "db-user-svc_reporting"}
    for props in made.values():
        # Reached as the stack admin, never through a local data folder; the whole credential secret.
        assert "data_dir" not in props and pulumi.runtime.rpc._special_secret_sig in props["stack_admin"].values()
        assert props["stack_admin"]["value"]["user"] == "rds_master"
    # The grants are made as the tables' owner: the stack admin.
    assert made["db-group-reader"]["admin"] == "rds_master"
    assert urns_under(monitor, "dbcreds:database:ExternalPostgres") >= {"db-admin", "db-group-reader"}


def test_a_providers_server_props_say_when_it_is_another_server():
    from components.servers.database_access import reached_otherwise, server_replaces

    local = {"data_dir": "/d/postgres", "port": 15432, "database": "app"}
    assert server_replaces(local, local) == [] and not reached_otherwise(local, local)
    assert server_replaces(local, {**local, "data_dir": "/e/postgres"}) == ["data_dir"]
    assert server_replaces(local, {**local, "port": 15433}) == [] and reached_otherwise(local, {**local, "port": 15433})
    admin = {"host": "db.internal", "port": 5432, "user": "rds_master", "password": "a", "ca_pem": "ca"}
    external = {"stack_admin": admin, "database": "app"}
    # A new password or port reaches the same server; another host, user or CA is another server.
    for change in ({"password": "b"}, {"port": 6432}):
        moved = {**external, "stack_admin": {**admin, **change}}
        assert server_replaces(external, moved) == [] and reached_otherwise(external, moved)
    for change in ({"host": "db2.internal"}, {"user": "other"}, {"ca_pem": "ca2"}):
        assert server_replaces(external, {**external, "stack_admin": {**admin, **change}}) == ["stack_admin"]
