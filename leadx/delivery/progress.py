"""One auction's delivery progress (sale completion, docs/auction.md#outcome): a typed
record of the Redis hash `delivery:<namespace><auction id>`, one field per note:

    sold:<buyer>       the buyer took the lead: "<price cents>|<attempts>" (a `Sale`)
    rejected:<buyer>   it answered no: its answer
    unreached:<buyer>  nothing reached it: why
    passed:<buyer>     passed over as already having the consumer: "1"
    caps:<buyer>       the sale counted against its caps, to take back if it does not take the lead
                       (leadx.auction.caps.counters.Reservation, which encodes itself)
    done               every sale.closed is published: "1"

Each value is encoded and decoded here alone. The values keep the form every delivery worker has
written, so a worker reads the progress its predecessor left, and one rolled back reads a newer
worker's.

When Redis lost the hash (restarted without its data), the progress is rebuilt from the posts SQL
keeps (post_attempts, as `PostRecord`s): a buyer that accepted is never posted to again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from leadx.auction.caps.counters import Reservation

SOLD, REJECTED, UNREACHED, PASSED, CAPS = "sold", "rejected", "unreached", "passed", "caps"
DONE = "done"


@dataclass(frozen=True, slots=True)
class Sale:
    price_cents: int
    attempts: int  # the posts made for this auction up to and including this buyer's

    def encode(self) -> str:
        return f"{self.price_cents}|{self.attempts}"

    @classmethod
    def decode(cls, text: str) -> Sale:
        price, _, attempts = text.partition("|")
        return cls(int(price), int(attempts))


def note_name(kind: str, buyer_id: str) -> str:
    return f"{kind}:{buyer_id}"


@dataclass(slots=True)
class DeliveryProgress:
    """What delivery has done for one auction so far. Each `note_*` updates the record and returns
    the hash field and value that keep the note."""

    sold: dict[str, Sale] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    unreached: dict[str, str] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)
    caps: dict[str, Reservation] = field(default_factory=dict)
    done: bool = False

    @classmethod
    def decode(cls, fields: Mapping[str, str]) -> DeliveryProgress:
        """The record of a progress hash, its fields and values as text; fields it does not know are
        left alone."""
        progress = cls(done=DONE in fields)
        for name, value in fields.items():
            kind, _, buyer_id = name.partition(":")
            if not buyer_id:
                continue
            if kind == SOLD:
                progress.sold[buyer_id] = Sale.decode(value)
            elif kind == REJECTED:
                progress.rejected[buyer_id] = value
            elif kind == UNREACHED:
                progress.unreached[buyer_id] = value
            elif kind == PASSED:
                progress.passed.add(buyer_id)
            elif kind == CAPS:
                progress.caps[buyer_id] = Reservation.decode(value)
        return progress

    def answered(self, buyer_id: str) -> bool:
        """Whether the lead was already offered to this buyer to an end: it is never offered again."""
        return buyer_id in self.sold or buyer_id in self.rejected or buyer_id in self.unreached

    def note_sold(self, buyer_id: str, sale: Sale) -> tuple[str, str]:
        self.sold[buyer_id] = sale
        return note_name(SOLD, buyer_id), sale.encode()

    def note_rejected(self, buyer_id: str, answer: str) -> tuple[str, str]:
        self.rejected[buyer_id] = answer
        return note_name(REJECTED, buyer_id), answer

    def note_unreached(self, buyer_id: str, why: str) -> tuple[str, str]:
        self.unreached[buyer_id] = why
        return note_name(UNREACHED, buyer_id), why

    def note_passed(self, buyer_id: str) -> tuple[str, str]:
        self.passed.add(buyer_id)
        return note_name(PASSED, buyer_id), "1"

    def note_caps(self, buyer_id: str, reservation: Reservation) -> tuple[str, str]:
        self.caps[buyer_id] = reservation
        return note_name(CAPS, buyer_id), reservation.encode()

    def forget_caps(self, buyer_id: str) -> str:
        """Drop a caps note: the hash field to delete."""
        self.caps.pop(buyer_id, None)
        return note_name(CAPS, buyer_id)

    def note_done(self) -> tuple[str, str]:
        self.done = True
        return DONE, "1"

    @classmethod
    def from_posts(cls, posts: Iterable[PostRecord], prices: Mapping[str, int]) -> tuple[DeliveryProgress,
                                                                                          list[tuple[str, str]]]:
        """The progress the posts of one auction (in the order they were made) show, and its notes
        to write back. `prices`: each buyer's bid. An accepted post is a sale; any other answered
        post, or one that may have reached the buyer, a rejection (the buyer has seen the lead); one
        that provably never connected, unreached. A post still `sending` (delivery stopped while it
        waited) shows nothing: it is posted again, with the same Idempotency-Key, as after a crash."""
        progress, notes = cls(), []
        for post in posts:
            if post.outcome == ACCEPTED:
                attempts = len(progress.sold) + len(progress.rejected) + 1
                notes.append(progress.note_sold(post.buyer_id, Sale(prices.get(post.buyer_id, 0), attempts)))
            elif post.outcome == SENDING:
                continue
            elif post.outcome == FAILED and post.status is None and post.connects == 0:
                notes.append(progress.note_unreached(post.buyer_id, post.detail))
            else:
                notes.append(progress.note_rejected(post.buyer_id, post.detail))
        return progress, notes


ACCEPTED, FAILED, SENDING = "accepted", "failed", "sending"  # post_attempts.outcome, besides "rejected"


@dataclass(frozen=True, slots=True)
class PostRecord:
    """One POST of an auction's lead as post_attempts keeps it."""

    buyer_id: str
    outcome: str  # accepted | rejected | failed | sending
    status: int | None  # the HTTP status, if it answered
    connects: int  # connections made or tried; 0 with no status: it never left the exchange
    detail: str
