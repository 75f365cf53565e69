"""The duplication check for one submitted lead: turns a submission into lead.verified or
lead.rejected. Idempotent by lead id: the platform record names the lead that made it, so a
redelivered submission is never a duplicate of itself."""

from __future__ import annotations

import time
from collections.abc import Callable

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStateLost, DedupStore
from leadx.leads import pii
from leadx.leads.sealing import PiiKeyring
from leadx.platform.config import HmacKeyring
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from services.dedup import metrics
from services.dedup.state_keeper import StateKeeper


class DuplicateChecker:
    def __init__(self, store: DedupStore, producer: EventProducer, hmac_keys: HmacKeyring, keyring: PiiKeyring,
                 policy: DedupPolicy, keeper: StateKeeper, clock: Callable[[], float] = time.time,
                 email_provider_rules: bool = True) -> None:
        self.store = store
        self.keeper = keeper  # restores the records when Redis lost them
        self.keyring = keyring  # opens the identities, which the lead carries sealed
        self.email_provider_rules = email_provider_rules
        self.producer = producer
        self.hmac_keys = hmac_keys
        self.policy = policy
        self.clock = clock

    async def handle(self, envelope: Envelope) -> None:
        lead = envelope.message.lead
        # Under every listed HMAC key: while one is rotated, what was recorded under the old key
        # still counts; the record is made under the current one.
        identities = pii.identity_keys_under(self.hmac_keys, self.keyring.fields_of(lead), self.email_provider_rules)
        now_ms = int(self.clock() * 1000)
        direct = lead.direct_buyer_id
        scopes = self.policy.scopes(lead.vertical)
        # A direct sale answers to its contracted buyer's duplicates only; it is still recorded
        # platform-wide, so the consumer is then a duplicate for the auctions.
        try:
            check = await self.store.check_submission(
                lead.lead_id, lead.vertical, identities, now_ms, scopes.window_ms,
                platform=scopes.platform and not direct, buyers=scopes.per_buyer, record=scopes.platform)
        except DedupStateLost:
            # Redis lost its records: passing the lead on would sell a consumer again. It is held
            # (the consumer retries it) while the keeper restores them.
            raise self.keeper.lost() from None
        metrics.CHECKS.inc()
        if check.platform_duplicate_on or (direct and direct in check.duplicate_buyer_ids):
            metrics.DUPLICATES.labels("platform" if check.platform_duplicate_on else "direct_buyer").inc()
            detail = (f"platform duplicate on {check.platform_duplicate_on}" if check.platform_duplicate_on
                      else f"the contracted buyer {direct} already has this consumer")
            rejected = ev.LeadRejected(
                lead_id=lead.lead_id, seller_id=lead.seller_id,
                reason=ev.REJECTION_REASON_DUPLICATE, internal_detail=detail, rejected_at_ms=now_ms,
            )
            await self.producer.publish(topics.LEAD_REJECTED, lead.lead_id, rejected,
                                        derived_event_id(lead.lead_id, "rejected"))
            return
        if check.duplicate_buyer_ids:
            metrics.DUPLICATES.labels("buyer").inc()
        verified = ev.LeadVerified(
            lead=lead,
            duplicate_buyer_ids=sorted(check.duplicate_buyer_ids),
            identity_keys=pii.listed(identities),  # each named by its key id, the current key's first
        )
        await self.producer.publish(topics.LEAD_VERIFIED, lead.lead_id, verified,
                                    derived_event_id(lead.lead_id, "verified"))
