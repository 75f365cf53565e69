"""The portal's reads, through the ledger's gRPC DashboardService (docs/dashboard.md) with the
dashboard's admin key: the portal itself decides which account a person may read (pages.py), and
asks only for that account's data."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.platform import grpc_tls

CALL_TIMEOUT_S = 5.0
WINDOW_NAMES = {pb.WINDOW_DAY: "Last day", pb.WINDOW_WEEK: "Last week", pb.WINDOW_MONTH: "Last month",
                pb.WINDOW_YEAR: "Last year"}
LATEST_LEADS = 10


class DashboardUnavailable(Exception):
    """The dashboard did not answer in time or at all; the page says so (503), never a 500."""


@dataclass(frozen=True)
class BuyerHome:
    summary: pb.BuyerSummary


@dataclass(frozen=True)
class SellerHome:
    summary: pb.SellerSummary
    latest: list[pb.LeadRow]


class Dashboard:
    def __init__(self, address: str, admin_key: str, ca_file: str = "") -> None:
        self.address = address
        self.ca_file = ca_file
        self.metadata = (("authorization", f"Bearer {admin_key}"),)
        self._channel: grpc.aio.Channel | None = None
        self._stub: dashboard_pb2_grpc.DashboardServiceStub | None = None

    def start(self) -> None:
        """Opens the channel: on the event loop that serves the pages (a grpc.aio channel belongs to
        the loop it was made on)."""
        if self.ca_file:
            self._channel = grpc.aio.secure_channel(self.address, grpc_tls.channel_credentials(self.ca_file))
        else:
            self._channel = grpc.aio.insecure_channel(self.address)
        self._stub = dashboard_pb2_grpc.DashboardServiceStub(self._channel)

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            raise RuntimeError("Dashboard.start() was not called")
        return self._channel

    @property
    def stub(self) -> dashboard_pb2_grpc.DashboardServiceStub:
        if self._stub is None:
            raise RuntimeError("Dashboard.start() was not called")
        return self._stub

    async def _call(self, method, request):
        try:
            return await method(request, timeout=CALL_TIMEOUT_S, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            raise DashboardUnavailable(f"{error.code().name}: {error.details()}") from None

    async def buyer_home(self, buyer_id: str) -> BuyerHome:
        return BuyerHome(await self._call(self.stub.GetBuyerSummary, pb.GetBuyerSummaryRequest(buyer_id=buyer_id)))

    async def seller_home(self, seller_id: str) -> SellerHome:
        summary = await self._call(self.stub.GetSellerSummary, pb.GetSellerSummaryRequest(seller_id=seller_id))
        leads = await self._call(self.stub.SearchLeads,
                                 pb.SearchLeadsRequest(account_id=seller_id, page_size=LATEST_LEADS))
        return SellerHome(summary, list(leads.leads))

    async def recent_sales(self, limit: int = 20) -> list[pb.Sale]:
        return list((await self._call(self.stub.ListRecentSales, pb.ListRecentSalesRequest(limit=limit))).sales)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
