"""Free local ports, for the processes the development tools start (the stack, the Kafka launcher).
A module of its own so that both can use it without importing each other."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice; another process may take it before use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
