"""Ports for the servers tests start."""

import random
import socket


def free_port() -> int:
    """A free port below Linux's ephemeral range, which outgoing connections may take at any time."""
    while True:
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def free_ports(count: int) -> list[int]:
    """count free ports, all different."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
