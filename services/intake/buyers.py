"""The buyers' routes: bids, reads of the leads they bought, returns, outcome reports, and their
ratings of sellers. Every one authenticates the buyer's API key and holds it to the per-account
rate limit (a read of a bought lead shares the sellers' status route: services.intake.sellers).

Bids (`POST /v1/auctions/{auction_id}/bids`, `{"bid": cents}`, besides bids in ping replies): the
auction worker's table is the judge of every bid; this route refuses at once, with a specific
reason, what the worker would refuse anyway (an auction that was not offered to this buyer, one
that has closed, a bid under the seller's minimum), reading the offer record the worker writes when
it opens an auction. A bid it accepts is published as bid.placed, stamped with the time it was
received: the worker counts it if that time is before the close. The same bid sent twice is one
event (its id is derived from the auction, the buyer and the amount); a buyer that bids twice keeps
its higher bid.

Returns (`POST /v1/leads/{lead_id}/return`) are decided and recorded in SQL by
leadx.ledger.returns, then published as lead.returned; outcome reports
(`POST /v1/leads/{lead_id}/outcome`) are stored by services.intake.outcomes, then published as
lead.outcome. A claim whose event could not be published is taken back and the buyer told to retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.routing import Route

from leadx.auction.offers import offer_key
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads import status as lead_status
from leadx.ledger import returns
from leadx.ledger.outcomes import FieldProblem, read_report
from leadx.platform.db.models import Lead, Sale
from leadx.platform.ids import derived_event_id, is_lead_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from leadx.platform.redis.client import RedisClient
from services.intake import outcomes, ratings
from services.intake.endpoints import endpoint
from services.intake.formats import Answer, parse_body, request_format
from services.intake.requests import ApiError, Callers, cents_field, read_body

log = logging.getLogger(__name__)

AUCTION_NOT_FOUND, AUCTION_CLOSED, BID_TOO_LOW = "AUCTION_NOT_FOUND", "AUCTION_CLOSED", "BID_TOO_LOW"
LEAD_NOT_FOUND = "LEAD_NOT_FOUND"


@dataclass(frozen=True)
class BuyerDeps:
    callers: Callers
    sessions: sessionmaker[Session]
    producer: EventProducer
    redis: RedisClient  # the auction worker's offer records
    namespace: str  # the topic prefix, reused to namespace Redis keys
    return_policy: returns.ReturnPolicy
    max_body_bytes: int


class Buyers:
    def __init__(self, deps: BuyerDeps) -> None:
        self.deps = deps

    def routes(self) -> list[Route]:
        return [
            Route("/v1/leads/{lead_id}/return", endpoint(self.return_lead), methods=["POST"]),
            Route("/v1/leads/{lead_id}/outcome", endpoint(self.report_outcome), methods=["POST"]),
            Route("/v1/sellers/{account_id}/rating", endpoint(self.rate_seller), methods=["GET", "PUT"]),
            Route("/v1/auctions/{auction_id}/bids", endpoint(self.place_bid), methods=["POST"]),
        ]

    async def _buyer(self, request: Request) -> str:
        callers = self.deps.callers
        return await callers.limited(request, callers.buyer_keys)

    async def _payload(self, request: Request, root: str) -> dict:
        kind = request_format(request.headers.get("content-type", ""))
        return parse_body(kind, await read_body(request, self.deps.max_body_bytes), (root,))

    # ------------------------------------------------------------------ bids

    async def place_bid(self, request: Request) -> Answer:
        deps = self.deps
        buyer_id = await self._buyer(request)
        auction_id = request.path_params["auction_id"]
        amount = cents_field(await self._payload(request, "bid"), "bid")
        if amount is None:
            raise ApiError(422, "FIELD_MISSING", "bid (cents) is required", field="bid")
        received_at = int(time.time() * 1000)
        # The client answers bytes (no decode_responses): its typing also allows str.
        offer = {cast(bytes, k).decode(): cast(bytes, v).decode()
                 for k, v in (await deps.redis.hgetall(offer_key(deps.namespace, auction_id))).items()}
        # An auction that does not exist and one not offered to this buyer look the same to it.
        if not offer or buyer_id not in offer["offered"].split():
            raise ApiError(404, AUCTION_NOT_FOUND, f"no auction {auction_id} was offered to you")
        closes_at = int(offer["closes_at_ms"])
        if received_at > closes_at:
            raise ApiError(409, AUCTION_CLOSED, f"the auction closed at {closes_at} (Unix ms); the bid came "
                           f"{received_at - closes_at} ms late")
        reserve = int(offer["min_price_cents"])
        if amount < reserve:
            raise ApiError(422, BID_TOO_LOW, f"the bid is below the seller's minimum of {reserve} cents", field="bid")
        bid = ev.BidPlaced(auction_id=auction_id, buyer_id=buyer_id, amount_cents=amount,
                           placed_at_ms=received_at, source="bid_api")
        await deps.producer.publish(topics.BID_PLACED, auction_id, bid,
                                    derived_event_id(auction_id, buyer_id, "api", str(amount)))
        return Answer("accepted", 202, extra={"auction_id": auction_id, "bid": amount, "closes_at_ms": closes_at})

    # ------------------------------------------------------------------ returns

    async def return_lead(self, request: Request) -> Answer:
        deps = self.deps
        buyer_id = await self._buyer(request)
        lead_id = request.path_params["lead_id"]
        if not is_lead_id(lead_id):
            raise ApiError(404, returns.NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
        reason = (await self._payload(request, "return")).get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ApiError(422, "FIELD_INVALID", "reason must be text", field="reason")
        problem = returns.reason_problem(reason or "")
        if problem:
            code = "FIELD_INVALID" if reason and reason.strip() else "FIELD_MISSING"
            raise ApiError(422, code, problem, field="reason")
        try:
            claimed = await returns.return_lead(deps.sessions, deps.return_policy, deps.producer, lead_id, buyer_id,
                                                (reason or "").strip(), int(time.time() * 1000))
        except returns.NotRecorded:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "the exchange could not record the return; retry",
                           headers={"Retry-After": "1"}) from None
        if isinstance(claimed, returns.Refusal):
            raise ApiError(claimed.http_status, claimed.code, claimed.message, field="lead_id")
        log_event(log, "lead returned", lead_id=lead_id, buyer_id=buyer_id, seller_id=claimed.seller_id)
        return Answer("returned", 200, lead_id, extra={"credited_cents": claimed.price_cents,
                                                        "returned_at_ms": claimed.returned_at_ms})

    # ------------------------------------------------------------------ outcome reports

    async def report_outcome(self, request: Request) -> Answer:
        deps = self.deps
        buyer_id = await self._buyer(request)
        lead_id = request.path_params["lead_id"]
        if not is_lead_id(lead_id):
            raise ApiError(404, outcomes.NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
        report = read_report(await self._payload(request, "outcome"))
        if isinstance(report, FieldProblem):
            raise ApiError(422, report.code, report.message, field=report.field)
        now_ms = int(time.time() * 1000)
        claim = await asyncio.to_thread(outcomes.claim_outcome, deps.sessions, lead_id, buyer_id, report, now_ms)
        stored = claim.stored
        try:
            await deps.producer.publish(topics.LEAD_OUTCOME, lead_id, claim.event,
                                        derived_event_id(lead_id, "outcome", buyer_id, stored.outcome))
        except Exception:
            if claim.created:
                await asyncio.to_thread(outcomes.unclaim, deps.sessions, lead_id, buyer_id, stored.outcome, now_ms)
            raise ApiError(503, "SERVICE_UNAVAILABLE", "the exchange could not record the outcome; retry",
                           headers={"Retry-After": "1"}) from None
        log_event(log, "lead outcome reported", lead_id=lead_id, buyer_id=buyer_id, outcome=stored.outcome)
        return Answer("reported", 201 if claim.created else 200, lead_id, extra={
            "outcome": stored.outcome, "at_ms": stored.at_ms, "reported_at_ms": stored.reported_at_ms,
            "note": stored.note})

    # ------------------------------------------------------------------ ratings

    async def rate_seller(self, request: Request) -> Answer:
        buyer_id = await self._buyer(request)
        return await ratings.rating(request, self.deps.sessions, self.deps.max_body_bytes, buyer_id, "seller")


async def bought_lead(sessions: sessionmaker[Session], lead_id: str, buyer_id: str) -> Answer:
    """A lead this buyer bought: its status, price and fields (raw PII, the buyer's own now)."""
    bought = None
    if is_lead_id(lead_id):
        bought = await asyncio.to_thread(_bought_lead, sessions, lead_id, buyer_id)
    if bought is None:
        raise ApiError(404, LEAD_NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
    fields, price_cents, status = bought
    return Answer(lead_status.PUBLIC[status], 200, lead_id, extra={"price_cents": price_cents, "lead": fields})


def _bought_lead(sessions: sessionmaker[Session], lead_id: str, buyer_id: str) -> tuple[dict, int, str] | None:
    """The fields, price and status of a lead this buyer bought, or None."""
    with sessions() as session:
        row = session.execute(
            select(Lead.fields, Sale.price_cents, Lead.status).join(Sale, Sale.lead_id == Lead.id)
            .where(Lead.id == lead_id, Sale.buyer_id == buyer_id, Sale.sold.is_(True))).first()
    return (row[0] or {}, row[1], row[2]) if row else None
