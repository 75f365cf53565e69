"""The SQL behind the dashboard API: plain functions of a session that answer in the API's own
messages, so they are tested directly on SQLite and PostgreSQL and the gRPC servicer only checks
who may ask. Each answers in one or two indexed queries."""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict

from sqlalchemy import BigInteger, String, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.leads import status as lead_status
from leadx.ledger import billing
from leadx.ledger.reports import average
from leadx.platform.db.models import (
    AccountBalance,
    Auction,
    AuctionBid,
    BuyerDuplicateDay,
    Lead,
    LeadReturn,
    LedgerEntry,
    LedgerTransaction,
    MarketDay,
    PostAttempt,
    Sale,
)
from leadx.platform.utc_days import DAY_MS, DayRangeError, day_range_ms, utc_day

WINDOW_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
WINDOWS = {"day": pb.WINDOW_DAY, "week": pb.WINDOW_WEEK, "month": pb.WINDOW_MONTH, "year": pb.WINDOW_YEAR}
WINDOW_NAMES = {value: name for name, value in WINDOWS.items()}
LAST_LEADS = 10
DEFAULT_PAGE = 50
MAX_PAGE = 500
DEFAULT_MARKET_DAYS = 30


class BadRequest(ValueError):
    """A request the caller must change (an unreadable page token, a bad day)."""


# The summaries' statements are built once, with the time and the account as parameters: building
# a dozen conditional aggregates per call cost more than running them (bench/dashboard.py).
NOW = bindparam("now", type_=BigInteger)
ACCOUNT = bindparam("account", type_=String)


def _per_window(value, otherwise=0) -> list:
    """One conditional aggregate per trailing window (day, week, month, year): the sum of `value`
    over the sales closed at or after the window's start."""
    return [func.sum(case((Sale.closed_at_ms >= NOW - days * DAY_MS, value), else_=otherwise))
            for days in WINDOW_DAYS.values()]


_YEAR_OF_SALES = Sale.closed_at_ms >= NOW - WINDOW_DAYS["year"] * DAY_MS
_RETURNED = case((Sale.returned.is_(True), 1), else_=0)
_SOLD = case((Sale.sold.is_(True), 1), else_=0)

_BUYER_WINDOWS = (
    select(*_per_window(1), *_per_window(Sale.price_cents), *_per_window(_RETURNED))
    .where(Sale.buyer_id == ACCOUNT, Sale.sold.is_(True), _YEAR_OF_SALES))
_BUYER_DUPLICATES = select(BuyerDuplicateDay.day, BuyerDuplicateDay.duplicates).where(
    BuyerDuplicateDay.buyer_id == ACCOUNT, BuyerDuplicateDay.day >= bindparam("first_day", type_=String))
_BUYER_LAST_LEADS = (
    select(Sale.lead_id, Sale.price_cents, Sale.vertical, Sale.state, Sale.closed_at_ms, Sale.returned)
    .where(Sale.buyer_id == ACCOUNT, Sale.sold.is_(True))
    .order_by(Sale.closed_at_ms.desc(), Sale.lead_id.desc()).limit(LAST_LEADS))
_SELLER_WINDOWS = (
    select(*_per_window(_SOLD), *_per_window(1 - _SOLD),
           *_per_window(case((Sale.sold.is_(True), Sale.price_cents), else_=0)),
           *_per_window(case((Sale.sold.is_(True), Sale.seller_fee_cents), else_=0)), *_per_window(_RETURNED))
    .where(Sale.seller_id == ACCOUNT, _YEAR_OF_SALES))


def _by_window(row) -> list[list[int]]:
    """A row of measures x windows, as one list of per-window figures per measure."""
    n = len(WINDOW_DAYS)
    values = [int(v or 0) for v in row]
    return [values[i:i + n] for i in range(0, len(values), n)]


# ---------------------------------------------------------------- summaries


def buyer_summary(session: Session, buyer_id: str, now_ms: int) -> tuple[list[pb.BuyerWindow], list[pb.BoughtLead]]:
    params = {"account": buyer_id, "now": now_ms}
    bought, spent, returned = _by_window(session.execute(_BUYER_WINDOWS, params).one())
    duplicates = session.execute(_BUYER_DUPLICATES, params | {
        "first_day": utc_day(now_ms - WINDOW_DAYS["year"] * DAY_MS)}).all()
    windows = []
    for i, (name, days) in enumerate(WINDOW_DAYS.items()):
        # Duplicates are counted per UTC day: a window takes the days its start falls in or after.
        first_day = utc_day(now_ms - days * DAY_MS)
        kept = sum(count for day, count in duplicates if day >= first_day)
        windows.append(pb.BuyerWindow(window=WINDOWS[name], leads_bought=bought[i],
                                      average_cost_cents=average(spent[i], bought[i]), spent_cents=spent[i],
                                      returned=returned[i], duplicates_rejected=kept))
    last = session.execute(_BUYER_LAST_LEADS, params)
    return windows, [pb.BoughtLead(lead_id=r[0], price_cents=r[1], vertical=r[2], state=r[3], bought_at_ms=r[4],
                                   returned=bool(r[5])) for r in last]



def seller_summary(session: Session, seller_id: str, now_ms: int) -> list[pb.SellerWindow]:
    sold, unsold, total, fees, returned = _by_window(
        session.execute(_SELLER_WINDOWS, {"account": seller_id, "now": now_ms}).one())
    return [pb.SellerWindow(window=WINDOWS[name], sold=sold[i], average_price_cents=average(total[i], sold[i]),
                            unsold=unsold[i], returned=returned[i], fees_cents=fees[i])
            for i, name in enumerate(WINDOW_DAYS)]


# ---------------------------------------------------------------- pages

def _page_token(at_ms: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at_ms}:{key}".encode()).decode()


def _read_token(token: str) -> tuple[int, str] | None:
    if not token:
        return None
    try:
        at_ms, key = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        return int(at_ms), key
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("page_token is not one this service gave out") from None


def _after(token: tuple[int, str] | None, at_column, key_column):
    """Rows after the page token in (time, key) descending order: keyset paging, stable under inserts."""
    if token is None:
        return True
    at_ms, key = token
    return or_(at_column < at_ms, and_(at_column == at_ms, key_column < key))


def _balance_before(account: str, after: tuple[int, str] | None):
    """The account's balance just after the newest transaction a page can hold (the one past its
    token): today's balance less every entry at or above the token. An expression, so that the page
    and its balance are read in one statement, from one snapshot. Entries newer than the first page's
    newest transaction cannot exist: its query has no upper bound."""
    balance = select(AccountBalance.balance_cents).where(AccountBalance.account == account).scalar_subquery()
    if after is None:
        return func.coalesce(balance, 0)
    at_ms, key = after
    newer = (select(func.sum(LedgerEntry.amount_cents))
             .where(LedgerEntry.account == account,
                    or_(LedgerEntry.at_ms > at_ms, and_(LedgerEntry.at_ms == at_ms, LedgerEntry.transaction_id >= key)))
             .scalar_subquery())
    return func.coalesce(balance, 0) - func.coalesce(newer, 0)


def transactions(session: Session, account: str | None, window: str, size: int, token: str,
                 now_ms: int) -> tuple[list[pb.Transaction], str]:
    """An account's transactions (`buyer:<id>`, `seller:<id>`; None: all) in a trailing window,
    newest first, a page at a time, each with what it did to the account's balance and the balance
    after it."""
    since = now_ms - WINDOW_DAYS[window] * DAY_MS
    after = _read_token(token)
    if account is None:
        query = (select(LedgerTransaction, literal(0), literal(0))
                 .where(LedgerTransaction.at_ms >= since,
                        _after(after, LedgerTransaction.at_ms, LedgerTransaction.id)))
    else:
        # The balance is an ordinary index range (the account's entries at or above the token),
        # never a sum over the account's whole history.
        query = (select(LedgerTransaction, LedgerEntry.amount_cents, _balance_before(account, after))
                 .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                 .where(LedgerEntry.account == account, LedgerEntry.at_ms >= since,
                        _after(after, LedgerTransaction.at_ms, LedgerTransaction.id)))
    rows = session.execute(query.order_by(LedgerTransaction.at_ms.desc(), LedgerTransaction.id.desc())
                           .limit(size + 1)).all()
    out = []
    balance = int(rows[0][2] or 0) if rows else 0
    for t, moved, _ in rows[:size]:
        out.append(pb.Transaction(id=t.id, kind=t.kind, lead_id=t.lead_id, buyer_id=t.buyer_id,
                                  seller_id=t.seller_id, amount_cents=t.amount_cents, fee_cents=t.fee_cents,
                                  at_ms=t.at_ms, account_amount_cents=int(moved or 0),
                                  account_balance_after_cents=balance if account else 0))
        balance -= int(moved or 0)  # the next (older) transaction's balance is before this one
    return out, (_page_token(out[-1].at_ms, out[-1].id) if len(rows) > size else "")


def account_of(kind: str, account_id: str) -> str:
    return billing.buyer_account(account_id) if kind == "buyer" else billing.seller_account(account_id)


INTERNAL_STATUSES: dict[str, list[str]] = defaultdict(list)
for _internal, _public in lead_status.PUBLIC.items():
    INTERNAL_STATUSES[_public].append(_internal)


def search_leads(session: Session, *, seller_id: str | None, buyer_id: str | None, lead_id: str, day: str,
                 state: str, status: str, size: int, token: str, to_day: str = "") -> tuple[list[pb.LeadRow], str]:
    """Leads matching every given filter that the given seller sent or buyer bought (neither given:
    any lead), newest first. `day` alone is one day; with `to_day`, the days from one to the other."""
    if buyer_id is not None:
        # A buyer's purchases, newest first, straight off ix_sales_buyer_submitted: a page of its
        # sales and their leads, not all of them joined and sorted (bench/portal.py).
        submitted, key = Sale.submitted_at_ms, Sale.lead_id
        query = (select(Lead.id, Lead.seller_id, Sale.buyer_id, Lead.vertical, Lead.state, Lead.status,
                        submitted.label("submitted_at_ms"), Sale.price_cents, Sale.sold)
                 .select_from(Sale).join(Lead, Lead.id == Sale.lead_id)
                 .where(Sale.buyer_id == buyer_id, Sale.sold.is_(True)))
    else:
        submitted, key = Lead.submitted_at_ms, Lead.id
        query = select(Lead.id, Lead.seller_id, Sale.buyer_id, Lead.vertical, Lead.state, Lead.status,
                       Lead.submitted_at_ms, Sale.price_cents, Sale.sold).outerjoin(Sale, Sale.lead_id == Lead.id)
    if seller_id is not None:
        query = query.where(Lead.seller_id == seller_id)
    if lead_id:
        query = query.where(key == lead_id)
    if day or to_day:
        try:
            start_ms, end_ms = day_range_ms(day, to_day)
        except DayRangeError as error:
            raise BadRequest(str(error)) from None
        query = query.where(submitted >= start_ms, submitted < end_ms)
    if state:
        query = query.where(Lead.state == state.upper())
    if status:
        if status not in INTERNAL_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(sorted(INTERNAL_STATUSES))}")
        query = query.where(Lead.status.in_(INTERNAL_STATUSES[status]))
    rows = session.execute(query.where(_after(_read_token(token), submitted, key))
                           .order_by(submitted.desc(), key.desc()).limit(size + 1)).all()
    out = [pb.LeadRow(lead_id=r.id, seller_id=r.seller_id, buyer_id=(r.buyer_id or "") if r.sold else "",
                      vertical=r.vertical, state=r.state or "", status=lead_status.PUBLIC.get(r.status, r.status or ""),
                      submitted_at_ms=r.submitted_at_ms, price_cents=r.price_cents if r.sold else 0)
           for r in rows[:size]]
    return out, (_page_token(out[-1].submitted_at_ms, out[-1].lead_id) if len(rows) > size else "")


# ---------------------------------------------------------------- market data

def market_prices(session: Session, period: str, from_day: str, to_day: str, *, vertical: str = "",
                  state: str = "", county: str = "", by_county: bool = False) -> list[pb.MarketPrice]:
    """Sales and average price per period and vertical and state (and county), from the per-day
    totals the ledger keeps with each sale, over the days from `from_day` (default: 30 days before
    `to_day`) to `to_day`, both included. A period the range cuts counts only its days in the range."""
    try:
        to_date = dt.date.fromisoformat(to_day)
        from_date = dt.date.fromisoformat(from_day) if from_day else to_date - dt.timedelta(days=DEFAULT_MARKET_DAYS)
    except ValueError:
        raise BadRequest("from_day and to_day are YYYY-MM-DD") from None
    from_day, to_day = from_date.isoformat(), to_date.isoformat()
    period_column = {"day": MarketDay.day, "week": MarketDay.week, "month": MarketDay.month}[period]
    group = [period_column, MarketDay.vertical, MarketDay.state] + ([MarketDay.county] if by_county else [])
    query = (select(*group, func.sum(MarketDay.sales), func.sum(MarketDay.total_cents))
             .where(MarketDay.day >= from_day, MarketDay.day <= to_day).group_by(*group).order_by(*group))
    for column, value in ((MarketDay.vertical, vertical), (MarketDay.state, state.upper()),
                          (MarketDay.county, county)):
        if value:
            query = query.where(column == value)
    prices = []
    for row in session.execute(query):
        sales, total = int(row[-2]), int(row[-1])
        prices.append(pb.MarketPrice(period_start=row[0], vertical=row[1], state=row[2],
                                     county=row[3] if by_county else "", sales=sales,
                                     average_price_cents=average(total, sales), total_cents=total))
    return prices


# ---------------------------------------------------------------- a seller's notifications

def return_notices(session: Session, seller_id: str, since_ms: int, limit: int) -> tuple[list[pb.ReturnNotice], int]:
    """The latest returns of the seller's leads, newest first, and how many came after `since_ms`."""
    rows = session.scalars(select(LeadReturn).where(LeadReturn.seller_id == seller_id)
                           .order_by(LeadReturn.returned_at_ms.desc(), LeadReturn.lead_id.desc()).limit(limit))
    unread = session.scalar(select(func.count()).select_from(LeadReturn).where(
        LeadReturn.seller_id == seller_id, LeadReturn.returned_at_ms > since_ms))
    return [pb.ReturnNotice(lead_id=r.lead_id, reason=r.reason, price_cents=r.price_cents,
                            returned_at_ms=r.returned_at_ms) for r in rows], int(unread or 0)


# ---------------------------------------------------------------- one lead

def lead_detail(session: Session, lead_id: str, *, buyer_id: str | None = None,
                seller_id: str | None = None) -> pb.LeadDetail | None:
    """Everything about a lead for one of its parties: the buyer that bought it (`buyer_id`), the
    seller that sent it (`seller_id`) or, neither given, the admin. None when the reader is not a
    party, exactly as when the lead does not exist. The consumer's fields go only to a buyer that
    bought it; a buyer reads other buyers' purchases and posts of the lead without their names."""
    lead = session.get(Lead, lead_id)
    if lead is None or (seller_id is not None and lead.seller_id != seller_id):
        return None
    sales = session.scalars(select(Sale).where(Sale.lead_id == lead_id).order_by(
        Sale.sold.desc(), Sale.price_cents.desc(), Sale.closed_at_ms, Sale.buyer_id)).all()
    if buyer_id is not None and not any(s.sold and s.buyer_id == buyer_id for s in sales):
        return None
    is_buyer = buyer_id is not None
    returns = session.scalars(select(LeadReturn).where(LeadReturn.lead_id == lead_id)).all()
    if is_buyer:
        returns = [r for r in returns if r.buyer_id == buyer_id]
    auctions = session.scalars(select(Auction).where(Auction.lead_id == lead_id)
                               .order_by(Auction.opened_at_ms)).all()
    posts = session.scalars(select(PostAttempt).where(PostAttempt.lead_id == lead_id)
                            .order_by(PostAttempt.sent_at_ms, PostAttempt.id)).all()
    bids = defaultdict(list)
    for bid in session.scalars(select(AuctionBid).where(AuctionBid.auction_id.in_([a.id for a in auctions]))
                               .order_by(AuctionBid.auction_id, AuctionBid.rank)):
        bids[bid.auction_id].append(bid)

    def named(party: str) -> str:
        return party if not is_buyer or party == buyer_id else ""

    def lead_auction(a: Auction) -> pb.LeadAuction:
        return pb.LeadAuction(
            auction_id=a.id, offered_buyers=a.offered_buyers, opened_at_ms=a.opened_at_ms,
            closes_at_ms=a.closes_at_ms, closed_at_ms=a.closed_at_ms or 0, bids_received=a.bids_received or 0,
            bids=[pb.LeadBid(rank=b.rank, buyer_id=named(b.buyer_id), bid_cents=b.bid_cents,
                             amount_cents=b.amount_cents, yours=b.buyer_id == buyer_id) for b in bids[a.id]])

    history = [pb.LeadStatusChange(status="submitted", at_ms=lead.submitted_at_ms)]
    history += [pb.LeadStatusChange(status="in_auction", at_ms=a.opened_at_ms) for a in auctions]
    if lead.rejected_at_ms is not None and lead.status in (lead_status.REJECTED, lead_status.DUPLICATE):
        history.append(pb.LeadStatusChange(status=lead_status.PUBLIC[lead.status], at_ms=lead.rejected_at_ms))
    history += [pb.LeadStatusChange(status="sold" if s.sold else "unsold", at_ms=s.closed_at_ms)
                for s in sales if s.sold or not is_buyer]
    history += [pb.LeadStatusChange(status="returned", at_ms=r.returned_at_ms, detail=r.reason) for r in returns]
    history.sort(key=lambda change: change.at_ms)
    sold = [s for s in sales if s.sold]
    detail = pb.LeadDetail(
        lead_id=lead.id, seller_id=lead.seller_id, vertical=lead.vertical, state=lead.state or "",
        status=lead_status.PUBLIC.get(lead.status, lead.status or ""), submitted_at_ms=lead.submitted_at_ms,
        history=history,
        auctions=[lead_auction(a) for a in auctions],
        sales=[pb.LeadSale(rank=rank, buyer_id=named(s.buyer_id or ""), price_cents=s.price_cents,
                           fee_cents=0 if is_buyer else s.seller_fee_cents, sold=True, closed_at_ms=s.closed_at_ms,
                           returned=s.returned, yours=s.buyer_id == buyer_id)
               for rank, s in enumerate(sold, start=1)],
        posts=[pb.LeadPost(buyer_id=named(p.buyer_id), sent_at_ms=p.sent_at_ms, http_status=p.status or 0,
                           outcome=p.outcome, latency_ms=p.latency_ms, yours=p.buyer_id == buyer_id) for p in posts])
    if is_buyer:
        detail.fields.extend(pb.LeadField(name=str(name), value=str(value))
                             for name, value in sorted((lead.fields or {}).items()))
        detail.returnable = not returns
    return detail
