"""The web portal in a real browser: Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`;
.ci/run installs it), driven by Playwright, against the running exchange. These tests skip, saying
why, only where no Chromium is installed; in CI it always is."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from urllib.parse import urlsplit

import grpc
import pytest
from sqlalchemy import func, select

from leadx.accounts import accounts, buyer_settings, partnerships, people, ratings
from leadx.auction.selection.windows import DAYS
from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.accounts.people import SessionSigner, SessionState
from leadx.dev.tools.portal_screenshots import CHROMIUM_ARGS, VIEWPORT, Login, png_size, take
from leadx.ledger.reports import average
from leadx.platform.db.models import Auction, AuctionBid, Sale
from leadx.platform.utc_days import utc_day
from services.portal.pages import LOGIN_FAILED, money
from tests.conftest import poll_until
from tests.integration.conftest import ADMIN_KEY
from tests.integration.harness import Exchange
from tests.integration.portal_people import PASSWORD, create_person, sell_returnable

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = os.environ.get("LEADX_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (Playwright's own download "
                    "is not used), or set LEADX_TEST_CHROMIUM to one")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, portal: str):
    context = browser.new_context(base_url=portal)
    page = context.new_page()
    # A page that breaks its own Content-Security-Policy says so on the console: none may.
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert violations == []


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form.login button[type=submit]")


def test_a_lead_won_appears_on_the_open_buyer_home_without_reload(market: Exchange, page):
    log_in(page, create_person(market, "buyer", market.buyer_ids["beta"]))
    page.wait_for_url("**/buyer")
    assert page.locator("#no-leads").is_visible() and not page.locator("#bought").is_visible()
    page.evaluate("window.stillTheSamePage = true")  # gone if the page were loaded again
    first = market.sell("beta", 1975)
    page.wait_for_selector(f'#bought tr[data-lead="{first}"]', timeout=60_000)
    second = market.sell("beta", 2025)
    page.wait_for_selector(f'#bought tr[data-lead="{second}"]', timeout=60_000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.locator("#bought tbody tr").all_inner_texts()[0].startswith(second)  # newest first
    row = page.locator(f'#bought tr[data-lead="{first}"]')
    assert "$19.75" in row.inner_text() and row.locator("a").get_attribute("href") == f"/leads/{first}"
    assert not page.locator("#no-leads").is_visible()
    assert page.locator("#bought tbody tr").count() == 2  # each once, across the streams' reconnections
    # The live rows lead where the rendered ones do: the lead's page.
    row.locator("a").click()
    page.wait_for_url(f"**/leads/{first}")


def test_a_buyer_logs_in_and_sees_its_home(market: Exchange, page):
    lead_id = market.sell("alpha", 3275)
    log_in(page, create_person(market, "buyer", market.buyer_ids["alpha"]))
    page.wait_for_url("**/buyer")
    assert page.title() == "Buyer home · leadx"
    assert page.locator("nav a").all_inner_texts() == ["Home", "Search", "Transactions", "Profiles", "Partners",
                                                       "Markets"]
    deadline = time.monotonic() + 30
    while lead_id not in page.locator("table.leads").inner_text():
        assert time.monotonic() < deadline, "the lead bought never showed on the buyer's home"
        page.reload()
    row = page.locator("table.leads tr", has_text=lead_id)
    assert "$32.75" in row.inner_text()
    assert page.locator("table.figures tbody tr").count() == 4
    # The stylesheet loaded (the page is styled, not bare): the bar's background is not white.
    assert page.eval_on_selector("header.bar", "e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    # Search, with the form a person fills in: the lead by its id, then a mistake said beside its field.
    page.click("nav >> text=Search")
    page.fill("#lead_id", lead_id)
    page.select_option("#status", "sold")
    page.click("form.search button[type=submit]")
    assert page.locator("table.leads tbody tr").all_inner_texts()[0].startswith(lead_id)
    page.fill("#day", "")
    page.fill("#state", "N1")  # two characters (the field takes no more), but not a state's code
    page.click("form.search button[type=submit]")
    assert page.locator("#state-error").inner_text() == "a state is its two-letter code, e.g. NY"
    assert page.input_value("#lead_id") == lead_id  # the rest of the form kept
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/buyer")
    assert page.url.endswith("/login")


def test_a_wrong_password_shows_the_generic_message(market: Exchange, page):
    email = create_person(market, "seller", market.seller_id)
    log_in(page, email, "not the right password")
    assert page.locator(".failed").inner_text() == LOGIN_FAILED
    assert page.input_value("#email") == email and page.input_value("#password") == ""
    log_in(page, "not-an-email", "")
    assert page.locator("#email-error").inner_text() == "this is not an email address (name@example.com)"
    assert page.locator("#password-error").inner_text() == "enter your password"


def test_a_form_posted_without_its_csrf_token_gets_403(market: Exchange, page):
    email = create_person(market, "buyer", market.buyer_ids["beta"])
    page.goto("/login")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_response("**/login") as answer:
        page.click("form.login button[type=submit]")
    assert answer.value.status == 403
    assert "did not come from this page" in page.locator("p.message").inner_text()


def test_an_expired_session_is_sent_back_to_login(market: Exchange, page, portal: str):
    email = create_person(market, "buyer", market.buyer_ids["gamma"])
    log_in(page, email)
    page.wait_for_url("**/buyer")
    with market.sql() as session:
        person = people.person_by_email(session, email)
        person_id, epoch = person.id, person.session_epoch
    # The same session, as it will be after half an hour without a page: the cookie the portal would
    # have signed then.
    now = int(time.time())
    idle = SessionState("csrf-secret", person_id, epoch, logged_in_at=now - 3600, seen_at=now - 31 * 60)
    # The home's live stream reconnects with it (its streams last 2 s here): it is told to stop,
    # and leaves the cookie as it was, so the next page still knows the session has ended. The
    # answer is awaited from before the cookie is set, so that none can come before the test listens.
    with page.expect_response(lambda answer: urlsplit(answer.url).path == "/buyer/live" and answer.status == 204,
                              timeout=30_000):
        page.context.add_cookies([{"name": "leadx_session", "url": portal,
                                   "value": SessionSigner(market.stack.portal_secret.encode()).dumps(idle)}])
    page.goto("/buyer")
    page.wait_for_url("**/login?ended=1")
    assert page.locator("p.notice").inner_text() == "Your session has ended. Log in again."


def test_a_buyers_person_cannot_see_a_sellers_pages(market: Exchange, page):
    log_in(page, create_person(market, "buyer", market.buyer_ids["alpha"], "member"))
    page.wait_for_url("**/buyer")
    assert page.locator("nav a[href='/seller']").count() == 0
    answer = page.goto("/seller")
    assert answer is not None and answer.status == 404
    assert page.title() == "Not found · leadx"


def test_a_buyer_opens_a_lead_it_won_and_returns_it(market: Exchange, page):
    lead_id, theirs = sell_returnable(market, "beta", 2875), market.sell("gamma", 2900)
    log_in(page, create_person(market, "buyer", market.buyer_ids["beta"], "owner"))
    page.wait_for_url("**/buyer")
    deadline = time.monotonic() + 30
    while page.locator(f"table.leads a[href='/leads/{lead_id}']").count() == 0:
        assert time.monotonic() < deadline, "the lead bought never showed on the buyer's home"
        page.reload()
    page.click(f"table.leads a[href='/leads/{lead_id}']")
    page.wait_for_url(f"**/leads/{lead_id}")
    assert page.title() == f"Lead {lead_id} · leadx"
    assert "$28.75" in page.locator("table.sales").inner_text()
    page.click("text=Return Lead")
    page.wait_for_url(f"**/leads/{lead_id}/return")
    page.click("form.return button[type=submit]")  # no reason: said beside the field
    assert page.locator("#reason-error").inner_text() == "reason is required: say why the lead is returned"
    page.fill("#reason", "the consumer never asked for a loan")
    page.click("form.return button[type=submit]")
    page.wait_for_url(f"**/leads/{lead_id}?returned=1")
    assert "credited to your account" in page.locator("p.notice").inner_text()
    assert page.locator("text=Return Lead").count() == 0
    # The credit, once the ledger has booked it: the return on the transactions page.
    deadline = time.monotonic() + 30
    while True:
        page.goto("/transactions?window=day")
        row = page.locator("table tr", has_text=lead_id).filter(has_text="return")
        if row.count():
            break
        assert time.monotonic() < deadline, "the return's credit never showed in the transactions"
        time.sleep(0.5)
    assert "$28.75" in row.first.locator("td.change").inner_text()
    # Another buyer's lead, opened by its URL: no such lead.
    answer = page.goto(f"/leads/{theirs}")
    assert answer is not None and answer.status == 404 and page.title() == "Not found · leadx"
    # The seller logs in: the unread count in its bar, the return and its reason on its home.
    page.click("text=Log out")
    log_in(page, create_person(market, "seller", market.seller_id, "member"))
    page.wait_for_url("**/seller")
    notice = page.locator("ul.notices li", has_text=lead_id)
    assert "the consumer never asked for a loan" in notice.inner_text() and "New:" in notice.inner_text()
    page.click("nav >> text=Search")
    assert page.locator("nav .unread").count() == 0  # seen on the home: read


def test_a_read_only_person_sees_no_return_link_and_its_post_is_refused(market: Exchange, page):
    lead_id = market.sell("alpha", 2125)
    log_in(page, create_person(market, "buyer", market.buyer_ids["alpha"], "read-only"))
    page.wait_for_url("**/buyer")
    deadline = time.monotonic() + 30
    while (answer := page.goto(f"/leads/{lead_id}")) is None or answer.status != 200:
        assert time.monotonic() < deadline, "the lead's page never opened"
        time.sleep(0.5)
    assert page.locator("text=Return Lead").count() == 0
    token = page.input_value("input[name=csrf_token]")
    refused = page.request.post(f"/leads/{lead_id}/return", form={"csrf_token": token, "reason": "bad lead"})
    assert refused.status == 403 and "not return them" in refused.text()


def test_the_screenshot_tool_shoots_each_main_page_after_logging_in(market: Exchange, browser, portal: str,
                                                                    tmp_path):
    lead_id = market.sell("gamma", 1450)
    market.recorded_sales([lead_id])
    with market.sql() as session:  # a filter only: a wholesale buyer's profile that matches every lead
        profile = buyer_settings.save_profile(session, market.buyer_ids["gamma"], None, {"name": "all", "price": 1})
    buyer = Login(create_person(market, "buyer", market.buyer_ids["gamma"], "member"), PASSWORD)
    seller = Login(create_person(market, "seller", market.seller_id, "member"), PASSWORD)
    operator = Login(create_person(market, "operator", "", "operator"), PASSWORD)
    shots = take(browser, portal, buyer, seller, tmp_path, operator=operator)
    assert [(shot.name, shot.path) for shot in shots[:10]] == [
        ("portal-login", "/login"), ("portal-buyer-home", "/buyer"), ("portal-lead", f"/leads/{lead_id}"),
        ("portal-search", "/search?status=sold"), ("portal-transactions", "/transactions?window=week"),
        ("portal-partners", "/partners"), ("portal-profiles", "/profiles"), ("portal-profile", f"/profiles/{profile}"),
        ("portal-seller-home", "/seller"), ("portal-markets", "/markets")]
    # The highest-priced state this month: the exchange has sold leads in some state by now.
    assert shots[10].name == "portal-market-state"
    assert re.fullmatch(r"/markets/[A-Z]{2}\?period=month&day=\d{4}-\d\d-01", shots[10].path)
    assert [(shot.name, shot.path) for shot in shots[11:13]] == [("portal-operator-home", "/operator"),
                                                                ("portal-admin", "/admin")]
    assert shots[13].name == "portal-admin-account" and re.fullmatch(r"/admin/accounts/[sb]_\w+", shots[13].path)
    assert (shots[14].name, shots[14].path) == ("portal-admin-services", "/admin/services")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{shot.name}.png" for shot in shots)
    window = (VIEWPORT["width"], VIEWPORT["height"])
    whole = ("portal-lead", "portal-market-state")
    assert {png_size(tmp_path / f"{shot.name}.png") for shot in shots if shot.name not in whole} == {window}
    for name in whole:  # the whole page: the lead's bids, the state's chart
        width, height = png_size(tmp_path / f"{name}.png")
        assert width == VIEWPORT["width"] and height > VIEWPORT["height"]
    # A wrong password is said, not shot as if it were the buyer's home.
    with pytest.raises(RuntimeError, match="refused the login"):
        take(browser, portal, Login(buyer.email, "not the password"), seller, tmp_path / "refused")


def test_a_buyer_opts_in_to_a_seller_and_its_rating_joins_the_community_average(market: Exchange, page):
    """Partnerships in the browser: out of a seller's leads and back in, then five stars for it,
    shown in orange beside the community's average (in grey) over both buyers' ratings."""
    seller, beta, gamma = market.seller_id, market.buyer_ids["beta"], market.buyer_ids["gamma"]
    market.recorded_sales([market.sell("beta", 1625), market.sell("gamma", 1650)])
    with market.sql() as session:
        ratings.rate_trading_partner(session, "seller", gamma, seller, 2, int(time.time() * 1000))
        session.commit()
    log_in(page, create_person(market, "buyer", beta))
    page.wait_for_url("**/buyer")
    page.click('nav a[href="/partners"]')
    page.wait_for_url("**/partners")
    row = page.locator(f"#partner-{seller}")
    row.get_by_role("button", name="Opt out").click()
    page.wait_for_url("**/partners?done=out")
    assert "Not opted in" in row.inner_text()
    row.get_by_role("button", name="Opt in").click()
    page.wait_for_url("**/partners?done=in")
    assert "Opted in" in row.inner_text() and "Not opted in" not in row.inner_text()
    assert "2.00" in row.locator("td.community").inner_text()

    row.locator("select[name=stars]").select_option("5")
    row.get_by_role("button", name="Rate").click()
    page.wait_for_url("**/partners?done=rated")
    community = row.locator("td.community").inner_text()
    assert "3.50" in community and "(2 ratings)" in community
    yours = row.locator(".stars.yours")
    assert yours.get_attribute("aria-label") == "5 of 5 stars"
    color = "e => getComputedStyle(e).color"
    assert yours.locator(".on").first.evaluate(color) == "rgb(232, 137, 12)"  # orange: the person's own
    assert row.locator(".stars.community .on").first.evaluate(color) == "rgb(122, 130, 142)"  # grey


def market_figures(market: Exchange, day: str, state: str) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
    """GetMarketPrices for one day and state, from the ledger: (sales, total cents) over every
    vertical, and the same per county."""
    with grpc.insecure_channel(f"127.0.0.1:{market.stack.port_of('ledger', 'GRPC_PORT')}") as channel:
        stub = dashboard_pb2_grpc.DashboardServiceStub(channel)
        answer = stub.GetMarketPrices(pb.GetMarketPricesRequest(period=pb.PERIOD_DAY, from_day=day, to_day=day,
                                                                state=state, by_county=True),
                                      metadata=[("authorization", f"Bearer {ADMIN_KEY}")], timeout=10)
    counties: dict[str, tuple[int, int]] = {}
    for row in answer.prices:
        sales, total = counties.get(row.county, (0, 0))
        counties[row.county] = (sales + row.sales, total + row.total_cents)
    return (sum(s for s, _ in counties.values()), sum(t for _, t in counties.values())), counties


def test_the_markets_map_opens_a_states_page_with_the_figures_of_get_market_prices(market: Exchange, page):
    """A lead sold in Dallas shows on the seller's map of the day: Texas coloured, its hover text the
    state's figures; a click on it opens Texas's page, whose total and counties are GetMarketPrices'."""
    market.reset_buyers()
    market.buyers.buyers["alpha"].bid = 2350
    consumer = market.new_consumer()
    consumer |= {"city": "Dallas", "state": "TX", "zip": "75201", "home_phone": "214" + consumer["home_phone"][3:]}
    lead_id = market.post(consumer).json()["lead_id"]
    poll_until(lambda: market.sale_for(lead_id), message="the sale")
    market.recorded_sales([lead_id])
    with market.sql() as session:
        sale = session.scalars(select(Sale).where(Sale.lead_id == lead_id, Sale.sold)).one()
    assert (sale.state, sale.county) == ("TX", "Dallas County")
    day = utc_day(sale.closed_at_ms)

    log_in(page, create_person(market, "seller", market.seller_id, "read-only"))
    page.wait_for_url("**/seller")
    page.click('nav a[href="/markets"]')
    page.wait_for_url("**/markets")
    page.select_option("#period", "day")
    page.fill("#day", day)
    page.click("form.search button[type=submit]")
    page.wait_for_url("**/markets?*period=day*")
    (sales, total), counties = market_figures(market, day, "TX")
    assert counties["Dallas County"][0] >= 1
    texas = page.locator("#state-TX")
    hover = f"Texas: {money(average(total, sales))} average, {sales} sale{'s' if sales != 1 else ''}"
    assert texas.locator("title").text_content() == hover
    assert texas.locator("path").evaluate("e => getComputedStyle(e).fill") != "rgb(227, 230, 234)"  # not "no sales"

    texas.click()
    page.wait_for_url(f"**/markets/TX?period=day&day={day}")
    assert page.locator("h1").inner_text().startswith("Texas")
    assert page.locator("#state-total").inner_text().startswith(
        f"{sales} sale{'s' if sales != 1 else ''}, {money(average(total, sales))} on average, {money(total)} in all")
    shown = {row.locator("th").inner_text(): row.locator("td").all_inner_texts()
             for row in page.locator("#market-counties tbody tr").all()}
    assert {county: (int(cells[3]), cells[2]) for county, cells in shown.items()} == \
        {county: (n, money(average(cents, n))) for county, (n, cents) in counties.items()}


def test_a_buyer_changes_a_profiles_price_and_hours_and_its_next_matching_lead_is_bid_at_the_new_price(
        market: Exchange, page):
    """Buy Profiles in the browser: an AutoBid buyer's profile, closed at this hour, is given this
    hour and the next on the weekly grid and a new price; the auction bids the new price for the
    next lead once it has re-read the accounts, and never bid the old one."""
    with market.sql() as session:
        buyer = accounts.create_buyer(session, "Profiles browser", "", "", kind="autobid")
        partnerships.add_partnership(session, market.seller_id, buyer.id)
        now = dt.datetime.now(dt.UTC)
        elsewhere = DAYS[(now.weekday() + 3) % 7]
        profile_id = buyer_settings.save_profile(session, buyer.id, None, {
            "name": "mornings", "price": 1500, "windows": [{"from": f"{elsewhere} 00:00", "to": f"{elsewhere} 01:00"}]})
    log_in(page, create_person(market, "buyer", buyer.id))
    page.wait_for_url("**/buyer")
    page.click('nav a[href="/profiles"]')
    page.wait_for_url("**/profiles")
    page.locator(f"#profile-{profile_id}").get_by_role("link", name="Change").click()
    page.wait_for_url(f"**/profiles/{profile_id}")
    page.uncheck(f"#h-{elsewhere}-00")
    hour = now.weekday() * 24 + now.hour
    for cell in (hour, (hour + 1) % (7 * 24)):  # this hour and the next: the lead below may cross into it
        page.check(f"#h-{DAYS[cell // 24]}-{cell % 24:02d}")
    page.fill("#price", "31.25")
    page.click("button.primary")
    page.wait_for_url("**/profiles?done=saved")
    assert "$31.25" in page.locator(f"#profile-{profile_id}").inner_text()

    market.reset_buyers()  # the party's other buyers are pinged but do not bid
    sold = None
    for _ in range(6):  # until the auction has re-read the accounts (ACCOUNTS_REFRESH_SECONDS, 5 s)
        lead_id = market.post(market.new_consumer() | {"min_price": 1000}).json()["lead_id"]
        sale = poll_until(lambda lead_id=lead_id: market.sale_for(lead_id), timeout_s=60, message="the outcome")
        if sale.buyer_id == buyer.id:
            sold = lead_id
            break
    assert sold is not None, "the changed profile never bid"
    market.recorded_sales([sold])

    def ranked_bids() -> list | None:
        # From auction.closed, which the ledger may record in a batch after the sale's.
        with market.sql() as session:
            return session.execute(select(AuctionBid.bid_cents, AuctionBid.profile_id).join(
                Auction, Auction.id == AuctionBid.auction_id).where(Auction.lead_id == sold,
                                                                    AuctionBid.buyer_id == buyer.id)).all() or None
    bids = poll_until(ranked_bids, message="the auction's bids in the ledger")
    with market.sql() as session:
        old_bids = session.scalar(select(func.count()).select_from(AuctionBid).where(
            AuctionBid.buyer_id == buyer.id, AuctionBid.bid_cents == 1500))
    assert [tuple(bid) for bid in bids] == [(3125, profile_id)] and old_bids == 0


def test_the_seller_home_shows_a_lead_sold_and_its_new_figures_without_reload(market: Exchange, page):
    log_in(page, create_person(market, "seller", market.seller_id, "read-only"))
    page.wait_for_url("**/seller")
    page.evaluate("window.stillTheSamePage = true")  # gone if the page were loaded again
    last_day = page.locator("#live-figures tbody tr").first
    sold_before = int(last_day.locator("td").first.inner_text())
    lead_id = market.sell("beta", 3350)
    row = page.locator(f"#live-leads tr:has(a[href='/leads/{lead_id}'])")
    row.wait_for(timeout=60_000)
    page.wait_for_function(f"""() => {{
        const row = document.querySelector("#live-leads a[href='/leads/{lead_id}']").closest("tr");
        return row.querySelector("td.status").textContent === "sold"; }}""", timeout=60_000)
    assert "$33.50" in row.inner_text()
    page.wait_for_function(f"""() => document.querySelector("#live-figures tbody tr td").textContent
        === "{sold_before + 1}" """, timeout=60_000)
    assert page.evaluate("window.stillTheSamePage") is True


def test_an_operator_creates_a_buyer_and_invites_a_person_who_then_logs_in(market: Exchange, browser, page):
    log_in(page, create_person(market, "operator", "", "operator"))
    page.wait_for_url("**/operator")
    assert page.locator("#live-totals td.sold").is_visible()  # the exchange's totals of the day
    page.click('nav a[href="/admin"]')
    page.wait_for_url("**/admin")
    page.fill("#buyer-name", "A buyer made in the browser")
    page.select_option("#buyer-buyer_kind", "autobid")
    page.click("#new-buyer button[type=submit]")
    assert page.locator("#secret").inner_text().startswith("lx_")  # its API key, shown this once
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/admin/accounts/b_*")
    buyer_id = page.url.rsplit("/", 1)[1]
    email = f"invited-{buyer_id}@example.com"
    page.fill("#email", email)
    page.select_option("#role", "owner")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#secret").inner_text()

    invitee = browser.new_context()
    try:
        their = invitee.new_page()
        their.goto(link)
        their.fill("#password", "the invitee's own password")
        their.fill("#password_again", "the invitee's own password")
        their.click("form.login button[type=submit]")
        their.wait_for_url("**/login?password=set")
        their.fill("#email", email)
        their.fill("#password", "the invitee's own password")
        their.click("form.login button[type=submit]")
        their.wait_for_url("**/buyer")
        assert f"buyer {buyer_id} · owner" in their.locator(".who").inner_text()
    finally:
        invitee.close()
    # The exchange's services, read as `leadx status` reads them.
    page.click('nav a[href="/admin/services"]')
    page.wait_for_url("**/admin/services")

    def every_service_ready_and_the_broker_read() -> bool:
        # A read is up to 5 s old, and a service busy beside the others may miss one 2 s answer: reloaded.
        if re.fullmatch(r"All \d+ services are ready\.", page.locator("#services-summary").inner_text()) \
                and page.locator("#lag-unread").count() == 0:  # its lag table, or none committed yet
            return True
        page.reload()
        return False
    poll_until(every_service_ready_and_the_broker_read, interval_s=1, message="every service ready on Services")
    assert page.locator("#service-dedup td.state").inner_text() == "ready"
    assert page.locator("#service-portal td.state").inner_text() == "ready"  # the portal reads itself too
    assert page.locator("#dead-letters").is_visible()  # read too (other tests set some aside on purpose)
