"""The pulumi-vault components' graphs with Pulumi's mocks: what they ask Vault for.

They run for real in the dev stack (tests/integration/test_dev_stack.py); these
pin down each field quickly.
"""

import pulumi
import pytest

from components.grants import GrantSpec, ServiceUser
from components.postgres_sql import creation_statements, revocation_statements, username_template
from components.vault_policies import client_policy
from tests.unit.graph import is_secret, registered, unwrap

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",), default_ttl=3600, max_ttl=7200)
APP = GrantSpec(name="app", privileges=("SELECT", "INSERT"), tables=("public.users",), default_ttl=600, max_ttl=3600,
                connection_limit=3)


@pulumi.runtime.test
def test_engine_connection_roles_and_rotation(monitor, ran):
    from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs

    engine = DatabaseSecretsEngine("db", DatabaseSecretsEngineArgs(
        specs=(READER, APP), group_roles={"reader": "dbcreds_group_reader", "app": "dbcreds_group_app"},
        db_host="127.0.0.1", db_port=15432, db_name="app", admin="dbcreds_admin",
        admin_bootstrap_password="bootstrap", ca_file_on_vault="/vault/tls/database-ca.crt", max_ttl_cap=86400,
        service_users=(ServiceUser("svc_reporting", "reader", 86400),),
    ))

    def check(_):
        (mount,) = registered(monitor, "vault:index/mount:Mount").values()
        assert (mount["type"], mount["maxLeaseTtlSeconds"]) == ("database", 86400)
        (conn,) = registered(monitor, "vault:database/secretBackendConnection:SecretBackendConnection").values()
        assert conn["allowedRoles"] == ["reader", "app", "svc_reporting"] and conn["verifyConnection"] is True
        # The block holds a secret, so the whole block travels as a secret.
        assert pulumi.runtime.rpc._special_secret_sig in conn["postgresql"].values()
        pg = unwrap(conn["postgresql"])
        assert pg["connectionUrl"] == ("postgresql://{{username}}:{{password}}@127.0.0.1:15432/app"
                                       "?sslmode=verify-full&sslrootcert=/vault/tls/database-ca.crt")
        # The bootstrap password is write-only, never the plain `password` field.
        assert "password" not in pg and pg["passwordWo"] == "bootstrap" and pg["passwordWoVersion"] == 1
        assert pg["usernameTemplate"] == username_template()
        (rotate,) = registered(monitor, "vault:generic/endpoint:Endpoint").values()
        assert rotate["path"] == "database/rotate-root/app" and rotate["disableDelete"] is True
        # Its schedule (the endpoint is replaced with it) names it, for the policy gate: 30 days unless given.
        (schedule,) = registered(monitor, "pulumi-python:dynamic/dbcreds:Rotation").values()
        assert (schedule["rotates"], schedule["rotate_after"]) == ("database/rotate-root/app", 30 * 86400)
        roles = registered(monitor, "vault:database/secretBackendRole:SecretBackendRole")
        assert roles["db-role-app"]["creationStatements"] == creation_statements("dbcreds_group_app", 3)
        assert "CONNECTION LIMIT 10 " in roles["db-role-reader"]["creationStatements"][0]
        assert roles["db-role-app"]["revocationStatements"] == revocation_statements()
        assert (roles["db-role-reader"]["defaultTtl"], roles["db-role-reader"]["maxTtl"]) == (3600, 7200)
        (static,) = registered(monitor, "vault:database/secretBackendStaticRole:SecretBackendStaticRole").values()
        assert (static["username"], static["rotationPeriod"], static["dbName"]) == ("svc_reporting", 86400, "app")

    # Every resource the check reads is behind one of these outputs.
    def check_paths(values):
        static_creds, protected = values
        assert static_creds == ["database/static-creds/svc_reporting"]
        assert protected == ["database/static-creds/svc_reporting", "database/config/app",
                             "database/roles/reader", "database/roles/app"]

    return pulumi.Output.all(engine.roles, engine.static_roles, engine.root_rotation).apply(ran(check)).apply(
        lambda _: pulumi.Output.all(engine.static_creds_paths, engine.protected_paths).apply(ran(check_paths)))


def test_engine_refuses_a_role_over_the_cap(monitor):
    from components.vault.secrets_engine import DatabaseSecretsEngine, DatabaseSecretsEngineArgs

    with pytest.raises(ValueError, match="over the mount's cap"):
        DatabaseSecretsEngine("db", DatabaseSecretsEngineArgs(
            specs=(READER,), group_roles={}, db_host="h", db_port=1, db_name="d", admin="a",
            admin_bootstrap_password="p", ca_file_on_vault="/c", max_ttl_cap=3600,
        ))


@pulumi.runtime.test
def test_client_policy_approle_and_secret_id(monitor, ran):
    from components.vault.client_access import ClientAccess, ClientAccessArgs

    client = ClientAccess("reader", ClientAccessArgs(role="reader", database_mount="database",
                                                     approle_mount="approle"))
    secret = is_secret(client.secret_id)

    def check(values):
        role_id, secret_id, is_secret, creds_path = values
        assert role_id == "roleId of reader-approle" and secret_id == "secretId of reader-secret-id"
        assert is_secret and creds_path == "database/creds/reader"
        (policy,) = registered(monitor, "vault:index/policy:Policy").values()
        assert policy["name"] == "client-reader"
        assert policy["policy"] == client_policy("database", "reader")
        (role,) = registered(monitor, "vault:appRole/authBackendRole:AuthBackendRole").values()
        assert role["tokenPolicies"] == ["client-reader"] and role["tokenNoDefaultPolicy"] is True
        assert (role["tokenTtl"], role["tokenMaxTtl"], role["secretIdTtl"]) == (900, 3600, 86400)

    return pulumi.Output.all(client.role_id, client.secret_id, secret, client.creds_path).apply(ran(check))


def test_the_connection_url_takes_a_port_that_crossed_the_wire_as_a_float():
    from components.vault.secrets_engine import connection_url

    assert connection_url("127.0.0.1", 15432.0, "app", "/v/ca.crt") == (
        "postgresql://{{username}}:{{password}}@127.0.0.1:15432/app?sslmode=verify-full&sslrootcert=/v/ca.crt")


def test_what_is_wrong_with_a_database_certificate_is_said():
    import datetime

    from cryptography import x509

    from components.vault.tls_diagnosis import certificate_problem
    from tests.support.certs import issue_certificate, make_ca

    ca, other = make_ca("db CA", validity_hours=48), make_ca("other CA", validity_hours=48)
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(signer, **kwargs):
        pem = issue_certificate(signer["cert_pem"], signer["private_key_pem"], "localhost", ["localhost"],
                                ["127.0.0.1"], server=True, client=False, validity_hours=24, **kwargs)["cert_pem"]
        return x509.load_pem_x509_certificate(pem.encode())

    assert certificate_problem(cert(ca), ca["cert_pem"], now) == ""
    expired = cert(ca, ended_hours_ago=2)
    assert certificate_problem(expired, ca["cert_pem"], now) == (
        f"it expired at {expired.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    assert certificate_problem(cert(other), ca["cert_pem"], now) == (
        "it was issued by CN=other CA, not by the database CA (CN=db CA)")
    # A chain of several CAs: any of them may have issued it.
    assert certificate_problem(cert(other), other["cert_pem"] + ca["cert_pem"], now) == ""


def test_the_ages_the_report_gives_are_read_as_vault_writes_times():
    import datetime

    from components.vault.check_plan import CheckPlan
    from components.vault.checks import age_seconds

    now = datetime.datetime(2026, 12, 6, 8, 0, 0, tzinfo=datetime.timezone.utc)
    # RFC 3339 with nanoseconds (Go's time), in UTC or another zone, or whole seconds.
    assert age_seconds("2026-12-06T07:59:00.721237529Z", now) == 60
    assert age_seconds("2026-12-06T08:58:00.5+01:00", now) == 120
    assert age_seconds("2026-12-06T07:00:00Z", now) == 3600
    # The root's time crosses the wire as a float; a plan without it reports no root age.
    target = {"vault_addr": "https://v", "vault_ca_pem": "", "db_host": "h", "db_port": 1.0, "db_name": "d",
              "db_ca_pem": ""}
    assert CheckPlan.from_dict({"target": target, "clients": [], "root_rotated_at": 1.7e9}).root_rotated_at == (
        1_700_000_000)
    assert CheckPlan.from_dict({"target": target, "clients": []}).root_rotated_at == 0


@pulumi.runtime.test
def test_rendered_vault_manifests_say_what_its_operator_must_do(monitor, ran):
    """Manifests rendered for kubectl: the stack reaches no Vault, so no admin token or CA file stands
    in for one, and the outputs say how to initialise it (it unseals itself)."""
    from components.kubernetes.vault import VaultKubernetes, VaultKubernetesArgs

    vault = VaultKubernetes("vault", VaultKubernetesArgs(namespace="team", ca_pem="ca", cert_pem="c", key_pem="k",
                                                         image="registry.example/openbao:2.7.2",
                                                         image_built_here=False, replicas=3, key_shares=3,
                                                         key_threshold=2, seal_key="a key"))
    assert not hasattr(vault, "admin_token") and not hasattr(vault, "ca_file")

    def check(values):
        steps, address = values
        assert steps.startswith("initialise OpenBao once in pod vault-0 of namespace team: "
                                "kubectl exec -n team vault-0 -- bao operator init -address=https://localhost:8200 "
                                "-recovery-shares=3 -recovery-threshold=2")
        assert address == "https://vault.team.svc:8200"

    return pulumi.Output.all(vault.operator_steps, vault.address).apply(ran(check))
