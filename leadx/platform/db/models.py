"""Tables. Money is integer cents; times are UTC Unix milliseconds (portable across SQLite and
PostgreSQL, and the same unit as the events)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Seller(Base):
    __tablename__ = "sellers"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # The platform's fee on this seller's sales, in percent; None: SELLER_FEE_PERCENT.
    fee_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Buyer Selection: "all" sells to every partnered buyer but those it blocked; "named" only to
    # those it allowed (seller_buyer_choices).
    sells_to: Mapped[str] = mapped_column(String(8), default="all")


class Buyer(Base):
    __tablename__ = "buyers"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ping_url: Mapped[str] = mapped_column(String(2000))
    post_url: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # "wholesale": pinged, bids itself; "autobid": the platform bids from
    # its profiles and accepts the lead on its behalf.
    kind: Mapped[str] = mapped_column(String(16), default="wholesale")
    weight: Mapped[float] = mapped_column(Float, default=1.0)  # weighted bid = bid x weight
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")  # for profile windows and caps
    caps: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # leadx.auction.caps.limits.Caps


class Person(Base):
    """Someone who logs in to the web portal (leadx.accounts.people): a buyer's or a seller's person
    with a role, or an operator (no account). The email is the login and is stored lower-cased;
    `session_epoch` rises at a logout or a password reset, ending the sessions made before."""

    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # buyer | seller | operator
    account_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | member | read-only | operator
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # A seller's person has seen the returns of its account's leads up to here (the portal's notifications).
    returns_seen_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Partnership(Base):
    """A buyer's opt-in to a seller's leads: without one, the buyer is never offered them."""

    __tablename__ = "partnerships"
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class SellerBuyerChoice(Base):
    """A seller's explicit word on one buyer: "allow" (counts when it sells only to named buyers)
    or "block" (never sells to it)."""

    __tablename__ = "seller_buyer_choices"
    seller_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    choice: Mapped[str] = mapped_column(String(8))


class BuyerProfile(Base):
    """An AutoBid profile: when it is active, what it buys and at what price, and its own caps.
    `spec` is the document leadx.auction.selection.profiles parses (windows, criteria, price)."""

    __tablename__ = "buyer_profiles"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class Contract(Base):
    """A direct-sale contract (docs/auction.md): the seller may name this buyer on a
    POST, and the lead goes to it at this price with no auction."""

    __tablename__ = "contracts"
    seller_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class Lead(Base):
    """The lead store. `fields` holds raw PII, readable only by the seller and the buyer."""

    __tablename__ = "leads"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(16), index=True)
    vertical: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(2), default="")  # from the fields, for lead search
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int] = mapped_column(Integer)
    fields: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    min_price_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    direct_buyer_id: Mapped[str] = mapped_column(String(16), default="")  # a direct sale's contracted buyer
    seller_reference: Mapped[str] = mapped_column(String(100), default="")
    submitted_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    rejection_detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # internal only
    rejected_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    cluster: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # How often the ledger re-published this lead because it stalled on its way to an outcome.
    redrives: Mapped[int] = mapped_column(Integer, default=0)
    timing_factor: Mapped[float | None] = mapped_column(Float, nullable=True)  # as scored; criteria read it

    __table_args__ = (Index("ix_leads_open_by_age", "status_rank", "updated_at_ms"),
                      Index("ix_leads_seller_submitted", "seller_id", "submitted_at_ms"),
                      Index("ix_leads_submitted", "submitted_at_ms"))  # the exchange's leads today


class Auction(Base):
    __tablename__ = "auctions"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(10), index=True)
    offered_buyers: Mapped[int] = mapped_column(Integer)
    opened_at_ms: Mapped[int] = mapped_column(BigInteger)
    closes_at_ms: Mapped[int] = mapped_column(BigInteger)
    # From auction.closed (None until it is recorded): when it closed, and every bid it received,
    # those under the seller's minimum too (its ranked bids are in auction_bids).
    closed_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bids_received: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuctionOffer(Base):
    """A buyer a lead was offered to when its auction opened (auction.opened): a buyer's latest
    offers are what the portal replays a buy profile against before it is saved (its preview)."""

    __tablename__ = "auction_offers"
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    offered_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_auction_offers_buyer_offered", "buyer_id", "offered_at_ms"),)


class AuctionBid(Base):
    """A bid at or above the seller's minimum in a closed auction, as the auction ranked it: the
    lead page shows its parties the auction's bids."""

    __tablename__ = "auction_bids"
    auction_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1: won
    buyer_id: Mapped[str] = mapped_column(String(16))
    bid_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # what it pays if it takes the lead
    weight: Mapped[float] = mapped_column(Float)
    profile_id: Mapped[str] = mapped_column(String(16), default="")  # the AutoBid profile that bid ("": none)


class Sale(Base):
    """One row per lead outcome: a sale to one buyer, or the lead unsold (buyer_id ""). A lead of a
    shared-sale vertical has a row per buyer that bought it. The primary key makes recording
    idempotent."""

    __tablename__ = "sales"
    lead_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True, default="", index=True)
    auction_id: Mapped[str] = mapped_column(String(16))
    sold: Mapped[bool] = mapped_column(Boolean)
    seller_id: Mapped[str] = mapped_column(String(16), index=True)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    seller_fee_cents: Mapped[int] = mapped_column(BigInteger)
    vertical: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(2))
    county: Mapped[str] = mapped_column(String(64), default="")  # of the lead's ZIP: the metro area
    attempts: Mapped[int] = mapped_column(Integer)
    closed_at_ms: Mapped[int] = mapped_column(BigInteger)
    returned: Mapped[bool] = mapped_column(Boolean, default=False)  # set when lead.returned is booked
    # The lead's submission time (as in its lead row): a buyer's lead search, newest first, walks
    # ix_sales_buyer_submitted a page at a time instead of joining every purchase to its lead.
    submitted_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    # The dashboards sum one party's sales over trailing windows: on PostgreSQL these indexes hold
    # every column the sums read, so the summaries are index-only scans (bench/dashboard.py).
    __table_args__ = (
        Index("ix_sales_buyer_submitted", "buyer_id", "submitted_at_ms", "lead_id"),
        Index("ix_sales_closed_at", "closed_at_ms"),
        Index("ix_sales_buyer_closed", "buyer_id", "closed_at_ms",
              postgresql_include=["sold", "price_cents", "returned"]),
        Index("ix_sales_seller_closed", "seller_id", "closed_at_ms",
              postgresql_include=["sold", "price_cents", "seller_fee_cents", "returned"]),
    )


class MarketDay(Base):
    """Sales per UTC day, vertical, state and county, kept with each sale: market prices per day,
    week or month read a few hundred rows instead of every sale."""

    __tablename__ = "market_days"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    vertical: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(2), primary_key=True)
    county: Mapped[str] = mapped_column(String(64), primary_key=True)
    week: Mapped[str] = mapped_column(String(10))  # the day's ISO week's Monday
    month: Mapped[str] = mapped_column(String(10))  # the first of the day's month
    sales: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_market_days_week", "week"), Index("ix_market_days_month", "month"))


class ProcessedEvent(Base):
    """Event ids a consumer has already applied: a redelivered event changes nothing."""

    __tablename__ = "processed_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at_ms: Mapped[int] = mapped_column(BigInteger)


class BuyerPosting(Base):
    """A buyer was posted the full lead (accepted or not): it has seen this consumer. The record
    `leadx dedup rebuild` restores per-buyer duplicate protection from."""

    __tablename__ = "buyer_postings"
    lead_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    posted_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class BuyerDuplicateDay(Base):
    """How many leads were kept from a buyer on one day because it already had the consumer."""

    __tablename__ = "buyer_duplicate_days"
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    duplicates: Mapped[int] = mapped_column(BigInteger)


class PostAttempt(Base):
    """Every POST of a lead to a buyer, for disputes: what was sent, what came back, how long it
    took, and what delivery made of it. The bodies hold the lead's PII, like the lead store, and are
    kept only for POST_ATTEMPT_RETENTION_DAYS: then `leadx delivery prune-attempts` empties them and
    sets `bodies_dropped_at_ms` (leadx.delivery.attempts_retention); the row, with who, when, the
    status, the latency and the outcome, stays."""

    __tablename__ = "post_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    auction_id: Mapped[str] = mapped_column(String(16), index=True)
    lead_id: Mapped[str] = mapped_column(String(10), index=True)
    buyer_id: Mapped[str] = mapped_column(String(16), index=True)
    sent_at_ms: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    request_body: Mapped[str] = mapped_column(Text)  # empty once dropped
    connects: Mapped[int] = mapped_column(Integer)  # connection attempts (retried only if never connected)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # HTTP status, if answered
    response_body: Mapped[str] = mapped_column(Text)  # the first 8 KB; empty once dropped
    latency_ms: Mapped[int] = mapped_column(Integer)
    # accepted | rejected | failed, or sending: written before the POST went out and never finished
    # (delivery stopped while it waited: the buyer may have received it).
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    bodies_dropped_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: bodies kept
    # 1 for the first POST of this auction's lead to this buyer, 2 for a repeat after a restart...
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (
        # The rows whose bodies are still kept, by age: what the prune reads. Partial, so it holds
        # only the retention period's rows while the table keeps every attempt ever made.
        Index("ix_post_attempts_bodies_kept", "sent_at_ms",
              postgresql_where=text("bodies_dropped_at_ms IS NULL"),
              sqlite_where=text("bodies_dropped_at_ms IS NULL")),
    )



class LeadReturn(Base):
    """A sold lead its buyer sent back. Written by intake when it accepts the return (the primary
    key makes a second return of one buyer's lead impossible); the ledger books it from lead.returned."""

    __tablename__ = "lead_returns"
    lead_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)
    seller_id: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    seller_fee_cents: Mapped[int] = mapped_column(BigInteger)
    sold_at_ms: Mapped[int] = mapped_column(BigInteger)
    returned_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class LeadOutcome(Base):
    """What a buyer reported became of a lead it bought (leadx.ledger.outcomes): one row per lead, buyer
    and outcome, so a repeated report adds nothing. Written by intake, published as lead.outcome,
    read back by the response model's trainer. `note` is the buyer's free text and may name the
    consumer: it never leaves SQL."""

    __tablename__ = "lead_outcomes"
    lead_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(16))
    at_ms: Mapped[int] = mapped_column(BigInteger)  # when it happened, per the buyer
    reported_at_ms: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")


class LedgerTransaction(Base):
    """A sale or a return, as booked (leadx.ledger.billing). Its id (`sale:<lead>`, `return:<lead>`) makes
    booking idempotent."""

    __tablename__ = "ledger_transactions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # sale | return
    lead_id: Mapped[str] = mapped_column(String(10), index=True)
    buyer_id: Mapped[str] = mapped_column(String(16), index=True)
    seller_id: Mapped[str] = mapped_column(String(16), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # the lead's price
    fee_cents: Mapped[int] = mapped_column(BigInteger)  # the platform's fee on it
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class LedgerEntry(Base):
    """One leg of a transaction; a transaction's entries sum to zero."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(32), index=True)
    account: Mapped[str] = mapped_column(String(40))  # buyer:<id>, seller:<id>, platform:fees
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_ledger_entries_account_at", "account", "at_ms"),)


class AccountBalance(Base):
    """Each account's balance: the sum of its entries, kept in the same transaction as they are."""

    __tablename__ = "account_balances"
    account: Mapped[str] = mapped_column(String(40), primary_key=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger)


class Rating(Base):
    """One party's stars for another it has traded with: buyers rate sellers, sellers may rate
    buyers. A party's new rating of the same account replaces its old one."""

    __tablename__ = "ratings"
    rater_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    ratee_id: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)
    stars: Mapped[int] = mapped_column(Integer)  # 1 to 5
    rated_at_ms: Mapped[int] = mapped_column(BigInteger)


class Prospect(Base):
    """The prospect pool (docs/scoring.md#the-prospect-pool): consumers that can be sold again as part
    of a customer list.
    Unsold and aged leads (their id is the lead's) and imported customer lists (a new id), stored
    with their scores. `fields` holds raw PII like the lead store; the identity keys (HMAC, as dedup
    keys them) find one consumer again, in the pool and in buyers' duplicate records."""

    __tablename__ = "prospects"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    vertical: Mapped[str] = mapped_column(String(64))
    seller_id: Mapped[str] = mapped_column(String(16), index=True)  # whose consumer: paid when sold
    source: Mapped[str] = mapped_column(String(16))  # "unsold", "aged" or "import"
    source_name: Mapped[str] = mapped_column(String(200), default="")  # the imported file's name
    fields: Mapped[dict] = mapped_column(JSON)
    ssn_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    home_phone_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(2), default="")
    probability: Mapped[float] = mapped_column(Float)  # of responding to a direct offer (list sales)
    propensity: Mapped[float] = mapped_column(Float)   # of responding to a dealer's call
    cluster: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(64))
    consumer_since_ms: Mapped[int] = mapped_column(BigInteger)  # when the lead came in, or the import
    added_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_prospects_vertical_probability", "vertical", "probability"),
                      Index("ix_prospects_ssn", "vertical", "ssn_key"),
                      Index("ix_prospects_email", "vertical", "email_key"),
                      Index("ix_prospects_phone", "vertical", "home_phone_key"))


class ListAuction(Base):
    """A timed auction of a customer list: the prospects matching `profile` when it opened
    (list_members), grouped by cluster and probability band."""

    __tablename__ = "list_auctions"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    vertical: Mapped[str] = mapped_column(String(64))
    profile: Mapped[dict] = mapped_column(JSON)  # the criteria that chose its customers
    band_width: Mapped[float] = mapped_column(Float)
    reserve_cents: Mapped[int] = mapped_column(BigInteger)  # per customer
    status: Mapped[str] = mapped_column(String(8))  # "open", then "closed"
    opened_at_ms: Mapped[int] = mapped_column(BigInteger)
    closes_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    closed_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tie_break_seed: Mapped[int] = mapped_column(BigInteger)


class ListMember(Base):
    __tablename__ = "list_members"
    auction_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    prospect_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    cluster: Mapped[str] = mapped_column(String(32))


class ListBid(Base):
    """A dealer's bid in a list auction: a price per customer for one customer, a cluster group or a
    probability band (a range, or one probability), with an optional count or budget limit."""

    __tablename__ = "list_bids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    auction_id: Mapped[str] = mapped_column(String(10), index=True)
    buyer_id: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))  # "customer", "cluster" or "band"
    target: Mapped[str] = mapped_column(String(64))  # a prospect id, a cluster id, or "0.20-0.30"
    price_cents: Mapped[int] = mapped_column(BigInteger)
    max_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_budget_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    placed_at_ms: Mapped[int] = mapped_column(BigInteger)


class ListAward(Base):
    """A customer of a list auction sold to a dealer. Unique per prospect and buyer across all list
    auctions: a customer is never sold twice to one buyer. `published` is the outbox flag of its
    sale.closed event."""

    __tablename__ = "list_awards"
    auction_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    prospect_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(16), index=True)
    bid_id: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    awarded_at_ms: Mapped[int] = mapped_column(BigInteger)
    published: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("prospect_id", "buyer_id", name="uq_list_awards_prospect_buyer"),)
