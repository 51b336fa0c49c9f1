"""OpenBao's pods moved onto a new image (a new release) one at a time, the standbys first.

The StatefulSet's update strategy is OnDelete: a changed pod template (a new image, a new release, or
any other change of the pods) moves no pod by itself (its own rolling update goes by ordinal, the
active pod maybe first, without waiting for raft). This resource does, when the template changes or a
pod is of an older revision of it (a rollout cut short), through the
rollout the local target's nodes share (`components.local.providers.openbao_rollout.roll_nodes`): each
standby pod deleted and made again by the StatefulSet on the new image, back Ready, unsealed, on the
new release, a raft voter caught up with the active node, before the next; then the active pod steps
down and is deleted last.

The images have no shell, so nothing is exec'd: a pod's object (its image, uid, readiness) is read
with kubectl, and the pod itself through a port-forward of its own (`components.kubernetes.
port_forward`: through the API server and the kubelet, which the namespace's NetworkPolicies leave
alone), as the local target's nodes are: its health and leader, and, with the stack's admin token,
the step-down and raft's configuration.

A release older than the pods' is refused at preview (and by the target's preflight, before the
StatefulSet changes): OpenBao does not downgrade its storage.
"""

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import hvac
import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic.failures import VAULT_ERRORS, ProviderError, failing_as
from components.kubernetes.manifests.common import VAULT_PORT
from components.kubernetes.port_forward import PortForward
from components.servers.openbao import node_state, parse_version, running_version, version_text
from components.servers.openbao_release import downgrade_refusal
from components.servers.openbao_rolling import roll_nodes

#: How long a deleted pod may take to be back: its termination grace, a new container, the unseal.
RESTART_SECONDS = 300
#: How long the stack's port-forward to Vault's Service may take to answer again after a rollout.
SERVICE_SECONDS = 120
#: The checkout's kubectl (make bootstrap-stack builds it), else the one on PATH.
KUBECTL = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "kubectl"


class PodRolloutError(ProviderError):
    pass


def pod_image(pod: dict, container: str = "openbao") -> str:
    return next((c["image"] for c in pod["spec"]["containers"] if c["name"] == container), "")


def pod_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


#: The label the StatefulSet controller puts on each pod: the revision of the template it was made from.
REVISION_LABEL = "controller-revision-hash"


def pod_revision(pod: dict) -> str:
    return pod["metadata"].get("labels", {}).get(REVISION_LABEL, "")


def pod_current(pod: dict | None, version: str | None, revision: str, release: str) -> bool:
    """Whether a pod needs no move: it was made from the template's `revision` and (when the release is
    known) answers with that release or not at all (starting: Kubernetes brings it up). A pod that is
    not there is made by the StatefulSet from the template: nothing to move either."""
    if pod is None:
        return True
    if pod_revision(pod) != revision:
        return False
    return not release or not version or parse_version(f"OpenBao v{version}") == parse_version(f"OpenBao v{release}")


def template_digest(template: dict) -> str:
    """A digest of a pod template (the rollout's input: any change of it is a change to roll out)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def kubectl_binary() -> str:
    if KUBECTL.exists():
        return str(KUBECTL)
    found = shutil.which("kubectl")
    if found is None:
        raise PodRolloutError(f"no kubectl at {KUBECTL} nor on PATH")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Pods:
    """OpenBao's pods of one stack, their objects read through the API server."""

    kubeconfig: Optional[str]
    namespace: str

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        config = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        try:
            result = subprocess.run([kubectl_binary(), *config, "--namespace", self.namespace, *args],
                                    capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PodRolloutError(f"kubectl {' '.join(args)} did not finish within {timeout:.0f} s") from None
        if check and result.returncode != 0:
            raise PodRolloutError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()[:500]}")
        return result

    def update_revision(self, statefulset: str, seconds: float = 60) -> str:
        """The revision of the StatefulSet's current template, once its controller has seen it."""
        deadline = time.monotonic() + seconds
        while True:
            found = json.loads(self.kubectl("get", "statefulset", statefulset, "--output", "json").stdout)
            status = found.get("status", {})
            if status.get("observedGeneration", 0) >= found["metadata"]["generation"] and status.get("updateRevision"):
                return status["updateRevision"]
            if time.monotonic() > deadline:
                raise PodRolloutError(f"the StatefulSet {statefulset}'s controller did not see its template within "
                                      f"{seconds:.0f} s")
            time.sleep(0.5)

    def pod(self, name: str) -> dict | None:
        """The pod's object; None when there is none (deleted, not made again yet)."""
        result = self.kubectl("get", "pod", name, "--output", "json", "--ignore-not-found")
        return json.loads(result.stdout) if result.stdout.strip() else None

    @contextlib.contextmanager
    def forwards(self, names: Sequence[str]) -> Iterator[dict[str, PortForward]]:
        """A port-forward to each pod, held open (and started again after the pod is made again)."""
        opened = {name: PortForward(self.kubeconfig, self.namespace, name, free_port(), VAULT_PORT, kind="pod").start()
                  for name in names}
        try:
            yield opened
        finally:
            for forward in opened.values():
                forward.stop()


def pod_versions(kubeconfig: Optional[str], namespace: str, names: Sequence[str], ca_file: str) -> dict[str, str]:
    """The release each pod that answers runs (the target's preflight: a downgrade refused before the
    StatefulSet changes). Pods not there, or not answering, are left out."""
    pods = Pods(kubeconfig, namespace)
    there = [n for n in names if pods.pod(n) is not None]
    found = {}
    with pods.forwards(there) as forwards:
        for name, forward in forwards.items():
            if forward.wait(15):
                version = running_version(hvac.Client(url=forward.address, verify=ca_file, timeout=5))
                if version:
                    found[name] = version_text(version)
    return found


@dataclass
class _PodNode:
    """One OpenBao pod as the rollout sees it: reached through its own port-forward, restarted by
    deleting it (the StatefulSet makes it again from the current template)."""

    name: str
    pods: Pods
    forward: PortForward
    ca_file: str
    token: str
    revision: str
    release: str
    #: Every pod's forward, by name (the active one's commit index is read through its own).
    peers: dict[str, PortForward] = field(default_factory=dict, repr=False)
    _caught_up_to: int = field(default=0, repr=False)

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.forward.address, token=token, verify=self.ca_file, timeout=5)

    def state(self) -> str:
        return node_state(self.client())

    def current(self) -> bool:
        pod = self.pods.pod(self.name)
        version = running_version(self.client()) if pod else None
        return pod_current(pod, version_text(version) if version else None, self.revision, self.release)

    def step_down(self) -> None:
        self.client(self.token).sys.step_down()

    def restart(self) -> None:
        before = self.pods.pod(self.name)
        uid = before["metadata"]["uid"] if before else ""
        self.pods.kubectl("delete", "pod", self.name, "--wait=false")
        deadline = time.monotonic() + RESTART_SECONDS
        while True:
            pod = self.pods.pod(self.name)
            if pod and pod["metadata"]["uid"] != uid and pod_ready(pod) and pod_revision(pod) == self.revision:
                state, version = node_state(self.client()), running_version(self.client())
                if state in ("active", "standby") and version:
                    if self.release and version != parse_version(f"OpenBao v{self.release}"):
                        raise PodRolloutError(f"pod {self.name} runs OpenBao {version_text(version)} on "
                                              f"{pod_image(pod)}, not {self.release}")
                    break
            if time.monotonic() > deadline:
                raise PodRolloutError(f"pod {self.name} was not back (Ready, unsealed, of revision {self.revision}) "
                                      f"within {RESTART_SECONDS} s of its deletion")
            time.sleep(1)
        # What it must have applied to be caught up: what the active node had committed by now.
        self._caught_up_to = self._committed()

    def _leader(self, forward: PortForward | None = None) -> dict:
        try:
            url = (forward or self.forward).address
            return hvac.Client(url=url, verify=self.ca_file, timeout=5).sys.read_leader_status()
        except Exception:  # noqa: BLE001 - the forward restarting, an election: not known yet
            return {}

    def _committed(self) -> int:
        """The active pod's raft commit index (0 when no pod says it is active)."""
        for forward in self.peers.values():
            leader = self._leader(forward)
            if leader.get("is_self"):
                return int(leader.get("raft_committed_index") or 0)
        return 0

    def rejoined(self) -> bool:
        """A standby that knows its active node, has applied what was committed when it came back, and
        is a voter in raft's configuration."""
        leader = self._leader()
        if not leader.get("leader_address") or leader.get("is_self"):
            return False
        if int(leader.get("raft_applied_index") or 0) < self._caught_up_to:
            return False
        try:
            servers = self.client(self.token).adapter.get(
                "/v1/sys/storage/raft/configuration")["data"]["config"]["servers"]
        except Exception:  # noqa: BLE001 - an election, or the forward restarting: not yet
            return False
        return any(s["address"].startswith(f"{self.name}.") and s["voter"] for s in servers)


def roll_pods(props: dict[str, Any]) -> list[str]:
    """Moves every pod that is not current onto props' image (the shared order); the pods it deleted."""
    pods = Pods(props.get("kubeconfig") or None, props["namespace"])
    revision = pods.update_revision(props["statefulset"])
    if all((found := pods.pod(name)) is None or pod_revision(found) == revision for name in props["pods"]):
        return []  # Every pod of the template (a first up, or nothing of the pods changed): no forward opened.
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca, pods.forwards(props["pods"]) as forwards:
        ca.write(props["ca_pem"])
        ca.flush()
        for forward in forwards.values():
            forward.wait(30)
        nodes = [_PodNode(name, pods, forwards[name], ca.name, props["token"], revision,
                          props.get("release") or "", forwards) for name in props["pods"]]
        rolled = roll_nodes(nodes, props.get("release") or props["image"])
        service_answers(props["address"], ca.name)
        return rolled


def service_answers(address: str, ca_file: str, seconds: float = SERVICE_SECONDS) -> None:
    """Waits until Vault's Service answers at the stack's address again. The program's port-forward to
    it held one pod, now deleted: its first connection fails, which starts it again on a pod that is
    there; what comes after the rollout (the checks, the Vault provider) then finds it answering."""
    deadline = time.monotonic() + seconds
    while running_version(hvac.Client(url=address, verify=ca_file, timeout=5)) is None:
        if time.monotonic() > deadline:
            raise PodRolloutError(f"Vault's Service did not answer at {address} within {seconds:.0f} s of the rollout")
        time.sleep(1)


def running_release(props: dict[str, Any]) -> str:
    """The release the pods run: the target when known, else the newest any pod answers with."""
    if props.get("release"):
        return props["release"]
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(props["ca_pem"])
        ca.flush()
        found = pod_versions(props.get("kubeconfig") or None, props["namespace"], props["pods"], ca.name).values()
    return version_text(max(parse_version(f"OpenBao v{v}") for v in found)) if found else ""


class _OpenBaoPodRolloutProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """At preview: the release (when the image's is known) is not older than the pods' (`version`)."""
        refused = (downgrade_refusal(parse_version(f"OpenBao v{news['release']}"), (olds or {}).get("version"))
                   if news.get("release") else "")
        if refused:
            return CheckResult(news, [CheckFailure("release", f"vault_binary: {refused}")])
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new template (image, release) or set of pods, or a pod of an older revision (a rollout cut
        short)."""
        changed = [k for k in ("template", "image", "release", "pods") if olds.get(k) != news.get(k)]
        behind = []
        if not changed:
            pods = Pods(news.get("kubeconfig") or None, news["namespace"])
            try:
                revision = pods.update_revision(news["statefulset"], seconds=10)
                behind = [n for n in news["pods"] if (p := pods.pod(n)) is not None and pod_revision(p) != revision]
            except PodRolloutError:
                behind = []  # no cluster to read (a preview without one): nothing known to be behind
        return DiffResult(changes=bool(changed or behind), replaces=[])

    def _roll(self, props: dict[str, Any], what: str) -> dict[str, Any]:
        with failing_as(what, VAULT_ERRORS):
            rolled = roll_pods(props)
            return {**props, "rolled": rolled, "version": running_release(props)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._roll(props, "moving OpenBao's pods onto the stack's image")
        return CreateResult(id_=f"{props['namespace']}/{props['statefulset']}", outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._roll(news, f"rolling OpenBao's pods onto {news['image']}"))


#: The resource type of the rollout.
RESOURCE_TYPE = "pulumi-python:dynamic/dbcreds:OpenBaoPodRollout"


class OpenBaoPodRollout(Resource, module="dbcreds", name="OpenBaoPodRollout"):
    """Every OpenBao pod of a StatefulSet (OnDelete) is of its current template, moved standbys first.

    statefulset, pods: the StatefulSet and its pods' names. template: a digest of its pod template
    (`template_digest`; a change rolls the pods). image: the pods' OpenBao image. release: the
    image's OpenBao release when known (built here from a binary), else empty. address: Vault's
    Service as this machine reaches it (the program's port-forward), answering again before the
    rollout ends. ca_pem: the CA of OpenBao's listener. token (secret): one that may step the active
    node down and read raft's configuration (the stack's admin). Outputs: `version` (the release
    the pods run) and `rolled` (the pods the last change deleted, in order).
    """

    version: pulumi.Output[str]
    rolled: pulumi.Output[list]

    def __init__(self, name: str, *, kubeconfig: Optional[str], namespace: str, statefulset: str,
                 pods: Sequence[str], template: str, image: str,
                 release: str, address: str, ca_pem: pulumi.Input[str], token: pulumi.Input[str],
                 opts: Optional[pulumi.ResourceOptions] = None):
        props = {"kubeconfig": kubeconfig or "", "namespace": namespace, "statefulset": statefulset,
                 "pods": list(pods), "template": template, "image": image,
                 "release": release, "address": address, "ca_pem": ca_pem, "token": pulumi.Output.secret(token),
                 "version": None, "rolled": None}
        super().__init__(_OpenBaoPodRolloutProvider(), name, props, opts)
