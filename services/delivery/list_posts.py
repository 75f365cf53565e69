"""Delivery of list-auction customers: each customer a dealer won (list.awarded) is POSTed to it,
adapted by its POST rules exactly as a lead would be (docs/post-rules.md).

A list sale is final when the auction closes (its sale.closed is already out): the POST hands over
the data, it does not ask the dealer again. So a dealer's rejection is recorded, not passed on to
anybody, and a dealer that wants its money back returns the customer like any lead it bought.
A dealer without a post URL (an AutoBid account) takes its lists by export
(`GET /v1/lists/{id}/won`), so nothing is posted to it.

Each customer is posted once: a Redis flag per (auction, customer) is set before the POST and its
Idempotency-Key is `<auction>-<customer>`, so a repeated list.awarded after a crash re-posts with
the same key at most once, and never after the first POST finished.
"""

from __future__ import annotations

import logging

from leadx.accounts.directory import BuyerDirectory
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import prepare_post
from leadx.delivery.post_adaptation.rules import RuleError
from leadx.delivery.post_adaptation.syntax import RuleBook
from leadx.leads.sealing import PiiKeyring
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.logs import log_event
from leadx.platform.redis.client import RedisClient
from services.delivery.attempts import AttemptLog, log_fields
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient

log = logging.getLogger(__name__)
POSTED_TTL_S = 30 * 24 * 3600


class ListPoster:
    def __init__(self, redis: RedisClient, directory: BuyerDirectory, client: BuyerClient, namespace: str,
                 keyring: PiiKeyring, rules: RuleBook | None = None, breaker: CircuitBreaker | None = None,
                 attempts: AttemptLog | None = None) -> None:
        self.redis, self.directory, self.client, self.namespace = redis, directory, client, namespace
        self.keyring = keyring  # opens the customer's fields for the POST
        self.rules = rules or RuleBook()
        self.breaker = breaker or CircuitBreaker()
        self.attempts = attempts or AttemptLog(None)

    async def handle(self, envelope: Envelope) -> None:
        awarded: ev.ListAwarded = envelope.message
        key = f"{awarded.auction_id}-{awarded.lead.lead_id}"
        context = {"list_auction_id": awarded.auction_id, "prospect_id": awarded.lead.lead_id,
                   "buyer_id": awarded.buyer_id}
        buyer = self.directory.get(awarded.buyer_id)
        if buyer is None or not buyer.post_url:
            log_event(log, "list customer not posted: the dealer takes its list by export", **context)
            return
        if self.rules.is_broken(buyer.id, buyer.name):
            log_event(log, "list customer not posted: the dealer's POST rules are broken", **context)
            return
        section = self.rules.for_buyer(buyer.id, buyer.name)
        try:
            prepared = prepare_post(self.keyring.opened(awarded.lead), awarded.price_cents, section)
        except RuleError as error:
            log_event(log, "list customer not posted: its POST rules cannot adapt it", error=str(error), **context)
            return
        flag = f"listpost:{self.namespace}{key}:{buyer.id}"
        if not await self.redis.set(flag, "posting", nx=True, ex=POSTED_TTL_S):
            return  # posted, or being posted, already
        try:
            attempt_id = await self.attempts.begin(ev.AuctionClosed(auction_id=awarded.auction_id, lead=awarded.lead),
                                                   buyer, prepared)
        except Exception:
            await self.redis.delete(flag)  # not posted: a redelivery tries again
            raise
        # The client's Idempotency-Key is the auction id it is given: here, one per customer.
        result = await self.client.post(buyer, ev.AuctionClosed(auction_id=key, lead=awarded.lead), prepared, section)
        self.breaker.record(buyer.id, ok=not result.failed)
        await self.attempts.finish(attempt_id, result)
        if not result.reached:  # nothing was sent: let a redelivery try again
            await self.redis.delete(flag)
            raise ConnectionError(f"list customer not delivered to {buyer.id}: {result.detail}")
        await self.redis.set(flag, "accepted" if result.accepted else "refused", ex=POSTED_TTL_S)
        log_event(log, "list customer posted", **log_fields(result), **context)
