"""Re-drives leads that stalled on their way to an outcome, so nothing accepted is ever lost.

Every step downstream of intake is idempotent by lead id (dedup's platform record names its lead,
scoring is pure, the auction skips a lead it already has, delivery resumes from its progress
record, and every derived event keeps its id), so publishing a lead's lead.submitted again can
only move a stalled lead forward: it can never create a second auction or a second sale.

Why it is needed: a consumer that loses an event, rather than failing on it, leaves nothing for
at-least-once delivery to repeat. faust-streaming has had such bugs around rebalances (issues
#216 and #221 upstream), and we saw a restarted auction worker that seemed never to hand three
lead.scored events to its agent. That one may have been the local broker instead: tansu reports a
partition's end short (leadx/platform/kafka/offsets.py), and faust's table recovery, stopping there, could
lose the last auctions opened before a crash, since fixed. The ledger sees every lead's status, so
it is where any such stall shows.

A lead is stalled when it has no final status and nothing has happened to it for
`stall_after_ms` (after its auction's close, for a lead in auction). Each re-drive is claimed with
a conditional UPDATE, so several ledger replicas never re-drive one lead twice for the same stall.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads import status as lead_status
from leadx.leads.sealing import PiiKeyring
from leadx.platform.db.models import Auction, Lead
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from services.ledger.recorder import lead_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedrivePolicy:
    stall_after_ms: int = 60_000
    max_redrives: int = 5
    batch: int = 200


def claim_stalled(sessions: sessionmaker[Session], policy: RedrivePolicy, now_ms: int) -> list[ev.Lead]:
    """Find stalled leads, claim each (bumping its re-drive count), and return them to publish."""
    cutoff = now_ms - policy.stall_after_ms
    query = (
        select(Lead)
        .outerjoin(Auction, Auction.lead_id == Lead.id)
        .where(
            Lead.status_rank < lead_status.RANK[lead_status.SOLD],
            Lead.seller_id != "",  # lead.submitted itself was recorded, so the lead can be rebuilt
            Lead.fields.is_not(None),
            Lead.redrives < policy.max_redrives,
            Lead.updated_at_ms < cutoff,
            or_(Auction.id.is_(None), Auction.closes_at_ms < cutoff),
        )
        .order_by(Lead.updated_at_ms)
        .limit(policy.batch)
    )
    claimed = []
    with sessions.begin() as session:
        # The oldest stalls are chosen, but claimed (their rows locked) in id order: the ledger's
        # batches lock the leads they record in id order too (batch_rows), so a sweep and a batch
        # touching the same leads on PostgreSQL wait for each other rather than deadlock.
        for lead in sorted(session.scalars(query).all(), key=lambda lead: lead.id):
            unchanged = and_(Lead.id == lead.id, Lead.redrives == lead.redrives,
                             Lead.updated_at_ms == lead.updated_at_ms)
            # Session.execute is typed as returning Result; for an UPDATE it is a CursorResult, which counts rows.
            won = cast(CursorResult, session.execute(
                update(Lead).where(unchanged).values(redrives=lead.redrives + 1, updated_at_ms=now_ms)
            )).rowcount
            if won:
                claimed.append(lead_message(lead))
    return claimed


class StallRedriver:
    def __init__(self, sessions: sessionmaker[Session], producer: EventProducer, keyring: PiiKeyring,
                 policy: RedrivePolicy) -> None:
        self.sessions, self.producer, self.policy = sessions, producer, policy
        self.keyring = keyring  # the lead store holds the lead whole; the topic gets it sealed

    async def sweep(self) -> int:
        now_ms = int(time.time() * 1000)
        leads = await asyncio.to_thread(claim_stalled, self.sessions, self.policy, now_ms)
        for lead in leads:
            log_event(log, "re-driving a stalled lead", lead_id=lead.lead_id)
            await self.producer.publish(topics.LEAD_SUBMITTED, lead.lead_id,
                                        ev.LeadSubmitted(lead=self.keyring.seal(lead)),
                                        derived_event_id(lead.lead_id, "redrive", str(now_ms)))
        return len(leads)
