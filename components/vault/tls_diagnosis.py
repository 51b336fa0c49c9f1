"""Why a verify-full connection to the database failed: the certificate it presents is read without
verifying it, and what is wrong with it said (expired, not yet valid, issued by another CA). A wrong
host name is left to libpq's own message, which the checks report beside this one.

Also what each server presents now (serial and end), for the checks' report: after an `up` renewed a
certificate, the operator sees the new one there.
"""

import datetime
import socket
import ssl
import struct
from urllib.parse import urlsplit

from cryptography import x509

#: PostgreSQL's SSLRequest: a client asks for TLS with it before the handshake.
_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def served_certificate(host: str, port: int) -> x509.Certificate:
    """The certificate the database presents (read without verifying it, to say what is wrong)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(_SSL_REQUEST)
        if sock.recv(1) != b"S":
            raise ConnectionError("the database does not offer TLS")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def served_https_certificate(address: str) -> x509.Certificate:
    """The certificate an https:// server (Vault's listener) presents, read without verifying it."""
    url = urlsplit(address)
    with socket.create_connection((url.hostname, url.port or 443), timeout=10) as sock:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname=url.hostname) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def vault_serial(serial_number: int) -> str:
    """A serial as Vault's PKI writes it (`<mount>/cert/<serial>`): hex bytes, colon-separated."""
    raw = format(serial_number, "x")
    raw = raw.zfill(len(raw) + len(raw) % 2)
    return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2))


def certificate_summary(cert: x509.Certificate) -> dict:
    """What the report says of a served certificate: its serial, subject, issuer and end."""
    return {"serial": vault_serial(cert.serial_number), "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"}


def certificate_problem(cert: x509.Certificate, ca_pem: str, now: datetime.datetime) -> str:
    """Why cert would fail verification against the CAs in ca_pem at now: expiry or issuer; empty when
    neither (the host name, say, is for libpq's message to tell)."""
    if cert.not_valid_after_utc < now:
        return f"it expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    if cert.not_valid_before_utc > now:
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
    subjects = [ca.subject for ca in x509.load_pem_x509_certificates(ca_pem.encode())]
    if cert.issuer not in subjects:
        return (f"it was issued by {cert.issuer.rfc4514_string()}, not by the database CA "
                f"({'; '.join(s.rfc4514_string() for s in subjects)})")
    return ""


def served_certificate_problem(host: str, port: int, ca_pem: str) -> str:
    """What is wrong, now, with the certificate the database at host:port presents (empty when
    nothing this module can tell); never raises: the failure it explains is reported either way."""
    try:
        return certificate_problem(served_certificate(host, port), ca_pem,
                                   datetime.datetime.now(datetime.timezone.utc))
    except Exception as reading:  # noqa: BLE001 - libpq's own message still says it failed
        return f"(its certificate could not be read: {reading})"
