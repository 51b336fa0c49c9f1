"""The node folders of the retired single-node profile, whose local PersistentVolumes lived in the
stack's data folder: kept so that a stack made with that profile can still be destroyed (Pulumi
deletes a dynamic resource through the provider its state recorded). New stacks use their cluster's
StorageClass.
"""

import shutil
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


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
