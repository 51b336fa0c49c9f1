"""PostgreSQL's StatefulSet and the files of its bootstrap ConfigMap.

The pod runs the image built here (`components.servers.postgres_image`) as its postgres account; its
postgresql.conf, pg_hba.conf and pg_ident.conf are rendered by `components.servers.postgres`, as on
every other target, with the pod's address, port and folders.
"""

from typing import Any

from components.grant_specs import GrantSpec
from components.kubernetes.manifests.addresses import internal_service
from components.kubernetes.manifests.common import (
    DB_APP, DB_PORT, container_security, labels, pod_security, resources, volume_claim)
from components.postgres_sql import bootstrap_sql
from components.servers import postgres_image
from components.servers.postgres import render_pg_hba, render_pg_ident, render_postgresql_conf

#: PostgreSQL's user in its pod: postgres in the image built here.
DB_UID = postgres_image.POSTGRES_UID
#: Where the pod's TLS Secret and its admin password are mounted, for the start script.
_TLS_DIR, _SECRETS_DIR = "/bootstrap-tls", "/bootstrap-secrets"


def postgres_bootstrap_files(admin: str, database: str, grant_specs: tuple[GrantSpec, ...], group_prefix: str,
                             service_users: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The ConfigMap's files, mounted at the image's BOOTSTRAP folder: the start scripts, the server's
    config, and the SQL its bootstrap runs once, when the volume is new."""
    return {
        "start.sh": postgres_image.pod_start_script(_TLS_DIR, f"{_SECRETS_DIR}/admin-password"),
        "postgres.sh": postgres_image.POSTGRES_SCRIPT,
        "postgresql.conf": render_postgresql_conf(DB_PORT, "*", postgres_image.RUN),
        # Any pod may try; the network policies say which may reach it.
        "pg_hba.conf": render_pg_hba(("0.0.0.0/0", "::/0")), "pg_ident.conf": render_pg_ident("postgres"),
        "bootstrap.sql": bootstrap_sql(admin, database, grant_specs, group_prefix, service_users),
    }


def postgres_statefulset(instance: str, image: str, pull: str, storage: str, storage_class: str | None,
                         config_map: str, tls_secret: str, password_secret: str) -> dict[str, Any]:
    """PostgreSQL from the image built here (`components.servers.postgres_image`), as its postgres
    account, on DB_PORT of the pod's address."""
    paths = postgres_image
    container = {
        "name": "postgres", "image": image, "imagePullPolicy": pull,
        "command": ["/bin/sh", f"{paths.BOOTSTRAP}/start.sh"],
        "ports": [{"name": "postgres", "containerPort": DB_PORT}],
        "securityContext": container_security(), "resources": resources("500m", "512Mi"),
        # Ready once the server itself (not the one the bootstrap runs on the socket) answers on TCP.
        "readinessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 2},
        "livenessProbe": {"tcpSocket": {"port": DB_PORT}, "periodSeconds": 10, "initialDelaySeconds": 30},
        # A fast shutdown: the default (smart) one waits for Vault's pooled connections to close.
        "lifecycle": {"preStop": {"exec": {"command": ["pg_ctl", "--pgdata", paths.PGDATA, "--mode", "fast",
                                                       "--wait", "stop"]}}},
        "volumeMounts": [{"name": "data", "mountPath": paths.DATA},
                         {"name": "run", "mountPath": paths.RUN},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "bootstrap", "mountPath": paths.BOOTSTRAP, "readOnly": True},
                         {"name": "tls", "mountPath": _TLS_DIR, "readOnly": True},
                         {"name": "passwords", "mountPath": _SECRETS_DIR, "readOnly": True}],
    }
    volumes = [
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "bootstrap", "configMap": {"name": config_map, "defaultMode": 0o444}},
        # Root's files, readable by the pod's group: PostgreSQL takes a key of mode 0640 owned by root.
        {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}},
        {"name": "passwords", "secret": {"secretName": password_secret, "defaultMode": 0o440,
                                         "items": [{"key": "admin-password", "path": "admin-password"}]}},
    ]
    return {
        "serviceName": internal_service(instance), "replicas": 1,
        "selector": {"matchLabels": labels(DB_APP, instance)},
        "template": {
            "metadata": {"labels": labels(DB_APP, instance)},
            "spec": {"securityContext": pod_security(DB_UID), "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 30, "containers": [container], "volumes": volumes},
        },
        "volumeClaimTemplates": [volume_claim("data", storage, storage_class)],
    }
