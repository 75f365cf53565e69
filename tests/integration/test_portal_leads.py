"""The portal's lead page and Return Lead against the running exchange: a lead read whole by its
buyer (the consumer's details too), by its seller without them, by nobody else (404); a return
booked as the API books it, refused with its reason beside the form, and refused to a read-only
person."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from leadx.accounts import accounts
from leadx.platform.db.models import Lead, LeadReturn
from tests.conftest import poll_until
from tests.integration.harness import Exchange
from tests.integration.portal_people import create_person, csrf_of, log_in, sell_returnable

pytestmark = pytest.mark.integration


@pytest.fixture
def client(portal: str):
    with httpx.Client(base_url=portal, timeout=10) as client:
        yield client


@pytest.fixture
def other(portal: str):
    with httpx.Client(base_url=portal, timeout=10) as client:
        yield client


def consumer_email(market: Exchange, lead_id: str) -> str:
    """The lead's email as the ledger stored it, once it has (its batches may lag the sale)."""
    def stored() -> str | None:
        with market.sql() as session:
            lead = session.get(Lead, lead_id)
            return str(lead.fields["email"]) if lead is not None and lead.fields else None
    return str(poll_until(stored, message="the lead's fields in the ledger"))


def returns_of(market: Exchange, lead_id: str) -> list[LeadReturn]:
    with market.sql() as session:
        return list(session.scalars(select(LeadReturn).where(LeadReturn.lead_id == lead_id)))


def lead_page(client: httpx.Client, lead_id: str) -> httpx.Response:
    return poll_until(lambda: (lambda p: p if p.status_code == 200 and "sold" in p.text else None)(
        client.get(f"/leads/{lead_id}")), message="the lead's page")


def test_a_lead_is_shown_whole_to_its_buyer_and_seller_and_to_nobody_else(market: Exchange, client, other):
    lead_id = market.sell("alpha", 2250)
    email = consumer_email(market, lead_id)
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["alpha"], "read-only")).status_code == 303
    page = lead_page(client, lead_id)
    assert f"<title>Lead {lead_id} · leadx</title>" in page.text and email not in page.text.split("<main>")[0]
    assert email in page.text  # the consumer's details: to the buyer that bought the lead
    assert "$22.50" in page.text and "Status history" in page.text and "Posts and replies" in page.text
    assert ">you<" in page.text and market.buyer_ids["beta"] not in page.text
    # A read-only person sees no Return link, and is refused the form and the POST.
    assert "Return Lead" not in page.text
    assert client.get(f"/leads/{lead_id}/return").status_code == 403
    refused = client.post(f"/leads/{lead_id}/return", data={"csrf_token": csrf_of(page.text), "reason": "bad"})
    assert refused.status_code == 403 and returns_of(market, lead_id) == []
    # The lead is linked from the buyer's home and from search.
    assert f'href="/leads/{lead_id}"' in client.get("/search", params={"lead_id": lead_id}).text

    # Its seller reads it without the consumer's details, with the platform's fee.
    assert log_in(other, create_person(market, "seller", market.seller_id, "member")).status_code == 303
    seen = lead_page(other, lead_id)
    assert email not in seen.text and "$22.50" in seen.text and "$2.25" in seen.text
    # Another buyer's people and another seller's: no such lead, exactly as for one that does not exist.
    with market.sql() as session:
        other_seller = accounts.seller_for_key(session, market.other_seller_key)
    for kind, account in (("buyer", market.buyer_ids["beta"]), ("seller", other_seller)):
        with httpx.Client(base_url=str(client.base_url), timeout=10) as stranger:
            assert log_in(stranger, create_person(market, kind, account)).status_code == 303
            for path in (f"/leads/{lead_id}", f"/leads/{lead_id}/return", "/leads/NOSUCHLEAD"):
                answer = stranger.get(path)
                assert answer.status_code == 404 and "There is no such lead." in answer.text
                assert email not in answer.text


def test_the_auctions_ranked_bids_are_shown_with_the_other_bidders_unnamed_for_the_buyer(market: Exchange, client,
                                                                                          other):
    market.reset_buyers()
    market.buyers.buyers["alpha"].bid = 2400
    market.buyers.buyers["beta"].bid = 1800
    lead_id = market.post(market.new_consumer()).json()["lead_id"]
    assert poll_until(lambda: market.sale_for(lead_id), message="the sale").buyer_id == market.buyer_ids["alpha"]
    alpha, beta = market.buyer_ids["alpha"], market.buyer_ids["beta"]

    def bids_shown(reader: httpx.Client) -> str:
        # The close reaches the ledger on its own topic: the page may be read before it is recorded.
        return poll_until(lambda: (lambda p: p.text if 'class="bids"' in p.text else None)(
            reader.get(f"/leads/{lead_id}")), message="the lead page's bids")

    assert log_in(client, create_person(market, "buyer", alpha, "member")).status_code == 303
    page = bids_shown(client)
    bids = page.split('class="bids"')[1].split("</table>")[0]
    assert bids.index(">you<") < bids.index("$24.00") < bids.index("another buyer") < bids.index("$18.00")
    assert beta not in page  # the losing bidder's amount, never its name
    assert log_in(other, create_person(market, "seller", market.seller_id, "member")).status_code == 303
    bids = bids_shown(other).split('class="bids"')[1].split("</table>")[0]
    assert bids.index(alpha) < bids.index("$24.00") < bids.index(beta) < bids.index("$18.00")


def test_a_buyer_returns_a_lead_with_a_reason_and_is_credited(market: Exchange, client):
    lead_id = market.sell("alpha", 1950)
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["alpha"], "member")).status_code == 303
    page = lead_page(client, lead_id)
    assert f'href="/leads/{lead_id}/return"' in page.text and "Return Lead" in page.text
    form = client.get(f"/leads/{lead_id}/return")
    assert form.status_code == 200 and 'name="reason"' in form.text
    token = csrf_of(form.text)
    # Bad input: said beside the field, the text kept, nothing saved.
    for reason, message in (("   ", "reason is required"), ("x" * 501, "at most 500 characters")):
        bad = client.post(f"/leads/{lead_id}/return", data={"csrf_token": token, "reason": reason})
        assert bad.status_code == 400 and message in bad.text and 'id="reason-error"' in bad.text
    assert client.post(f"/leads/{lead_id}/return", data={"reason": "no token"}).status_code == 403
    # The API's rules: one return of the buyer's one purchase would pass the return rate cap.
    capped = client.post(f"/leads/{lead_id}/return", data={"csrf_token": token, "reason": "disconnected phone"})
    assert capped.status_code == 422 and "Returns may be at most 25% of your purchases" in capped.text
    assert 'id="lead-error"' in capped.text and "disconnected phone" in capped.text  # the reason kept
    assert returns_of(market, lead_id) == []
    market.recorded_sales(market.sell_many("alpha", 1000, 3))  # one return of four: within the cap

    done = client.post(f"/leads/{lead_id}/return", data={"csrf_token": token, "reason": "  disconnected phone "})
    assert (done.status_code, done.headers["location"]) == (303, f"/leads/{lead_id}?returned=1")
    assert [(r.reason, r.price_cents) for r in returns_of(market, lead_id)] == [("disconnected phone", 1950)]
    # The ledger books it from lead.returned: the buyer sees the credit in its transactions.
    def credit_row() -> str | None:
        rows = client.get("/transactions", params={"window": "day"}).text.split("<tr>")
        return next((r for r in rows if lead_id in r and '<td class="kind">return</td>' in r), None)
    assert 'class="change">$19.50<' in poll_until(credit_row, message="the return's credit in the transactions")
    after = poll_until(lambda: (lambda p: p if '<td class="status">returned</td>' in p.text else None)(
        client.get(f"/leads/{lead_id}?returned=1")), message="the lead returned")
    assert "disconnected phone" in after.text and "Return Lead" not in after.text
    assert "credited to your account" in after.text
    # One return per lead: the form is not offered again, and a repeat books nothing more.
    assert client.get(f"/leads/{lead_id}/return").headers["location"] == f"/leads/{lead_id}"
    client.post(f"/leads/{lead_id}/return", data={"csrf_token": token, "reason": "again"})
    assert [r.reason for r in returns_of(market, lead_id)] == ["disconnected phone"]


def test_the_seller_is_notified_of_a_return_until_it_has_seen_it(market: Exchange, client, other):
    lead_id = sell_returnable(market, "gamma", 1650)
    assert log_in(other, create_person(market, "seller", market.seller_id, "read-only")).status_code == 303
    other.get("/seller")  # the returns of earlier tests: seen
    assert '<span class="unread"' not in other.get("/search").text
    assert log_in(client, create_person(market, "buyer", market.buyer_ids["gamma"], "owner")).status_code == 303
    token = csrf_of(lead_page(client, lead_id).text)
    assert client.post(f"/leads/{lead_id}/return", data={"csrf_token": token, "reason": "wrong number"}
                       ).status_code == 303
    # The unread count in the seller's navigation bar, on any page; the notice with its reason on its home.
    bar = other.get("/search").text.split("</nav>")[0]
    assert '<span class="unread" title="returns not yet seen">1</span>' in bar
    home = other.get("/seller").text
    notice = home[home.index('<ul class="notices">'):].split("</ul>")[0]
    assert lead_id in notice and "wrong number" in notice and "<strong>New:</strong>" in notice
    assert '<span class="unread"' not in home.split("</nav>")[0]  # seen now
    again = other.get("/seller").text
    item = again[again.index('<ul class="notices">'):].split("</ul>")[0].split(lead_id)[0].split("<li")[-1]
    assert "New:" not in item and "wrong number" in again
    assert '<span class="unread"' not in other.get("/search").text
