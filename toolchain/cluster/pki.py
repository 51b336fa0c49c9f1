"""The test cluster's credentials: one CA, the API server's serving certificate, the service-account
signing key, and a bearer token per identity (the API server's static token file).

Identities are the ones Kubernetes' built-in RBAC roles are bound to, so RBAC and the Node authorizer
judge every component as they would in a kubeadm cluster:

    admin                           group system:masters (the kubeconfig `make cluster-up` prints)
    system:kube-controller-manager  (its controllers each use their own service account)
    system:kube-scheduler
    system:kube-proxy               (ClusterRole system:node-proxier)
    system:node:<node>              group system:nodes, one per node (the Node authorizer)

The API server reaches kubelets with a client certificate in system:masters; kubelets check it
against the CA, and check bearer tokens with the API server (TokenReview, SubjectAccessReview).
"""

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    path.chmod(mode)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


@dataclass(frozen=True)
class Paths:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.folder / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.folder / "apiserver.key"

    @property
    def kubelet_client_cert(self) -> Path:
        return self.folder / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.folder / "apiserver-kubelet-client.key"

    @property
    def sa_key(self) -> Path:
        return self.folder / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.folder / "sa.pub"

    @property
    def tokens(self) -> Path:
        return self.folder / "tokens.csv"


def write(folder: Path, apiserver_ips: list[str], node_names: list[str]) -> dict[str, str]:
    """Writes the CA, the API server's certificates, the service-account key pair and the token file
    into folder; returns each identity's token (admin, controller-manager, scheduler, kube-proxy,
    node:<name>)."""
    paths = Paths(folder)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("dbcreds test cluster CA")
    ca_cert = (_builder(ca_name, ca_name, ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.ca_key, _key_pem(ca_key), 0o600)

    def issue(cert_path: Path, key_path: Path, subject: x509.Name, usage, sans: list | None = None) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (_builder(subject, ca_name, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=True, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        _write(cert_path, builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        _write(key_path, _key_pem(key), 0o600)

    dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
           "localhost"]
    issue(paths.apiserver_cert, paths.apiserver_key, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
          [x509.DNSName(d) for d in dns]
          + [x509.IPAddress(ipaddress.ip_address(i)) for i in [*apiserver_ips, "127.0.0.1"]])
    issue(paths.kubelet_client_cert, paths.kubelet_client_key,
          _name("kube-apiserver-kubelet-client", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(paths.sa_key, _key_pem(sa_key), 0o600)
    _write(paths.sa_pub, sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))

    identities = {
        "admin": ("admin", "system:masters"),
        "controller-manager": ("system:kube-controller-manager", ""),
        "scheduler": ("system:kube-scheduler", ""),
        "kube-proxy": ("system:kube-proxy", ""),
        **{f"node:{name}": (f"system:node:{name}", "system:nodes") for name in node_names},
    }
    tokens = {who: secrets.token_urlsafe(32) for who in identities}
    lines = [f'{tokens[who]},{user},{user},"{groups}"' if groups else f"{tokens[who]},{user},{user}"
             for who, (user, groups) in identities.items()]
    _write(paths.tokens, "\n".join(lines) + "\n", 0o600)
    return tokens


def write_kubeconfig(path: Path, url: str, ca_file: Path, token: str, user: str = "admin") -> None:
    _write(path, f"""apiVersion: v1
kind: Config
clusters:
- name: dbcreds
  cluster:
    server: {url}
    certificate-authority: {ca_file}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: dbcreds
  context: {{cluster: dbcreds, user: {user}}}
current-context: dbcreds
""", 0o600)
