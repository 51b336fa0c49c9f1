"""The team app's program: its namespace, service account and app on the platform's Kubernetes cluster,
the app's database credentials from the platform's Vault through OpenBao's agent beside each pod
(`components.kubernetes.vault_agent.VaultAgentWorkload`, from the pulumi-dbcreds package). It reads
the platform's outputs with a StackReference and changes nothing of the platform's stack.

The platform's config names the client (Pulumi.k8s.yaml: `team-app`, its role, and the service
account and namespace its pods log in with); this program makes that namespace and service account
and the Deployment. Each pod: the agent logs in with the pod's service account, renders the
credentials into an in-memory volume, renews them until the role's max_ttl, then reads new ones, and
revokes them when the pod goes; the app (app.py, in the platform's Python image) connects with
verify-full and runs its statements every round.
"""

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.vault_agent import VaultAgentWorkload, VaultAgentWorkloadArgs

NAME = "team-app"
#: The app's user (any non-root one: the agent runs as it, so the files it renders are the app's).
APP_UID = 10001

config = pulumi.Config()
platform = pulumi.StackReference(config.require("platform_stack"))
namespace_name = config.get("namespace") or NAME
service_account_name = config.get("service_account") or NAME
kubeconfig = config.get("kubeconfig") or None
replicas = config.get_int("replicas")
statements = config.get_object("statements") or ["SELECT 1"]

provider = k8s.Provider("cluster", kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else None)
on_cluster = pulumi.ResourceOptions(provider=provider)
namespace = k8s.core.v1.Namespace(
    NAME, metadata={"name": namespace_name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    opts=on_cluster)
in_namespace = pulumi.ResourceOptions(provider=provider, depends_on=[namespace])
# Its pods log in to Vault with it; it has no rights in the cluster, and no API token is mounted.
service_account = k8s.core.v1.ServiceAccount(
    f"{NAME}-service-account", metadata={"name": service_account_name, "namespace": namespace_name},
    automount_service_account_token=False, opts=in_namespace)
code = k8s.core.v1.ConfigMap(
    f"{NAME}-code", metadata={"name": f"{NAME}-code", "namespace": namespace_name},
    data={"app.py": (Path(__file__).parent / "app.py").read_text()}, opts=in_namespace)

hardened = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
pod_template = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": NAME}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": APP_UID, "runAsGroup": APP_UID, "fsGroup": APP_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 10,
        "containers": [{
            "name": "app", "image": platform.require_output("k8s_images")["python"], "imagePullPolicy": "Never",
            "args": ["/app/app.py"],
            "env": [{"name": "STATEMENTS", "value": json.dumps(statements)},
                    {"name": "INTERVAL", "value": config.get("interval") or "1"}],
            "securityContext": hardened,
            # Half a core at most: Python's start (psycopg, TLS) takes 2.7 s at 200m.
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
            "readinessProbe": {"exec": {"command": ["/usr/bin/python3", "/app/app.py", "--ready"]},
                               "periodSeconds": 2, "timeoutSeconds": 5},
            "volumeMounts": [{"name": "code", "mountPath": "/app", "readOnly": True},
                             {"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "code", "configMap": {"name": f"{NAME}-code"}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
    },
}
app = VaultAgentWorkload(NAME, VaultAgentWorkloadArgs(
    namespace=namespace_name, service_account=service_account_name, client=config.get("client") or NAME,
    platform_clients=platform.require_output("clients"), vault_addr=platform.require_output("vault_service_addr"),
    vault_ca_pem=platform.require_output("vault_ca_pem"), db_host=platform.require_output("db_host"),
    db_port=platform.require_output("db_port"), db_name=platform.require_output("db_name"),
    db_ca_pem=platform.require_output("db_ca_pem"), agent_image=platform.require_output("k8s_images")["openbao"],
    pod_template=pod_template, replicas=2 if replicas is None else replicas,
    credentials_file=config.get("credentials_file") or "/vault/secrets/db.json",
    url_file=config.get("url_file") or "/vault/secrets/database-url",
), opts=pulumi.ResourceOptions(provider=provider, depends_on=[service_account, code]))

pulumi.export("namespace", app.namespace)
pulumi.export("deployment", app.deployment)
pulumi.export("service_account", service_account_name)
pulumi.export("credentials_file", app.credentials_file)
