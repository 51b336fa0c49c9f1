"""A real Kubernetes control plane for tests, on 127.0.0.1: a single-member etcd, kube-apiserver,
and kube-controller-manager running the garbage collector and namespace controllers.

All are built from their Go modules by `make bootstrap`. No nodes: objects are
validated, admitted, stored and deleted (the controllers finish deletions
that wait on finalizers), never run. That is what a server-side dry run and
a `pulumi up` and `destroy` of manifests need.
"""

import contextlib
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.ports import free_port
from toolchain.env import ROOT

BIN = ROOT / ".tools" / "bin"
STARTUP_SECONDS = 90


@dataclass
class ApiServer:
    url: str
    token: str
    ca_file: Path
    kubeconfig: Path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, headers={"Authorization": f"Bearer {self.token}"},
                                verify=str(self.ca_file), timeout=30, **kwargs)


def write_kubeconfig(path: Path, url: str, ca_file: Path, token: str) -> None:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {url}
    certificate-authority: {ca_file}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: test
  context: {{cluster: test, user: admin}}
current-context: test
""")
    path.chmod(0o600)


def write_credentials(folder: Path) -> str:
    """The service-account signing key pair and a token file with one admin (system:masters) in
    folder; returns the admin's token."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "sa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (folder / "sa.key").chmod(0o600)
    (folder / "sa.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    token = secrets.token_urlsafe(24)
    (folder / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    (folder / "tokens.csv").chmod(0o600)
    return token


def apiserver_argv(etcd_url: str, port: int, credentials: Path, cert_dir: Path) -> list[str]:
    """kube-apiserver on 127.0.0.1:port, its self-signed serving certificate in cert_dir, the token file
    and service-account keys of write_credentials(credentials)."""
    return [
        str(BIN / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1", f"--secure-port={port}", f"--cert-dir={cert_dir}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={credentials / 'sa.pub'}",
        f"--service-account-signing-key-file={credentials / 'sa.key'}",
        "--authorization-mode=AlwaysAllow", f"--token-auth-file={credentials / 'tokens.csv'}",
        "--service-cluster-ip-range=10.96.0.0/16",
        # No service-account controllers: pods here use no API token, and each namespace has no default one.
        "--disable-admission-plugins=ServiceAccount",
    ]


@contextlib.contextmanager
def running_apiserver(work: Path) -> Iterator[ApiServer]:
    """Starts etcd and kube-apiserver under work, waits for /readyz, stops both afterwards."""
    token = write_credentials(work)
    etcd_url, port = f"http://127.0.0.1:{free_port()}", free_port()
    processes = []
    try:
        with open(work / "etcd.log", "wb") as log:
            processes.append(subprocess.Popen(
                [str(BIN / "etcd"), str(work / "etcd"), etcd_url, f"http://127.0.0.1:{free_port()}"],
                stdout=log, stderr=log))
        with open(work / "apiserver.log", "wb") as log:
            processes.append(subprocess.Popen(apiserver_argv(etcd_url, port, work, work / "certs"),
                                              stdout=log, stderr=log))
        url = f"https://127.0.0.1:{port}"
        server = ApiServer(url, token, work / "certs" / "apiserver.crt", work / "kubeconfig")
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if server.request("GET", "/readyz").status_code == 200:
                    break
            except (requests.RequestException, OSError):
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                tail = (work / "apiserver.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"kube-apiserver did not become ready:\n{tail}")
            time.sleep(0.5)
        write_kubeconfig(server.kubeconfig, url, server.ca_file, token)
        with open(work / "controller-manager.log", "wb") as log:
            processes.append(subprocess.Popen([
                str(BIN / "kube-controller-manager"), f"--kubeconfig={server.kubeconfig}",
                "--controllers=garbage-collector-controller,namespace-controller", "--leader-elect=false", "--secure-port=0",
            ], stdout=log, stderr=log))
        yield server
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
