"""The portal's reads, through the ledger's gRPC DashboardService (docs/dashboard.md) with the
dashboard's admin key: the portal itself decides which account a person may read (pages.py), and
asks only for that account's data."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.platform import grpc_tls
from services.portal.search import SearchQuery

CALL_TIMEOUT_S = 5.0
WINDOW_NAMES = {pb.WINDOW_DAY: "Last day", pb.WINDOW_WEEK: "Last week", pb.WINDOW_MONTH: "Last month",
                pb.WINDOW_YEAR: "Last year"}
LATEST_LEADS = 10
SEARCH_PAGE = 25
TRANSACTIONS_PAGE = 50
TOTALS_TTL_S = 15.0
TRANSACTION_WINDOWS = {"day": pb.WINDOW_DAY, "week": pb.WINDOW_WEEK, "month": pb.WINDOW_MONTH}


class DashboardUnavailable(Exception):
    """The dashboard did not answer in time or at all; the page says so (503), never a 500."""


class DashboardRefused(Exception):
    """The dashboard found an argument invalid (a page token it did not give, ...): its reason."""


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
        self._totals: tuple[float, pb.PlatformTotals] | None = None  # when read (monotonic), and the totals

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
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise DashboardRefused(error.details() or "invalid argument") from None
            raise DashboardUnavailable(f"{error.code().name}: {error.details()}") from None

    async def buyer_home(self, buyer_id: str) -> BuyerHome:
        return BuyerHome(await self._call(self.stub.GetBuyerSummary, pb.GetBuyerSummaryRequest(buyer_id=buyer_id)))

    async def seller_home(self, seller_id: str) -> SellerHome:
        return SellerHome(await self.seller_summary(seller_id), await self.latest_leads(seller_id))

    async def seller_summary(self, seller_id: str) -> pb.SellerSummary:
        return await self._call(self.stub.GetSellerSummary, pb.GetSellerSummaryRequest(seller_id=seller_id))

    async def latest_leads(self, seller_id: str) -> list[pb.LeadRow]:
        """The seller's newest leads, with their status (the seller home's list)."""
        answer = await self._call(self.stub.SearchLeads,
                                  pb.SearchLeadsRequest(account_id=seller_id, page_size=LATEST_LEADS))
        return list(answer.leads)

    async def recent_purchases(self, buyer_id: str, limit: int) -> list[pb.Sale]:
        """The buyer's newest purchases, newest first (the live list on its home)."""
        answer = await self._call(self.stub.ListRecentSales, pb.ListRecentSalesRequest(buyer_id=buyer_id, limit=limit))
        return list(answer.sales)

    async def search(self, account_id: str, query: SearchQuery) -> tuple[list[pb.LeadRow], str]:
        """A page of the leads of `account_id` (empty: every account's, for operators) matching the
        query, newest first, and the next page's token."""
        answer = await self._call(self.stub.SearchLeads, pb.SearchLeadsRequest(
            account_id=account_id, lead_id=query.lead_id, day=query.day, to_day=query.to_day, state=query.state,
            status=query.status, page_size=SEARCH_PAGE, page_token=query.page))
        return list(answer.leads), answer.next_page_token

    async def transactions(self, account_id: str, window: pb.Window, page: str = "",
                           size: int = TRANSACTIONS_PAGE) -> tuple[list[pb.Transaction], str]:
        """A page of the account's sales and returns in the window (empty account: every account's,
        for operators), newest first, and the next page's token."""
        answer = await self._call(self.stub.ListTransactions, pb.ListTransactionsRequest(
            account_id=account_id, window=window, page_size=size, page_token=page))
        return list(answer.transactions), answer.next_page_token

    async def lead(self, account_id: str, lead_id: str) -> pb.LeadDetail | None:
        """A lead read as a party of it (`account_id`; empty: an operator, who reads any lead
        without the consumer's details), or None when it is not one's to read."""
        try:
            return await self.stub.GetLead(pb.GetLeadRequest(lead_id=lead_id, account_id=account_id),
                                           timeout=CALL_TIMEOUT_S, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise DashboardUnavailable(f"{error.code().name}: {error.details()}") from None

    async def return_notices(self, seller_id: str, since_ms: int, limit: int = LATEST_LEADS
                             ) -> pb.ListReturnNoticesResponse:
        """The latest returns of the seller's leads, and how many came after `since_ms`."""
        return await self._call(self.stub.ListReturnNotices, pb.ListReturnNoticesRequest(
            seller_id=seller_id, since_ms=since_ms, limit=limit))

    async def partners(self, account_id: str) -> tuple[list[pb.Partner], str]:
        """The account's partners (a buyer's: every active seller; a seller's: its buyers), by
        name, and a seller's `sells_to`."""
        answer = await self._call(self.stub.ListPartners, pb.ListPartnersRequest(account_id=account_id))
        return list(answer.partners), answer.sells_to

    async def market_prices(self, period: pb.Period, from_day: str, to_day: str, *, vertical: str = "",
                            state: str = "", by_county: bool = False) -> list[pb.MarketPrice]:
        """Sales and average prices per period (and vertical and state, and county when `by_county`)
        over the days from `from_day` to `to_day`, both included: market data, every account's."""
        answer = await self._call(self.stub.GetMarketPrices, pb.GetMarketPricesRequest(
            period=period, from_day=from_day, to_day=to_day, vertical=vertical, state=state, by_county=by_county))
        return list(answer.prices)

    async def platform_totals(self) -> pb.PlatformTotals:
        """The exchange's totals since the start of today (UTC): the operators' home. Read at most
        once every TOTALS_TTL_S by this portal, whatever the number of operators' pages open: the
        query sums the whole day."""
        now = time.monotonic()
        if self._totals is None or now - self._totals[0] >= TOTALS_TTL_S:
            self._totals = (now, await self._call(self.stub.GetPlatformTotals, pb.GetPlatformTotalsRequest()))
        return self._totals[1]

    async def recent_sales(self, limit: int = 20) -> list[pb.Sale]:
        return list((await self._call(self.stub.ListRecentSales, pb.ListRecentSalesRequest(limit=limit))).sales)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
