"""The Docker engine a docker-target stack runs on: its own dockerd, under the stack's data folder.

Started when the stack needs it and none answers at its socket (`make up`, the
tests), stopped only by whoever started it (`make down` removes it with its data
root, and so every image, container and volume in it). No bridge network and
no iptables rules: containers use the host's network and listen on 127.0.0.1.

    engine = DockerEngine(Path(".data/docker"))
    engine.ensure_running()   # -> True when this call started it
    engine.host               # unix:///.../docker.sock, for pulumi-docker's provider and the docker CLI
"""

import hashlib
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.servers.process import running_pid, start_detached, terminate


class DockerEngineError(RuntimeError):
    pass


def dockerd_binary() -> str:
    path = shutil.which("dockerd")
    if path is None:
        raise DockerEngineError("no dockerd on PATH: install Debian's docker.io (make bootstrap-stack STACK=docker)")
    return path


@dataclass(frozen=True)
class DockerEngine:
    """The engine of one stack: everything of it under `data_dir`."""

    data_dir: Path

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.data_dir / "root"

    @property
    def exec_root(self) -> Path:
        """containerd's sockets live here: short, as a socket path must be (108 bytes)."""
        return Path("/run") / f"dbcreds-docker-{hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]}"

    @property
    def _pid_file(self) -> Path:
        """The stack's record of the dockerd it started (dockerd keeps its own in docker.pid beside it)."""
        return self.data_dir / "dockerd.pid"

    def pid(self) -> int | None:
        """The dockerd this stack started, if it runs."""
        return running_pid(self._pid_file, str(self.data_root))

    def answers(self) -> bool:
        """Whether a Docker engine answers at the socket (GET /_ping)."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status_line = sock.recv(1024).split(b"\r\n", 1)[0]
        except OSError:
            return False
        return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line

    def ensure_running(self) -> bool:
        """Starts the stack's dockerd unless one answers at its socket; True when this call started it."""
        if self.answers():
            return False
        self.data_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [
            dockerd_binary(), "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
            "--pidfile", str(self.data_dir / "docker.pid"), "--host", self.host,
            # No bridge (its addresses are a private range), no iptables rules, no userland proxy.
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=false",
            "--log-level=warn",
        ]

        def ready() -> None:
            if not self.answers():
                raise DockerEngineError(f"no answer at {self.socket_path} yet")

        start_detached(argv, self._pid_file, self.data_dir / "dockerd.log", ready, f"dockerd at {self.host}",
                       DockerEngineError)
        return True

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The docker CLI against this engine."""
        result = subprocess.run(["docker", "--host", self.host, *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DockerEngineError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def stop(self) -> None:
        """Stops the dockerd this stack started (its containers stop with it; their restart policy
        brings them back with the next start), and clears its runtime folder. One it did not start is
        left alone."""
        terminate(self._pid_file, str(self.data_root))
        if not self.answers():
            _remove_tree(self.exec_root)

    def remove(self) -> None:
        """Stops it and removes its folder and data root: every image, container and volume in it."""
        self.stop()
        if not self.answers():
            _remove_tree(self.data_dir)


def _remove_tree(folder: Path) -> None:
    """Removes a folder dockerd used, unmounting what it left mounted under it first (deepest first)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{folder}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)
