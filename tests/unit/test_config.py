"""Stack config validation: every bad value fails with the field's name."""

from pathlib import Path

import pytest

from components.grants import GrantSpec
from stacks.config import (ConfigError, DatabaseSettings, LocalTarget, PkiSettings, StackConfig, VaultSettings,
                           policy_pack_config)
from stacks.config import validate as validate_in

PROJECT = Path("/srv/project")
ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}


def validate(raw, stack):
    return validate_in({"roles": ROLES, **raw}, stack, PROJECT)


def test_defaults():
    assert validate({}, "dev") == StackConfig(
        pki=PkiSettings(ca_common_name="dbcreds CA", ca_validity_hours=8760, cert_validity_hours=2160),
        vault=VaultSettings(nodes=1, seal="shamir", key_shares=1, key_threshold=1, seal_key=None),
        database=DatabaseSettings(
            engine="postgresql", name="app", admin="dbcreds_admin", certificates="vault_pki", max_ttl_cap=86400,
            roles=(GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",)),), service_users=(),
            max_rotation_period=30 * 86400, root_rotation_period=30 * 86400, transit_store_key=False),
        clients=(), data_dir="/srv/project/.data/dev",
        target=LocalTarget(vault_port=18200, vault_cluster_port=18201, db_port=15432, db_http_port=15433),
    )


def test_the_target_holds_only_its_own_settings():
    """A setting that means nothing on a target is not there to be read by mistake."""
    local, docker = validate({}, "dev").target, validate({"target": "docker"}, "docker").target
    kubernetes = validate({"target": "kubernetes"}, "prod").target
    assert (local.kind, docker.kind, kubernetes.kind) == ("local", "docker", "kubernetes")
    assert not hasattr(local, "namespace") and not hasattr(docker, "db_http_port")
    assert not hasattr(kubernetes, "db_http_port") and kubernetes.namespace == "dbcreds"


def test_numbers_given_as_strings_are_read():
    config = validate({"ca_validity_hours": "100", "cert_validity_hours": "10", "vault_port": "19000"}, "dev")
    assert (config.pki.ca_validity_hours, config.pki.cert_validity_hours) == (100, 10)
    assert (config.target.vault_port, config.target.vault_cluster_port) == (19000, 19001)


def test_service_users():
    config = validate({"service_users": {"svc_reporting": {"role": "reader", "rotation_period": "12h"}}}, "dev")
    assert [(u.username, u.role, u.rotation_period) for u in config.database.service_users] == [
        ("svc_reporting", "reader", 43200)]


def test_the_root_rotation_period_defaults_to_the_environments_cap():
    assert validate({"max_rotation_period": "7d"}, "prod").database.root_rotation_period == 7 * 86400
    # Pulumi.yaml's default, an empty setting, is no setting.
    assert validate({"max_rotation_period": "7d", "root_rotation_period": ""}, "p").database.root_rotation_period == (
        7 * 86400)
    assert validate({"root_rotation_period": "24h"}, "dev").database.root_rotation_period == 86400
    assert validate({"root_rotation_period": "1m"}, "dev").database.root_rotation_period == 60


@pytest.mark.parametrize("period, problem", [
    ("59s", "59s is shorter than a minute: nearly every `up` would rotate the root credential"),
    ("8d", "691200s is longer than this environment's max_rotation_period of 604800s"),
    ("daily", "is not a duration like 90s, 30m, 1h30m or 7d: 'daily'"),
    ("0", "must be longer than zero: '0'"),
])
def test_a_root_rotation_period_out_of_bounds_is_refused_naming_it(period, problem):
    with pytest.raises(ConfigError) as error:
        validate({"max_rotation_period": "7d", "root_rotation_period": period}, "prod")
    assert str(error.value) == f"config root_rotation_period: {problem}"


def test_clients():
    config = validate({"clients": {"reporting": {"role": "reader", "allowed": ["SELECT 1"],
                                                 "forbidden": ["CREATE ROLE x"], "token_max_ttl": "2h"}}}, "dev")
    assert [(c.name, c.role, c.token_max_ttl) for c in config.clients] == [("reporting", "reader", 7200)]


def test_a_kubernetes_client_on_the_kubernetes_target():
    config = validate({"target": "kubernetes", "clients": {"team-app": {
        "role": "reader", "allowed": ["SELECT 1"], "forbidden": ["x"], "token_max_ttl": "24h",
        "service_accounts": ["team-app"], "namespaces": ["team-app"]}}}, "k8s")
    (client,) = config.clients
    assert (client.service_accounts, client.namespaces) == (("team-app",), ("team-app",))


def test_policy_pack_config_follows_the_stack():
    roles = {"reader": {"privileges": ["SELECT"], "schemas": ["public"], "max_ttl": "1h"}}
    config = validate_in({"roles": roles, "max_ttl_cap": "4h", "max_rotation_period": "7d",
                          "db_admin": "vault_admin"}, "prod", PROJECT)
    assert policy_pack_config(config, "prod") == {
        # A production stack runs a cluster of nodes that unseal themselves.
        "vault-highly-available": {"minNodes": 3, "requireAutoUnseal": True},
        "dynamic-role-ttls": {"maxTtlCapSeconds": 4 * 3600},
        "dynamic-role-least-privilege": {"adminRoles": ["vault_admin"]},
        "static-role-rotation": {"maxRotationPeriodSeconds": 7 * 86400},
        "static-role-not-admin": {"adminRoles": ["vault_admin"]},
        # Production rotates root on a schedule, within the same cap.
        "root-credentials-rotated": {"requireRotationSchedule": True, "maxRootRotationSeconds": 7 * 86400},
        "approle-bounded": {"maxTokenTtlSeconds": 4 * 3600, "maxSecretIdTtlSeconds": 30 * 86400},
        "kubernetes-auth-bounded": {"maxTokenTtlSeconds": 4 * 3600},
        # A container may mount host paths under the stack's data folder only.
        "docker-container-hardened": {"allowedHostPaths": [config.data_dir]},
        # Production keeps no root token, and spreads OpenBao's pods.
        "vault-no-root-token": {"requireNoRootToken": True},
        "kubernetes-vault-spread": {"requireSpread": True},
    }


def test_policy_pack_config_names_only_real_policies_and_their_properties():
    from policies.pack import POLICIES

    schemas = {p.name: set(p.config_schema.properties) if p.config_schema else set() for p in POLICIES}
    assert policy_pack_config(validate({}, "dev"), "dev")["vault-highly-available"] == {
        "minNodes": 1, "requireAutoUnseal": False}
    for policy, values in policy_pack_config(validate({}, "dev"), "dev").items():
        assert set(values) <= schemas[policy], policy


def test_where_the_database_certificate_comes_from():
    assert validate({}, "dev").database.certificates == "vault_pki"
    assert validate({"db_certificates": "bootstrap"}, "dev").database.certificates == "bootstrap"
    # auto: Vault's PKI where it is built (the local target, either engine), else the bootstrap CA.
    assert validate({"target": "kubernetes"}, "prod").database.certificates == "bootstrap"
    assert validate({"db_engine": "cockroachdb", "service_users": {}}, "dev").database.certificates == "vault_pki"
    assert validate({"db_certificates": "auto"}, "dev").database.certificates == "vault_pki"


def test_a_setting_of_the_other_target_says_which_target_it_is_for():
    with pytest.raises(ConfigError, match="^config db_port: means nothing on the kubernetes target "
                                          r"\(it is for local, docker and external\): remove it$"):
        validate({"target": "kubernetes", "db_port": 15632}, "prod")
    with pytest.raises(ConfigError, match="^config db_image: means nothing on the docker target "
                                          r"\(it is for kubernetes\): remove it$"):
        validate({"target": "docker", "db_image": "registry.example/postgres:16"}, "docker")
    # The retired settings are named, not ignored.
    for field, value in (("k8s_profile", "single-node"), ("k8s_await_ready", "false")):
        with pytest.raises(ConfigError, match=f"^config {field}: is gone: the kubernetes target runs on a cluster"):
            validate({"target": "kubernetes", field: value}, "k8s")


def test_kubernetes_target_reaches_vault_through_a_port_forward_and_configures_it():
    config = validate({"target": "kubernetes", "vault_port": 18600, "vault_nodes": 3,
                       "k8s_kubeconfig": ".data/cluster/kubeconfig", "service_users": {"svc": {"role": "reader"}}},
                      "prod")
    target = config.target
    assert (target.vault_port, target.namespace, target.storage_class) == (18600, "dbcreds", None)
    assert config.target.kubeconfig == str(PROJECT / ".data/cluster/kubeconfig")
    assert config.configures_vault and [u.username for u in config.database.service_users] == ["svc"]
    assert (config.vault.nodes, config.vault.seal, config.database.certificates) == (3, "static", "bootstrap")
    # The images built here unless one is named.
    assert target.images == {"openbao": None, "postgres": None, "python": None}
    named = validate({"target": "kubernetes", "vault_image": "registry.example/openbao:2.7.2",
                      "k8s_storage_class": "gp3"}, "prod").target
    assert named.images["openbao"] == "registry.example/openbao:2.7.2" and named.storage_class == "gp3"
    with pytest.raises(ConfigError, match="^config vault_cluster_port: means nothing on the kubernetes target"):
        validate({"target": "kubernetes", "vault_cluster_port": 18601}, "prod")
    with pytest.raises(ConfigError, match="^config k8s_storage_class: must be a StorageClass name"):
        validate({"target": "kubernetes", "k8s_storage_class": "Fast Disks"}, "prod")


def test_docker_target():
    config = validate({"target": "docker", "vault_port": 18400, "db_port": 15632,
                       "service_users": {"svc": {"role": "reader"}}}, "docker")
    assert (config.target.kind, config.target.vault_port, config.target.vault_cluster_port, config.target.db_port) == (
        "docker", 18400, 18401, 15632)
    # The database's certificate comes from the bootstrap CA: Vault starts after the database there.
    assert config.database.certificates == "bootstrap"
    assert [u.username for u in config.database.service_users] == ["svc"]


def test_kubernetes_target_rendering_manifests_configures_no_vault():
    config = validate({"target": "kubernetes", "k8s_namespace": "db-prod", "k8s_render_dir": "out/prod"}, "prod")
    assert (config.target.kind, config.target.namespace, config.target.render_dir) == (
        "kubernetes", "db-prod", "/srv/project/out/prod")
    assert not config.configures_vault


def test_data_dir_is_made_absolute():
    assert validate({"data_dir": "/var/lib/x"}, "dev").data_dir == "/var/lib/x"
    assert validate({"data_dir": "state/../data"}, "prod").data_dir == "/srv/project/data"


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"ca_common_name": ""}, "ca_common_name"),
        ({"ca_common_name": "   "}, "ca_common_name"),
        ({"ca_common_name": "x" * 65}, "ca_common_name"),
        ({"ca_validity_hours": 0}, "ca_validity_hours"),
        ({"ca_validity_hours": -5}, "ca_validity_hours"),
        ({"ca_validity_hours": "1h"}, "ca_validity_hours"),
        ({"ca_validity_hours": True}, "ca_validity_hours"),
        ({"ca_validity_hours": 87601}, "ca_validity_hours"),
        ({"cert_validity_hours": 0}, "cert_validity_hours"),
        # A certificate cannot outlive the CA that signs it.
        ({"ca_validity_hours": 10, "cert_validity_hours": 11}, "cert_validity_hours"),
        ({"data_dir": ""}, "data_dir"),
        ({"vault_port": 80}, "vault_port"),
        ({"vault_port": 70000}, "vault_port"),
        ({"vault_port": "8200/tcp"}, "vault_port"),
        ({"vault_port": 18200, "vault_cluster_port": 18200}, "vault_cluster_port"),
        ({"vault_key_shares": 0}, "vault_key_shares"),
        # Raft needs a majority: an even count survives no more failures than the odd one below it.
        ({"vault_nodes": 2}, "vault_nodes"),
        ({"vault_nodes": 4}, "vault_nodes"),
        ({"vault_nodes": 0}, "vault_nodes"),
        ({"vault_nodes": 9}, "vault_nodes"),
        # Node 1's API port would be node 0's cluster port.
        ({"vault_nodes": 3, "vault_port": 18300, "vault_cluster_port": 18301}, "vault_cluster_port"),
        ({"vault_nodes": 3, "vault_port": 18300, "db_port": 18305}, "db_port"),
        ({"vault_nodes": 3, "vault_seal": "shamir"}, "vault_seal"),
        ({"vault_seal": "transit"}, "vault_seal"),
        ({"target": "kubernetes", "vault_seal": "shamir"}, "vault_seal"),
        ({"target": "docker", "vault_nodes": 3}, "vault_nodes"),
        ({"target": "docker", "vault_seal": "static"}, "vault_seal"),
        ({"vault_seal": "static", "vault_seal_key": "c2hvcnQ="}, "vault_seal_key"),
        ({"vault_seal": "static", "vault_seal_key": "not base64!"}, "vault_seal_key"),
        ({"vault_seal_key": "A" * 43 + "="}, "vault_seal_key"),
        ({"vault_key_shares": 3, "vault_key_threshold": 4}, "vault_key_threshold"),
        ({"db_port": 18201}, "db_port"),
        ({"db_name": "App"}, "db_name"),
        ({"db_engine": "mysql"}, "db_engine"),
        ({"target": "nomad"}, "target"),
        ({"target": "docker", "db_engine": "cockroachdb"}, "db_engine"),
        ({"target": "docker", "db_certificates": "vault_pki"}, "db_certificates"),
        ({"target": "docker", "db_http_port": 16000}, "db_http_port"),
        ({"target": "docker", "k8s_namespace": "db"}, "k8s_namespace"),
        ({"target": "kubernetes", "db_engine": "cockroachdb"}, "db_engine"),
        ({"k8s_namespace": "Db_Creds"}, "k8s_namespace"),
        ({"k8s_namespace": "-x"}, "k8s_namespace"),
        ({"k8s_render_dir": "   "}, "k8s_render_dir"),
        ({"db_image": "postgres 15"}, "db_image"),
        ({"k8s_await_ready": "maybe"}, "k8s_await_ready"),
        ({"db_engine": "cockroachdb", "service_users": {"svc": {"role": "reader"}}}, "service_users"),
        ({"db_port": 20000, "db_http_port": 20000}, "db_http_port"),
        ({"db_engine": "postgresql", "roles": {"app": {"privileges": ["ZONECONFIG"], "schemas": ["public"]}}},
         "roles.app.privileges"),
        ({"db_name": 'a"; DROP DATABASE x; --'}, "db_name"),
        ({"max_ttl_cap": "forever"}, "max_ttl_cap"),
        ({"service_users": {"svc": {"role": "nope"}}}, "service_users.svc.role"),
        ({"service_users": {"v_svc": {"role": "reader"}}}, "service_users.v_svc"),
        ({"service_users": {"Svc": {"role": "reader"}}}, "service_users.Svc"),
        ({"service_users": {"svc": {"role": "reader", "rotation_period": "60d"}}}, "service_users.svc.rotation_period"),
        ({"service_users": ["svc"]}, "service_users"),
        ({"roles": {}}, "roles"),
        ({"db_certificates": "acme"}, "db_certificates"),
        ({"transit_store_key": "yes"}, "transit_store_key"),
        ({"transit_store_key": True}, "transit_store_key"),
        ({"db_certificates": "vault_pki", "target": "kubernetes"}, "db_certificates"),
        # A setting of the other target is refused, not ignored.
        ({"target": "kubernetes", "db_port": 15632}, "db_port"),
        ({"target": "kubernetes", "vault_cluster_port": 18201}, "vault_cluster_port"),
        ({"k8s_namespace": "dbcreds-dev"}, "k8s_namespace"),
        ({"target": "local", "db_image": "postgres:16"}, "db_image"),
        ({"db_admin": "v_admin"}, "db_admin"),
        ({"db_admin": "dbcreds_group_x"}, "db_admin"),
        ({"max_rotation_period": "60d"}, "max_rotation_period"),
        ({"root_rotation_period": "30s"}, "root_rotation_period"),
        ({"root_rotation_period": "31d"}, "root_rotation_period"),
        ({"max_rotation_period": "1d", "root_rotation_period": "2d"}, "root_rotation_period"),
        ({"root_rotation_period": "weekly"}, "root_rotation_period"),
        ({"max_rotation_period": "1d", "service_users": {"svc": {"role": "reader", "rotation_period": "2d"}}},
         "service_users.svc.rotation_period"),
        ({"clients": {"r": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"],
                            "token_max_ttl": "25h"}}}, "clients.r.token_max_ttl"),
        ({"clients": {"r": {"role": "app", "allowed": ["SELECT 1"], "forbidden": ["x"]}}}, "clients.r.role"),
        # Kubernetes auth only where the stack runs in the pods' cluster.
        ({"clients": {"r": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["x"], "token_max_ttl": "24h",
                            "service_accounts": ["r"], "namespaces": ["team"]}}}, "clients.r.service_accounts"),
        ({"target": "docker", "clients": {"r": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["x"],
                                                "token_max_ttl": "24h", "service_accounts": ["r"],
                                                "namespaces": ["team"]}}}, "clients.r.service_accounts"),
        ({"roles": ["reader"]}, "roles"),
        ({"roles": {"reader": {"privileges": ["ALL"], "schemas": ["public"]}}}, "roles.reader.privileges"),
        ({"roles": {"app": {"privileges": ["SELECT"], "schemas": ["public"], "default_ttl": "3h",
                            "max_ttl": "2h"}}}, "roles.app.default_ttl"),
        ({"max_ttl_cap": "2h", "roles": {"app": {"privileges": ["SELECT"], "schemas": ["public"],
                                                 "default_ttl": "1h"}}}, "roles.app.max_ttl"),
    ],
)
def test_bad_values_name_the_field(raw, field):
    with pytest.raises(ConfigError) as error:
        validate(raw, "dev")
    assert error.value.field == field
    assert str(error.value).startswith(f"config {field}: ")


def test_a_vault_cluster_takes_ports_in_two_runs_and_seals_itself():
    config = validate({"vault_nodes": 3, "vault_port": 18300, "vault_key_shares": 5, "vault_key_threshold": 3}, "s")
    assert (config.vault.nodes, config.vault.seal, config.vault.highly_available) == (3, "static", True)
    assert config.target.vault_node_ports(3) == ((18300, 18303), (18301, 18304), (18302, 18305))
    assert validate({}, "dev").vault.seal == "shamir" and validate({"target": "kubernetes"}, "p").vault.seal == "static"


def test_a_seal_key_given_by_hand_is_32_bytes_and_never_repeated():
    import base64

    key = base64.b64encode(bytes(range(32))).decode()
    assert validate({"vault_seal": "static", "vault_seal_key": key}, "s").vault.seal_key == key
    assert key not in repr(validate({"vault_seal": "static", "vault_seal_key": key}, "s"))
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ConfigError, match="must be 32 bytes .* got 16 bytes") as error:
        validate({"vault_seal": "static", "vault_seal_key": short}, "s")
    assert short not in str(error.value)


def test_each_stack_files_gate_config_carries_its_own_caps():
    from toolchain.policy_gate import pack_config
    from toolchain.stack_file import stacks_in_repository

    assert stacks_in_repository() == ["dev", "docker", "k8s", "prod", "staging"]
    caps = {stack: pack_config(stack)["dynamic-role-ttls"]["maxTtlCapSeconds"] for stack in stacks_in_repository()}
    assert caps == {"dev": 24 * 3600, "docker": 24 * 3600, "k8s": 24 * 3600, "staging": 8 * 3600, "prod": 4 * 3600}
    assert pack_config("prod")["static-role-rotation"] == {"maxRotationPeriodSeconds": 7 * 86400}
    assert pack_config("prod")["root-credentials-rotated"] == {"requireRotationSchedule": True,
                                                               "maxRootRotationSeconds": 7 * 86400}
    assert pack_config("dev")["root-credentials-rotated"]["requireRotationSchedule"] is False
    # Production's rules hold on prod alone.
    assert pack_config("prod")["vault-highly-available"] == {"minNodes": 3, "requireAutoUnseal": True}
    assert pack_config("k8s")["vault-no-root-token"] == {"requireNoRootToken": False}



@pytest.mark.parametrize("target", ["local", "docker", "kubernetes", "external"])
def test_the_project_files_defaults_are_the_validators(target):
    """Pulumi.yaml's config schema lists what stacks/config.py reads, and its defaults (which Pulumi
    hands every stack) validate to what no setting at all does, on either target."""
    import yaml

    from stacks.config import FIELDS, OBJECT_FIELDS
    from toolchain.env import ROOT

    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    # Pulumi requires a declared setting without a default; this one's is computed (vault_port + 1).
    assert set(schema) == {*FIELDS, *OBJECT_FIELDS} - {"vault_cluster_port"}
    # Every other setting without a default is one every stack file sets.
    assert {k for k, v in schema.items() if "default" not in v} == {"data_dir", "roles"}
    roles = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}
    defaults = {key: value["default"] for key, value in schema.items() if "default" in value}
    # The external target's own settings have no default that works (EXTERNAL gives them).
    given = {k: v for k, v in EXTERNAL.items() if k != "db_port"} if target == "external" else {}
    assert validate({**defaults, **given, "target": target, "roles": roles}, "s") == validate(
        {**given, "target": target, "roles": roles}, "s")


def test_the_project_files_defaults_are_the_default_table():
    """Pulumi.yaml repeats stacks/defaults.py's defaults (Pulumi hands them to every stack): the same values."""
    import yaml

    from stacks.defaults import DEFAULTS
    from toolchain.env import ROOT

    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert {key: value["default"] for key, value in schema.items() if "default" in value} == {
        k: v for k, v in DEFAULTS.items() if k != "vault_seal_key"}


def test_the_components_defaults_are_the_stacks():
    """A component left to its defaults makes what a stack left to its own does."""
    from components.bootstrap_pki import BootstrapPkiArgs
    from components.external import ExternalPostgresArgs
    from components.local.postgres_server import PostgresServerArgs

    database = validate({}, "dev").database
    assert PostgresServerArgs("d", 1, "", "", "").admin == ExternalPostgresArgs("h", 1, "d", "", "a", "").admin == (
        database.admin)
    assert PostgresServerArgs("d", 1, "", "", "").database == database.name
    pki = validate({}, "dev").pki
    assert (BootstrapPkiArgs("ca").ca_validity_hours, BootstrapPkiArgs("ca").server_cert_validity_hours) == (
        pki.ca_validity_hours, pki.cert_validity_hours)


def test_a_target_setting_left_at_its_default_is_no_setting():
    assert validate({"target": "kubernetes", "db_port": "15432", "vault_port": 18200}, "prod").target.kind == "kubernetes"
    assert validate({"k8s_storage_class": "", "k8s_render_dir": ""}, "dev").target.kind == "local"


EXTERNAL = {
    "target": "external", "vault_addr": "https://vault.internal:8200", "vault_ca_file": "tls/vault-ca.crt",
    "vault_database_ca_file": "/etc/openbao/db-ca.crt", "vault_token": "s.operator-token",
    "db_host": "db.internal", "db_port": "5432", "db_ca_file": "tls/db-ca.crt", "db_stack_admin": "rds_master",
    "db_stack_admin_password": "master-password",
}


def test_the_external_target_holds_its_addresses_files_and_credentials():
    from stacks.config import ExternalTarget

    config = validate(EXTERNAL, "ext")
    assert config.target == ExternalTarget(
        vault_addr="https://vault.internal:8200", vault_ca_file=str(PROJECT / "tls/vault-ca.crt"),
        vault_database_ca_file="/etc/openbao/db-ca.crt", vault_token="s.operator-token", db_host="db.internal",
        db_port=5432, db_ca_file=str(PROJECT / "tls/db-ca.crt"), db_stack_admin="rds_master",
        db_stack_admin_password="master-password")
    assert config.configures_vault and not config.runs_servers
    # The credentials never show in the config's text (an error or a log that prints it).
    assert "s.operator-token" not in repr(config) and "master-password" not in repr(config)
    # Vault on this host: its database CA is the one the checks use.
    without = {k: v for k, v in EXTERNAL.items() if k != "vault_database_ca_file"}
    assert validate(without, "ext").target.vault_database_ca_file == str(PROJECT / "tls/db-ca.crt")


@pytest.mark.parametrize("missing", ["vault_addr", "vault_ca_file", "vault_token", "db_host", "db_ca_file",
                                     "db_stack_admin", "db_stack_admin_password"])
def test_the_external_target_names_what_it_lacks(missing):
    with pytest.raises(ConfigError, match=f"^config {missing}: the external target needs "):
        validate({k: v for k, v in EXTERNAL.items() if k != missing}, "ext")


@pytest.mark.parametrize("raw, field", [
    ({**EXTERNAL, "vault_addr": "http://vault.internal:8200"}, "vault_addr"),
    ({**EXTERNAL, "vault_database_ca_file": "relative/ca.crt"}, "vault_database_ca_file"),
    ({**EXTERNAL, "db_stack_admin": "Robert'); DROP"}, "db_stack_admin"),
    ({**EXTERNAL, "db_engine": "cockroachdb"}, "db_engine"),
    # What the stack would run or make itself means nothing there.
    ({**EXTERNAL, "vault_port": 19000}, "vault_port"),
    ({**EXTERNAL, "vault_key_shares": 3}, "vault_key_shares"),
    ({**EXTERNAL, "ca_common_name": "my CA"}, "ca_common_name"),
    ({**EXTERNAL, "db_certificates": "vault_pki"}, "db_certificates"),
    # And its settings mean nothing elsewhere (a token in a local stack's file is a leak, not a setting).
    ({"db_host": "db.internal"}, "db_host"),
    ({"vault_token": "s.x"}, "vault_token"),
])
def test_external_settings_are_refused_where_they_mean_nothing(raw, field):
    with pytest.raises(ConfigError, match=f"^config {field}: "):
        validate(raw, "ext")


def test_a_secret_stored_in_plain_text_is_refused_naming_it():
    from stacks.config import refuse_plain_secrets

    refuse_plain_secrets({"db_host", "vault_addr"})
    with pytest.raises(ConfigError, match="^config vault_token: is stored in plain text .* --secret vault_token"):
        refuse_plain_secrets({"db_host", "vault_token"})


@pytest.mark.parametrize("field", ["vault_token", "db_stack_admin_password"])
def test_a_malformed_secret_is_named_but_never_repeated(field):
    with pytest.raises(ConfigError, match=f"^config {field}: ") as error:
        validate({**EXTERNAL, field: "half of it pasted"}, "ext")
    assert "pasted" not in str(error.value)


def test_a_config_error_is_a_run_error_so_the_engine_prints_one_line():
    """The Python language host prints a RunError's message as one `error:` line, where any other
    exception comes with its traceback."""
    import pulumi

    with pytest.raises(pulumi.RunError, match=r"^config roles.reader.privileges: 'DROP' is not a PostgreSQL "
                                              r"table privilege$"):
        validate({"roles": {"reader": {"privileges": ["DROP"], "schemas": ["public"]}}}, "dev")
    # Callers that catch it as before still do.
    assert issubclass(ConfigError, ValueError)


SYSTEM_SCHEMA_PROBLEM = ("one of the database's system schemas (pg_catalog, information_schema, pg_toast, "
                         "pg_temp*): a role reaches the application's schemas only")


@pytest.mark.parametrize("table", ["pg_catalog.pg_authid", "information_schema.tables", "pg_toast.pg_toast_1260",
                                   "pg_temp_3.scratch", "pg_toast_temp_3.pg_toast_1"])
def test_a_role_of_a_system_schemas_table_is_refused(table):
    schema = table.split(".")[0]
    with pytest.raises(ConfigError) as error:
        validate({"roles": {"app": {"privileges": ["SELECT"], "tables": ["public.users", table]}}}, "dev")
    assert str(error.value) == f"config roles.app.tables: {table!r} is in {schema}, {SYSTEM_SCHEMA_PROBLEM}"


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "pg_toast", "pg_temp_1"])
def test_a_role_of_a_whole_system_schema_is_refused(schema):
    with pytest.raises(ConfigError) as error:
        validate({"roles": {"app": {"privileges": ["SELECT"], "schemas": ["public", schema]}}}, "dev")
    assert str(error.value) == f"config roles.app.schemas: {schema!r} is {SYSTEM_SCHEMA_PROBLEM}"


OWN_ROLES = ("is one of the database's own roles (postgres, public, none and every pg_*): the stack makes its roles "
             "under names of their own")


@pytest.mark.parametrize("user", ["postgres", "public", "none", "pg_monitor", "pg_anything"])
def test_a_service_user_named_as_one_of_the_databases_own_roles_is_refused(user):
    with pytest.raises(ConfigError) as error:
        validate({"service_users": {user: {"role": "reader"}}}, "dev")
    assert str(error.value) == f"config service_users.{user}: {user!r} {OWN_ROLES}"


def test_a_service_user_named_as_the_stacks_admin_is_refused():
    with pytest.raises(ConfigError) as error:
        validate({"service_users": {"dbcreds_admin": {"role": "reader"}}}, "dev")
    assert str(error.value) == ("config service_users.dbcreds_admin: 'dbcreds_admin' is already taken by db_admin: "
                                "the stack makes its roles under names of their own")
    with pytest.raises(ConfigError, match="^config service_users.vault: 'vault' is already taken by db_admin: "):
        validate({"db_admin": "vault", "service_users": {"vault": {"role": "reader"}}}, "dev")


def test_a_service_user_named_as_a_group_role_is_refused():
    with pytest.raises(ConfigError, match=r"^config service_users.dbcreds_group_reader: user names are plain SQL "
                                          r"names \(a-z, 0-9, _\) not starting with v_ \(dynamic users\), "
                                          r"dbcreds_group \(group roles\) or dbcreds_team \(teams' roles\)$"):
        validate({"service_users": {"dbcreds_group_reader": {"role": "reader"}}}, "dev")


@pytest.mark.parametrize("admin", ["postgres", "public", "pg_signal_backend"])
def test_an_admin_named_as_one_of_the_databases_own_roles_is_refused(admin):
    with pytest.raises(ConfigError) as error:
        validate({"db_admin": admin}, "dev")
    assert str(error.value) == f"config db_admin: {admin!r} {OWN_ROLES}"


def test_cockroachdbs_own_roles_are_its_own():
    with pytest.raises(ConfigError, match="^config db_admin: 'root' is one of the database's own roles "
                                          r"\(root, admin, public, none, node and every pg_\*\)"):
        validate({"db_engine": "cockroachdb", "db_admin": "root"}, "dev")
    # A name only PostgreSQL has is free there.
    assert validate({"db_engine": "cockroachdb", "db_admin": "postgres"}, "dev").database.admin == "postgres"


def test_on_the_external_target_the_stack_admins_name_is_taken():
    """The stack admin exists already (an RDS master is often `postgres`): the stack makes its own
    admin and service users beside it, never over it."""
    with pytest.raises(ConfigError) as error:
        validate({**EXTERNAL, "db_admin": "rds_master"}, "ext")
    assert str(error.value) == ("config db_admin: 'rds_master' is already taken by db_stack_admin: the stack makes "
                                "its roles under names of their own")
    with pytest.raises(ConfigError, match="^config service_users.rds_master: 'rds_master' is already taken by "
                                          "db_stack_admin: "):
        validate({**EXTERNAL, "service_users": {"rds_master": {"role": "reader"}}}, "ext")
    # The stack admin itself may be `postgres`: the database has it, the stack only connects as it.
    assert validate({**EXTERNAL, "db_stack_admin": "postgres"}, "ext").target.db_stack_admin == "postgres"


def test_the_vault_prefix_names_what_the_stack_makes_in_vault():
    from stacks.config import VaultNames

    # No prefix: the names every stack made before there was one.
    plain = validate({}, "dev").vault.names
    assert (plain.database_mount, plain.approle_mount, plain.client_policy("app")) == (
        "database", "approle", "client-app")
    names = validate({**EXTERNAL, "vault_prefix": "team-a"}, "ext").vault.names
    assert names == VaultNames("team-a")
    assert (names.database_mount, names.approle_mount, names.client_policy("app")) == (
        "team-a-database", "team-a-approle", "team-a-client-app")
    # Pulumi.yaml's default, an empty setting, is no prefix.
    assert validate({**EXTERNAL, "vault_prefix": ""}, "ext").vault.names == plain


@pytest.mark.parametrize("prefix", ["a", "7", "team-a", "a-b-c", "x" * 20])
def test_a_vault_prefix_is_lower_case_letters_digits_and_hyphens(prefix):
    assert validate({**EXTERNAL, "vault_prefix": prefix}, "ext").vault.names.prefix == prefix


@pytest.mark.parametrize("prefix", ["Team-a", "team_a", "team.a", "team/a", "-a", "a-", "team a", "x" * 21, 5])
def test_a_bad_vault_prefix_is_refused_naming_the_field(prefix):
    with pytest.raises(ConfigError, match=r"^config vault_prefix: must be empty or 1 to 20 of a-z, 0-9 and -"):
        validate({**EXTERNAL, "vault_prefix": prefix}, "ext")


def test_a_vault_prefix_means_nothing_in_a_vault_the_stack_runs():
    for target in ("local", "docker", "kubernetes"):
        with pytest.raises(ConfigError, match=f"^config vault_prefix: means nothing on the {target} target "
                                              r"\(it is for external\)"):
            validate({"target": target, "vault_prefix": "team-a"}, "s")


# Each concern's validation on its own: the pure functions `validate` composes.

def test_the_target_kind_refuses_a_setting_of_another_target():
    from stacks.config import validate_target_kind

    assert validate_target_kind({}) == "local"
    assert validate_target_kind({"target": "kubernetes", "k8s_namespace": "team"}) == "kubernetes"
    # Left at its default (as Pulumi passes it, text), a setting of another target is no setting.
    assert validate_target_kind({"target": "docker", "db_http_port": "15433"}) == "docker"
    with pytest.raises(ConfigError, match=r"^config db_http_port: means nothing on the docker target \(it is for "
                                          r"local\): remove it$"):
        validate_target_kind({"target": "docker", "db_http_port": 16000})
    with pytest.raises(ConfigError, match=r"^config k8s_profile: is gone: "):
        validate_target_kind({"k8s_profile": "single-node"})


def test_pki_on_its_own():
    from stacks.config import validate_pki

    assert validate_pki({}) == PkiSettings(ca_common_name="dbcreds CA", ca_validity_hours=8760, cert_validity_hours=2160)
    assert validate_pki({"ca_validity_hours": "48", "cert_validity_hours": 48}).cert_validity_hours == 48
    with pytest.raises(ConfigError, match=r"^config cert_validity_hours: must be between 1 and 48, got 49$"):
        validate_pki({"ca_validity_hours": 48, "cert_validity_hours": 49})


def test_the_data_dir_on_its_own():
    from stacks.config import validate_data_dir

    assert validate_data_dir({}, "qa", PROJECT) == "/srv/project/.data/qa"
    with pytest.raises(ConfigError, match=r"^config data_dir: must be a folder path, got ' '$"):
        validate_data_dir({"data_dir": " "}, "qa", PROJECT)


def test_vault_on_its_own():
    from stacks.config import VaultNames, validate_vault

    assert validate_vault({}, "local") == VaultSettings(nodes=1, seal="shamir", key_shares=1, key_threshold=1,
                                                        seal_key=None)
    cluster = validate_vault({"vault_nodes": "3", "vault_key_shares": 5, "vault_key_threshold": 3}, "local")
    assert (cluster.seal, cluster.key_shares, cluster.key_threshold) == ("static", 5, 3)
    assert validate_vault({}, "kubernetes").seal == "static"
    assert validate_vault({"vault_prefix": "team-a"}, "external").names == VaultNames("team-a")
    with pytest.raises(ConfigError, match=r"^config vault_key_threshold: must be between 1 and 2, got 3$"):
        validate_vault({"vault_key_shares": 2, "vault_key_threshold": 3}, "local")


def test_the_ports_on_their_own():
    from stacks.config import validate_ports

    assert validate_ports({}, 1) == {"vault_port": 18200, "vault_cluster_port": 18201, "db_port": 15432,
                                     "db_http_port": 15433}
    # Three nodes: three API ports, then three cluster ports.
    assert validate_ports({"vault_port": 18300}, 3)["vault_cluster_port"] == 18303
    with pytest.raises(ConfigError, match=r"^config db_port: must differ from Vault's ports \(18300, 18301, 18302, "
                                          r"18303, 18304, 18305\)$"):
        validate_ports({"vault_port": 18300, "db_port": 18305}, 3)
    with pytest.raises(ConfigError, match=r"^config db_http_port: must differ from the other ports"):
        validate_ports({"db_port": 20000, "db_http_port": 20000}, 1)


def test_the_database_on_its_own():
    from stacks.config import validate_database

    database = validate_database({"roles": ROLES, "max_ttl_cap": "2d", "max_rotation_period": "7d"}, "kubernetes")
    assert (database.engine, database.name, database.admin, database.certificates) == (
        "postgresql", "app", "dbcreds_admin", "bootstrap")
    assert (database.max_ttl_cap, database.max_rotation_period, database.root_rotation_period) == (
        2 * 86400, 7 * 86400, 7 * 86400)
    assert validate_database({"roles": ROLES}, "external").certificates == "operator"
    # A grant spec's own error is the config error of the field it names.
    with pytest.raises(ConfigError, match=r"^config roles: must map each dynamic role's name to its grant spec$"):
        validate_database({}, "local")
    with pytest.raises(ConfigError, match=r"^config db_admin: must be 1 to 63 of a-z, 0-9 and _, not starting with v_ "
                                          r"\(dynamic users\), dbcreds_group \(group roles\) or dbcreds_team \(teams' roles\), got 'v_a'$"):
        validate_database({"roles": ROLES, "db_admin": "v_a"}, "local")


def test_the_clients_on_their_own():
    from stacks.config import validate_database, validate_stack_clients

    database = validate_database({"roles": ROLES}, "local")
    client = {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["x"], "token_max_ttl": "24h",
              "service_accounts": ["r"], "namespaces": ["team"]}
    assert validate_stack_clients({}, database, "local") == ()
    (spec,) = validate_stack_clients({"clients": {"r": client}}, database, "kubernetes")
    assert (spec.name, spec.role, spec.kubernetes is not None) == ("r", "reader", True)
    with pytest.raises(ConfigError, match=r"^config clients.r.service_accounts: means nothing on the local target "
                                          r"\(Kubernetes auth is for kubernetes\)"):
        validate_stack_clients({"clients": {"r": client}}, database, "local")


PORTS = {"vault_port": 18200, "vault_cluster_port": 18201, "db_port": 15432, "db_http_port": 15433}


def test_each_target_on_its_own():
    from stacks.config import (TARGET_VALIDATORS, TARGETS, DockerTarget, ExternalTarget, KubernetesTarget,
                               validate_docker, validate_external, validate_kubernetes, validate_local)

    assert set(TARGET_VALIDATORS) == set(TARGETS)
    assert validate_local({}, PORTS, PROJECT) == LocalTarget(**PORTS)
    assert validate_docker({}, PORTS, PROJECT) == DockerTarget(vault_port=18200, vault_cluster_port=18201,
                                                                db_port=15432)
    assert validate_kubernetes({"k8s_render_dir": "out", "db_image": "pg:15"}, PORTS, PROJECT) == KubernetesTarget(
        namespace="dbcreds", kubeconfig=None, render_dir="/srv/project/out", vault_port=18200,
        images={"openbao": None, "postgres": "pg:15", "python": None}, storage_class=None)
    with pytest.raises(ConfigError, match=r"^config k8s_storage_class: must be a StorageClass name, got 'A_B'$"):
        validate_kubernetes({"k8s_storage_class": "A_B"}, PORTS, PROJECT)
    external = validate_external(EXTERNAL, {**PORTS, "db_port": 5432}, PROJECT)
    assert isinstance(external, ExternalTarget) and (external.db_host, external.db_port) == ("db.internal", 5432)
    with pytest.raises(ConfigError, match=r"^config db_host: the external target needs the database's host name$"):
        validate_external({**EXTERNAL, "db_host": ""}, PORTS, PROJECT)


def test_each_kubernetes_image_is_the_setting_or_the_one_built_here():
    from components.docker.images import image_names
    from stacks.kubernetes_target import images

    config = validate({"target": "kubernetes", "db_image": "registry.example/postgres:15"}, "k8s")
    built = image_names()
    assert images(config) == {"openbao": (built["openbao"], True), "postgres": ("registry.example/postgres:15", False),
                              "python": (built["python"], True)}


TEAM = {"grant": {"privileges": ["SELECT"], "tables": ["public.orders"]}, "max_ttl": "1h"}


def test_teams_are_read_with_their_grant_and_cap():
    from stacks.config import TeamSettings

    assert validate({}, "dev").teams == ()
    assert validate({"teams": {"reports": TEAM}}, "dev").teams == (TeamSettings(
        name="reports", grant=GrantSpec(name="reports", privileges=("SELECT",), tables=("public.orders",),
                                        default_ttl=3600, max_ttl=3600), max_ttl=3600),)


@pytest.mark.parametrize("teams, field, says", [
    ({"reports": {**TEAM, "max_ttl": "48h"}}, "teams.reports.max_ttl", "max_ttl_cap of 86400s"),
    ({"reports": {**TEAM, "max_ttl": "30s"}}, "teams.reports.max_ttl", "between 60s"),
    ({"reports": {**TEAM, "max_ttl": "soon"}}, "teams.reports.max_ttl", "is not a duration"),
    ({"reports": {"grant": TEAM["grant"]}}, "teams.reports.max_ttl", "is not a duration"),
    ({"reports": {**TEAM, "grant": {"privileges": ["SUPERUSER"], "tables": ["public.orders"]}}},
     "teams.reports.grant.privileges", "SUPERUSER"),
    ({"reports": {**TEAM, "grant": {"privileges": ["SELECT"]}}}, "teams.reports.grant", "grants nothing"),
    ({"reports": {**TEAM, "grant": {**TEAM["grant"], "max_ttl": "1h"}}}, "teams.reports.grant.max_ttl",
     "set their own TTLs"),
    ({"reports": {**TEAM, "owner": "x"}}, "teams.reports.owner", "is not a team setting"),
    ({"team-a": TEAM}, "teams.team-a", "a-z and 0-9"),
    ({"reader": TEAM}, "teams.reader", "the platform's role 'reader'"),
    (["reports"], "teams", "must map"),
])
def test_a_bad_team_is_refused_naming_its_field(teams, field, says):
    with pytest.raises(ConfigError) as error:
        validate({"teams": teams}, "dev")
    assert error.value.field == field and says in str(error.value), str(error.value)
    assert str(error.value).startswith(f"config {field}: ")


def test_teams_are_refused_where_their_functions_cannot_be_made():
    for target in ("docker", "kubernetes"):
        with pytest.raises(ConfigError, match=f"^config teams: are made in PostgreSQL on the local and external "
                                              f"targets, not on {target} with postgresql"):
            validate({"target": target, "teams": {"reports": TEAM}}, target)


def test_a_platform_client_named_like_a_teams_approle_roles_is_refused():
    clients = {"team-reports-x": {"role": "reader", "allowed": ["SELECT 1"], "forbidden": ["CREATE ROLE x"]}}
    with pytest.raises(ConfigError, match="^config teams.reports: the platform's client 'team-reports-x'"):
        validate({"teams": {"reports": TEAM}, "clients": clients}, "dev")


def test_no_role_of_the_stack_is_named_like_a_teams():
    with pytest.raises(ConfigError, match="^config db_admin: .*dbcreds_team"):
        validate({"db_admin": "dbcreds_team_reports"}, "dev")
