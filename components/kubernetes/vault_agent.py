"""A team's workload with its database credentials from the platform's Vault, through OpenBao's agent
beside it: the team writes a Deployment's pod template; the component adds the agent and deploys it.

    platform = pulumi.StackReference("organization/dbcreds/k8s")
    app = VaultAgentWorkload("team-app", VaultAgentWorkloadArgs(
        namespace="team-app", service_account="team-app", client="team-app",
        platform_clients=platform.require_output("clients"),
        vault_addr=platform.require_output("vault_service_addr"),
        vault_ca_pem=platform.require_output("vault_ca_pem"),
        db_host=platform.require_output("db_host"), db_port=platform.require_output("db_port"),
        db_name=platform.require_output("db_name"), db_ca_pem=platform.require_output("db_ca_pem"),
        agent_image=platform.require_output("k8s_images")["openbao"],
        pod_template={"metadata": {"labels": {...}}, "spec": {
            "securityContext": {"runAsUser": 10001, "runAsNonRoot": True, ...},
            "containers": [{"name": "app", "image": ..., ...}]}},
        replicas=2), opts=pulumi.ResourceOptions(provider=k8s_provider))

What each pod gets:
- the agent (`bao agent`, the platform's OpenBao image: the `bao` binary and nothing else, no shell)
  as a native sidecar, the pod's first init container with `restartPolicy: Always`, running as the
  app's own user (the pod's `runAsUser`), read-only, no capability;
- its login: the pod's service account's token, projected for the agent alone with the platform's
  audience (a token the API server refuses, and that no other service would take), reread at every
  login; the pod has no API token (`automountServiceAccountToken: false`);
- the credentials: rendered by the agent into an in-memory volume (`SECRETS_DIR`, mounted read-only
  into every app container): `db.json` (username, password, host, port, dbname, sslmode, sslrootcert,
  the lease's id and duration) and `database-url` (a libpq URL with `sslmode=verify-full` and the CA),
  each mode 0400 and owned by the app's user, and `db-ca.crt`. The app reads them whenever it connects;
  the app containers get their paths as `DATABASE_CREDENTIALS_FILE` and `DATABASE_URL_FILE`;
- renewal: the agent renews the lease (the lease id in the body, as the client policy allows) until
  the role's `max_ttl`, then reads new credentials and rewrites the files; the old user is dropped by
  Vault when its lease ends. Its own token is renewed the same way up to the role's token_max_ttl (at
  least max_ttl: a lease dies with its token), then the agent logs in again, which also reads new
  credentials;
- the start: the app containers start once the credentials are there (the sidecar's startup probe:
  `bao` reading a marker file the agent writes after them; the image has no `test`);
- the end: the sidecar's preStop hook revokes the agent's token (`bao token revoke -self`, the token
  from its sink, `$HOME/.vault-token`, in a volume of the agent's alone), and with it the pod's
  leases: Vault drops their users and ends their sessions. Kubernetes runs a native sidecar's preStop
  hook when the pod is deleted, beside the app's SIGTERM, not after the app has exited (measured on
  1.34.2: 0.1 s after the delete, while the app still ran): the app's last moments have no database.

The agent config, the templates and the pod spec are pure functions (tested in tests/unit); config
that cannot work (a client that does not exist on the platform or logs in with AppRole only, a
service account or namespace its role does not bind, a file outside the shared volume, a pod with no
user) fails at preview naming the field.
"""

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import manifests as m

#: The in-memory volume the agent writes the credentials to and the app reads them from.
SECRETS_DIR = "/vault/secrets"
#: The agent's config, templates and CAs (a ConfigMap), its token sink's folder (its HOME), and the
#: service account token it logs in with: the agent's alone.
CONFIG_DIR = "/vault/config"
AGENT_HOME = "/home/agent"
TOKEN_DIR = "/var/run/secrets/vault"
CREDENTIALS_FILE = f"{SECRETS_DIR}/db.json"
URL_FILE = f"{SECRETS_DIR}/database-url"
CA_FILE = f"{SECRETS_DIR}/db-ca.crt"
#: Written after the credentials: the sidecar's startup probe waits for it.
READY_FILE = f"{SECRETS_DIR}/.ready"
AGENT_CONTAINER = "vault-agent"
#: A projected token's shortest life (kubelet replaces it at 80 %).
TOKEN_SECONDS = 600
#: The platform's labels that let a pod reach Vault and the database (its NetworkPolicies).
CLIENT_LABELS = {**m.VAULT_CLIENT_LABEL, **m.DB_CLIENT_LABEL}


class WorkloadError(ValueError):
    """A workload's setting cannot work; `field` names it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class AgentClient:
    """How a client's pods log in and what they read: the platform's `clients` output of one client."""

    name: str
    #: The Kubernetes auth mount, the role, and the audience its pods' tokens must carry.
    mount: str
    role: str
    audience: str
    creds_path: str


def agent_client(clients: Mapping[str, Any], name: str, service_account: str, namespace: str) -> AgentClient:
    """The client `name` of the platform's `clients` output, or a WorkloadError naming the field: it
    must exist, log in with Kubernetes auth, and its role bind the workload's service account and
    namespace (else every pod would be refused at login)."""
    if name not in clients:
        raise WorkloadError("client", f"no client {name!r} on the platform (its clients: "
                                      f"{', '.join(sorted(clients)) or 'none'})")
    login = clients[name].get("kubernetes")
    if not login:
        raise WorkloadError("client", f"client {name!r} logs in with AppRole only: give it service_accounts and "
                                      "namespaces in the platform's config")
    if service_account not in login["service_accounts"]:
        raise WorkloadError("service_account", f"{service_account!r} is not a service account of client {name!r} "
                                               f"({', '.join(login['service_accounts'])}): its pods would be refused "
                                               "at login")
    if namespace not in login["namespaces"]:
        raise WorkloadError("namespace", f"{namespace!r} is not a namespace of client {name!r} "
                                         f"({', '.join(login['namespaces'])}): its pods would be refused at login")
    return AgentClient(name=name, mount=login["mount"], role=login["role"], audience=login["audience"],
                       creds_path=clients[name]["creds_path"])


def in_shared_volume(path: str, field: str) -> str:
    """A file the agent renders: an absolute path inside SECRETS_DIR (never outside it: the agent
    could write nowhere else, and the app would read nothing there), or a WorkloadError."""
    normal = posixpath.normpath(path) if isinstance(path, str) and path.startswith("/") else ""
    if not normal or normal != path or posixpath.dirname(normal) != SECRETS_DIR or normal in (CA_FILE, READY_FILE):
        raise WorkloadError(field, f"{path!r} is not a file of the shared volume: give {SECRETS_DIR}/<name> "
                                   f"(not {posixpath.basename(CA_FILE)} or {posixpath.basename(READY_FILE)})")
    return normal


@dataclass(frozen=True)
class Database:
    """Where the app connects: the database's Service, its port and database."""

    host: str
    port: int
    name: str


def credentials_template(creds_path: str, db: Database) -> str:
    """db.json: one JSON object, rendered by the agent whenever the credentials change."""
    static = {"host": db.host, "port": db.port, "dbname": db.name, "sslmode": "verify-full", "sslrootcert": CA_FILE}
    fields = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in static.items())
    return (f'{{{{- with secret "{creds_path}" -}}}}\n'
            '{"username": {{ .Data.username | toJSON }}, "password": {{ .Data.password | toJSON }}, '
            f'{fields}, '
            '"lease_id": {{ .LeaseID | toJSON }}, "lease_duration": {{ .LeaseDuration }}}\n'
            '{{- end }}\n')


def url_template(creds_path: str, db: Database) -> str:
    """database-url: a libpq URL that verifies the server (verify-full against the CA in the volume)."""
    return (f'{{{{- with secret "{creds_path}" -}}}}\n'
            'postgresql://{{ .Data.username | urlquery }}:{{ .Data.password | urlquery }}'
            f'@{db.host}:{db.port}/{db.name}?sslmode=verify-full&sslrootcert={CA_FILE}\n'
            '{{- end }}\n')


def ready_template(creds_path: str) -> str:
    """The marker the startup probe waits for: rendered once the credentials are (after their files)."""
    return f'{{{{- with secret "{creds_path}" -}}}}ready{{{{- end }}}}\n'


def _hcl(value: str) -> str:
    return json.dumps(value)


def agent_config(vault_addr: str, client: AgentClient, credentials_file: str = CREDENTIALS_FILE,
                 url_file: str = URL_FILE) -> str:
    """The agent's HCL: log in with the pod's projected token at the client's role; its token in a
    file sink (for the preStop revocation); the templates, in order (the marker last). The same
    `secret` in each template is one read: one lease per pod."""
    templates = [("db.json.tmpl", credentials_file, "0400"), ("database-url.tmpl", url_file, "0400"),
                 ("db-ca.crt", CA_FILE, "0444"), ("ready.tmpl", READY_FILE, "0444")]
    blocks = "".join(
        f"template {{\n  source               = {_hcl(f'{CONFIG_DIR}/{source}')}\n"
        f"  destination          = {_hcl(destination)}\n  perms                = {_hcl(perms)}\n"
        "  error_on_missing_key = true\n}\n\n"
        for source, destination, perms in templates)
    return (
        f"# OpenBao agent of client {client.name} (components/kubernetes/vault_agent.py).\n"
        "vault {\n"
        f"  address = {_hcl(vault_addr)}\n"
        f"  ca_cert = {_hcl(f'{CONFIG_DIR}/vault-ca.crt')}\n"
        "}\n\n"
        "auto_auth {\n"
        '  method "kubernetes" {\n'
        f"    mount_path = {_hcl(f'auth/{client.mount}')}\n"
        "    config = {\n"
        f"      role       = {_hcl(client.role)}\n"
        f"      token_path = {_hcl(f'{TOKEN_DIR}/token')}\n"
        "    }\n"
        "  }\n"
        # Where `bao token revoke -self` (the preStop hook) finds it: the CLI's token helper file.
        '  sink "file" {\n'
        "    config = {\n"
        f"      path = {_hcl(f'{AGENT_HOME}/.vault-token')}\n"
        "      mode = 0600\n"
        "    }\n"
        "  }\n"
        "}\n\n"
        + blocks
    )


def config_files(vault_addr: str, vault_ca_pem: str, db_ca_pem: str, client: AgentClient, db: Database,
                 credentials_file: str = CREDENTIALS_FILE, url_file: str = URL_FILE) -> dict[str, str]:
    """The agent's ConfigMap: its config, the templates and both CAs (none of it secret)."""
    return {
        "agent.hcl": agent_config(vault_addr, client, credentials_file, url_file),
        "db.json.tmpl": credentials_template(client.creds_path, db),
        "database-url.tmpl": url_template(client.creds_path, db),
        "ready.tmpl": ready_template(client.creds_path),
        "vault-ca.crt": vault_ca_pem, "db-ca.crt": db_ca_pem,
    }


def config_digest(files: Mapping[str, str]) -> str:
    """A digest of the agent's files: a pod annotation, so a changed config rolls the pods."""
    return hashlib.sha256(json.dumps(dict(files), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sidecar:
    """What the agent container needs of the platform and the workload."""

    image: str
    pull: str
    vault_addr: str
    audience: str
    service_account: str
    config_map: str
    digest: str = ""
    credentials_file: str = CREDENTIALS_FILE
    url_file: str = URL_FILE


def app_user(pod_spec: Mapping[str, Any]) -> tuple[int, int]:
    """The pod's user and group, which the agent runs as (so the files it writes are the app's), or a
    WorkloadError: the pod must name a non-root user."""
    security = pod_spec.get("securityContext") or {}
    uid = security.get("runAsUser")
    if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
        raise WorkloadError("pod_template.spec.securityContext.runAsUser",
                            "the agent runs as the app's user and writes the credentials for it alone: give the "
                            f"pod a non-root runAsUser, got {uid!r}")
    gid = security.get("runAsGroup", uid)
    return uid, gid if isinstance(gid, int) and not isinstance(gid, bool) else uid


def agent_container(sidecar: Sidecar, uid: int, gid: int) -> dict[str, Any]:
    """The native sidecar: `bao agent`, as the app's user; its startup waits for the credentials; its
    preStop revokes its token and the pod's leases."""
    bao = "/bin/bao"
    return {
        "name": AGENT_CONTAINER, "image": sidecar.image, "imagePullPolicy": sidecar.pull,
        # A native sidecar: started before the app containers, stopped after them.
        "restartPolicy": "Always",
        "args": ["agent", f"-config={CONFIG_DIR}/agent.hcl"],
        # The CLI of the preStop hook: its token from $HOME/.vault-token, Vault and its CA.
        "env": [{"name": "HOME", "value": AGENT_HOME}, {"name": "BAO_ADDR", "value": sidecar.vault_addr},
                {"name": "BAO_CACERT", "value": f"{CONFIG_DIR}/vault-ca.crt"}],
        "securityContext": {**m.container_security(), "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid},
        # Little CPU asked; half a core allowed, which the `bao` runs of the probe and the preStop hook use
        # too (0.15 s of CPU each: 0.3 s at this limit, where 200m took 0.7 s).
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        # The image has no shell and no `test`: `bao` reads the marker as a request's value and prints the
        # request as curl would, sending nothing; it fails while the file is missing.
        "startupProbe": {"exec": {"command": [bao, "write", "-output-curl-string", "sys/ready",
                                              f"ready=@{READY_FILE}"]},
                         "periodSeconds": 1, "timeoutSeconds": 10, "failureThreshold": 300},
        "lifecycle": {"preStop": {"exec": {"command": [bao, "token", "revoke", "-self"]}}},
        "volumeMounts": [{"name": "vault-secrets", "mountPath": SECRETS_DIR},
                         {"name": "vault-agent-config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "vault-agent-home", "mountPath": AGENT_HOME},
                         {"name": "vault-token", "mountPath": TOKEN_DIR, "readOnly": True}],
    }


def agent_volumes(sidecar: Sidecar) -> list[dict[str, Any]]:
    return [
        # In memory: the credentials never touch the node's disk.
        {"name": "vault-secrets", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "vault-agent-home", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "vault-agent-config", "configMap": {"name": sidecar.config_map, "defaultMode": 0o444}},
        # The pod's identity for Vault alone: an audience the API server does not take.
        {"name": "vault-token", "projected": {"defaultMode": 0o400, "sources": [{"serviceAccountToken": {
            "audience": sidecar.audience, "expirationSeconds": TOKEN_SECONDS, "path": "token"}}]}},
    ]


def with_agent(template: Mapping[str, Any], sidecar: Sidecar) -> dict[str, Any]:
    """The pod template with the agent added: its service account (and no API token), the sidecar
    first, its volumes, the credentials volume read-only in every app container with the files'
    paths in its environment, and the labels that let the pod reach Vault and the database."""
    spec = dict(template.get("spec") or {})
    uid, gid = app_user(spec)
    names = {v.get("name") for v in spec.get("volumes") or []}
    taken = names & {v["name"] for v in agent_volumes(sidecar)}
    if taken:
        raise WorkloadError("pod_template.spec.volumes", f"{', '.join(sorted(taken))}: the agent's volume names")
    if not spec.get("containers"):
        raise WorkloadError("pod_template.spec.containers", "the pod needs the app's container")
    env = [{"name": "DATABASE_CREDENTIALS_FILE", "value": sidecar.credentials_file},
           {"name": "DATABASE_URL_FILE", "value": sidecar.url_file}]
    containers = []
    for container in spec["containers"]:
        given = {e.get("name") for e in container.get("env") or []}
        containers.append({
            **container,
            "env": [*(container.get("env") or []), *(e for e in env if e["name"] not in given)],
            "volumeMounts": [*(container.get("volumeMounts") or []),
                             {"name": "vault-secrets", "mountPath": SECRETS_DIR, "readOnly": True}],
        })
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **CLIENT_LABELS}
    if sidecar.digest:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), "dbcreds.io/agent-config": sidecar.digest}
    spec.update({
        "serviceAccountName": sidecar.service_account, "automountServiceAccountToken": False,
        "initContainers": [agent_container(sidecar, uid, gid), *(spec.get("initContainers") or [])],
        "containers": containers,
        "volumes": [*(spec.get("volumes") or []), *agent_volumes(sidecar)],
    })
    return {"metadata": metadata, "spec": spec}


def deployment_spec(name: str, template: Mapping[str, Any], sidecar: Sidecar, replicas: int) -> dict[str, Any]:
    """The Deployment: the pod template with the agent, selected by its name."""
    selector = {"app.kubernetes.io/name": name}
    with_sidecar = with_agent(template, sidecar)
    with_sidecar["metadata"]["labels"] = {**with_sidecar["metadata"]["labels"], **selector}
    return {"replicas": replicas, "selector": {"matchLabels": selector}, "template": with_sidecar}


@dataclass(frozen=True)
class VaultAgentWorkloadArgs:
    #: The workload's namespace and service account (the team's own; the client's role must bind them).
    namespace: str
    service_account: str
    #: The client on the platform whose credentials the pods read, and the platform's `clients` output.
    client: str
    platform_clients: pulumi.Input[Mapping[str, Any]]
    #: The platform's Vault as pods reach it (`vault_service_addr`), and its CA.
    vault_addr: pulumi.Input[str]
    vault_ca_pem: pulumi.Input[str]
    #: The platform's database as pods reach it, and its CA.
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: pulumi.Input[str]
    db_ca_pem: pulumi.Input[str]
    #: The agent's image: the platform's OpenBao (`k8s_images["openbao"]`).
    agent_image: pulumi.Input[str]
    #: The Deployment's pod template ({metadata, spec}): the app's containers, and a pod runAsUser.
    pod_template: Mapping[str, Any]
    replicas: int = 1
    #: Never for images built here and imported into the nodes; IfNotPresent for a registry's.
    image_pull_policy: str = "Never"
    #: Where the agent renders the credentials, inside SECRETS_DIR.
    credentials_file: str = CREDENTIALS_FILE
    url_file: str = URL_FILE


class VaultAgentWorkload(pulumi.ComponentResource):
    """A Deployment whose pods get their database credentials from OpenBao's agent beside them (see
    the module's docstring), and the agent's ConfigMap. Outputs: `deployment` (its name), `namespace`,
    `credentials_file`, `url_file`."""

    deployment: pulumi.Output[str]
    namespace: pulumi.Output[str]
    credentials_file: pulumi.Output[str]
    url_file: pulumi.Output[str]

    def __init__(self, name: str, args: VaultAgentWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dbcreds:kubernetes:VaultAgentWorkload", name, None, opts)
        # Refused at preview, before anything is made.
        credentials_file = in_shared_volume(args.credentials_file, "credentials_file")
        url_file = in_shared_volume(args.url_file, "url_file")
        if credentials_file == url_file:
            raise WorkloadError("url_file", f"is credentials_file ({credentials_file}): give each its own file")
        app_user(args.pod_template.get("spec") or {})
        if args.replicas < 0:
            raise WorkloadError("replicas", f"must be 0 or more, got {args.replicas}")
        # The platform's `clients` output is secret (it holds secret_ids); what the agent needs of it is not.
        client = pulumi.Output.unsecret(pulumi.Output.from_input(args.platform_clients).apply(
            lambda clients: agent_client(clients, args.client, args.service_account, args.namespace)))
        db = pulumi.Output.all(args.db_host, args.db_port, args.db_name).apply(
            lambda a: Database(host=a[0], port=int(a[1]), name=a[2]))
        files = pulumi.Output.all(args.vault_addr, args.vault_ca_pem, args.db_ca_pem, client, db).apply(
            lambda a: config_files(a[0], a[1], a[2], a[3], a[4], credentials_file, url_file))
        config_map_name = f"{name}-vault-agent"
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-vault-agent", metadata={"name": config_map_name, "namespace": args.namespace,
                                             "labels": {"app.kubernetes.io/name": name}},
            data=files, opts=pulumi.ResourceOptions(parent=self))
        spec = pulumi.Output.all(args.agent_image, args.vault_addr, client, files).apply(
            lambda a: deployment_spec(name, args.pod_template, Sidecar(
                image=a[0], pull=args.image_pull_policy, vault_addr=a[1], audience=a[2].audience,
                service_account=args.service_account, config_map=config_map_name, digest=config_digest(a[3]),
                credentials_file=credentials_file, url_file=url_file), args.replicas))
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata={"name": name, "namespace": args.namespace,
                                            "labels": {"app.kubernetes.io/name": name}},
            spec=spec, opts=pulumi.ResourceOptions(parent=self, depends_on=[config_map]))
        self.deployment = deployment.metadata.apply(lambda meta: meta.name)
        self.namespace = pulumi.Output.from_input(args.namespace)
        self.credentials_file = pulumi.Output.from_input(credentials_file)
        self.url_file = pulumi.Output.from_input(url_file)
        self.register_outputs({"deployment": self.deployment, "namespace": self.namespace,
                               "credentials_file": self.credentials_file, "url_file": self.url_file})
