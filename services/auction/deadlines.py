"""In-memory index of the durable deadlines kept in the auctions table.

The table (backed by its changelog topic) is the truth; this heap only makes finding the next
due auction cheap. It is rebuilt from the table whenever partitions are recovered, so auctions
survive restarts and rebalances; an entry for an auction that moved to another worker is skipped
when it falls due (the new owner rebuilt its own), and one for an auction closed already is
harmless (the table is checked before every close).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

CLOSE, PURGE = "close", "purge"


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due_ms: int, auction_id: str, action: str) -> None:
        heapq.heappush(self._heap, (due_ms, auction_id, action))

    def pop_due(self, now_ms: int) -> list[tuple[str, str]]:
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            _, auction_id, action = heapq.heappop(self._heap)
            due.append((auction_id, action))
        return due

    def rebuild(self, entries: Iterable[tuple[int, str, str]]) -> None:
        self._heap = list(entries)
        heapq.heapify(self._heap)
