"""The local-server dynamic providers called directly, with real processes: a create that fails
after its server started leaves nothing running, and foreign data is never touched."""

import uuid
from pathlib import Path

import pytest

from components.dynamic.failures import ProviderError
from components.local.providers.openbao_server import _OpenBaoServerProvider
from tests.support.certs import issue_certificate, make_ca
from tests.support.ports import free_ports
from tests.support.processes import processes_naming
from toolchain.env import ROOT


def bao_processes(data_dir: Path) -> list[str]:
    return [c for c in processes_naming(data_dir) if "bao" in c]


@pytest.fixture
def props():
    data_dir = ROOT / ".data" / "tests" / f"provider-{uuid.uuid4().hex[:8]}"
    ca = make_ca("test CA", validity_hours=1)
    cert = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"], ["127.0.0.1"],
                             server=True, client=False, validity_hours=1)
    port, cluster_port = free_ports(2)
    return {"data_dir": str(data_dir), "port": port, "cluster_port": cluster_port, "ca_pem": ca["cert_pem"],
            "cert_pem": cert["cert_pem"], "key_pem": cert["private_key_pem"], "database_ca_pem": ca["cert_pem"],
            "key_shares": 1, "key_threshold": 1}


def test_a_create_failing_after_start_stops_the_server_and_removes_its_folder(props):
    # Initialising with zero key shares is refused by OpenBao itself, so after the server is up.
    bad = {**props, "key_shares": 0, "key_threshold": 0}
    # Named in one line: what failed, and OpenBao's own refusal.
    with pytest.raises(ProviderError, match=r"^initialising and unsealing OpenBao at https://127\.0\.0\.1:\d+: "
                                            r"invalid seal configuration: shares must be at least one"):
        _OpenBaoServerProvider().create(bad)
    assert bao_processes(Path(props["data_dir"])) == []
    assert not Path(props["data_dir"]).exists()


def test_a_data_folder_with_something_in_it_is_refused_untouched(props):
    foreign = Path(props["data_dir"]) / "raft" / "vault.db"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("someone else's data")
    try:
        with pytest.raises(RuntimeError, match="is not empty"):
            _OpenBaoServerProvider().create(props)
        assert foreign.read_text() == "someone else's data"
        assert bao_processes(Path(props["data_dir"])) == []
    finally:
        foreign.unlink()
        foreign.parent.rmdir()
        Path(props["data_dir"]).rmdir()
