"""A circuit breaker per buyer: after `failures` calls in a row that failed (no answer, a timeout,
an HTTP 5xx; a rejection is an answer), the buyer is skipped for `cooldown_s`: not pinged, its bids
passed over. Then one call is let through; its success closes the circuit, its failure opens it
again. Per delivery worker, in memory: a restarted worker gives every buyer a fresh chance."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    trial_running: bool = False


# The least share of its full time a buyer must have had for a ping it left unanswered to count
# against it.
FAIR_SHARE = 0.5
# How far past its deadline a ping's timeout may fire before delivery counts itself, not the buyer,
# as the one that stalled.
STALLED_S = 1.0


def not_the_buyers_fault(given_s: float, full_s: float, waited_s: float) -> str | None:
    """Why a ping that timed out says nothing about its buyer, or None when it counts against it.

    A ping sent at its auction's opening has `full_s` (the window, or the buyer's ping timeout if
    shorter); one sent late, because delivery fell behind (a stalled database, a restart, a
    backlog), has only `given_s`, what was left of the window. And a timeout that fired long after
    it was due (`waited_s`) means delivery itself was not running (frozen, starved of CPU).
    Counting either would open every buyer's circuit for delivery's own trouble, and the exchange
    would stop asking for bids for a whole cool-down after it recovered."""
    if given_s < FAIR_SHARE * full_s:
        return f"pinged late: only {given_s * 1000:.0f} ms of the auction's window were left"
    if waited_s > given_s + STALLED_S:
        return f"delivery stalled: {waited_s:.1f} s for a {given_s:.1f} s ping"
    return None


class CircuitBreaker:
    def __init__(self, failures: int = 5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def allow(self, buyer_id: str) -> bool:
        """Whether to call this buyer now. After a cool-down, one trial call is allowed."""
        circuit = self._circuits.get(buyer_id)
        if circuit is None or circuit.failures < self.threshold:
            return True
        if self.clock() < circuit.open_until or circuit.trial_running:
            return False
        circuit.trial_running = True
        return True

    def record(self, buyer_id: str, ok: bool) -> None:
        circuit = self._circuits.setdefault(buyer_id, _Circuit())
        circuit.trial_running = False
        if ok:
            circuit.failures = 0
            return
        circuit.failures += 1
        if circuit.failures >= self.threshold:
            circuit.open_until = self.clock() + self.cooldown_s

    def release(self, buyer_id: str) -> None:
        """The call allowed was not made after all: another may be the trial."""
        circuit = self._circuits.get(buyer_id)
        if circuit is not None:
            circuit.trial_running = False

    def buyer_ids(self) -> list[str]:
        """The buyers this breaker has seen a call to."""
        return list(self._circuits)

    def is_open(self, buyer_id: str) -> bool:
        circuit = self._circuits.get(buyer_id)
        return bool(circuit and circuit.failures >= self.threshold and self.clock() < circuit.open_until)
