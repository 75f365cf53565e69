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


# Below the kernel's ephemeral range (from which it gives ports to binds to port 0 and to outgoing
# connections), two bands: [10000, 20000) for private_port, [20000, the range's start) for
# free_port. A port is picked at random in its band and checked free.
PRIVATE_LOW, FREE_LOW = 10_000, 20_000

# Ports handed out in this process, listening or not.
_ports_given: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, for a process about to be started on it: below the kernel's
    ephemeral range while that has room, else the kernel's choice. One the kernel chose is in the
    range it gives outgoing connections their ports from, so in the seconds before the process
    binds it a client's connection could take it (a service then failed to start with "address
    already in use" in a bench whose delivery was opening PostgreSQL connections). Another process
    of ours may still pick the same port before it is bound (each remembers only its own), as with
    the kernel's choice; the ports of private_port are never picked here."""
    try:
        return _pick(FREE_LOW, _ephemeral_low())
    except RuntimeError:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def private_port() -> int:
    """A free port of a band of its own below the kernel's ephemeral range, never handed out twice
    in this process. A process that is killed and started again on its own port (a test's service,
    a Redis Cluster node) keeps it meanwhile: no bind to port 0, no outgoing connection and no
    free_port of another process is ever given one, and under pytest-xdist each worker picks from
    a slice of its own."""
    return _pick(*_worker_share(PRIVATE_LOW, min(FREE_LOW, _ephemeral_low())))


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except OSError:  # not Linux: the range starts at 32768 or above everywhere else too
        return 32768


def _pick(low: int, high: int) -> int:
    """A free port of [low, high) not given before in this process."""
    if high <= low:
        raise RuntimeError(f"no ports in [{low}, {high}) below the ephemeral range")
    start = random.randrange(low, high)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if port in _ports_given or port_taken(port):
            continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free port in [{low}, {high}) below the ephemeral range")


def _worker_share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's own slice of [low, high): a port one worker's service gives up while
    it restarts is never taken by another worker's (each process remembers only its own ports)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (high - low) // workers
    return low + index * size, low + (index + 1) * size
