"""gRPC dashboard queries over the ledger's SQL (leadx.dashboard.v1.DashboardService).

Each call: who is calling (services.ledger.dashboard_auth), whether it may read what it asks for,
then the query (services.ledger.dashboard_queries) in a worker thread, given no longer than the
client's deadline allows."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from contextlib import nullcontext

import grpc
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.ledger import reports
from leadx.platform.db.engine import one_snapshot
from leadx.platform.db.models import Auction, Buyer, BuyerDuplicateDay, Lead, Sale, Seller
from leadx.platform.utc_days import DAY_MS
from services.ledger import dashboard_queries as queries
from services.ledger import partner_queries
from services.ledger.dashboard_auth import Caller, DashboardAuth

MAX_SALES = 500
MAX_DUPLICATE_DAYS = 366
MAX_NOTICES = 100
QUERY_TIMEOUT_S = 30  # for a call without a deadline
PERIODS = {pb.PERIOD_DAY: "day", pb.PERIOD_WEEK: "week", pb.PERIOD_MONTH: "month"}


class DashboardService(dashboard_pb2_grpc.DashboardServiceServicer):
    def __init__(self, sessions: sessionmaker[Session], auth: DashboardAuth | None = None, clock=time.time) -> None:
        self.sessions = sessions
        self.auth = auth or DashboardAuth(sessions)
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _query(self, context, function, *args, snapshot: bool = False, **kwargs):
        """Run `function(session, ...)` in a thread within the call's deadline; a bad request in it
        becomes INVALID_ARGUMENT. `snapshot`: its statements all read one snapshot (one_snapshot)."""
        remaining = context.time_remaining()
        timeout = QUERY_TIMEOUT_S if remaining is None else min(remaining, QUERY_TIMEOUT_S)

        def run():
            with self.sessions() as session, one_snapshot(session) if snapshot else nullcontext():
                return function(session, *args, **kwargs)
        try:
            return await asyncio.wait_for(asyncio.to_thread(run), timeout)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the query did not finish within the deadline")
        except queries.BadRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except _NoAccount as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no account {exc}")

    # ------------------------------------------------------------ summaries

    async def GetBuyerSummary(self, request, context):  # noqa: N802 (gRPC method name)
        await self._caller_for(context, "buyer", request.buyer_id)
        windows, last = await self._query(context, queries.buyer_summary, request.buyer_id, self._now_ms())
        return pb.BuyerSummary(buyer_id=request.buyer_id, windows=windows, last_leads=last)

    async def GetSellerSummary(self, request, context):  # noqa: N802
        await self._caller_for(context, "seller", request.seller_id)
        windows = await self._query(context, queries.seller_summary, request.seller_id, self._now_ms())
        return pb.SellerSummary(seller_id=request.seller_id, windows=windows)

    async def _caller_for(self, context, kind: str, account_id: str) -> Caller:
        if not account_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{kind}_id is required")
        caller = await self.auth.caller(context)
        await self.auth.require(context, caller, kind, account_id)
        return caller

    # ------------------------------------------------------------ transactions and leads

    async def ListTransactions(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if request.window not in (pb.WINDOW_DAY, pb.WINDOW_WEEK, pb.WINDOW_MONTH):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "window must be WINDOW_DAY, WINDOW_WEEK or WINDOW_MONTH")
        account_id = request.account_id or ("" if caller.is_admin else caller.id)
        account = None
        if account_id:
            kind = caller.kind if not caller.is_admin else await self._query(context, _kind_of, account_id)
            if kind is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no account {account_id}")
            await self.auth.require(context, caller, kind, account_id)
            account = queries.account_of(kind, account_id)
        size = await self._page_size(context, request.page_size)
        rows, token = await self._query(context, queries.transactions, account,
                                        queries.WINDOW_NAMES[request.window], size, request.page_token, self._now_ms())
        return pb.ListTransactionsResponse(transactions=rows, next_page_token=token)

    async def _query_as(self, context, caller: Caller, account_id: str, function, *args, snapshot: bool = False,
                        **kwargs):
        """`function(session, ..., buyer_id=, seller_id=)` for the account a call reads: the
        caller's own; or, for the admin key naming an account, that account (the web portal reads
        for the person logged in), its kind looked up in the same worker thread and session as the
        query (a second hop cost the portal's search a fifth of its throughput); any other key may
        name only itself. Neither id given: the admin reads every account."""
        if account_id and not caller.is_admin:
            await self.auth.require(context, caller, caller.kind, account_id)

        def run(session: Session):
            kind, reader = caller.kind, caller.id
            if account_id and caller.is_admin:
                found = _kind_of(session, account_id)
                if found is None:
                    raise _NoAccount(account_id)
                kind, reader = found, account_id
            return function(session, *args, buyer_id=reader if kind == "buyer" else None,
                            seller_id=reader if kind == "seller" else None, **kwargs)
        return await self._query(context, run, snapshot=snapshot)

    async def SearchLeads(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        size = await self._page_size(context, request.page_size)
        rows, token = await self._query_as(
            context, caller, request.account_id, queries.search_leads, lead_id=request.lead_id, day=request.day,
            to_day=request.to_day, state=request.state, status=request.status, size=size, token=request.page_token)
        return pb.SearchLeadsResponse(leads=rows, next_page_token=token)

    async def GetLead(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if not request.lead_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lead_id is required")
        # One snapshot: the lead's status, its auctions, sales, posts and returns agree.
        detail = await self._query_as(context, caller, request.account_id, queries.lead_detail, request.lead_id,
                                      snapshot=True)
        # A lead the reader is not a party to does not exist for it.
        if detail is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no lead {request.lead_id}")
        return detail

    async def ListReturnNotices(self, request, context):  # noqa: N802
        await self._caller_for(context, "seller", request.seller_id)
        if not 0 <= request.limit <= MAX_NOTICES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit must be between 1 and {MAX_NOTICES}")
        notices, unread = await self._query(context, queries.return_notices, request.seller_id, request.since_ms,
                                            request.limit or 10)
        return pb.ListReturnNoticesResponse(notices=notices, unread=unread)

    async def ListPartners(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if not request.account_id and caller.is_admin:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account_id is required")
        found, sells_to = await self._query_as(context, caller, request.account_id, partner_queries.partners)
        return pb.ListPartnersResponse(partners=found, sells_to=sells_to)

    async def GetPlatformTotals(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if not caller.is_admin:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the platform's totals are the admin key's only")
        if request.since_ms < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "since_ms must not be negative")
        now_ms = self._now_ms()
        since_ms = request.since_ms or now_ms - now_ms % DAY_MS
        totals = await self._query(context, reports.platform_totals, since_ms)
        return pb.PlatformTotals(since_ms=since_ms, **dataclasses.asdict(totals))

    @staticmethod
    async def _page_size(context, requested: int) -> int:
        if requested < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        return min(requested or queries.DEFAULT_PAGE, queries.MAX_PAGE)

    # ------------------------------------------------------------ market

    async def GetMarketPrices(self, request, context):  # noqa: N802
        await self.auth.caller(context)  # market data is open to every account
        period = PERIODS.get(request.period)
        if period is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "period must be PERIOD_DAY, PERIOD_WEEK or PERIOD_MONTH")
        to_day = request.to_day or queries.utc_day(self._now_ms())
        prices = await self._query(context, queries.market_prices, period, request.from_day, to_day,
                                   vertical=request.vertical, state=request.state, county=request.county,
                                   by_county=request.by_county)
        return pb.GetMarketPricesResponse(prices=prices)

    # ------------------------------------------------------------ earlier calls

    async def GetBuyerDuplicates(self, request, context):  # noqa: N802
        await self._caller_for(context, "buyer", request.buyer_id)
        if not 0 <= request.days <= MAX_DUPLICATE_DAYS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"days must be between 1 and {MAX_DUPLICATE_DAYS}")
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        days = [(today - dt.timedelta(days=n)).isoformat() for n in reversed(range(request.days or 30))]
        counts = await self._query(context, _duplicate_counts, request.buyer_id, days[0])
        return pb.GetBuyerDuplicatesResponse(
            buyer_id=request.buyer_id,
            days=[pb.DuplicateDay(day=day, duplicates=counts.get(day, 0)) for day in days])

    async def GetAuctionStatus(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if not request.auction_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "auction_id is required")
        found = await self._query(context, _auction_status, request.auction_id)
        # Only the lead's seller, its buyer and the admin learn about an auction; to anyone else it
        # does not exist.
        if found is None or not (caller.is_admin or caller.id in found[1]):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no auction {request.auction_id}")
        return found[0]

    async def ListRecentSales(self, request, context):  # noqa: N802
        caller = await self.auth.caller(context)
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit must not be negative")
        if request.buyer_id and caller.kind != "seller":
            await self.auth.require(context, caller, "buyer", request.buyer_id)
        limit = min(request.limit or 20, MAX_SALES)
        buyer_id = request.buyer_id or (caller.id if caller.kind == "buyer" else "")
        seller_id = caller.id if caller.kind == "seller" else ""
        sales = await self._query(context, _recent_sales, limit, buyer_id, seller_id)
        return pb.ListRecentSalesResponse(sales=sales)


class _NoAccount(LookupError):
    """The admin named an account that does not exist (its id is the message)."""


def _kind_of(session: Session, account_id: str) -> str | None:
    """"buyer", "seller" or None, in one statement (the portal's every search and lead page asks)."""
    return session.scalar(union_all(select(literal("buyer")).where(Buyer.id == account_id),
                                    select(literal("seller")).where(Seller.id == account_id)).limit(1))


def _duplicate_counts(session: Session, buyer_id: str, since_day: str) -> dict[str, int]:
    query = select(BuyerDuplicateDay.day, BuyerDuplicateDay.duplicates).where(
        BuyerDuplicateDay.buyer_id == buyer_id, BuyerDuplicateDay.day >= since_day)
    return {row.day: row.duplicates for row in session.execute(query)}


def _auction_status(session: Session, auction_id: str) -> tuple[pb.AuctionStatus, set[str]] | None:
    """The status and the ids of the lead's parties (its seller and, once sold, its buyer)."""
    auction = session.get(Auction, auction_id)
    if auction is None:
        return None
    lead = session.get(Lead, auction.lead_id)
    # A shared lead has a sale per buyer: the status names the highest-paying one, and every
    # buyer of it may read it.
    sales = session.scalars(select(Sale).where(Sale.lead_id == auction.lead_id)
                            .order_by(Sale.price_cents.desc(), Sale.buyer_id)).all()
    sale = sales[0] if sales else None
    status = pb.AuctionStatus(
        auction_id=auction.id, lead_id=auction.lead_id, lead_status=lead.status if lead else "",
        offered_buyers=auction.offered_buyers, opened_at_ms=auction.opened_at_ms, closes_at_ms=auction.closes_at_ms,
        buyer_id=sale.buyer_id if sale else "", price_cents=sale.price_cents if sale else 0)
    return status, {p for p in (lead.seller_id if lead else "", *(s.buyer_id for s in sales)) if p}


def _recent_sales(session: Session, limit: int, buyer_id: str, seller_id: str) -> list[pb.Sale]:
    query = select(Sale).where(Sale.sold.is_(True))
    if buyer_id:
        query = query.where(Sale.buyer_id == buyer_id)
    if seller_id:
        query = query.where(Sale.seller_id == seller_id)
    query = query.order_by(Sale.closed_at_ms.desc()).limit(limit)
    return [pb.Sale(lead_id=s.lead_id, buyer_id=s.buyer_id or "", seller_id=s.seller_id,
                    price_cents=s.price_cents, seller_fee_cents=s.seller_fee_cents,
                    vertical=s.vertical, state=s.state, closed_at_ms=s.closed_at_ms)
            for s in session.scalars(query)]
