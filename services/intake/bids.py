"""The bid API for wholesale buyers: `POST /v1/auctions/{auction_id}/bids` with `{"bid": cents}`,
besides bids in ping replies.

The auction worker's table is the judge of every bid; this endpoint refuses at once, with a
specific reason, what the worker would refuse anyway (an auction that was not offered to this
buyer, one that has closed, a bid under the seller's minimum), reading the offer record the worker
writes when it opens an auction. A bid it accepts is published as bid.placed, stamped with the
time it was received: the worker counts it if that time is before the close. The same bid sent
twice is one event (its id is derived from the auction, the buyer and the amount); a buyer that
bids twice keeps its higher bid.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from starlette.requests import Request

from leadx.auction.offers import offer_key
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.producer import EventProducer
from services.intake.formats import Answer, parse_body, request_format
from services.intake.requests import ApiError, cents_field, read_body

AUCTION_NOT_FOUND, AUCTION_CLOSED, BID_TOO_LOW = "AUCTION_NOT_FOUND", "AUCTION_CLOSED", "BID_TOO_LOW"


def bid_handler(redis: Redis, producer: EventProducer, namespace: str, max_body_bytes: int,
                authenticate: Callable[[Request], Awaitable[str]]) -> Callable[[Request], Awaitable[Answer]]:
    async def place_bid(request: Request) -> Answer:
        buyer_id = await authenticate(request)
        auction_id = request.path_params["auction_id"]
        kind = request_format(request.headers.get("content-type", ""))
        payload = parse_body(kind, await read_body(request, max_body_bytes), ("bid",))
        amount = cents_field(payload, "bid")
        if amount is None:
            raise ApiError(422, "FIELD_MISSING", "bid (cents) is required", field="bid")
        received_at = int(time.time() * 1000)
        offer = {k.decode(): v.decode() for k, v in (await redis.hgetall(offer_key(namespace, auction_id))).items()}
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
        await producer.publish(topics.BID_PLACED, auction_id, bid,
                               derived_event_id(auction_id, buyer_id, "api", str(amount)))
        return Answer("accepted", 202, extra={"auction_id": auction_id, "bid": amount, "closes_at_ms": closes_at})

    return place_bid
