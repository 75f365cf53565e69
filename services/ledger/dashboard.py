"""gRPC dashboard queries over the ledger's SQL (leadx.dashboard.v1.DashboardService)."""

from __future__ import annotations

import asyncio

import grpc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leadx.dashboard.v1 import dashboard_pb2 as pb
from leadx.dashboard.v1 import dashboard_pb2_grpc
from leadx.db.models import Auction, Lead, Sale

MAX_SALES = 500


class DashboardService(dashboard_pb2_grpc.DashboardServiceServicer):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

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
