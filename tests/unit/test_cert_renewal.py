"""Certificates' renewal windows: the settings (cert_renew_before, intermediate_renew_before), validated
in stacks/config.py, and what the components give the providers (pulumi-tls's early_renewal_hours,
Vault's PKI's min_seconds_remaining)."""

import datetime
from pathlib import Path

import pulumi
import pytest

from stacks.config import ConfigError, PkiSettings, renewal_hours, renewal_window, validate_pki
from stacks.config import validate as validate_in
from tests.unit.graph import registered

PROJECT = Path("/srv/dbcreds")
ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}


def validate(raw, stack, project_dir):
    return validate_in({"roles": ROLES, **raw}, stack, project_dir)


def test_unset_or_empty_windows_are_a_tenth_of_the_lifetime_as_before():
    """None is the components' default: a tenth of each certificate's lifetime (today's behaviour)."""
    for raw in ({}, {"cert_renew_before": "", "intermediate_renew_before": ""}):
        pki = validate_pki(raw)
        assert (pki.cert_renew_before, pki.intermediate_renew_before) == (None, None)
        assert (pki.cert_renewal_hours, pki.intermediate_renewal_hours) == (None, None)


@pytest.mark.parametrize("value, seconds, hours", [
    ("2h", 7200, 2), ("3590s", 3590, 1), ("90m", 5400, 2), ("1h", 3600, 1), (3600, 3600, 1), ("1", 1, 1),
    ("3601s", 3601, 2)])
def test_a_window_in_seconds_and_in_pulumi_tls_whole_hours_rounded_up(value, seconds, hours):
    """pulumi-tls renews no later than the window says: at most an hour earlier, never past the lifetime."""
    pki = validate_pki({"ca_validity_hours": 24, "cert_validity_hours": 2, "cert_renew_before": value})
    assert (pki.cert_renew_before, pki.cert_renewal_hours) == (seconds, hours)


def test_a_window_as_long_as_the_lifetime_is_allowed():
    pki = validate_pki({"ca_validity_hours": 2, "cert_validity_hours": 2, "cert_renew_before": "2h",
                        "intermediate_renew_before": "2h"})
    assert (pki.cert_renew_before, pki.intermediate_renew_before, pki.intermediate_renewal_hours) == (7200, 7200, 2)


@pytest.mark.parametrize("raw, problem", [
    ({"cert_renew_before": "0s"}, "cert_renew_before: must be longer than zero"),
    ({"cert_renew_before": 0}, "cert_renew_before: must be longer than zero"),
    ({"cert_renew_before": "-5m"}, "cert_renew_before: is not a duration"),
    ({"cert_renew_before": "soon"}, "cert_renew_before: is not a duration"),
    ({"cert_renew_before": True}, "cert_renew_before: is not a duration"),
    ({"cert_validity_hours": 2, "cert_renew_before": "7201s"},
     "cert_renew_before: 7201s is longer than the certificate's lifetime (cert_validity_hours: 2h)"),
    # The default lifetime: 90 days.
    ({"cert_renew_before": "91d"}, "cert_renew_before: 91d is longer than the certificate's lifetime "
                                   "(cert_validity_hours: 2160h)"),
    ({"ca_validity_hours": 2, "cert_validity_hours": 1, "intermediate_renew_before": "3h"},
     "intermediate_renew_before: 3h is longer than the certificate's lifetime (ca_validity_hours: 2h)"),
    ({"intermediate_renew_before": "90m"}, "intermediate_renew_before: must be whole hours"),
    ({"intermediate_renew_before": "0h"}, "intermediate_renew_before: must be longer than zero"),
])
def test_a_bad_window_is_refused_naming_the_field(raw, problem):
    with pytest.raises(ConfigError) as error:
        validate_pki(raw)
    assert str(error.value).startswith(f"config {problem}")
    assert error.value.field == problem.split(":")[0]


def test_renewal_window_on_its_own():
    assert renewal_window(None, "w", 3600, "life") is None
    assert renewal_window("59m", "w", 3600, "life") == 3540
    assert renewal_window("1h", "w", 3600, "life", whole_hours=True) == 3600
    with pytest.raises(ConfigError, match="^config w: 2h is longer than the certificate's lifetime"):
        renewal_window("2h", "w", 3600, "life")
    assert (renewal_hours(None), renewal_hours(3599), renewal_hours(7200), renewal_hours(7201)) == (None, 1, 2, 3)


def test_the_windows_are_refused_where_they_mean_nothing():
    with pytest.raises(ConfigError, match="^config intermediate_renew_before: means nothing on the docker target"):
        validate({"target": "docker", "intermediate_renew_before": "24h"}, "d", PROJECT)
    external = {"target": "external", "cert_renew_before": "1h"}
    with pytest.raises(ConfigError, match="^config cert_renew_before: means nothing on the external target"):
        validate(external, "e", PROJECT)
    # On the docker target, the servers' certificates are the stack's own: the window holds.
    assert validate({"target": "docker", "cert_renew_before": "1h"}, "d", PROJECT).pki.cert_renew_before == 3600


def test_pki_settings_default_to_no_window():
    assert PkiSettings("ca", 10, 1) == PkiSettings("ca", 10, 1, None, None)


def test_the_components_give_the_providers_the_windows(monitor, ran):
    """BootstrapPki's server certificates and DatabasePki's intermediate take whole hours
    (early_renewal_hours), DatabasePki's issued certificate seconds (min_seconds_remaining); unset, a
    tenth of each lifetime."""
    from components.bootstrap_pki import BootstrapPki, BootstrapPkiArgs
    from components.vault.database_pki import DatabasePki, DatabasePkiArgs

    @pulumi.runtime.test
    def build():
        BootstrapPki("given", BootstrapPkiArgs(ca_common_name="unit CA", ca_validity_hours=24,
                                               server_cert_validity_hours=2, server_cert_renewal_hours=2))
        BootstrapPki("tenth", BootstrapPkiArgs(ca_common_name="unit CA", ca_validity_hours=240,
                                               server_cert_validity_hours=20))
        DatabasePki("given-pki", DatabasePkiArgs(bootstrap_ca_cert_pem="ca", bootstrap_ca_private_key_pem="key",
                                                 cert_ttl=3600, intermediate_ttl=7200, cert_renew_before=3590,
                                                 intermediate_renewal_hours=2))
        DatabasePki("tenth-pki", DatabasePkiArgs(bootstrap_ca_cert_pem="ca", bootstrap_ca_private_key_pem="key",
                                                 cert_ttl=36000, intermediate_ttl=72000, mount_path="pki-2"))
        return pulumi.Output.from_input(None).apply(ran(lambda _: None))

    build()
    signed = registered(monitor, "tls:index/locallySignedCert:LocallySignedCert")
    assert {name: cert["earlyRenewalHours"] for name, cert in signed.items()} == {
        "given-vault-listener": 2, "given-database": 2, "tenth-vault-listener": 2, "tenth-database": 2,
        "given-pki-intermediate": 2, "tenth-pki-intermediate": 2}
    assert {name: cert["validityPeriodHours"] for name, cert in signed.items()} == {
        "given-vault-listener": 2, "given-database": 2, "tenth-vault-listener": 20, "tenth-database": 20,
        "given-pki-intermediate": 2, "tenth-pki-intermediate": 20}
    issued = registered(monitor, "vault:pkiSecret/secretBackendCert:SecretBackendCert")
    renewal = {name: (cert["minSecondsRemaining"], cert["autoRenew"], cert["revoke"]) for name, cert in issued.items()}
    assert renewal == {"given-pki-server": (3590, True, True), "tenth-pki-server": (3600, True, True)}


def test_a_database_pki_window_outside_its_certificates_lifetime_is_refused(monitor):
    from components.vault.database_pki import DatabasePki, DatabasePkiArgs

    for window in (0, 3601):
        with pytest.raises(ValueError, match="cert_renew_before must be positive and at most cert_ttl"):
            DatabasePki(f"bad-{window}", DatabasePkiArgs(bootstrap_ca_cert_pem="ca", bootstrap_ca_private_key_pem="k",
                                                         cert_ttl=3600, cert_renew_before=window))


def test_the_report_names_a_served_certificate_by_vaults_serial_and_its_end():
    """The checks' report gives each server's certificate as read on the wire: an https server's read
    here from a real TLS listener, its serial written as Vault's PKI writes it (`<mount>/cert/<serial>`)."""
    import socket
    import ssl
    import tempfile
    import threading

    from cryptography import x509

    from components.vault.tls_diagnosis import certificate_summary, served_https_certificate, vault_serial
    from tests.support.certs import issue_certificate, make_ca

    assert (vault_serial(0x1), vault_serial(0xabc), vault_serial(0x0a1b2c)) == ("01", "0a:bc", "0a:1b:2c")
    ca = make_ca("unit CA", validity_hours=2)
    issued = issue_certificate(ca["cert_pem"], ca["private_key_pem"], "localhost", ["localhost"], ["127.0.0.1"],
                               server=True, client=False, validity_hours=1)
    cert = x509.load_pem_x509_certificate(issued["cert_pem"].encode())
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "c.pem").write_text(issued["cert_pem"])
        (Path(folder) / "k.pem").write_text(issued["private_key_pem"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(f"{folder}/c.pem", f"{folder}/k.pem")
        listener = socket.create_server(("127.0.0.1", 0))

        def serve_once():
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True):
                pass

        server = threading.Thread(target=serve_once)
        server.start()
        served = served_https_certificate(f"https://127.0.0.1:{listener.getsockname()[1]}")
        server.join(10)
        listener.close()
    assert served == cert
    summary = certificate_summary(served)
    assert summary == {"serial": vault_serial(cert.serial_number), "subject": "CN=localhost", "issuer": "CN=unit CA",
                       "not_after": f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}
    assert int(summary["serial"].replace(":", ""), 16) == cert.serial_number


def test_the_default_issuer_is_the_one_the_intermediates_import_names():
    """Vault's answer to importing one certificate maps its issuer id to its key id, whether the issuer
    was new or there already (set-signed imported it): that id becomes the mount's default issuer."""
    import json

    from components.vault.database_pki import issuer_of_import

    answer = {"mapping": {"0b8e6a3c-issuer": "5d1f-key"}, "imported_issuers": None}
    assert issuer_of_import(json.dumps(answer)) == "0b8e6a3c-issuer"
    assert issuer_of_import(None) is None  # not known yet (a preview)
    for mapping in ({}, {"a": "k", "b": ""}):
        with pytest.raises(ValueError, match=f"answered {len(mapping)} issuers, not one"):
            issuer_of_import(json.dumps({"mapping": mapping}))


def test_database_pki_makes_the_intermediate_the_default_issuer(monitor, ran):
    from components.vault.database_pki import DatabasePki, DatabasePkiArgs

    @pulumi.runtime.test
    def build():
        DatabasePki("pki", DatabasePkiArgs(bootstrap_ca_cert_pem="ca", bootstrap_ca_private_key_pem="key"))
        return pulumi.Output.from_input(None).apply(ran(lambda _: None))

    build()
    (imported,) = registered(monitor, "vault:generic/endpoint:Endpoint").values()
    assert imported["path"] == "pki-db/issuers/import/cert" and imported["writeFields"] == ["mapping"]
    assert imported["disableRead"] and imported["disableDelete"]
    (config,) = registered(monitor, "vault:pkiSecret/secretBackendConfigIssuers:SecretBackendConfigIssuers").values()
    assert config["backend"] == "pki-db" and config["defaultFollowsLatestIssuer"] is False


@pytest.mark.parametrize("value, seconds", [("", None), (None, None), ("60s", 60), ("90m", 5400), ("2h", 7200),
                                            (120, 120)])
def test_the_database_certificates_lifetime_from_vaults_pki(value, seconds):
    """db_cert_validity: a duration from a minute to cert_validity_hours; empty, cert_validity_hours."""
    pki = validate_pki({"cert_validity_hours": 2, "db_cert_validity": value})
    assert pki.db_cert_validity == seconds


@pytest.mark.parametrize("raw, problem", [
    ({"db_cert_validity": "59s"}, "db_cert_validity: must be from 60s (the up that issues it must finish inside "
                                  "it) to cert_validity_hours (2160h), got '59s'"),
    ({"cert_validity_hours": 1, "db_cert_validity": "3601s"},
     "db_cert_validity: must be from 60s (the up that issues it must finish inside it) to cert_validity_hours (1h)"),
    ({"db_cert_validity": "0s"}, "db_cert_validity: must be longer than zero"),
    ({"db_cert_validity": "soon"}, "db_cert_validity: is not a duration"),
    ({"db_cert_validity": True}, "db_cert_validity: is not a duration"),
    ({"cert_validity_hours": 1, "cert_renew_before": "3595s", "db_cert_validity": "60s"},
     "db_cert_validity: 60s is shorter than its renewal window (cert_renew_before: 3595s); at least that"),
])
def test_a_bad_database_certificate_lifetime_is_refused_naming_the_field(raw, problem):
    with pytest.raises(ConfigError) as error:
        validate_pki(raw)
    assert str(error.value).startswith(f"config {problem}")
    assert error.value.field == "db_cert_validity"


def test_the_database_certificates_lifetime_only_where_vaults_pki_issues_it():
    assert validate({"db_cert_validity": "60s"}, "s", PROJECT).pki.db_cert_validity == 60
    with pytest.raises(ConfigError, match=r"^config db_cert_validity: is the lifetime of the database's certificate "
                                          r"from Vault's PKI \(db_certificates: vault_pki\), not bootstrap"):
        validate({"db_cert_validity": "60s", "db_certificates": "bootstrap"}, "s", PROJECT)
    with pytest.raises(ConfigError, match="^config db_cert_validity: means nothing on the docker target"):
        validate({"target": "docker", "db_cert_validity": "60s"}, "d", PROJECT)


def test_the_root_program_gives_vaults_pki_the_database_certificates_lifetime():
    source = (Path(__file__).resolve().parents[2] / "stacks" / "local_target.py").read_text()
    assert "cert_ttl=config.pki.db_cert_validity or config.pki.cert_validity_hours * 3600" in source


def test_a_new_lifetime_makes_a_new_database_certificate(monitor, ran):
    """Vault's provider would keep the old certificate (ttl changes in place): the component replaces it,
    as pulumi-tls replaces its own on a new validity."""
    from components.vault.database_pki import DatabasePki, DatabasePkiArgs

    @pulumi.runtime.test
    def build():
        DatabasePki("life", DatabasePkiArgs(bootstrap_ca_cert_pem="ca", bootstrap_ca_private_key_pem="key",
                                            cert_ttl=60, intermediate_ttl=7200))
        return pulumi.Output.from_input(None).apply(ran(lambda _: None))

    build()
    issued = registered(monitor, "vault:pkiSecret/secretBackendCert:SecretBackendCert")
    assert {name: (cert["ttl"], cert["minSecondsRemaining"]) for name, cert in issued.items()} == {
        "life-server": ("60", 6)}


def test_the_report_names_each_certificate_replaced_and_whether_it_had_expired():
    from components.vault.post_deploy_checks import replaced_certificates, replacement_lines

    at = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
    before = {"database": {"serial": "0a", "not_after": "2026-06-01T00:00:00Z"},
              "vault": {"serial": "0b", "not_after": "2026-12-06T13:00:00Z"}}
    now = {"database": {"serial": "1a", "not_after": "2027-03-06T12:00:00Z"},
           "vault": {"serial": "1b", "not_after": "2027-03-06T12:00:00Z"}}
    report = {"certificates": replaced_certificates(before, now, at)}
    assert report["certificates"]["database"]["replaced"] == {"serial": "0a", "not_after": "2026-06-01T00:00:00Z",
                                                              "expired": True}
    assert report["certificates"]["vault"]["replaced"]["expired"] is False
    assert replacement_lines(report) == [
        "database certificate replaced: serial 0a (expired at 2026-06-01T00:00:00Z) -> serial 1a "
        "(valid until 2027-03-06T12:00:00Z)",
        "vault certificate replaced: serial 0b (valid until 2026-12-06T13:00:00Z) -> serial 1b "
        "(valid until 2027-03-06T12:00:00Z)"]
    # The same serial, a first report, or a server that could not be read: nothing replaced, nothing said.
    unread = {"database": {"error": "ConnectionRefusedError: ..."}, "vault": before["vault"]}
    for old, new in ((now, now), ({}, now), (before, unread)):
        assert all("replaced" not in cert for cert in replaced_certificates(old, new, at).values())
    assert replacement_lines({}) == [] and replacement_lines({"certificates": now}) == []
