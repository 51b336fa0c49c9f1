"""The docker target: hardened containers, running only images the stack builds."""

from typing import Any, Iterable, Mapping

from policies.rules.common import CONTAINER, IMAGE, REMOTE_IMAGE, Report, known

#: What a container may add back after dropping every capability (PostgreSQL's start hands its
#: files to the postgres user: chown, chmod, then setuid and setgid).
ALLOWED_CAPABILITIES = {"CHOWN", "FOWNER", "SETUID", "SETGID"}


def container_hardened(props: Mapping[str, Any], config: Mapping[str, Any], report: Report) -> None:
    """A container: not privileged, every capability dropped (a few added back at most), no privilege
    gain, no host namespace but the network, host paths only under the stack's data folder."""
    if known(props, "privileged"):
        report("privileged is true: run it unprivileged")
    capabilities = known(props, "capabilities") or {}
    if "ALL" not in (capabilities.get("drops") or []):
        report("capabilities.drops does not hold ALL: drop every capability")
    extra = {c.upper().removeprefix("CAP_") for c in capabilities.get("adds") or []} - ALLOWED_CAPABILITIES
    if extra:
        report(f"capabilities.adds holds {', '.join(sorted(extra))}: add back at most "
               f"{', '.join(sorted(ALLOWED_CAPABILITIES))}")
    if "no-new-privileges" not in (known(props, "securityOpts") or []):
        report("securityOpts does not hold no-new-privileges")
    for key in ("pidMode", "ipcMode", "usernsMode"):
        if known(props, key) == "host":
            report(f"{key} is host: keep the container in its own namespace")
    if known(props, "devices"):
        report("devices are passed through: the servers need none")
    allowed = [p.rstrip("/") + "/" for p in config.get("allowedHostPaths") or []]
    mounts = [*(known(props, "volumes") or []), *(known(props, "mounts") or [])]
    for mount in mounts:
        host_path = mount.get("hostPath") or (mount.get("source") if mount.get("type") == "bind" else None)
        if isinstance(host_path, str) and not any((host_path.rstrip("/") + "/").startswith(p) for p in allowed):
            report(f"a volume mounts the host path {host_path}: only the stack's data folder may be mounted")


def images_built_here(resources: Iterable[Any], _config: Mapping[str, Any], report: Report) -> None:
    """Every container runs an image the stack builds itself (a docker Image, never pushed), and
    nothing is pulled (no RemoteImage)."""
    built = set()
    for r in resources:
        if r.resource_type == REMOTE_IMAGE:
            report(f"{r.name}: a RemoteImage pulls from a registry: build the image here (docker.Image)")
        elif r.resource_type == IMAGE:
            if known(r.props, "skipPush") is not True:
                report(f"{r.name}: skipPush is not true: the stack's images stay in its own engine")
            built.update(v for v in (known(r.props, "repoDigest"), known(r.props, "imageName")) if v)
    for r in resources:
        if r.resource_type == CONTAINER:
            image = known(r.props, "image")
            if image is not None and image not in built:
                report(f"{r.name}: image is not one the stack builds: run only images of its own docker.Image "
                       "resources")
