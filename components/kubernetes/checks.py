"""The post-deploy checks inside the cluster, as a Job the stack runs at every `up` (the way `helm test`
runs a chart's tests): the same checks (`components.vault.checks`) against the Services' names with
verify-full, from a pod with no more rights than a client's.

    code = checks_code("checks", namespace, opts)           # the checks' modules, in a ConfigMap
    InClusterChecks("checks", kubeconfig=..., namespace=..., image=..., code=code, plan=..., vault=...)

Each run: the plan (its secrets: the clients' secret_ids, a token that reads only the static roles'
credentials, minted for the run) in a Secret; a Job of the Python image built here that runs
`components.vault.checks_job` on it; its report, read from the pod's log; the Job and the Secret
deleted. The pod: no service-account token, non-root, read-only, no capability; labelled as a client
of Vault and of the database (the network policies let such pods in). From this machine, through
the stack's own way to Vault (the port-forward) and with its admin token: every node is a raft
voter, and the peers and active node, for the report. A failing check fails the `up`, naming it.
"""

import ast
import json
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import hvac
import pulumi
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.kubernetes import manifests as m
from components.kubernetes.port_forward import PortForward, kubectl
from components.servers.process import pem_file
from components.servers.openbao import raft_report
from components.servers.openbao_metrics import CHECK_NAME as METRICS_CHECK, metrics_report

#: The program the Job's pod runs, and where its modules go in the pod (on PYTHONPATH in the image).
ENTRY = "components.vault.checks_job"
CODE_DIR = "/opt/dbcreds"
#: The pod's user: nobody's (the image's default).
CHECKS_UID = 65532
#: How long a run may take before it is taken for a failure.
RUN_SECONDS = 300
#: How long a run waits for OpenBao's pods to be ready before it checks them.
NODES_READY_SECONDS = 180
#: How long the active pod may take to serve its lease gauges (it emits them once it is active).
METRICS_SECONDS = 60
#: The token role whose tokens read the static roles' credentials, and only those.
TOKEN_ROLE = "dbcreds-checks"
CHECKS_LABELS = {"app.kubernetes.io/name": "dbcreds-checks", "app.kubernetes.io/part-of": "dbcreds",
                 **m.VAULT_CLIENT_LABEL, **m.DB_CLIENT_LABEL}


def module_files(module: str, root: Path = Path(__file__).resolve().parents[2]) -> dict[str, str]:
    """The source of a module of `components` and of every module of `components` it imports (not
    those imported only for type checking), by path relative to root, with their packages'
    __init__.py: what the pod needs to run it."""
    found: dict[str, str] = {}

    def submodules(node: ast.ImportFrom) -> list[str]:
        # `from components.servers import openbao_metrics` imports a module, not a name of the package.
        named = (f"{node.module}.{alias.name}" for alias in node.names)
        return [name for name in named if (root / Path(*name.split("."))).with_suffix(".py").exists()
                or (root / Path(*name.split(".")) / "__init__.py").exists()]

    def add(name: str) -> None:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            init = Path(*parts[:depth], "__init__.py")
            found.setdefault(str(init), (root / init).read_text())
        path = Path(*parts).with_suffix(".py")
        if not (root / path).exists():
            path = Path(*parts, "__init__.py")
        if str(path) in found:
            return
        source = (root / path).read_text()
        found[str(path)] = source
        for node in ast.walk(ast.parse(_without_type_checking(source))):
            names = ([node.module, *submodules(node)] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for imported in names:
                if imported.split(".")[0] == "components":
                    add(imported)

    add(module)
    return found


def _without_type_checking(source: str) -> str:
    """The source with its `if TYPE_CHECKING:` blocks emptied."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = [ast.Pass()]
    return ast.unparse(tree)


def checks_code(name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
    """The checks' modules in a ConfigMap (keys are flat: a path's slashes become `__`)."""
    files = module_files(ENTRY)
    return k8s.core.v1.ConfigMap(
        f"{name}-code", metadata={"name": f"{name}-code", "namespace": namespace, "labels": CHECKS_LABELS},
        data={path.replace("/", "__"): source for path, source in files.items()}, opts=opts)


def job_manifest(name: str, namespace: str, image: str, pull: str, code_map: str, code_paths: list[str],
                 plan_secret: str) -> dict[str, Any]:
    container = {
        "name": "checks", "image": image, "imagePullPolicy": pull,
        "args": ["-m", ENTRY, "/plan/plan.json"],
        "securityContext": m.container_security(), "resources": m.resources("200m", "256Mi"),
        "volumeMounts": [{"name": "code", "mountPath": CODE_DIR, "readOnly": True},
                         {"name": "plan", "mountPath": "/plan", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": CHECKS_LABELS},
        "spec": {
            "backoffLimit": 0, "activeDeadlineSeconds": RUN_SECONDS, "ttlSecondsAfterFinished": RUN_SECONDS,
            "template": {
                "metadata": {"labels": CHECKS_LABELS},
                "spec": {
                    "restartPolicy": "Never", "automountServiceAccountToken": False,
                    "securityContext": m.pod_security(CHECKS_UID), "containers": [container],
                    "volumes": [
                        {"name": "code", "configMap": {"name": code_map, "items": [
                            {"key": path.replace("/", "__"), "path": path} for path in code_paths]}},
                        {"name": "plan", "secret": {"secretName": plan_secret, "defaultMode": 0o440}},
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


class ChecksError(RuntimeError):
    pass


def _kubectl(props: dict[str, Any], *args: str, stdin: str | None = None, check: bool = True) -> str:
    config = ["--kubeconfig", props["kubeconfig"]] if props.get("kubeconfig") else []
    result = subprocess.run([kubectl(), *config, "--namespace", props["namespace"], *args], input=stdin,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ChecksError(f"kubectl {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def _admin(props: dict[str, Any], ca: str) -> hvac.Client:
    vault = props["vault"]
    return hvac.Client(url=vault["address"], token=vault["admin_token"], verify=ca, timeout=30)


def _wait_for_vault(props: dict[str, Any]) -> None:
    """Waits (at most NODES_READY_SECONDS) until every OpenBao pod is ready (unsealed: a pod that just
    joined the cluster unseals itself within seconds); the checks then find any that is not."""
    deadline = time.monotonic() + NODES_READY_SECONDS
    while time.monotonic() < deadline:
        status = json.loads(_kubectl(props, "get", "statefulset", props["statefulset"], "--output", "json"))
        if status["status"].get("readyReplicas", 0) >= status["spec"]["replicas"]:
            return
        time.sleep(2)


def _run(props: dict[str, Any]) -> dict:
    run = f"{props['name']}-{secrets.token_hex(4)}"
    plan = dict(props["plan"])
    # The pod's token may read the static roles' credentials only, not raft's configuration: the voters
    # are checked from here, with the admin token.
    expected_voters = int(plan.get("raft_voters") or 0)
    plan["raft_voters"] = 0
    # Nor the metrics: read from here, with the admin token, through the Service.
    read_metrics = bool(plan.get("metrics"))
    plan["metrics"] = False
    _wait_for_vault(props)
    with pem_file(props["vault"]["ca_pem"]) as ca:
        admin = _admin(props, ca)
        # The pod gets no token but one minted here, for this run only, that reads the static roles'
        # credentials and nothing else.
        plan["vault_token"] = ""
        if plan.get("static_creds_paths"):
            plan["vault_token"] = admin.auth.token.create(role_name=TOKEN_ROLE, ttl=f"{RUN_SECONDS}s")["auth"][
                "client_token"]
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": run, "namespace": props["namespace"], "labels": CHECKS_LABELS},
                  "stringData": {"plan.json": json.dumps(plan)}}
        job = job_manifest(run, props["namespace"], props["image"], props["pull"], props["code_map"],
                           props["code_paths"], run)
        started = time.monotonic()
        try:
            _kubectl(props, "apply", "--filename", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                          "items": [secret, job]}))
            succeeded = _wait_for(props, run)
            log = _kubectl(props, "logs", f"job/{run}", "--container", "checks", check=False)
        finally:
            _kubectl(props, "delete", "job", run, "--ignore-not-found", "--wait=false", check=False)
            _kubectl(props, "delete", "secret", run, "--ignore-not-found", check=False)
            if plan.get("vault_token"):
                admin.auth.token.revoke(plan["vault_token"])
        report = _last_json(log)
        if report is None:
            raise ChecksError(f"the checks Job {run} gave no report ({'succeeded' if succeeded else 'failed'}); "
                              f"its log ends:\n{log[-2000:]}")
        report["job"] = f"{props['namespace']}/{run}"
        # The Job's whole run: its pod scheduled and started, the checks, its log read.
        report["job_seconds"] = round(time.monotonic() - started, 1)
        if expected_voters:
            problem, cluster = raft_report(admin, expected_voters)
            report["checks"].append({"name": f"the {expected_voters} OpenBao nodes are raft voters",
                                     "passed": not problem, "detail": problem})
            report["passed"] = report["passed"] and not problem
            report["vault_cluster"] = {**report.get("vault_cluster", {}), **cluster}
        if read_metrics:
            problem, report["metrics"] = _active_metrics(props, admin, ca)
            report["checks"].append({"name": METRICS_CHECK, "passed": not problem, "detail": problem})
            report["passed"] = report["passed"] and not problem
    if not report["passed"]:
        failures = "; ".join(f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["passed"])
        pods = _kubectl(props, "get", "pods", "--output", "wide", check=False)
        warnings = _kubectl(props, "get", "events", "--field-selector", "type=Warning", check=False)
        raise ChecksError(f"post-deploy checks failed (in the cluster, Job {run}): {failures}\nthe pods:\n{pods}"
                          f"\nthe namespace's warnings:\n{warnings[-3000:]}")
    return report


def _active_metrics(props: dict[str, Any], admin: hvac.Client, ca: str) -> tuple[str, dict[str, int]]:
    """`metrics_report` of the active pod, through a port-forward of its own: the lease gauges are the
    active node's (a standby that never was active, as every pod after a rollout, has none), and the
    Service's forward may hold any pod. A node that just became active emits them within seconds."""
    deadline = time.monotonic() + METRICS_SECONDS
    while True:
        leader = admin.sys.read_leader_status().get("leader_address", "")
        # https://vault-1.vault-internal.<ns>.svc:8200: the pod is the host's first label.
        pod = leader.split("://", 1)[-1].split(".", 1)[0]
        with PortForward(props.get("kubeconfig") or None, props["namespace"], pod, _free_port(), m.VAULT_PORT,
                         kind="pod") as forward:
            forward.wait(30)
            found = metrics_report(hvac.Client(url=forward.address, token=admin.token, verify=ca, timeout=30),
                                   hvac.Client(url=forward.address, token="", verify=ca, timeout=30))
        if not found[0] or time.monotonic() > deadline:
            return found
        time.sleep(2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(props: dict[str, Any], job: str) -> bool:
    """Whether the Job succeeded (False: it failed), once it has finished."""
    deadline = time.monotonic() + RUN_SECONDS + 30
    while time.monotonic() < deadline:
        status = json.loads(_kubectl(props, "get", "job", job, "--output", "json"))["status"]
        if status.get("succeeded"):
            return True
        if status.get("failed"):
            return False
        time.sleep(1)
    raise ChecksError(f"the checks Job {job} did not finish within {RUN_SECONDS + 30}s")


def _last_json(log: str) -> dict | None:
    for line in reversed(log.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and "checks" in report:
            return report
    return None


class _InClusterChecksProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["name"], outs={"report": _run(props)})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=True, replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={"report": _run(news)})


class InClusterChecks(Resource, module="dbcreds", name="InClusterChecks"):
    """Runs the post-deploy checks in the cluster at every update; `report` says what passed.

    plan: `components.vault.check_plan.CheckPlan`'s fields as the pod reaches things (Services'
    names; `components.vault.post_deploy_checks.CheckPlanArgs.props()` gives them); the pod gets
    them but vault_token (the run mints one that reads only static_creds_paths) and raft_voters
    (checked from this machine). vault: the stack's {address, ca_pem, admin_token} from this
    machine (the token minting, and the raft voters when raft_voters is set); statefulset: OpenBao's,
    whose pods a run waits to be ready. The plan and the admin token travel and rest as secrets."""

    report: pulumi.Output[dict]

    def __init__(self, name: str, kubeconfig: Optional[str], namespace: str, image: str, pull: str,
                 code: k8s.core.v1.ConfigMap, plan: pulumi.Input[dict], vault: pulumi.Input[dict],
                 statefulset: str, opts: Optional[pulumi.ResourceOptions] = None):
        props = {"name": name, "kubeconfig": kubeconfig or "", "namespace": namespace, "image": image, "pull": pull,
                 "statefulset": statefulset,
                 "code_map": code.metadata.apply(lambda meta: meta.name),
                 "code_paths": sorted(module_files(ENTRY)), "plan": pulumi.Output.secret(plan),
                 "vault": pulumi.Output.secret(vault), "report": None}
        super().__init__(_InClusterChecksProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[code])))
