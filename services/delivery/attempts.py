"""The dispute record: every POST to a buyer written to SQL (post_attempts) as it happens."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import PreparedPost
from leadx.platform.db.models import PostAttempt
from services.delivery.buyer_http import PostResult, post_outcome

MAX_RESPONSE_CHARS = 8192
log = logging.getLogger(__name__)


def outcome_of(result: PostResult) -> str:
    """What post_attempts stores: accepted, rejected (the buyer answered no) or failed (no usable
    answer: not reached, no answer, an HTTP 5xx)."""
    outcome = post_outcome(result)
    return outcome if outcome in ("accepted", "rejected") else "failed"


def log_fields(result: PostResult) -> dict[str, object]:
    """What a log line says of a post: how it went, never the buyer's own words. A reply read by
    the buyer's rules becomes the detail (`rejected by buyer: <its error>`), and a buyer may
    repeat the consumer's name or SSN back in it; the detail is kept here, in SQL, for disputes.
    Without an answer the detail is delivery's own (the error's type) and is logged."""
    fields: dict[str, object] = {"outcome": post_outcome(result), "status": result.status,
                                 "latency_ms": result.latency_ms}
    if result.status is None:
        fields["detail"] = result.detail
    return fields


class AttemptLog:
    def __init__(self, sessions: sessionmaker[Session] | None) -> None:
        self.sessions = sessions  # None: not recorded (unit tests of the sale logic)

    async def record(self, closed: ev.AuctionClosed, buyer: BuyerAccount, prepared: PreparedPost,
                     result: PostResult) -> None:
        """Never raises: a failure here must not fail the sale, whose retry would post again."""
        if self.sessions is None:
            return
        row = PostAttempt(
            auction_id=closed.auction_id, lead_id=closed.lead.lead_id, buyer_id=buyer.id,
            sent_at_ms=int(time.time() * 1000) - result.latency_ms, content_type=prepared.content_type,
            request_body=prepared.body.decode("utf-8", "replace"), connects=result.connects,
            status=result.status, response_body=result.response[:MAX_RESPONSE_CHARS].decode("utf-8", "replace"),
            latency_ms=result.latency_ms, outcome=outcome_of(result), detail=result.detail,
        )
        try:
            await asyncio.to_thread(self._insert, row)
        except Exception:  # noqa: BLE001 - logged; the sale goes on
            log.exception("post attempt not recorded", extra={"fields": {
                "auction_id": closed.auction_id, "buyer_id": buyer.id, "outcome": row.outcome}})

    def _insert(self, row: PostAttempt) -> None:
        assert self.sessions is not None  # record() returns early when attempts are not recorded
        with self.sessions.begin() as session:
            session.add(row)
