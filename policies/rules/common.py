"""What the rules of every domain share: the report callback, the type tokens of the resources they
judge, and reading a property that may not be known at preview."""

from typing import Any, Callable, Mapping

from pulumi_policy.proxy import UnknownValueError

Report = Callable[[str], None]

# pulumi-vault
CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
ROLE = "vault:database/secretBackendRole:SecretBackendRole"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
POLICY = "vault:index/policy:Policy"
APPROLE_ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
K8S_AUTH_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
ENDPOINT = "vault:generic/endpoint:Endpoint"
KV_SECRET = "vault:kv/secretV2:SecretV2"

# Ours (dynamic providers)
#: Our OpenBao server (components/local/providers/openbao_server.py).
OPENBAO_SERVER = "pulumi-python:dynamic/dbcreds:OpenBaoServer"
#: Our OpenBao initialisation on the docker and kubernetes targets (components/servers/openbao_api.py).
OPENBAO_INIT = "pulumi-python:dynamic/dbcreds:OpenBaoInit"
#: Our rotation schedule (components/vault/rotation.py): `rotates` names what is replaced with it.
ROTATION = "pulumi-python:dynamic/dbcreds:Rotation"

# pulumi-kubernetes
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"

# pulumi-docker
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"


def known(props: Mapping[str, Any], key: str) -> Any:
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def is_openbao(r: Any) -> bool:
    """A Kubernetes object labelled as OpenBao's (its StatefulSet, its config)."""
    return (((r.props.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name")) == "openbao"
