"""Free local ports, for the processes the development tools start (the stack, the Kafka launcher).
A module of its own so that both can use it without importing each other."""

from __future__ import annotations

import os
import random
import socket


def port_taken(port: int) -> bool:
    """Whether something on this machine already listens on `port` (any address)."""
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port nothing listens on now, for a process about to be started on it: below the kernel's
    ephemeral range (private_port) while that has ports left, else the kernel's choice. One the
    kernel chose is in the range it gives outgoing connections their ports from, so in the seconds
    before the process binds it a client's connection could take it (a service then failed to start
    with "address already in use" in a bench whose delivery was opening PostgreSQL connections)."""
    try:
        return private_port()
    except RuntimeError:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]



# Ports handed out in this process, listening or not (private_port).
_ports_given: set[int] = set()


def private_port() -> int:
    """A free port below the kernel's ephemeral range, never handed out twice in this process. A
    process that is killed and started again on its own port (a test's service, a Redis Cluster
    node) keeps it meanwhile: no bind to port 0 and no outgoing connection is ever given one, and
    under pytest-xdist each worker picks from a slice of its own."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            ephemeral_low = int(ports.read().split()[0])
    except OSError:  # not Linux: the range starts at 32768 or above everywhere else too
        ephemeral_low = 32768
    low, high = _worker_share(10_000, ephemeral_low)
    start = random.randrange(low, high)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if port in _ports_given or port_taken(port):
            continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def _worker_share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's own slice of [low, high): a port one worker's service gives up while
    it restarts is never taken by another worker's (each process remembers only its own ports)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (high - low) // workers
    return low + index * size, low + (index + 1) * size
