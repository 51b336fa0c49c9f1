"""OpenBao upgrades on the kubernetes target, without a cluster: `vault_binary` there, the rollout's
order (shared with the local target: `components.servers.openbao_rolling`) on nodes made up here,
which pod needs a move, and the prod stack's graph (an OnDelete StatefulSet, the rollout after it)."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.kubernetes import manifests as m
from components.kubernetes.rollout import pod_current, template_digest
from components.servers.openbao_rolling import roll_nodes
from stacks.config import ConfigError, validate
from tests.unit.graph import registered

ROLES = {"reader": {"privileges": ["SELECT"], "schemas": ["public"]}}


def test_vault_binary_is_allowed_on_the_kubernetes_target_with_the_image_built_here():
    raw = {"roles": ROLES, "target": "kubernetes", "vault_binary": "/opt/bao/2.6.2/bao"}
    config = validate(raw, "k8s", Path("/srv"))
    assert config.vault.binary == "/opt/bao/2.6.2/bao" and config.target.images["openbao"] is None


def test_vault_binary_is_refused_naming_it_when_vault_image_names_a_registry_image():
    raw = {"roles": ROLES, "target": "kubernetes", "vault_binary": "/opt/bao/2.6.2/bao",
           "vault_image": "registry.example/openbao:2.7.2"}
    with pytest.raises(ConfigError, match=r"^config vault_binary: means nothing when vault_image names a registry "
                                          r"image \(registry.example/openbao:2.7.2\)"):
        validate(raw, "k8s", Path("/srv"))
    # Either alone is fine.
    del raw["vault_binary"]
    assert validate(raw, "k8s", Path("/srv")).target.images["openbao"] == "registry.example/openbao:2.7.2"


@dataclass
class FakeNode:
    """A node whose state the cluster (below) keeps; every call is logged."""

    name: str
    cluster: "FakeCluster"
    version: str = "old"

    def state(self) -> str:
        return "active" if self.cluster.active == self.name else "standby"

    def current(self) -> bool:
        return self.version == "new"

    def step_down(self) -> None:
        self.cluster.log.append(f"step-down {self.name}")
        # Another node (the first that is not this one) takes over.
        self.cluster.active = next(n for n in self.cluster.names if n != self.name)

    def restart(self) -> None:
        self.cluster.log.append(f"restart {self.name}")
        self.version = "new"

    def rejoined(self) -> bool:
        self.cluster.log.append(f"rejoined {self.name}")
        return True


@dataclass
class FakeCluster:
    names: list[str]
    active: str
    log: list[str] = field(default_factory=list)

    def nodes(self, current: tuple[str, ...] = ()) -> list[FakeNode]:
        return [FakeNode(n, self, "new" if n in current else "old") for n in self.names]


def test_the_standby_pods_move_first_each_back_before_the_next_and_the_active_one_steps_down_last():
    cluster = FakeCluster(["vault-0", "vault-1", "vault-2"], active="vault-0")
    assert roll_nodes(cluster.nodes(), "2.7.2") == ["vault-1", "vault-2", "vault-0"]
    assert cluster.log == ["restart vault-1", "rejoined vault-1", "restart vault-2", "rejoined vault-2",
                           "step-down vault-0", "restart vault-0", "rejoined vault-0"]


def test_a_rollout_cut_short_moves_only_the_nodes_left_behind():
    cluster = FakeCluster(["vault-0", "vault-1", "vault-2"], active="vault-2")
    assert roll_nodes(cluster.nodes(current=("vault-0",)), "2.7.2") == ["vault-1", "vault-2"]
    assert "restart vault-0" not in cluster.log and cluster.log.index("step-down vault-2") > cluster.log.index(
        "rejoined vault-1")
    # Nothing to move: nothing restarted.
    done = FakeCluster(["vault-0"], active="vault-0")
    assert roll_nodes(done.nodes(current=("vault-0",)), "2.7.2") == [] and done.log == []


def test_a_single_pod_is_restarted_without_a_step_down():
    cluster = FakeCluster(["vault-0"], active="vault-0")
    assert roll_nodes(cluster.nodes(), "2.7.2") == ["vault-0"] and cluster.log == ["restart vault-0"]


def pod(revision: str) -> dict:
    return {"metadata": {"labels": {"controller-revision-hash": revision}},
            "spec": {"containers": [{"name": "openbao", "image": "dbcreds-openbao:any"}]}}


@pytest.mark.parametrize("found, version, release, current", [
    (None, None, "2.7.2", True),                 # not there: the StatefulSet makes it from the template
    (pod("vault-new"), "2.7.2", "2.7.2", True),
    (pod("vault-new"), None, "2.7.2", True),     # starting: Kubernetes brings it up
    (pod("vault-old"), "2.6.2", "2.7.2", False),
    (pod("vault-old"), "2.7.2", "2.7.2", False),  # the same release, another template (a sidecar, an account)
    (pod("vault-new"), "2.6.2", "2.7.2", False),  # the template's image says new, the pod answers old
    (pod("vault-new"), "2.6.2", "", True),        # a registry's image: its release is not known here
    (pod("vault-old"), "2.7.2", "", False),
])
def test_a_pod_needs_a_move_when_it_is_of_an_older_template_or_release(found, version, release, current):
    assert pod_current(found, version, "vault-new", release) is current


def test_the_rollout_follows_the_pod_template_not_only_its_image():
    template = m.openbao_statefulset("vault", "ns", "img", "Never", 3, "1Gi", None, "c", "t", "s")["template"]
    reviewer = m.openbao_statefulset("vault", "ns", "img", "Never", 3, "1Gi", None, "c", "t", "s",
                                     service_account="vault")["template"]
    assert template_digest(template) == template_digest(dict(reversed(template.items())))
    assert template_digest(template) != template_digest(reviewer)


def test_the_statefulset_moves_no_pod_by_itself():
    spec = m.openbao_statefulset("vault", "ns", "img", "Never", 3, "1Gi", None, "c", "t", "s")
    assert spec["updateStrategy"] == {"type": "OnDelete"}


def test_prod_rolls_its_pods_onto_the_image_built_from_vault_binary(monitor, monkeypatch):
    """With vault_binary set, the pods' image is the one built from it, and the rollout (after the
    StatefulSet and the initialisation) carries its release."""
    from components.docker import images
    from components.kubernetes.port_forward import PortForward
    from components.servers.openbao import bao_binary, binary_version, version_text
    from stacks import preflight
    from tests.unit.test_root_program import run_dev_program

    monkeypatch.setattr(preflight, "check_machine", lambda _config: None)
    monkeypatch.setattr(PortForward, "start", lambda self: self)
    binary = str(bao_binary())
    run_dev_program(monkeypatch, stack="prod", vault_binary=binary)
    vault_set = registered(monitor, "kubernetes:apps/v1:StatefulSet")["vault-statefulset"]["spec"]
    image = vault_set["template"]["spec"]["containers"][0]["image"]
    assert image == images.image_names(binary)["openbao"]
    assert vault_set["updateStrategy"] == {"type": "OnDelete"}
    rollout, = registered(monitor, "pulumi-python:dynamic/dbcreds:OpenBaoPodRollout").values()
    assert (rollout["image"], rollout["release"], rollout["statefulset"], rollout["pods"]) == (
        image, version_text(binary_version(bao_binary())), "vault", ["vault-0", "vault-1", "vault-2"])
    assert len(rollout["template"]) == 16
