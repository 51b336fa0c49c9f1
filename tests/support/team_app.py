"""The team app (examples/team-app) on a platform stack of the kubernetes target, for its tests and its
benchmark: the root program with the k8s stack file's config (short lifetimes for the team app's
role and client, the team's namespace bound), then the team's own program on that platform through
a StackReference, and what a test reads of them: the app's pods, what each logged, the database's
dynamic users, Vault's leases.

    with platform_stack(kubeconfig, tmp_path, team_namespace) as platform:        # a DevStack
        with team_stack(platform, tmp_path / "team", team_namespace) as app:       # a TeamApp
            app.pods(), app.events(pod), app.users(pod), app.dynamic_users()
            with platform_vault(platform) as vault: vault.admin.read(...)
"""

import contextlib
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import hvac
from pulumi import automation as auto

from components.kubernetes.port_forward import PortForward
from components.kubernetes.vault_agent import AGENT_CONTAINER, CREDENTIALS_FILE
from stacks import config as stack_settings
from stacks import kubernetes_target
from tests.automation import TOOLS, root_program, stack_file_config, temporary_stack
from tests.support.dev_stack import DevStack, quiet
from tests.support.ports import free_port
from tests.support.processes import remove_data_dir
from toolchain.env import ROOT

EXAMPLE = ROOT / "examples" / "team-app"
CLIENT = "team-app"
#: The team app's role and client, shortened so a test sees renewal and max_ttl in under a minute: a
#: lease of 15 s renewed (by the agent at about 2/3 of it) up to 45 s. The token, renewed every 20 s or
#: so, lives up to 10 minutes: longer than any pod of a test run, so no login of the agent cuts a lease
#: short (a lease dies with its token) while a test watches it.
SHORT_ROLE = {"default_ttl": "15s", "max_ttl": "45s"}
SHORT_TOKEN = {"token_ttl": "30s", "token_max_ttl": "10m"}
DEFAULT_TTL, MAX_TTL = 15, 45
#: The team role's users' names start so (Vault's username template: v_<role>_...).
USER_PREFIX = "v_team_app_"


def platform_config(kubeconfig: str, namespace: str, team_namespace: str, data_dir: Path, vault_port: int,
                    role: dict | None = None, token: dict | None = None) -> dict[str, auto.ConfigValue]:
    """The k8s stack file's config on this cluster, in `namespace`, its team-app client bound to
    team_namespace, with the role's and token's lifetimes given (SHORT_ROLE, SHORT_TOKEN unless told)."""
    values = stack_file_config("k8s")
    roles = json.loads(values["dbcreds:roles"].value)
    roles[CLIENT].update(role or SHORT_ROLE)
    clients = json.loads(values["dbcreds:clients"].value)
    clients[CLIENT].update({"namespaces": [team_namespace], **(token or SHORT_TOKEN)})
    return {
        **values, "dbcreds:k8s_kubeconfig": auto.ConfigValue(str(kubeconfig)),
        "dbcreds:k8s_namespace": auto.ConfigValue(namespace), "dbcreds:data_dir": auto.ConfigValue(str(data_dir)),
        "dbcreds:vault_port": auto.ConfigValue(str(vault_port)),
        "dbcreds:roles": auto.ConfigValue(json.dumps(roles)), "dbcreds:clients": auto.ConfigValue(json.dumps(clients)),
    }


@contextlib.contextmanager
def platform_stack(kubeconfig: Path, tmp_path: Path, team_namespace: str, **lifetimes: dict) -> Iterator[DevStack]:
    """The root program up on the cluster of `kubeconfig` (a namespace of its own), its team-app client
    bound to team_namespace; destroyed and removed afterwards."""
    namespace = f"platform-{uuid.uuid4().hex[:6]}"
    data_dir = ROOT / ".data" / "tests" / namespace
    files = tmp_path / "files"
    files.mkdir(parents=True, exist_ok=True)
    try:
        with temporary_stack(root_program(tmp_path), tmp_path, "k8s") as stack:
            stack.set_all_config(platform_config(str(kubeconfig), namespace, team_namespace, data_dir, free_port(),
                                                 **lifetimes))
            result = stack.up(on_output=quiet)
            running = DevStack(stack, {}, stack_settings.of_stack(stack, ROOT), data_dir, files)
            running._read(result.outputs)
            yield running
    finally:
        remove_data_dir(data_dir)


@dataclass
class PlatformVault:
    """The platform's Vault from this machine, through a port-forward of its own (the program's own
    takes vault_port while it runs)."""

    address: str
    ca_file: str
    admin: hvac.Client

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, verify=self.ca_file, timeout=30)

    def lease(self, lease_id: str) -> dict | None:
        """A lease as Vault holds it ({expire_time, issue_time, ttl, ...}), None once it is gone."""
        try:
            return self.admin.sys.read_lease(lease_id)["data"]
        except hvac.exceptions.InvalidRequest:
            return None

    def leases(self, creds_path: str) -> list[str]:
        """The lease ids Vault holds under a creds path."""
        try:
            keys = self.admin.list(f"sys/leases/lookup/{creds_path}/")
        except hvac.exceptions.InvalidPath:
            return []
        return [f"{creds_path}/{key}" for key in (keys or {}).get("data", {}).get("keys", [])]


@contextlib.contextmanager
def platform_vault(platform: DevStack) -> Iterator[PlatformVault]:
    config = platform.config
    forward = PortForward(config.target.kubeconfig, config.target.namespace, "vault", free_port(), 8200)
    with forward:
        if not forward.wait(60):
            raise AssertionError("no port-forward to the platform's Vault within 60 s")
        ca_file = platform.ca_file("vault_ca_pem")
        admin = hvac.Client(url=forward.address, token=platform.outputs["vault_admin_token"], verify=ca_file,
                            timeout=30)
        yield PlatformVault(forward.address, ca_file, admin)


def team_program(tmp_path: Path, wheel: Path | None = None) -> Path:
    """A copy of the example. With a wheel: its own virtualenv, the package installed from the wheel
    (no PYTHONPATH into the checkout) and its dependencies seen from the checkout's virtualenv at the
    project's pins (tests/integration/test_team_program.py proves a full install resolves them); without
    one, the checkout's virtualenv (the benchmark: the figures do not depend on how it is installed)."""
    program = tmp_path / "team-app"
    shutil.copytree(EXAMPLE, program, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    settings = program / "Pulumi.yaml"
    if wheel is None:
        settings.write_text(settings.read_text().replace("virtualenv: venv", f"virtualenv: {ROOT / '.venv'}"))
        return program
    subprocess.run([sys.executable, "-m", "venv", str(program / "venv")], check=True)
    site = next((program / "venv" / "lib").glob("python3*/site-packages"))
    checkout_site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "checkout-dependencies.pth").write_text(f"{checkout_site}\n")
    install = subprocess.run([str(program / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    return program


@dataclass
class TeamApp:
    stack: auto.Stack
    platform: DevStack
    namespace: str
    outputs: dict[str, Any]

    def up(self, **config: str) -> None:
        """`up` again with these settings of the team program changed."""
        if config:
            self.stack.set_all_config({f"team-app:{k}": auto.ConfigValue(v) for k, v in config.items()})
        self.outputs = {k: v.value for k, v in self.stack.up(on_output=quiet).outputs.items()}

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        return kubernetes_target.kubectl(self.platform.config, "--namespace", self.namespace, *args, stdin=stdin,
                                         check=check)

    def pods(self, running: bool = True) -> list[str]:
        """The app's pods (running and not being deleted, unless told), oldest first."""
        items = json.loads(self.kubectl("get", "pods", "--output", "json").stdout)["items"]
        items.sort(key=lambda p: p["metadata"]["creationTimestamp"])
        return [p["metadata"]["name"] for p in items if not running or (
            p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))]

    def events(self, pod: str) -> list[dict]:
        """What the app of a pod logged, one dict a round."""
        log = self.kubectl("logs", pod, "--container", "app", check=False).stdout
        return [json.loads(line) for line in log.splitlines() if line.startswith("{")]

    def agent_log(self, pod: str) -> str:
        return self.kubectl("logs", pod, "--container", AGENT_CONTAINER, check=False).stdout

    def users(self, pod: str) -> list[str]:
        """The database users the app of a pod ran its statements as, in order."""
        return list(dict.fromkeys(e["user"] for e in self.events(pod) if e["event"] == "query"))

    def in_app(self, pod: str, code: str) -> str:
        """Python run in the app's container (as the app's user); its output."""
        return self.kubectl("exec", pod, "--container", "app", "--", "/usr/bin/python3", "-c", code).stdout

    def lease_id(self, pod: str) -> str:
        """The lease of the credentials the agent last rendered for a pod (only the id is printed)."""
        return self.in_app(pod, f"import json; print(json.load(open({CREDENTIALS_FILE!r}))['lease_id'])").strip()

    def dynamic_users(self) -> list[str]:
        """The team role's users the database holds."""
        users = kubernetes_target.dynamic_users(self.platform.config, self.platform.outputs["db_pod"])
        return [u for u in users if u.startswith(USER_PREFIX)]


def team_env(platform_env: dict[str, str], program: Path) -> dict[str, str]:
    """The platform's backend and passphrase, but the team's python: no PYTHONPATH into the checkout."""
    env = {k: v for k, v in platform_env.items() if k != "PYTHONPATH"}
    venv = program / "venv" / "bin"
    env["PATH"] = ":".join([str(TOOLS / "bin"), *([str(venv)] if venv.exists() else [str(ROOT / ".venv" / "bin")]),
                            "/usr/bin", "/bin"])
    if not venv.exists():
        env["PYTHONPATH"] = str(ROOT)
    return env


def team_config(platform: DevStack, namespace: str, **config: str) -> dict[str, auto.ConfigValue]:
    values = {"platform_stack": f"organization/dbcreds/{platform.stack.name}",
              "kubeconfig": str(platform.config.target.kubeconfig), "namespace": namespace,
              "service_account": CLIENT, "client": CLIENT, "replicas": "2",
              "statements": json.dumps(["SELECT count(*) FROM public.orders"]), **config}
    return {f"team-app:{k}": auto.ConfigValue(v) for k, v in values.items()}


@contextlib.contextmanager
def team_stack(platform: DevStack, tmp_path: Path, namespace: str, wheel: Path | None = None,
               **config: str) -> Iterator[TeamApp]:
    """The team program up on the platform (its stack on the platform's backend), destroyed and removed
    afterwards."""
    program = team_program(tmp_path, wheel)
    stack = auto.create_stack(f"team-{uuid.uuid4().hex[:6]}", work_dir=str(program), opts=auto.LocalWorkspaceOptions(
        env_vars=team_env(platform.stack.workspace.env_vars, program),
        pulumi_command=auto.PulumiCommand(root=str(TOOLS), skip_version_check=True)))
    try:
        stack.set_all_config(team_config(platform, namespace, **config))
        app = TeamApp(stack, platform, namespace, {})
        app.up()
        yield app
    finally:
        if stack.name in {s.name for s in stack.workspace.list_stacks()}:
            stack.destroy(on_output=quiet)
            stack.workspace.remove_stack(stack.name)
