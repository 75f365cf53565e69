"""The fault suite's checker: it reads the history of a run (every answer the sellers got, every
sale.closed event, every POST each buyer's server received, the post_attempts rows, the ledger and
each lead's final status) and finds every broken promise, whatever the faults were.

Pure: it sees only the history, so each rule is tested on histories made by hand
(tests/faults/test_checker.py) as well as on the real runs (tests/faults/test_faults.py).

The promises, and what breaks them:
- `lost`: a lead the exchange accepted (200, or 202 pending) that never reached an outcome.
- `doubled`: a lead closed both sold and unsold on sale.closed, or sold to more buyers than its
  shares (one, unless its vertical shares leads). A repeat of one decision is at-least-once
  delivery, and harmless: it carries the same event id and decision.
- `paid twice`: a buyer charged for two leads of one consumer: the dedup window failed it.
- `posted twice`: one consumer's data POSTed to one buyer in two different leads. The same lead
  POSTed again (a delivery worker died while the buyer held the first) is counted, not failed: the
  buyer sees the same Idempotency-Key (`delivered_twice`).
- `repeat without its key`: a lead POSTed again to a buyer under another Idempotency-Key than the
  first time, so the buyer cannot recognise the repeat.
- `refused then sold`: a lead the seller was told was not accepted, sold anyway (a seller's retry
  would make a duplicate).
- `books`: ledger entries that do not sum to zero, overall or in any transaction.
- `unrecorded post`: a POST a buyer received with no post_attempts row for it (a dispute could not
  see it).
- `server error`: an answer of 500 or any 5xx but 503 (which, with Retry-After, is the exchange's
  own "unavailable, retry"): whatever fails underneath, a seller never gets a crash for an answer.
- `ledger disagrees`: a lead sold on sale.closed that the ledger does not hold sold (or returned),
  or one the ledger holds sold with no sale on sale.closed (of the leads whose id a seller was told).

Beside the promises, liveness: `sold_since` counts the leads sent after a moment that were sold, so
the suite can check the exchange sells again once the faults are over.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

ACCEPTED_STATUSES = {"accepted", "pending"}
OUTCOMES = {"sold", "unsold", "duplicate", "rejected", "returned"}  # a lead's public statuses that end it
SOLD_STATUSES = {"sold", "returned"}  # a lead's public statuses once it was sold


@dataclass(frozen=True)
class Submission:
    """One POST a seller made, and what it was told."""
    consumer: int  # the workload's person: several submissions may carry the same one
    sent_at: float  # seconds since the epoch
    answered_at: float | None  # None: no answer (timed out, connection refused)
    http_status: int | None
    status: str  # the body's status ("" when there was no body)
    lead_id: str | None

    @property
    def accepted(self) -> bool:
        return self.http_status in (200, 202) and self.status in ACCEPTED_STATUSES

    @property
    def refused(self) -> bool:
        """Told it was not accepted (an answer, but not an acceptance). No answer is neither."""
        return self.http_status is not None and not self.accepted


@dataclass(frozen=True)
class SaleEvent:
    event_id: str
    lead_id: str
    outcome: str  # "sold" | "unsold"
    buyer_id: str
    closed_at_ms: int


@dataclass(frozen=True)
class BuyerPost:
    buyer_id: str
    lead_id: str
    idempotency_key: str | None


@dataclass(frozen=True)
class Attempt:
    lead_id: str
    buyer_id: str
    attempt: int
    outcome: str


@dataclass(frozen=True)
class Charge:
    """A sale booked in the ledger: the buyer charged for the lead."""
    lead_id: str
    buyer_id: str


@dataclass(frozen=True)
class Fault:
    name: str
    started_at: float  # seconds since the epoch
    ended_at: float  # when the part was back (restarted or resumed) and every service ready again


@dataclass
class History:
    submissions: list[Submission] = field(default_factory=list)
    sales: list[SaleEvent] = field(default_factory=list)
    posts: list[BuyerPost] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # lead id → public status at the end
    transaction_sums: dict[str, int] = field(default_factory=dict)  # ledger transaction id → its entries' sum
    faults: list[Fault] = field(default_factory=list)
    shares: dict[str, int] = field(default_factory=dict)  # a shared lead's buyers at most; absent: 1 (exclusive)


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str


@dataclass(frozen=True)
class FaultRow:
    fault: str
    leads: int  # submissions sent while the fault lasted
    accepted: int
    lost: int
    doubled: int
    delivered_twice: int
    p99_s: float | None  # the sellers' answer time, p99, during the fault (no answer: counted as its wait)
    unanswered: int
    recovered_s: float | None  # from the fault's end to the first sale of a lead submitted after it


def violations(history: History) -> list[Violation]:
    found: list[Violation] = []
    found += _lost(history)
    found += _doubled(history)
    found += _paid_twice(history)
    found += _posted_twice(history)
    found += _repeats_without_their_key(history)
    found += _refused_then_sold(history)
    found += _books(history)
    found += _unrecorded_posts(history)
    found += _server_errors(history)
    found += _ledger_disagrees(history)
    return found


def _sold_on_topic(history: History) -> set[str]:
    return {sale.lead_id for sale in history.sales if sale.outcome == "sold"}


def _ledger_disagrees(history: History) -> list[Violation]:
    # The leads the sellers were told the id of: one whose answer was lost (the intake killed or
    # frozen while it answered) may be sold, and its status was not read.
    known = {s.lead_id for s in history.submissions if s.lead_id}
    on_topic = _sold_on_topic(history) & known
    in_ledger = {lead for lead, status in history.statuses.items() if status in SOLD_STATUSES}
    return [Violation("ledger disagrees", f"lead {lead} is {'sold' if lead in on_topic else 'not sold'} on "
                                          f"sale.closed and {history.statuses.get(lead, 'unknown')!r} in the ledger")
            for lead in sorted(on_topic ^ in_ledger)]


def sold_since(history: History, since: float) -> tuple[int, int]:
    """(accepted, sold): the leads sent at or after `since` (seconds since the epoch) that the
    exchange accepted, and how many of them were sold."""
    leads = {s.lead_id for s in history.submissions if s.accepted and s.lead_id and s.sent_at >= since}
    return len(leads), len(leads & _sold_on_topic(history))


def _server_errors(history: History) -> list[Violation]:
    return [Violation("server error", f"consumer {s.consumer}'s submission was answered {s.http_status}")
            for s in history.submissions if s.http_status is not None and s.http_status >= 500
            and s.http_status != 503]


def _accepted_leads(history: History) -> set[str]:
    return {s.lead_id for s in history.submissions if s.accepted and s.lead_id}


def lost_leads(history: History) -> set[str]:
    return {lead for lead in _accepted_leads(history) if history.statuses.get(lead) not in OUTCOMES}


def _lost(history: History) -> list[Violation]:
    return [Violation("lost", f"lead {lead} was accepted and has no outcome (status "
                              f"{history.statuses.get(lead, 'unknown')!r})") for lead in sorted(lost_leads(history))]


def _decisions(history: History) -> dict[str, set[tuple[str, str]]]:
    """Each lead's distinct decisions on sale.closed: (outcome, buyer)."""
    decisions: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sale in history.sales:
        decisions[sale.lead_id].add((sale.outcome, sale.buyer_id))
    return decisions


def doubled_leads(history: History) -> set[str]:
    """Leads closed both sold and unsold, or sold to more buyers than their shares."""
    def doubled(lead: str, seen: set[tuple[str, str]]) -> bool:
        sold_to = {buyer for outcome, buyer in seen if outcome == "sold"}
        unsold_too = bool(sold_to) and len(seen) > len(sold_to)
        return unsold_too or len(sold_to) > history.shares.get(lead, 1)
    return {lead for lead, seen in _decisions(history).items() if doubled(lead, seen)}


def _doubled(history: History) -> list[Violation]:
    decisions = _decisions(history)
    return [Violation("doubled", f"lead {lead} closed {len(decisions[lead])} ways: {sorted(decisions[lead])}")
            for lead in sorted(doubled_leads(history))]


def _consumers(history: History) -> dict[str, int]:
    return {s.lead_id: s.consumer for s in history.submissions if s.lead_id}


def _one_consumer_in_two_leads(history: History, pairs: Iterable[tuple[str, str]], rule: str,
                               verb: str) -> list[Violation]:
    """(buyer, lead) pairs in which one buyer holds one consumer under two lead ids."""
    consumer_of = _consumers(history)
    leads: dict[tuple[str, int], set[str]] = defaultdict(set)
    for buyer, lead in pairs:
        if lead in consumer_of:
            leads[(buyer, consumer_of[lead])].add(lead)
    return [Violation(rule, f"buyer {buyer} {verb} consumer {consumer} in leads {sorted(ids)}")
            for (buyer, consumer), ids in sorted(leads.items()) if len(ids) > 1]


def _paid_twice(history: History) -> list[Violation]:
    return _one_consumer_in_two_leads(history, ((c.buyer_id, c.lead_id) for c in history.charges),
                                      "paid twice", "was charged for")


def _posted_twice(history: History) -> list[Violation]:
    return _one_consumer_in_two_leads(history, ((p.buyer_id, p.lead_id) for p in history.posts),
                                      "posted twice", "received")


def delivered_twice(history: History) -> Counter[str]:
    """Leads a buyer received more than once (the same lead: a repeat after a crash), by lead."""
    seen = Counter((post.buyer_id, post.lead_id) for post in history.posts)
    return Counter(lead for (_buyer, lead), count in seen.items() if count > 1)


def _repeats_without_their_key(history: History) -> list[Violation]:
    keys: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for post in history.posts:
        keys[(post.buyer_id, post.lead_id)].add(post.idempotency_key)
    return [Violation("repeat without its key",
                      f"buyer {buyer} received lead {lead} under keys {sorted(map(str, seen))}")
            for (buyer, lead), seen in sorted(keys.items()) if len(seen) > 1]


def _refused_then_sold(history: History) -> list[Violation]:
    sold = _sold_on_topic(history)
    found = [Violation("refused then sold", f"lead {s.lead_id} was answered {s.http_status} {s.status!r} and sold")
             for s in history.submissions if s.refused and s.lead_id in sold]
    # A refusal may carry no lead id (nothing was queued): then the consumer must reach no buyer, unless
    # another of its submissions was accepted or went unanswered (its outcome unknown to the seller).
    by_consumer: dict[int, list[Submission]] = defaultdict(list)
    for submission in history.submissions:
        by_consumer[submission.consumer].append(submission)
    consumer_of = _consumers(history)
    reached = {consumer_of[post.lead_id] for post in history.posts if post.lead_id in consumer_of}
    for consumer, submissions in sorted(by_consumer.items()):
        if all(s.refused for s in submissions) and consumer in reached:
            found.append(Violation("refused then sold",
                                   f"consumer {consumer} was refused every time and reached a buyer"))
    return found


def _books(history: History) -> list[Violation]:
    found = [Violation("books", f"ledger transaction {tid} sums to {total} cents")
             for tid, total in sorted(history.transaction_sums.items()) if total != 0]
    overall = sum(history.transaction_sums.values())
    if overall != 0:
        found.append(Violation("books", f"the ledger sums to {overall} cents"))
    return found


def _unrecorded_posts(history: History) -> list[Violation]:
    received = Counter((post.lead_id, post.buyer_id) for post in history.posts)
    recorded = Counter((attempt.lead_id, attempt.buyer_id) for attempt in history.attempts)
    return [Violation("unrecorded post", f"buyer {buyer} received lead {lead} {count} times; "
                                         f"post_attempts holds {recorded[(lead, buyer)]}")
            for (lead, buyer), count in sorted(received.items()) if recorded[(lead, buyer)] < count]


def fault_rows(history: History, client_timeout_s: float) -> list[FaultRow]:
    lost, doubled, twice = lost_leads(history), doubled_leads(history), delivered_twice(history)
    submitted_at = {s.lead_id: s.sent_at for s in history.submissions if s.lead_id and s.accepted}
    rows = []
    for fault in history.faults:
        during = [s for s in history.submissions if fault.started_at <= s.sent_at <= fault.ended_at]
        waits = [(s.answered_at - s.sent_at) if s.answered_at is not None else client_timeout_s for s in during]
        leads = {s.lead_id for s in during if s.accepted and s.lead_id}
        after = [sale.closed_at_ms / 1000 for sale in history.sales
                 if sale.outcome == "sold" and submitted_at.get(sale.lead_id, 0) > fault.ended_at]
        rows.append(FaultRow(
            fault=fault.name, leads=len(during), accepted=len(leads), lost=len(leads & lost),
            doubled=len(leads & doubled), delivered_twice=sum(twice[lead] for lead in leads),
            p99_s=percentile(waits, 0.99) if waits else None,
            unanswered=sum(1 for s in during if s.answered_at is None),
            recovered_s=None if not after else max(0.0, min(after) - fault.ended_at)))
    return rows


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def table(rows: list[FaultRow]) -> str:
    """The fault table, in Markdown."""
    lines = ["| fault | leads sent | accepted | lost | doubled | delivered twice | seller p99 | unanswered | "
             "recovered after |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        p99 = "–" if row.p99_s is None else f"{row.p99_s:.2f} s"
        recovered = "–" if row.recovered_s is None else f"{row.recovered_s:.1f} s"
        lines.append(f"| {row.fault} | {row.leads} | {row.accepted} | {row.lost} | {row.doubled} | "
                     f"{row.delivered_twice} | {p99} | {row.unanswered} | {recovered} |")
    return "\n".join(lines)
