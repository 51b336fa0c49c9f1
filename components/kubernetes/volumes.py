"""Storage of the Kubernetes target's single-node profile: for each claim of a StatefulSet, a folder
under the stack's data folder and a local PersistentVolume on it, bound to that claim.

The node is the machine that runs the stack, so the stack makes the folders
itself; kubelet hands them to the pod's group (fsGroup) when it mounts them.
Removing the stack removes the volumes and their folders.
"""

import shutil
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from components.kubernetes import manifests as m


class _NodeFolderProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        Path(props["path"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        return CreateResult(id_=props["path"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds != news, replaces=["path"] if olds.get("path") != news.get("path") else [],
                          delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        shutil.rmtree(props["path"], ignore_errors=True)


class NodeFolder(Resource, module="dbcreds", name="NodeFolder"):
    """A folder on this machine, the node of a single-node cluster (removed with its content)."""

    def __init__(self, name: str, path: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(_NodeFolderProvider(), name, {"path": path}, opts)


def node_volumes(owner: pulumi.ComponentResource, name: str, namespace: str, app: str,
                 claims: tuple[str, ...], data_dir: str, size: str) -> dict[str, k8s.core.v1.PersistentVolume]:
    """Claim template -> its PersistentVolume, for the StatefulSet `name` of the component `name`;
    named after the namespace and the claim (volumes are cluster-wide: two stacks in two namespaces
    do not collide)."""
    volumes = {}
    for template in claims:
        claim = m.claim_name(template, name)
        volume_name = f"{namespace}-{claim}"
        path = str(Path(data_dir) / "volumes" / volume_name)
        folder = NodeFolder(f"{name}-{template}-folder", path, opts=pulumi.ResourceOptions(parent=owner))
        manifest = m.node_volume(volume_name, namespace, claim, path, size, app, name)
        volumes[template] = k8s.core.v1.PersistentVolume(
            f"{name}-{template}", metadata=manifest["metadata"], spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=owner, depends_on=[folder]))
    return volumes
