"""gRPC dashboard queries over the ledger's SQL (leadx.dashboard.v1.DashboardService)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import grpc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leadx.dashboard.v1 import dashboard_pb2 as pb
from leadx.dashboard.v1 import dashboard_pb2_grpc
from leadx.db.models import Auction, BuyerDuplicateDay, Lead, Sale

MAX_SALES = 500
MAX_DUPLICATE_DAYS = 366


class DashboardService(dashboard_pb2_grpc.DashboardServiceServicer):
    def __init__(self, sessions: sessionmaker[Session], clock=time.time) -> None:
        self.sessions = sessions
        self.clock = clock

    async def GetBuyerDuplicates(self, request, context):  # noqa: N802
        if not request.buyer_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "buyer_id is required")
        if not 0 <= request.days <= MAX_DUPLICATE_DAYS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"days must be between 1 and {MAX_DUPLICATE_DAYS}")
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        days = [(today - dt.timedelta(days=n)).isoformat() for n in reversed(range(request.days or 30))]
        counts = await asyncio.to_thread(self._duplicate_counts, request.buyer_id, days[0])
        return pb.GetBuyerDuplicatesResponse(
            buyer_id=request.buyer_id,
            days=[pb.DuplicateDay(day=day, duplicates=counts.get(day, 0)) for day in days])

    def _duplicate_counts(self, buyer_id: str, since_day: str) -> dict[str, int]:
        query = select(BuyerDuplicateDay.day, BuyerDuplicateDay.duplicates).where(
            BuyerDuplicateDay.buyer_id == buyer_id, BuyerDuplicateDay.day >= since_day)
        with self.sessions() as session:
            return {row.day: row.duplicates for row in session.execute(query)}

    async def GetAuctionStatus(self, request, context):  # noqa: N802 (gRPC method name)
        if not request.auction_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "auction_id is required")
        status = await asyncio.to_thread(self._auction_status, request.auction_id)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no auction {request.auction_id}")
        return status

    async def ListRecentSales(self, request, context):  # noqa: N802
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "limit must not be negative")
        limit = min(request.limit or 20, MAX_SALES)
        sales = await asyncio.to_thread(self._recent_sales, limit, request.buyer_id)
        return pb.ListRecentSalesResponse(sales=sales)

    def _auction_status(self, auction_id: str) -> pb.AuctionStatus | None:
        with self.sessions() as session:
            auction = session.get(Auction, auction_id)
            if auction is None:
                return None
            lead = session.get(Lead, auction.lead_id)
            sale = session.get(Sale, auction.lead_id)
            return pb.AuctionStatus(
                auction_id=auction.id, lead_id=auction.lead_id,
                lead_status=lead.status if lead else "", offered_buyers=auction.offered_buyers,
                opened_at_ms=auction.opened_at_ms, closes_at_ms=auction.closes_at_ms,
                buyer_id=(sale.buyer_id or "") if sale else "",
                price_cents=sale.price_cents if sale else 0,
            )

    def _recent_sales(self, limit: int, buyer_id: str) -> list[pb.Sale]:
        query = select(Sale).where(Sale.sold.is_(True))
        if buyer_id:
            query = query.where(Sale.buyer_id == buyer_id)
        query = query.order_by(Sale.closed_at_ms.desc()).limit(limit)
        with self.sessions() as session:
            return [pb.Sale(lead_id=s.lead_id, buyer_id=s.buyer_id or "", seller_id=s.seller_id,
                            price_cents=s.price_cents, seller_fee_cents=s.seller_fee_cents,
                            vertical=s.vertical, state=s.state, closed_at_ms=s.closed_at_ms)
                    for s in session.scalars(query)]
