"""The ledger's gRPC dashboard API against the running exchange: real queries, health, reflection,
and authorisation from call metadata (an account reads only its own data, the admin reads all)."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from tests.conftest import poll_until
from tests.integration.conftest import ADMIN_KEY
from tests.integration.harness import Exchange

pytestmark = pytest.mark.integration


class Dashboard:
    """The stub, calling as the holder of `key` (None: no credentials), with a deadline."""

    def __init__(self, channel, key: str | None) -> None:
        self.stub = dashboard_pb2_grpc.DashboardServiceStub(channel)
        self.metadata = [("authorization", f"Bearer {key}")] if key else []

    def __getattr__(self, name: str):
        method = getattr(self.stub, name)
        return lambda request, timeout=5: method(request, timeout=timeout, metadata=self.metadata)


def refused(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call(request)
    return error.value.code()


@pytest.fixture
def channel(market: Exchange):
    with grpc.insecure_channel(f"127.0.0.1:{market.stack.port_of('ledger', 'GRPC_PORT')}") as channel:
        yield channel


@pytest.fixture
def admin(channel) -> Dashboard:
    return Dashboard(channel, ADMIN_KEY)



def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "leadx.dashboard.v1.DashboardService"):
        # The health service mirrors readiness once a second, so it may trail /readyz by that much.
        poll_until(lambda service=service: health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                   .status == health_pb2.HealthCheckResponse.SERVING, timeout_s=10, message=f"{service!r} SERVING")
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert "leadx.dashboard.v1.DashboardService" in names and "grpc.health.v1.Health" in names


def test_recent_sales_and_auction_status(market: Exchange, channel, admin):
    lead_id = market.sell("beta", 1750)
    beta = Dashboard(channel, market.buyer_keys["beta"])

    def recorded():
        sales = beta.ListRecentSales(pb.ListRecentSalesRequest(buyer_id=market.buyer_ids["beta"]))
        return next((s for s in sales.sales if s.lead_id == lead_id), None)

    sale = poll_until(recorded, message="the sale in the dashboard")
    assert sale.price_cents == 1750 and sale.seller_fee_cents == 175
    for caller in (beta, admin, Dashboard(channel, market.seller_key)):  # the lead's buyer, admin, its seller
        status = caller.GetAuctionStatus(pb.GetAuctionStatusRequest(auction_id=lead_id))
        assert status.lead_id == lead_id and status.lead_status == "sold"
        assert status.buyer_id == market.buyer_ids["beta"] and status.price_cents == 1750
        assert status.offered_buyers == 3 and status.closes_at_ms > status.opened_at_ms
    # Anyone else is told there is no such auction, exactly as for one that does not exist.
    gamma = Dashboard(channel, market.buyer_keys["gamma"])
    assert refused(gamma.GetAuctionStatus, pb.GetAuctionStatusRequest(auction_id=lead_id)) == grpc.StatusCode.NOT_FOUND
    assert list(admin.ListRecentSales(pb.ListRecentSalesRequest(buyer_id="b_nobody", limit=5)).sales) == []


def test_bad_requests_and_missing_credentials_get_grpc_errors(channel, admin):
    assert refused(admin.GetAuctionStatus, pb.GetAuctionStatusRequest(auction_id="NOSUCHAUCT")) == \
        grpc.StatusCode.NOT_FOUND
    assert refused(admin.GetAuctionStatus, pb.GetAuctionStatusRequest()) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.ListRecentSales, pb.ListRecentSalesRequest(limit=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.ListTransactions, pb.ListTransactionsRequest()) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.ListTransactions, pb.ListTransactionsRequest(window=pb.WINDOW_DAY, page_token="x!")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.SearchLeads, pb.SearchLeadsRequest(day="soon")) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.GetMarketPrices, pb.GetMarketPricesRequest()) == grpc.StatusCode.INVALID_ARGUMENT
    for key in (None, "lx_not_a_key"):
        anonymous = Dashboard(channel, key)
        assert refused(anonymous.GetMarketPrices, pb.GetMarketPricesRequest(period=pb.PERIOD_DAY)) == \
            grpc.StatusCode.UNAUTHENTICATED


def test_accounts_read_only_their_own_data(market: Exchange, channel, admin):
    alpha_id, beta_id = market.buyer_ids["alpha"], market.buyer_ids["beta"]
    alpha = Dashboard(channel, market.buyer_keys["alpha"])
    seller = Dashboard(channel, market.seller_key)
    other_seller = Dashboard(channel, market.other_seller_key)
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert refused(alpha.GetBuyerSummary, pb.GetBuyerSummaryRequest(buyer_id=beta_id)) == denied
    assert refused(alpha.GetBuyerDuplicates, pb.GetBuyerDuplicatesRequest(buyer_id=beta_id)) == denied
    assert refused(alpha.GetSellerSummary, pb.GetSellerSummaryRequest(seller_id=market.seller_id)) == denied
    assert refused(alpha.ListRecentSales, pb.ListRecentSalesRequest(buyer_id=beta_id)) == denied
    assert refused(alpha.ListTransactions, pb.ListTransactionsRequest(account_id=beta_id, window=pb.WINDOW_DAY)) == \
        denied
    assert refused(other_seller.GetSellerSummary, pb.GetSellerSummaryRequest(seller_id=market.seller_id)) == denied

    lead_id = market.sell("alpha", 2500)
    mine = poll_until(lambda: [s for s in alpha.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=alpha_id))
                               .last_leads if s.lead_id == lead_id], message="the sale in alpha's summary")
    assert mine[0].price_cents == 2500
    summary = admin.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=alpha_id))
    assert [w.window for w in summary.windows] == [pb.WINDOW_DAY, pb.WINDOW_WEEK, pb.WINDOW_MONTH, pb.WINDOW_YEAR]
    assert summary.windows[0].leads_bought >= 1 and summary.windows[0].spent_cents >= 2500

    # Lead search: the seller sees its lead, its buyer sees it, another buyer and seller do not.
    request = pb.SearchLeadsRequest(lead_id=lead_id)
    assert [r.status for r in seller.SearchLeads(request).leads] == ["sold"]
    assert [r.buyer_id for r in alpha.SearchLeads(request).leads] == [alpha_id]
    assert list(Dashboard(channel, market.buyer_keys["beta"]).SearchLeads(request).leads) == []
    assert list(other_seller.SearchLeads(request).leads) == []
    assert len(admin.SearchLeads(request).leads) == 1
    # The admin reads for one account (as the web portal does); an account names only itself.
    for_alpha = pb.SearchLeadsRequest(lead_id=lead_id, account_id=alpha_id)
    assert [r.lead_id for r in admin.SearchLeads(for_alpha).leads] == [lead_id]
    assert list(admin.SearchLeads(pb.SearchLeadsRequest(lead_id=lead_id, account_id=beta_id)).leads) == []
    assert [r.lead_id for r in admin.SearchLeads(
        pb.SearchLeadsRequest(lead_id=lead_id, account_id=market.seller_id)).leads] == [lead_id]
    assert refused(admin.SearchLeads, pb.SearchLeadsRequest(account_id="b_nobody")) == grpc.StatusCode.NOT_FOUND
    assert [r.lead_id for r in alpha.SearchLeads(for_alpha).leads] == [lead_id]
    assert refused(alpha.SearchLeads, pb.SearchLeadsRequest(account_id=beta_id)) == denied

    windows = seller.GetSellerSummary(pb.GetSellerSummaryRequest(seller_id=market.seller_id)).windows
    assert windows[0].sold >= 1 and windows[0].fees_cents >= 250

    # Transactions: the buyer's own, a page at a time; the admin's of any account.
    page = alpha.ListTransactions(pb.ListTransactionsRequest(window=pb.WINDOW_DAY, page_size=1))
    assert len(page.transactions) == 1 and page.transactions[0].account_amount_cents < 0
    rows = []
    token = ""
    while True:
        got = admin.ListTransactions(pb.ListTransactionsRequest(account_id=alpha_id, window=pb.WINDOW_MONTH,
                                                                page_size=2, page_token=token))
        rows += got.transactions
        token = got.next_page_token
        if not token:
            break
    assert f"sale:{lead_id}:{alpha_id}" in {t.id for t in rows} and len({t.id for t in rows}) == len(rows)
    assert refused(admin.ListTransactions, pb.ListTransactionsRequest(account_id="b_nobody", window=pb.WINDOW_DAY)) == \
        grpc.StatusCode.NOT_FOUND


def test_market_prices_are_open_to_every_account(market: Exchange, channel):
    lead_id = market.sell("gamma", 4321)
    market.recorded_sales([lead_id])  # an earlier sale in the same state would show a row before
    sale = market.sale_for(lead_id)
    gamma = Dashboard(channel, market.buyer_keys["gamma"])

    def market_rows():
        prices = gamma.GetMarketPrices(pb.GetMarketPricesRequest(period=pb.PERIOD_MONTH, state=sale.state,
                                                                 by_county=True))
        return [p for p in prices.prices if p.vertical == "auto_loan"] or None
    rows = poll_until(market_rows, message="the sale in the market prices")
    assert all(p.state == sale.state and p.county and p.sales >= 1 for p in rows)
    assert sum(p.total_cents for p in rows) >= 4321


def test_buyers_see_the_duplicates_kept_from_them_per_day(market: Exchange, channel):
    alpha_id = market.buyer_ids["alpha"]
    alpha = Dashboard(channel, market.buyer_keys["alpha"])

    def today_count() -> int:
        days = alpha.GetBuyerDuplicates(pb.GetBuyerDuplicatesRequest(buyer_id=alpha_id, days=7)).days
        assert len(days) == 7 and days[0].day < days[-1].day
        return days[-1].duplicates

    before = today_count()
    market.buyers.buyers["alpha"].bid = 1200
    consumer = market.new_consumer()
    first = market.post(consumer).json()["lead_id"]
    assert poll_until(lambda: market.sale_for(first), message="the first sale").buyer_id == alpha_id
    market.post(consumer)  # platform-wide dedup is off here: alpha alone is kept from the repeat

    assert poll_until(lambda: today_count() == before + 1 or None, message="alpha's duplicate counted")
    summary = alpha.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=alpha_id))
    assert summary.windows[0].duplicates_rejected >= 1
    assert refused(alpha.GetBuyerDuplicates, pb.GetBuyerDuplicatesRequest(buyer_id=alpha_id, days=400)) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_a_lead_is_read_by_its_parties_only(market: Exchange, channel, admin):
    lead_id = market.sell("alpha", 2600)
    alpha_id, beta_id = market.buyer_ids["alpha"], market.buyer_ids["beta"]
    alpha = Dashboard(channel, market.buyer_keys["alpha"])
    request = pb.GetLeadRequest(lead_id=lead_id)

    def recorded():
        try:
            lead = alpha.GetLead(request)
        except grpc.RpcError as error:  # until the ledger has recorded the sale, alpha is no party to it
            assert error.code() == grpc.StatusCode.NOT_FOUND
            return None
        # The lead's row and its sales are read by two statements: one read while the ledger commits
        # the sale can find the sale (alpha a party) and the lead still in_auction. Once more, then.
        return lead if lead.status == "sold" else None
    lead = poll_until(recorded, message="the sale on alpha's lead")
    assert lead.lead_id == lead_id and lead.status == "sold" and lead.returnable
    assert [(s.rank, s.buyer_id, s.price_cents, s.yours) for s in lead.sales] == [(1, alpha_id, 2600, True)]
    assert {f.name for f in lead.fields} >= {"email", "zip"}  # the consumer's details: its buyer's
    assert [c.status for c in lead.history][0] == "submitted" and lead.auctions[0].offered_buyers == 3
    assert [p.outcome for p in lead.posts if p.yours] == ["accepted"]
    # Its seller reads it without the consumer's details; the admin reads it as either party.
    as_seller = Dashboard(channel, market.seller_key).GetLead(request)
    assert list(as_seller.fields) == [] and as_seller.sales[0].fee_cents == 260 and not as_seller.returnable
    assert list(admin.GetLead(request).fields) == []
    assert len(admin.GetLead(pb.GetLeadRequest(lead_id=lead_id, account_id=alpha_id)).fields) > 0
    # Another buyer's or seller's key, or the admin reading for another buyer: no such lead.
    not_found = grpc.StatusCode.NOT_FOUND
    assert refused(Dashboard(channel, market.buyer_keys["beta"]).GetLead, request) == not_found
    assert refused(Dashboard(channel, market.other_seller_key).GetLead, request) == not_found
    assert refused(admin.GetLead, pb.GetLeadRequest(lead_id=lead_id, account_id=beta_id)) == not_found
    assert refused(admin.GetLead, pb.GetLeadRequest(lead_id="NOSUCHLEAD")) == not_found
    # An account may name only itself.
    assert refused(alpha.GetLead, pb.GetLeadRequest(lead_id=lead_id, account_id=beta_id)) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert refused(admin.GetLead, pb.GetLeadRequest()) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_sellers_return_notices_are_its_own(market: Exchange, channel, admin):
    request = pb.ListReturnNoticesRequest(seller_id=market.seller_id, limit=5)
    mine = Dashboard(channel, market.seller_key).ListReturnNotices(request)
    assert mine.unread >= len(mine.notices) and len(mine.notices) <= 5
    assert admin.ListReturnNotices(request).unread == mine.unread
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert refused(Dashboard(channel, market.other_seller_key).ListReturnNotices, request) == denied
    assert refused(Dashboard(channel, market.buyer_keys["alpha"]).ListReturnNotices, request) == denied
    assert refused(admin.ListReturnNotices, pb.ListReturnNoticesRequest(seller_id=market.seller_id, limit=101)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert refused(admin.ListReturnNotices, pb.ListReturnNoticesRequest()) == grpc.StatusCode.INVALID_ARGUMENT


def test_partners_are_read_by_their_own_account(market: Exchange, channel, admin):
    beta = Dashboard(channel, market.buyer_keys["beta"])
    mine = beta.ListPartners(pb.ListPartnersRequest())
    sellers = {p.account_id: p for p in mine.partners}
    assert sellers[market.seller_id].partnered and mine.sells_to == ""
    assert [(p.name, p.account_id) for p in mine.partners] == sorted((p.name, p.account_id) for p in mine.partners)
    seller = Dashboard(channel, market.seller_key)
    theirs = seller.ListPartners(pb.ListPartnersRequest(account_id=market.seller_id))
    assert {p.account_id for p in theirs.partners} == set(market.buyer_ids.values())
    assert all(p.partnered and p.choice == "" for p in theirs.partners) and theirs.sells_to == "all"
    assert admin.ListPartners(pb.ListPartnersRequest(account_id=market.seller_id)) == theirs
    assert admin.ListPartners(pb.ListPartnersRequest(account_id=market.buyer_ids["beta"])) == mine
    for caller, request, code in (
            (beta, pb.ListPartnersRequest(account_id=market.buyer_ids["gamma"]), grpc.StatusCode.PERMISSION_DENIED),
            (seller, pb.ListPartnersRequest(account_id=market.buyer_ids["gamma"]), grpc.StatusCode.PERMISSION_DENIED),
            (admin, pb.ListPartnersRequest(), grpc.StatusCode.INVALID_ARGUMENT),
            (admin, pb.ListPartnersRequest(account_id="b_nobody"), grpc.StatusCode.NOT_FOUND)):
        assert refused(caller.ListPartners, request) == code


def test_the_platforms_totals_are_the_admins_and_count_a_sale_as_it_closes(market: Exchange, channel, admin):
    for key in (market.buyer_keys["alpha"], market.seller_key):
        assert refused(Dashboard(channel, key).GetPlatformTotals, pb.GetPlatformTotalsRequest()) == \
            grpc.StatusCode.PERMISSION_DENIED
    assert refused(admin.GetPlatformTotals, pb.GetPlatformTotalsRequest(since_ms=-1)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    today = admin.GetPlatformTotals(pb.GetPlatformTotalsRequest())
    assert today.since_ms % 86_400_000 == 0 and today.since_ms <= time.time() * 1000 < today.since_ms + 86_400_000
    market.recorded_sales([market.sell("gamma", 4125)])  # not an earlier test's sale recorded late
    poll_until(lambda: admin.GetPlatformTotals(pb.GetPlatformTotalsRequest(since_ms=today.since_ms)).sold
               > today.sold, message="the sale in the totals")
    after = admin.GetPlatformTotals(pb.GetPlatformTotalsRequest(since_ms=today.since_ms))
    # Other tests of this exchange may sell meanwhile: this sale is in it, at least.
    assert after.leads > today.leads and after.revenue_cents >= today.revenue_cents + 4125
    assert after.fees_cents >= today.fees_cents + 412
    assert admin.GetPlatformTotals(pb.GetPlatformTotalsRequest(since_ms=int(time.time() * 1000) + 60_000)).leads == 0
