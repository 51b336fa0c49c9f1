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


def free_port_run(count: int) -> int:
    """The first of count consecutive free ports (a cluster's nodes listen on port, port + 1, ...)."""
    while True:
        first = free_port()
        taken = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
