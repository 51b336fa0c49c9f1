"""The OpenBao agent beside a team's workload (components/kubernetes/vault_agent.py): its config, templates
and pod spec as pure functions, what is refused naming the field, and the component under Pulumi's
mocks. tests/integration/test_team_app.py runs it on a real cluster."""

import copy
import re

import pulumi
import pytest

from components.kubernetes import vault_agent as va
from policies.rules import common as rules
from tests.unit.graph import registered
from tests.unit.policy import violations

CLIENT = va.AgentClient(name="team-app", mount="kubernetes", role="team-app", audience="vault.dbcreds.svc",
                        creds_path="database/creds/team-app")
DB = va.Database(host="db.dbcreds.svc", port=5432, name="app")
VAULT = "https://vault.dbcreds.svc:8200"
CLIENTS = {
    "team-app": {"creds_path": "database/creds/team-app", "role_id": "r", "secret_id": "s", "approle_mount": "approle",
                 "kubernetes": {"mount": "kubernetes", "role": "team-app", "audience": "vault.dbcreds.svc",
                                "service_accounts": ["team-app"], "namespaces": ["team-app"]}},
    "reader": {"creds_path": "database/creds/reader", "role_id": "r", "secret_id": "s", "approle_mount": "approle"},
}
SIDECAR = va.Sidecar(image="dbcreds-openbao:1", pull="Never", vault_addr=VAULT, audience=CLIENT.audience,
                     service_account="team-app", config_map="team-app-vault-agent", digest="abc")
HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
TEMPLATE = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": "team-app"}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10002, "fsGroup": 10001},
        "containers": [{"name": "app", "image": "dbcreds-python:1", "securityContext": HARDENED,
                        "env": [{"name": "DATABASE_URL_FILE", "value": "/vault/secrets/database-url"}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}}],
        "volumes": [{"name": "code", "configMap": {"name": "code"}}],
    },
}


def test_the_agent_logs_in_with_the_pods_token_keeps_its_own_in_a_sink_and_renders_in_order():
    hcl = va.agent_config(VAULT, CLIENT)
    assert f'address = "{VAULT}"' in hcl and 'ca_cert = "/vault/config/vault-ca.crt"' in hcl
    assert 'method "kubernetes"' in hcl and 'mount_path = "auth/kubernetes"' in hcl and 'role       = "team-app"' in hcl
    assert 'token_path = "/var/run/secrets/vault/token"' in hcl
    # The preStop hook's CLI reads the token from its helper file, $HOME/.vault-token.
    assert 'path = "/home/agent/.vault-token"' in hcl and "mode = 0600" in hcl
    destinations = [line.split('"')[1] for line in hcl.splitlines() if "destination" in line]
    assert destinations == [va.CREDENTIALS_FILE, va.URL_FILE, va.CA_FILE, va.READY_FILE]
    perms = [line.split('"')[1] for line in hcl.splitlines() if "perms" in line]
    assert perms == ["0400", "0400", "0444", "0444"]
    assert "listener" not in hcl and "cache" not in hcl  # No API of its own in the pod.


def test_the_templates_read_one_creds_path_and_verify_the_server():
    files = va.config_files(VAULT, "VAULT CA", "DB CA", CLIENT, DB)
    for template in ("db.json.tmpl", "database-url.tmpl", "ready.tmpl"):
        # The same `secret` in each: one read, one lease per pod.
        assert files[template].startswith('{{- with secret "database/creds/team-app" -}}')
    url = files["database-url.tmpl"]
    assert "@db.dbcreds.svc:5432/app?sslmode=verify-full&sslrootcert=/vault/secrets/db-ca.crt" in url
    assert "{{ .Data.password | urlquery }}" in url
    fields = files["db.json.tmpl"]
    assert '"sslmode": "verify-full"' in fields and '"lease_id": {{ .LeaseID | toJSON }}' in fields
    assert (files["vault-ca.crt"], files["db-ca.crt"]) == ("VAULT CA", "DB CA")
    # A changed file rolls the pods.
    assert va.config_digest(files) != va.config_digest({**files, "db-ca.crt": "NEW CA"})


def test_the_agent_is_a_native_sidecar_of_the_apps_user_that_revokes_on_the_way_out():
    spec = va.with_agent(TEMPLATE, SIDECAR)["spec"]
    agent, = spec["initContainers"]
    assert agent["name"] == va.AGENT_CONTAINER and agent["restartPolicy"] == "Always"
    assert agent["args"] == ["agent", "-config=/vault/config/agent.hcl"] and agent["image"] == "dbcreds-openbao:1"
    security = agent["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"], security["runAsNonRoot"]) == (10001, 10002, True)
    assert security["readOnlyRootFilesystem"] and security["capabilities"] == {"drop": ["ALL"]}
    assert agent["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/bao", "token", "revoke", "-self"]
    assert {e["name"]: e["value"] for e in agent["env"]} == {
        "HOME": va.AGENT_HOME, "BAO_ADDR": VAULT, "BAO_CACERT": "/vault/config/vault-ca.crt"}
    assert agent["startupProbe"]["exec"]["command"][-1] == f"ready=@{va.READY_FILE}"
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    assert set(mounts) == {"vault-secrets", "vault-agent-config", "vault-agent-home", "vault-token"}
    assert "readOnly" not in mounts["vault-secrets"] and mounts["vault-token"]["readOnly"]


def test_the_pod_has_its_service_account_no_api_token_and_the_app_reads_the_files_only():
    template = va.with_agent(TEMPLATE, SIDECAR)
    spec = template["spec"]
    assert spec["serviceAccountName"] == "team-app" and spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["vault-secrets"]["emptyDir"]["medium"] == "Memory"
    assert volumes["vault-agent-home"]["emptyDir"]["medium"] == "Memory"
    token, = volumes["vault-token"]["projected"]["sources"]
    assert token["serviceAccountToken"] == {"audience": "vault.dbcreds.svc", "expirationSeconds": 600, "path": "token"}
    app, = spec["containers"]
    assert app["volumeMounts"] == [{"name": "vault-secrets", "mountPath": "/vault/secrets", "readOnly": True}]
    # The app's own setting of a path is kept; the other is added.
    assert {e["name"]: e["value"] for e in app["env"]} == {
        "DATABASE_URL_FILE": "/vault/secrets/database-url", "DATABASE_CREDENTIALS_FILE": va.CREDENTIALS_FILE}
    assert template["metadata"]["labels"] == {"app.kubernetes.io/part-of": "team-app", **va.CLIENT_LABELS}
    assert template["metadata"]["annotations"] == {"dbcreds.io/agent-config": "abc"}
    # The team's template is not changed in place.
    assert "initContainers" not in TEMPLATE["spec"] and len(TEMPLATE["spec"]["volumes"]) == 1


def test_the_deployment_passes_the_gate():
    deployment = {"metadata": {"name": "team-app", "namespace": "team-app"},
                  "spec": va.deployment_spec("team-app", TEMPLATE, SIDECAR, 2)}
    assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "team-app"}}
    assert violations("kubernetes-workload-hardened", rules.DEPLOYMENT, deployment) == []


@pytest.mark.parametrize("change, field", [
    (lambda t: t["spec"]["securityContext"].pop("runAsUser"), "pod_template.spec.securityContext.runAsUser"),
    (lambda t: t["spec"]["securityContext"].update(runAsUser=0), "pod_template.spec.securityContext.runAsUser"),
    (lambda t: t["spec"]["securityContext"].update(runAsUser="10001"), "pod_template.spec.securityContext.runAsUser"),
    (lambda t: t["spec"]["volumes"].append({"name": "vault-secrets", "emptyDir": {}}), "pod_template.spec.volumes"),
    (lambda t: t["spec"].update(containers=[]), "pod_template.spec.containers"),
])
def test_a_pod_template_the_agent_cannot_join_is_refused_naming_the_field(change, field):
    template = copy.deepcopy(TEMPLATE)
    change(template)
    with pytest.raises(va.WorkloadError) as error:
        va.with_agent(template, SIDECAR)
    assert error.value.field == field and str(error.value).startswith(f"{field}: ")


def test_the_client_comes_from_the_platforms_clients_output():
    assert va.agent_client(CLIENTS, "team-app", "team-app", "team-app") == CLIENT


@pytest.mark.parametrize("name, account, namespace, field, problem", [
    ("nope", "team-app", "team-app", "client", "no client 'nope' on the platform (its clients: reader, team-app)"),
    ("reader", "team-app", "team-app", "client", "logs in with AppRole only"),
    ("team-app", "other", "team-app", "service_account", "'other' is not a service account of client 'team-app'"),
    ("team-app", "team-app", "elsewhere", "namespace", "'elsewhere' is not a namespace of client 'team-app'"),
])
def test_a_client_its_pods_cannot_log_in_as_is_refused_naming_the_field(name, account, namespace, field, problem):
    with pytest.raises(va.WorkloadError, match=re.escape(problem)) as error:
        va.agent_client(CLIENTS, name, account, namespace)
    assert error.value.field == field


@pytest.mark.parametrize("path", ["/vault/secrets/creds.json", "/vault/secrets/database-url"])
def test_files_in_the_shared_volume_are_taken(path):
    assert va.in_shared_volume(path, "url_file") == path


@pytest.mark.parametrize("path", [
    "/etc/database-url", "/vault/secrets/../db.json", "/vault/secrets", "/vault/secrets/", "vault/secrets/db.json",
    "/vault/secrets/sub/db.json", "/vault/secrets//db.json", "/vault/secrets/db-ca.crt", "/vault/secrets/.ready", "",
    None,
])
def test_a_file_outside_the_shared_volume_is_refused_naming_the_field(path):
    with pytest.raises(va.WorkloadError) as error:
        va.in_shared_volume(path, "url_file")
    assert error.value.field == "url_file"


def workload(**changes) -> va.VaultAgentWorkloadArgs:
    args = dict(namespace="team-app", service_account="team-app", client="team-app", platform_clients=CLIENTS,
                vault_addr=VAULT, vault_ca_pem="VAULT CA", db_host=DB.host, db_port=DB.port, db_name=DB.name,
                db_ca_pem="DB CA", agent_image="dbcreds-openbao:1", pod_template=TEMPLATE, replicas=2)
    return va.VaultAgentWorkloadArgs(**{**args, **changes})


@pulumi.runtime.test
def test_the_component_deploys_the_app_with_its_agent(monitor):
    app = va.VaultAgentWorkload("team-app", workload())

    def check(_):
        config_map = registered(monitor, "kubernetes:core/v1:ConfigMap")["team-app-vault-agent"]
        assert config_map["metadata"]["name"] == "team-app-vault-agent"
        assert set(config_map["data"]) == {"agent.hcl", "db.json.tmpl", "database-url.tmpl", "ready.tmpl",
                                           "vault-ca.crt", "db-ca.crt"}
        deployment = registered(monitor, "kubernetes:apps/v1:Deployment")["team-app-deployment"]
        spec = deployment["spec"]
        assert spec["replicas"] == 2
        agent, = spec["template"]["spec"]["initContainers"]
        assert agent["volumeMounts"][1]["mountPath"] == va.CONFIG_DIR
        assert spec["template"]["spec"]["volumes"][-2]["configMap"]["name"] == "team-app-vault-agent"
        assert violations("kubernetes-workload-hardened", rules.DEPLOYMENT, deployment) == []

    return pulumi.Output.all(app.deployment, app.url_file).apply(check)


def test_the_component_refuses_a_file_outside_the_volume_before_it_makes_anything():
    with pytest.raises(va.WorkloadError, match="url_file: '/tmp/url' is not a file of the shared volume"):
        va.VaultAgentWorkload("bad", workload(url_file="/tmp/url"))
    with pytest.raises(va.WorkloadError, match="url_file: is credentials_file"):
        va.VaultAgentWorkload("bad", workload(url_file=va.CREDENTIALS_FILE))
