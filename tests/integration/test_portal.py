"""The web portal against the running exchange: logins (argon2id passwords, the one failure message,
the throttle), signed sessions that expire, CSRF on every form, the security headers, the pages a
buyer's and a seller's people see with the exchange's own figures, and the pages they may not see."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from leadx.accounts import people
from leadx.accounts.people import SessionSigner, SessionState
from leadx.contracts import topics
from leadx.platform.exchange_health import read_broker
from leadx.platform.utc_days import DAY_MS, utc_day
from services.portal.pages import LOGIN_FAILED
from tests.conftest import poll_until
from tests.integration.conftest import ALL_SERVICES, GROUPS
from tests.integration.harness import Exchange
from tests.integration.portal_people import PASSWORD, create_person, csrf_of, log_in

pytestmark = pytest.mark.integration


@pytest.fixture
def client(portal: str):
    with httpx.Client(base_url=portal, timeout=10) as client:
        yield client


def test_every_answer_carries_the_security_headers(client):
    for path in ("/login", "/static/portal.css", "/no-such-page", "/readyz", "/favicon.ico"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    assert client.get("/readyz").json() == {"status": "ready"}
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


def test_a_buyer_logs_in_and_sees_what_it_bought(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["alpha"], "read-only")
    lead_id = market.sell("alpha", 2150)
    answer = log_in(client, email)
    assert (answer.status_code, answer.headers["location"]) == (303, "/buyer")
    page = poll_until(lambda: (lambda p: p if lead_id in p.text else None)(client.get("/buyer")),
                      message="the lead on the buyer's home")
    assert page.status_code == 200
    assert "$21.50" in page.text and "<title>Buyer home · leadx</title>" in page.text
    assert email not in page.text  # no PII on the page's title or bar
    assert 'href="/buyer"' in page.text and 'href="/seller"' not in page.text
    assert client.get("/").headers["location"] == "/buyer"
    # A buyer's person may not open the seller's or the operator's pages: to it they do not exist.
    for path in ("/seller", "/operator"):
        refused = client.get(path)
        assert refused.status_code == 404 and "There is no such page." in refused.text


def test_a_seller_sees_its_latest_leads_with_their_status(market: Exchange, client):
    email = create_person(market, "seller", market.seller_id, "member")
    lead_id = market.sell("beta", 1800)
    assert log_in(client, email).headers["location"] == "/seller"

    def sold_row() -> str | None:
        # The ledger records a lead's events as they come, in batches (LEDGER_LINGER_MS): the row
        # may show it in its auction a moment before it shows it sold.
        page = client.get("/seller").text
        row = page[page.index(lead_id):][:400] if lead_id in page else ""
        return row if '<td class="status">sold</td>' in row else None

    row = poll_until(sold_row, message="the lead sold on the seller's home")
    assert "$18.00" in row
    assert client.get("/buyer").status_code == 404


def live_events(client, since: int | None, last_event_id: str = "", path: str = "/buyer/live"
                ) -> Iterator[dict[str, str]]:
    """One event stream of a home, read until it ends: each event's fields."""
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    params = {} if since is None else {"since": since}
    with client.stream("GET", path, params=params, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        event: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if event:
                    yield event
                event = {}
            elif not line.startswith(":"):  # a comment keeps the connection seen to be open
                name, _, value = line.partition(":")
                event[name] = value.strip()


def test_the_buyer_home_streams_each_lead_won_after_the_page_was_shown(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["gamma"], "read-only")
    assert log_in(client, email).status_code == 303
    shown = market.sell("gamma", 1100)
    poll_until(lambda: shown in client.get("/buyer").text, message="the first lead on the buyer's home")
    since = int(time.time() * 1000)  # the page's newest lead is older: it is not sent again
    won = market.sell("gamma", 2450)
    other = market.sell("beta", 3000)  # another buyer's: never in gamma's stream
    seen: list[dict[str, str]] = []
    poll_until(lambda: seen.extend(live_events(client, since)) or any(won in e.get("data", "") for e in seen),
               timeout_s=60, message="the lead won in the live stream")
    bought = [e for e in seen if e.get("event") == "bought"]
    assert bought and all(shown not in e["data"] and other not in e["data"] for e in bought)
    lead = json.loads(next(e["data"] for e in bought if won in e["data"]))
    assert lead == {"lead_id": won, "price": "$24.50", "vertical": lead["vertical"], "state": lead["state"],
                    "bought": lead["bought"]} and lead["bought"].endswith(" UTC")
    assert any(e.get("retry") == "3000" for e in seen)  # the browser reconnects after 3 s
    # A reconnecting browser sends the last event's id back: the stream goes on after it (and the
    # stream ends by itself, or this would not return).
    after = next(e for e in bought if won in e["data"])["id"]
    assert [e for e in live_events(client, since, str(int(after) + 1)) if e.get("event") == "bought"] == []
    # The stream is the buyer's person's only: without a session it ends for good (204: an
    # EventSource stops) and sets no cookie; a person of another kind is told there is none.
    client.cookies.clear()
    nobody = client.get("/buyer/live")
    assert nobody.status_code == 204 and "set-cookie" not in nobody.headers
    assert log_in(client, create_person(market, "seller", market.seller_id)).status_code == 303
    assert client.get("/buyer/live").status_code == 404


def fragments(events: list[dict[str, str]]) -> dict[str, str]:
    """The parts of the page a stream sent, by element id (the last of each)."""
    return {part["id"]: part["html"] for part in
            (json.loads(e["data"]) for e in events if e.get("event") == "fragment")}


def streamed_parts(client, path: str, wanted: set[str]) -> dict[str, str]:
    """The parts a home's live streams send, read one stream after another until each wanted part
    came (a stream's first read can miss the dashboard on a busy machine; it retries each second)."""
    parts: dict[str, str] = {}
    poll_until(lambda: parts.update(fragments(list(live_events(client, None, path=path)))) or wanted <= set(parts),
               timeout_s=30, message=f"the parts {sorted(wanted)} in {path}'s stream")
    return parts


def test_the_seller_and_operator_homes_stream_their_parts_rendered_as_the_pages_render_them(
        market: Exchange, client):
    sold = market.sell("alpha", 2750)
    market.recorded_sales([sold])
    assert log_in(client, create_person(market, "seller", market.seller_id, "read-only")).status_code == 303
    page = client.get("/seller").text
    parts = streamed_parts(client, "/seller/live", {"live-figures", "live-leads"})
    assert set(parts) == {"live-figures", "live-leads"} and sold in parts["live-leads"]
    for element_id, html in parts.items():  # the same HTML the page holds in that element
        assert f'<div id="{element_id}" data-fragment>\n{html}' in page
    assert client.get("/operator/live").status_code == 404 and client.get("/buyer/live").status_code == 404

    client.cookies.clear()
    assert client.get("/seller/live").status_code == 204
    assert log_in(client, create_person(market, "operator", "", "operator")).status_code == 303
    parts = streamed_parts(client, "/operator/live", {"live-totals", "live-sales"})
    assert set(parts) == {"live-totals", "live-sales"}
    assert sold in parts["live-sales"] and "$27.50" in parts["live-sales"]
    assert '<td class="sold">' in parts["live-totals"] and "the start of the day, UTC" in parts["live-totals"]
    assert client.get("/seller/live").status_code == 404


def lag_rows(page: str) -> dict[tuple[str, str], int]:
    """The Services page's consumer lag: (group, topic) → records behind."""
    return {(group, topic): int(lag) for group, topic, lag in re.findall(
        r'<tr(?: class="behind")?><th scope="row">([^<]+)</th><td>([^<]+)</td>\s*<td class="lag">(\d+)</td>', page)}


def test_an_operator_sees_every_service_ready_and_each_groups_lag(market: Exchange, client):
    sold = market.sell("alpha", 1500)  # with a bid: the auction's bid feed commits too
    market.recorded_sales([sold])
    assert log_in(client, create_person(market, "operator", "", "operator")).status_code == 303

    services = [*ALL_SERVICES, "portal"]  # the portal reads itself too

    def every_group_read_and_every_service_ready() -> str | None:
        page = client.get("/admin/services")
        assert page.status_code == 200
        groups = {group for group, _ in lag_rows(page.text)}
        return page.text if groups >= GROUPS and f"All {len(services)} services are ready." in page.text else None

    # Polled: a read is up to 5 s old, and a service busy beside the others may miss one 2 s answer.
    page = poll_until(every_group_read_and_every_service_ready,
                      message="every consumer group and every service ready on the Services page")
    for name in services:
        assert re.search(rf'<tr id="service-{name}"><th scope="row">{name}</th>\s*<td class="state ok">ready</td>',
                         page), name
    # Unprefixed, and the same pairs the broker holds (the auction's faust group reads lead.scored).
    lags = lag_rows(page)
    assert ("leadx-auction", topics.LEAD_SCORED) in lags and ("leadx-ledger", topics.AUCTION_CLOSED) in lags
    assert all(lag >= 0 for lag in lags.values())
    read, _ = asyncio.run(read_broker(market.stack.kafka_bootstrap, market.prefix))
    assert set(lags) <= {(g.group.removeprefix(market.prefix), g.topic.removeprefix(market.prefix)) for g in read}

    def dead_letters_as_the_broker_holds() -> bool:
        # Other tests set events aside on purpose; the page (a read up to 5 s old) says as many.
        count = asyncio.run(read_broker(market.stack.kafka_bootstrap, market.prefix))[1].count
        page = client.get("/admin/services").text
        if not count:
            return "None: no event has been set aside." in page
        return re.search(rf"<strong>{count}</strong> events? (is|are) set aside on dead.letter", page) is not None

    poll_until(dead_letters_as_the_broker_holds, message="the page's dead letters as the broker holds them")
    client.cookies.clear()
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["alpha"], "owner")).status_code == 303
    assert client.get("/admin/services").status_code == 404


def test_search_finds_only_the_accounts_own_leads(market: Exchange, client):
    mine, theirs = market.sell("gamma", 1400), market.sell("alpha", 1500)
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["gamma"])).status_code == 303
    found = poll_until(lambda: (lambda p: p if mine in p.text else None)(
        client.get("/search", params={"lead_id": mine.lower(), "status": "sold"})), message="the lead found")
    assert found.status_code == 200 and "$14.00" in found.text
    assert 'value="sold" selected' in found.text
    other = client.get("/search", params={"lead_id": theirs})  # another buyer's lead: not found, like none
    assert other.status_code == 200 and "No lead matches." in other.text
    assert theirs not in other.text.split("</form>")[-1]  # after the search form, which keeps the id typed
    bad = client.get("/search", params={"lead_id": "nope", "day": "2026-02-30", "state": "NY", "status": "won"})
    assert bad.status_code == 400
    assert 'id="lead_id-error">a lead id is 10 letters and digits' in bad.text
    assert 'id="day-error">a day is YYYY-MM-DD' in bad.text
    assert 'id="status-error">choose a status from the list' in bad.text
    assert "state-error" not in bad.text and 'value="NY"' in bad.text
    backwards = client.get("/search", params={"day": "2026-12-04", "to_day": "2026-12-01"})
    assert backwards.status_code == 400
    assert 'id="to_day-error">the last day cannot be before the first<' in backwards.text
    now_ms = int(time.time() * 1000)
    week = poll_until(lambda: (lambda p: p if mine in p.text else None)(client.get("/search", params={
        "day": utc_day(now_ms - 6 * DAY_MS), "to_day": utc_day(now_ms)})), message="the lead in the last seven days")
    assert theirs not in week.text.split("</form>")[-1]
    forged = client.get("/search", params={"page": "not-a-token"})
    assert forged.status_code == 400 and 'id="page-error">the search was refused' in forged.text
    # A seller's person searches the seller's leads, both of them, whoever bought them.
    client.cookies.clear()  # another browser
    assert log_in(client, create_person(market, "seller", market.seller_id, "read-only")).status_code == 303
    # Both sold; the ledger may record the second's sale a moment after the first's (its batches).
    poll_until(lambda: (lambda listed: mine in listed and theirs in listed)(
        client.get("/search", params={"status": "sold"}).text), message="both leads listed sold")


def test_transactions_in_the_three_windows_and_as_csv(market: Exchange, client):
    lead_id = market.sell("beta", 2600)
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["beta"])).status_code == 303
    for window in ("day", "week", "month"):
        page = poll_until(lambda window=window: (lambda p: p if lead_id in p.text else None)(
            client.get("/transactions", params={"window": window})), message=f"the sale in the last {window}")
        row = page.text[page.text.index(lead_id):].split("</tr>")[0]
        assert 'class="change">-$26.00<' in row  # what the purchase did to the buyer's balance
        assert 'class="balance">-$26.00<' in row  # and the balance after it: beta's only purchase
        assert f'value="{window}" selected' in page.text
    download = client.get("/transactions.csv", params={"window": "week"})
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="transactions-week.csv"'
    lines = download.text.splitlines()
    assert lines[0].startswith("at_utc,kind,lead_id")
    assert any(f",sale,{lead_id}," in line and line.endswith(",2600,260,-2600,-2600") for line in lines[1:])
    bad = client.get("/transactions", params={"window": "year"})
    assert bad.status_code == 400 and 'id="window-error">choose the last day, week or month<' in bad.text
    assert client.get("/transactions.csv", params={"window": "year"}).status_code == 400
    forged = client.get("/transactions", params={"window": "day", "page": "not-a-token"})
    assert forged.status_code == 400 and 'id="page-error">the list was refused' in forged.text


def test_a_wrong_password_or_an_unknown_email_gets_the_one_generic_message(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["beta"])
    for who, password in ((email, "not the password at all"), ("nobody@example.com", PASSWORD)):
        answer = log_in(client, who, password)
        assert answer.status_code == 401 and LOGIN_FAILED in answer.text
        assert "set-cookie" in answer.headers and "location" not in answer.headers
    assert client.get("/buyer").headers["location"] == "/login"


def test_bad_input_is_shown_beside_its_field_and_the_email_kept(client):
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"csrf_token": token, "email": "not-an-email", "password": ""})
    assert answer.status_code == 400
    assert 'id="email-error">this is not an email address (name@example.com)<' in answer.text
    assert 'id="password-error">enter your password<' in answer.text
    assert 'value="not-an-email"' in answer.text


def test_forms_without_their_csrf_token_are_refused(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["gamma"])
    client.get("/login")
    for data in ({"email": email, "password": PASSWORD},
                 {"csrf_token": "forged", "email": email, "password": PASSWORD}):
        refused = client.post("/login", data=data)
        assert refused.status_code == 403 and "did not come from this page" in refused.text
    assert log_in(client, email).status_code == 303
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/buyer").status_code == 200  # still logged in


def test_logins_are_throttled_per_account_with_the_same_message(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["alpha"])
    for _ in range(5):
        assert log_in(client, email, "not the password at all").status_code == 401
    answer = log_in(client, email)  # the right password, but too many failures before it
    assert answer.status_code == 401 and LOGIN_FAILED in answer.text


def test_logout_ends_the_session_everywhere(market: Exchange, client, portal: str):
    email = create_person(market, "seller", market.seller_id)
    assert log_in(client, email).status_code == 303
    with httpx.Client(base_url=portal, timeout=10) as other_browser:
        assert log_in(other_browser, email).status_code == 303
        kept = dict(client.cookies)
        answer = client.post("/logout", data={"csrf_token": csrf_of(client.get("/seller").text)})
        assert answer.headers["location"] == "/login"
        assert other_browser.get("/seller").headers["location"] == "/login?ended=1"
    client.cookies.clear()
    client.cookies.update(kept)
    assert client.get("/seller").headers["location"] == "/login?ended=1"


def test_sessions_end_when_idle_or_too_old_and_altered_cookies_count_for_nothing(market: Exchange, client):
    email = create_person(market, "buyer", market.buyer_ids["beta"])
    with market.sql() as session:
        person = people.person_by_email(session, email)
        person_id, epoch = person.id, person.session_epoch
    signer = SessionSigner(market.stack.portal_secret.encode())
    now = int(time.time())
    idle = SessionState("csrf-secret", person_id, epoch, logged_in_at=now - 3600, seen_at=now - 31 * 60)
    too_old = SessionState("csrf-secret", person_id, epoch, logged_in_at=now - 13 * 3600, seen_at=now - 60)
    fresh = SessionState("csrf-secret", person_id, epoch, logged_in_at=now - 60, seen_at=now - 60)

    def with_cookie(state: SessionState, by: SessionSigner = signer) -> httpx.Client:
        client.cookies.clear()  # only this cookie, not the one the portal set at the last answer
        client.cookies.set("leadx_session", by.dumps(state))
        return client

    for state in (idle, too_old):
        assert with_cookie(state).get("/buyer").headers["location"] == "/login?ended=1"
        assert "Your session has ended" in client.get("/login?ended=1").text
    assert with_cookie(fresh).get("/buyer").status_code == 200
    assert with_cookie(fresh, SessionSigner(b"x" * 32)).get("/buyer").headers["location"] == "/login"


def test_the_portals_log_names_people_by_id_never_by_email(market: Exchange, client):
    """Last in this module: every login above, good and bad, is in the log by now."""
    email = create_person(market, "buyer", market.buyer_ids["alpha"])
    assert log_in(client, email, "wrong password here").status_code == 401
    assert log_in(client, email).status_code == 303
    log = market.stack.services["portal"].log_path.read_text()
    assert '"msg": "portal login"' in log and '"msg": "portal login refused"' in log
    assert "@example.com" not in log and PASSWORD not in log
