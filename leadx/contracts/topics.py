"""Topic names. The five names of the design card are fixed; the rest are what the flow needs.

`LEADX_TOPIC_PREFIX` namespaces every topic and consumer group, so tests (and several
environments sharing one cluster) never see each other's events.
"""

from __future__ import annotations

from google.protobuf.message import Message

from leadx.contracts.events.v1 import events_pb2 as ev

LEAD_SUBMITTED = "lead.submitted"
LEAD_VERIFIED = "lead.verified"
LEAD_REJECTED = "lead.rejected"
LEAD_SCORED = "lead.scored"
AUCTION_OPENED = "auction.opened"
BID_PLACED = "bid.placed"
AUCTION_CLOSED = "auction.closed"
SALE_CLOSED = "sale.closed"
LEAD_RETURNED = "lead.returned"
LEAD_OUTCOME = "lead.outcome"
LIST_AWARDED = "list.awarded"
# Events no retry can handle (undecodable bytes), set aside as they were read, with headers naming
# where they came from and which consumer group gave up on them (DEAD_LETTER_HEADERS; each group
# that reads the event sets it aside once), so that their partition moves on and an operator can
# look at them. Not a protobuf topic: its values are whatever bytes the event had.
DEAD_LETTER = "dead.letter"
DEAD_LETTER_HEADERS = ("leadx-dead-topic", "leadx-dead-partition", "leadx-dead-offset", "leadx-dead-group",
                       "leadx-dead-reason")

ALL = (
    LEAD_SUBMITTED,
    LEAD_VERIFIED,
    LEAD_REJECTED,
    LEAD_SCORED,
    AUCTION_OPENED,
    BID_PLACED,
    AUCTION_CLOSED,
    SALE_CLOSED,
    LEAD_RETURNED,
    LEAD_OUTCOME,
    LIST_AWARDED,
    DEAD_LETTER,
)


# The protobuf message each topic carries.
MESSAGE_TYPES: dict[str, type[Message]] = {
    LEAD_SUBMITTED: ev.LeadSubmitted,
    LEAD_VERIFIED: ev.LeadVerified,
    LEAD_REJECTED: ev.LeadRejected,
    LEAD_SCORED: ev.LeadScored,
    AUCTION_OPENED: ev.AuctionOpened,
    BID_PLACED: ev.BidPlaced,
    AUCTION_CLOSED: ev.AuctionClosed,
    SALE_CLOSED: ev.SaleClosed,
    LEAD_RETURNED: ev.LeadReturned,
    LEAD_OUTCOME: ev.LeadOutcome,
    LIST_AWARDED: ev.ListAwarded,
}


def name(prefix: str, base: str) -> str:
    return f"{prefix}{base}"


def group(prefix: str, base: str) -> str:
    return f"{prefix}leadx-{base}"
