"""The ports the development tools start their processes on (leadx.dev.ports)."""

from __future__ import annotations

import socket

import pytest

from leadx.dev import ports


def ephemeral_low() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        return int(ranges.read().split()[0])


def test_a_free_port_is_below_the_range_outgoing_connections_take_theirs_from_and_never_given_twice():
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 50
    assert all(ports.FREE_LOW <= port < ephemeral_low() for port in given)
    private = [ports.private_port() for _ in range(50)]  # a band of their own, below free_port's
    assert all(ports.PRIVATE_LOW <= port < ports.FREE_LOW for port in private)
    for port in given[:5]:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))  # free: a process can listen on it


def test_a_port_something_listens_on_is_not_given(monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        monkeypatch.setattr(ports, "_worker_share", lambda low, high: (taken, taken + 1))
        with pytest.raises(RuntimeError, match="no free port"):
            ports.private_port()  # the one port of the share is listened on


def test_with_no_room_below_the_range_the_kernel_chooses(monkeypatch):
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 15_000)  # a host whose range starts low
    with pytest.raises(RuntimeError, match="no ports in"):
        ports._pick(ports.FREE_LOW, 15_000)
    port = ports.free_port()
    assert port >= ephemeral_low()  # the kernel's choice, from its (real) range
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
