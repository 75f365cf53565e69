"""What a dead.letter record says, and how one is put back on its topic.

A consumer group sets a record aside on dead.letter (EventConsumer) with its key, value and headers
unchanged, plus headers naming where it was read and why (topics.DEAD_LETTER_HEADERS). `leadx
status` counts them, `leadx dlq list` shows them, and `leadx dlq replay` publishes one again on the
topic it came from, once its cause is fixed: the handlers are idempotent, so every group of that
topic may see it again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadx.contracts.topics import DEAD_LETTER_HEADERS

REPLAYED_FROM = "leadx-replayed-from"  # header of a replayed record: "dead.letter <partition>:<offset>"
_FIELDS = dict(zip(DEAD_LETTER_HEADERS, ("topic", "partition", "offset", "group", "reason"), strict=True))


@dataclass(frozen=True)
class DeadLetter:
    """A record set aside on dead.letter: where it was read from and why."""
    topic: str  # "" when its headers do not say (a record not put there by the exchange)
    partition: int | None
    offset: int | None
    group: str  # the consumer group that set it aside ("" when not said)
    reason: str
    at_ms: int  # when it was set aside


def dead_letter_from(headers: Iterable[tuple[str, bytes]] | None, timestamp_ms: int) -> DeadLetter:
    """A dead.letter record's origin, from the headers the exchange adds when it sets one aside
    (by name: the record's own headers ride along beside them)."""
    found = {_FIELDS[name]: value.decode(errors="replace") for name, value in headers or () if name in _FIELDS}

    def number(name: str) -> int | None:
        value = found.get(name, "")
        return int(value) if value.isdigit() else None

    return DeadLetter(topic=found.get("topic", ""), partition=number("partition"), offset=number("offset"),
                      group=found.get("group", ""), reason=found.get("reason", ""), at_ms=timestamp_ms)


def replay_headers(headers: Iterable[tuple[str, bytes]] | None, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The record's own headers (event id, type, trace) without the dead-letter ones, and where
    the replay came from."""
    kept = [(name, value) for name, value in headers or () if name not in _FIELDS and name != REPLAYED_FROM]
    return [*kept, (REPLAYED_FROM, f"dead.letter {partition}:{offset}".encode())]
