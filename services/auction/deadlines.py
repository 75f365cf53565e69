"""In-memory index of the durable deadlines kept in the auctions table.

The table (backed by its changelog topic) is the truth; this heap only makes finding the next
due auction cheap. It is rebuilt from the table whenever partitions are recovered, so auctions
survive restarts and rebalances; an entry for an auction that moved to another worker is skipped
when it falls due (the new owner rebuilt its own), and one for an auction closed already is
harmless (the table is checked before every close).

The closing task sleeps until the earliest deadline (`wait_due`), woken early when an earlier one
is pushed: an idle worker does not wake to look at an empty heap, and an auction closes on its
deadline rather than at the next look.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterable

CLOSE, PURGE = "close", "purge"


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str, str]] = []
        self._earlier = asyncio.Event()  # set when the earliest deadline changed since wait_due looked

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due_ms: int, auction_id: str, action: str) -> None:
        heapq.heappush(self._heap, (due_ms, auction_id, action))
        if self._heap[0][0] == due_ms:
            self._earlier.set()

    def next_due_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    async def wait_due(self, now_ms: Callable[[], int], longest_s: float) -> None:
        """Return once the earliest deadline is due, an earlier one was pushed or the heap rebuilt,
        or `longest_s` passed (a bound on any clock step between the deadlines' and the loop's)."""
        self._earlier.clear()
        due = self.next_due_ms()
        wait_s = longest_s if due is None else min(longest_s, (due - now_ms()) / 1000)
        if wait_s <= 0:
            return
        try:
            await asyncio.wait_for(self._earlier.wait(), wait_s)
        except TimeoutError:
            pass

    def pop_due(self, now_ms: int) -> list[tuple[str, str]]:
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            _, auction_id, action = heapq.heappop(self._heap)
            due.append((auction_id, action))
        return due

    def rebuild(self, entries: Iterable[tuple[int, str, str]]) -> None:
        self._heap = list(entries)
        heapq.heapify(self._heap)
        self._earlier.set()
