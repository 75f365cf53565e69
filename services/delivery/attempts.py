"""The dispute record: every POST to a buyer written to SQL (post_attempts) as it happens."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts import BuyerEndpoint
from leadx.db.models import PostAttempt
from leadx.events.v1 import events_pb2 as ev
from leadx.post_adaptation import PreparedPost
from services.delivery.buyer_http import PostResult

MAX_RESPONSE_CHARS = 8192


def outcome_of(result: PostResult) -> str:
    return "accepted" if result.accepted else "failed" if result.failed else "rejected"


class AttemptLog:
    def __init__(self, sessions: sessionmaker[Session] | None) -> None:
        self.sessions = sessions  # None: not recorded (unit tests of the sale logic)

    async def record(self, closed: ev.AuctionClosed, buyer: BuyerEndpoint, prepared: PreparedPost,
                     result: PostResult) -> None:
        if self.sessions is None:
            return
        row = PostAttempt(
            auction_id=closed.auction_id, lead_id=closed.lead.lead_id, buyer_id=buyer.id,
            sent_at_ms=int(time.time() * 1000) - result.latency_ms, content_type=prepared.content_type,
            request_body=prepared.body.decode("utf-8", "replace"), connects=result.connects,
            status=result.status, response_body=result.response[:MAX_RESPONSE_CHARS].decode("utf-8", "replace"),
            latency_ms=result.latency_ms, outcome=outcome_of(result), detail=result.detail,
        )
        await asyncio.to_thread(self._insert, row)

    def _insert(self, row: PostAttempt) -> None:
        with self.sessions.begin() as session:
            session.add(row)
