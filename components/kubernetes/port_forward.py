"""How the machine running `pulumi up` reaches a Service in the cluster: `kubectl port-forward` through
the API server (any cluster offers it: the project's, EKS, GKE), on 127.0.0.1, held open for as long
as the process that opened it lives (the Pulumi program, `make down`).

    with PortForward(kubeconfig, "dbcreds", "vault", 18200, 8200) as forward:
        forward.address        # https://127.0.0.1:18200 reaches the Service's port 8200

Or to one pod (`kind="pod"`), started again while it is gone and once it is back.

kubectl forwards to one pod the Service selects (a ready one if any is ready, else any running one: an
OpenBao that is not initialised yet is not ready); when that pod goes (kubectl says so on its first
failed connection), or there was none yet, it is started again until the process ends. It dies with
the process that opened it.
"""

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

#: Linux's prctl option that signals a child when its parent thread ends.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PortForwardError(RuntimeError):
    pass


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise PortForwardError("no kubectl on PATH (make bootstrap-stack STACK=<a kubernetes stack> builds one "
                               "into .tools/bin; `eval \"$(make -s env)\"` puts it on PATH)")
    return found


@dataclass
class PortForward:
    kubeconfig: Optional[str]
    namespace: str
    service: str
    local_port: int
    remote_port: int
    #: What `service` names: a Service, or one pod ("pod").
    kind: str = "service"
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _process: Optional[subprocess.Popen] = field(default=None, repr=False)
    _thread: Optional[threading.Thread] = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{self.local_port}"

    def argv(self) -> list[str]:
        config = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return [kubectl(), *config, "--namespace", self.namespace, "port-forward", "--address", "127.0.0.1",
                f"{self.kind}/{self.service}", f"{self.local_port}:{self.remote_port}"]

    def _hold(self, argv: list[str]) -> None:
        while not self._stop.is_set():
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
            # kubectl keeps listening when the pod it forwards to has gone, failing each connection with
            # an error line: it is started again, and picks a pod that is there.
            for line in self._process.stderr:
                if "error" in line.lower():
                    self._process.terminate()
                    break
            self._process.wait()
            self._stop.wait(1)

    def start(self) -> "PortForward":
        """Starts holding the forward open in the background (returns at once)."""
        if self._thread is None:
            argv = self.argv()
            self._thread = threading.Thread(target=self._hold, args=(argv,), daemon=True,
                                            name=f"port-forward {self.service}")
            self._thread.start()
        return self

    def answers(self) -> bool:
        """Whether the local port takes connections (kubectl is forwarding)."""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.local_port), timeout=1):
            return True
        return False

    def wait(self, seconds: float) -> bool:
        """Whether the forward takes connections within seconds."""
        deadline = time.monotonic() + seconds
        while not self.answers():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "PortForward":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
