"""The kubernetes target's PostgreSQL pod: its config is the one every target renders
(`components.servers.postgres`), differing only where the pod does, and its start script reads what
its StatefulSet mounts. Every public name of the manifests' modules is importable from the package."""

import ast
from pathlib import Path

from components.kubernetes import manifests as k8s
from components.servers.postgres import render_pg_hba, render_postgresql_conf
from components.servers.postgres_image import RUN
from components.servers.process import LOOPBACK


def differing(ours: str, theirs: str) -> set[str]:
    return set(ours.splitlines()) ^ set(theirs.splitlines())


def test_the_postgres_pods_config_differs_from_the_docker_targets_only_in_where_it_listens():
    files = k8s.postgres_bootstrap_files("dbcreds_admin", "app", (), "dbcreds_group", ())
    # The docker target's container: the same port and folders, on loopback.
    assert differing(files["postgresql.conf"], render_postgresql_conf(k8s.DB_PORT, LOOPBACK, RUN)) == {
        "listen_addresses = '*'", f"listen_addresses = '{LOOPBACK}'"}
    assert differing(files["pg_hba.conf"], render_pg_hba()) == {
        "hostssl  all      all      0.0.0.0/0 scram-sha-256", "hostssl  all      all      ::/0 scram-sha-256",
        "hostssl  all      all      127.0.0.1/32 scram-sha-256", "hostssl  all      all      ::1/128 scram-sha-256"}


def test_the_postgres_pods_start_script_reads_its_statefulsets_mounts():
    start = k8s.postgres_bootstrap_files("dbcreds_admin", "app", (), "dbcreds_group", ())["start.sh"]
    spec = k8s.postgres_statefulset("db", "dbcreds-postgres:1", "Never", "1Gi", None, "cm", "tls", "pw")
    mounts = {m["name"]: m["mountPath"] for m in spec["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert f"{mounts['tls']}/tls.key" in start and f"{mounts['passwords']}/admin-password" in start


def test_every_public_name_of_the_manifests_modules_is_importable_from_the_package():
    package = Path(k8s.__file__).parent
    defined = set()
    for path in package.glob("[!_]*.py"):
        for node in ast.parse(path.read_text()).body:
            names = ([node.name] if isinstance(node, ast.FunctionDef) else
                     [e.id for t in node.targets for e in ast.walk(t) if isinstance(e, ast.Name)]
                     if isinstance(node, ast.Assign) else [])
            defined |= {name for name in names if not name.startswith("_")}
    assert defined == set(k8s.__all__) and all(hasattr(k8s, name) for name in defined)
