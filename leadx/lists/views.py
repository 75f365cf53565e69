"""What operators and dealers are shown of a list auction: pure functions from the store's rows
(leadx.lists.store, leadx.platform.db.models) to the JSON documents of the API and the CLI.

A dealer sees the customers it bids on without PII (prospect id, state, ZIP3, probability and
cluster), each cluster group and probability band summarised (how many, their probabilities and how
many responses they promise), its own bids, and once the auction has closed what it won. An
operator sees the same with the profile, every bid and every award. Only the customers a dealer
has won come with their fields: it bought them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from leadx.lists.building import Customer, CustomerList, ListProfile, build_list

if TYPE_CHECKING:  # the store's rows; only read here (and the CLI need not load SQLAlchemy to start)
    from leadx.platform.db.models import ListAuction, ListAward, ListBid, Prospect

OPEN, CLOSING, CLOSED = "open", "closing", "closed"
DIGITS = 4  # probabilities shown to 4 decimals: enough to tell customers apart, and steady across runs
WON_COLUMNS = ("prospect_id", "price_cents", "probability", "cluster")


def band_width_problem(width: object) -> str | None:
    """What is wrong with a band width, or None. Bands are labelled to two decimals ("0.10-0.15")
    and a dealer bids on a band by its label, so a width is whole hundredths, from 0.01 to 1."""
    if (isinstance(width, bool) or not isinstance(width, int | float) or not 0.01 <= width <= 1
            or abs(width * 100 - round(width * 100)) > 1e-6):
        return "must be whole hundredths from 0.01 to 1, such as 0.05"
    return None


def status(auction: ListAuction, now_ms: int) -> str:
    """open: taking bids; closing: the window has ended and the ledger is about to close it (bids are
    refused, nothing is won yet); closed: its customers have been awarded."""
    if auction.status == CLOSED:
        return CLOSED
    return OPEN if now_ms < auction.closes_at_ms else CLOSING


def _spread(customers: Sequence[Customer]) -> dict:
    probabilities = [c.probability for c in customers]
    return {"count": len(probabilities),
            "probability_min": round(min(probabilities), DIGITS),
            "probability_max": round(max(probabilities), DIGITS),
            "probability_mean": round(sum(probabilities) / len(probabilities), DIGITS),
            # The responses a dealer can expect from the group's customers: the sum of their probabilities.
            "expected_responses": round(sum(probabilities), 2)}


def groups(customers: Iterable[Customer], band_width: float, descriptions: Mapping[str, str]) -> dict:
    """The list's cluster groups (in id order, each described as the served model bundle describes
    it) and probability bands (from the highest), each with its count and probabilities."""
    built = build_list(customers, ListProfile((), ()), band_width)
    return _groups(built, descriptions)


def _groups(built: CustomerList, descriptions: Mapping[str, str]) -> dict:
    return {
        "clusters": [{"cluster": cluster, "description": descriptions.get(cluster, ""), **_spread(members)}
                     for cluster, members in built.by_cluster.items()],
        "bands": [{"band": label, **_spread(members)} for label, members in built.by_band.items()],
    }


def customer(row: Customer) -> dict:
    """A customer as bidders see it: no PII, whatever fields the row carries."""
    fields = row.fields or {}
    return {"prospect_id": row.prospect_id, "state": str(fields.get("state", "") or ""),
            "zip3": str(fields.get("zip", "") or "")[:3], "probability": round(row.probability, DIGITS),
            "cluster": row.cluster}


def bid(row: ListBid) -> dict:
    return {"id": row.id, "buyer_id": row.buyer_id, "scope": row.scope, "target": row.target,
            "price_cents": row.price_cents, "max_count": row.max_count, "max_budget_cents": row.max_budget_cents,
            "placed_at_ms": row.placed_at_ms}


def _won(awards: Sequence[ListAward]) -> dict:
    return {"count": len(awards), "total_cents": sum(a.price_cents for a in awards)}


def _header(auction: ListAuction, count: int, now_ms: int) -> dict:
    shown = status(auction, now_ms)
    return {"list_id": auction.id, "vertical": auction.vertical, "status": shown,
            "opened_at_ms": auction.opened_at_ms, "closes_at_ms": auction.closes_at_ms,
            "closed_at_ms": auction.closed_at_ms,
            "seconds_left": max(0.0, round((auction.closes_at_ms - now_ms) / 1000, 1)) if shown == OPEN else 0.0,
            "reserve_cents": auction.reserve_cents, "band_width": auction.band_width, "count": count}


def dealer_view(auction: ListAuction, members: Sequence[Customer], page: Sequence[Customer], offset: int,
                bids: Sequence[ListBid], awards: Sequence[ListAward], descriptions: Mapping[str, str],
                now_ms: int) -> dict:
    """The list as one dealer sees it. `members` are all its customers (for the groups), `page` the
    customers asked for (from `offset`, best first, with their state and ZIP), `bids` and `awards`
    that dealer's own."""
    return {**_header(auction, len(members), now_ms), **groups(members, auction.band_width, descriptions),
            "offset": offset, "customers": [customer(c) for c in page],
            "your_bids": [bid(b) for b in bids],
            "won": _won(awards) if auction.status == CLOSED else None}


def operator_view(auction: ListAuction, members: Sequence[Customer], page: Sequence[Customer], offset: int,
                  bids: Sequence[ListBid], awards: Sequence[ListAward], descriptions: Mapping[str, str],
                  now_ms: int) -> dict:
    """The whole auction for operators: its profile, every bid and, once closed, every award (the
    winner of each customer on the page, and the totals per dealer)."""
    by_customer = {a.prospect_id: a for a in awards}
    rows = []
    for member in page:
        row = customer(member)
        if auction.status == CLOSED:
            sold = by_customer.get(member.prospect_id)
            row["buyer_id"] = sold.buyer_id if sold else None
            row["price_cents"] = sold.price_cents if sold else None
        rows.append(row)
    per_buyer: dict[str, list[ListAward]] = {}
    for award in awards:
        per_buyer.setdefault(award.buyer_id, []).append(award)
    closed = auction.status == CLOSED
    return {**_header(auction, len(members), now_ms), "profile": auction.profile,
            "tie_break_seed": auction.tie_break_seed, **groups(members, auction.band_width, descriptions),
            "offset": offset, "customers": rows, "bids": [bid(b) for b in bids],
            "awards": {**_won(awards), "unsold": len(members) - len(awards),
                       "published": sum(1 for a in awards if a.published),
                       "by_buyer": [{"buyer_id": buyer, **_won(won)} for buyer, won in sorted(
                           per_buyer.items(), key=lambda item: (-sum(a.price_cents for a in item[1]), item[0]))]}
            if closed else None}


def preview(vertical: str, built: CustomerList, descriptions: Mapping[str, str], top: int) -> dict:
    """A list built without opening an auction: its groups and its best `top` customers, no PII."""
    return {"vertical": vertical, "band_width": built.band_width, "count": len(built.customers),
            **_groups(built, descriptions), "customers": [customer(c) for c in built.customers[:top]]}


# ---------------------------------------------------------------------- what a dealer won

def won(rows: Sequence[tuple[ListAward, Prospect]]) -> list[dict]:
    """The customers a dealer won, best first as the store gives them, with their fields."""
    return [{"prospect_id": prospect.id, "price_cents": award.price_cents,
             "probability": round(prospect.probability, DIGITS), "cluster": prospect.cluster,
             "fields": {str(k): "" if v is None else str(v) for k, v in (prospect.fields or {}).items()}}
            for award, prospect in rows]


def won_document(list_id: str, buyer_id: str, customers: Sequence[dict]) -> dict:
    return {"list_id": list_id, "buyer_id": buyer_id, "count": len(customers),
            "total_cents": sum(c["price_cents"] for c in customers), "customers": list(customers)}


def won_columns(customers: Sequence[dict], field_order: Sequence[str]) -> list[str]:
    """The CSV header: the sale's columns, then the vertical's fields in its own order, then any
    other field the customers carry (an imported list may have more), by name."""
    present = {name for c in customers for name in c["fields"]}
    ordered = [name for name in field_order if name in present or not customers]
    extra = sorted(present - set(ordered) - set(WON_COLUMNS))
    return [*WON_COLUMNS, *(name for name in ordered if name not in WON_COLUMNS), *extra]


def won_csv(customers: Sequence[dict], field_order: Sequence[str]) -> str:
    """One header line, then one line per customer won (an empty field where a customer has none)."""
    columns = won_columns(customers, field_order)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for c in customers:
        writer.writerow([c[name] if name in WON_COLUMNS else c["fields"].get(name, "") for name in columns])
    return out.getvalue()
