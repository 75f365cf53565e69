"""Returns through the real services: a buyer sends back a lead it bought, within the window and
under its return-rate cap; the ledger books the exact reverse of the sale; the seller sees the lead
as returned; a repeat changes nothing. Also a seller's own platform fee."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from leadx.accounts import accounts
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.db.models import LedgerEntry, LedgerTransaction, Sale
from leadx.platform.utc_days import DAY_MS
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def sold_to_alpha(market: Exchange, price: int = 3000) -> str:
    """A lead sold to alpha, recorded by the ledger (a return is checked against the ledger)."""
    return sold_to_alpha_many(market, 1, price)[0]


def sold_to_alpha_many(market: Exchange, count: int, price: int = 3000) -> list[str]:
    """`count` leads sold to alpha alone (`Exchange.sell_many`: side by side, one auction window for
    them all, and a lead a loaded machine let close unsold replaced) and recorded by the ledger."""
    lead_ids = market.sell_many("alpha", price, count)
    sales = market.recorded_sales(lead_ids)
    assert all(sale.buyer_id == market.buyer_ids["alpha"] and sale.price_cents == price for sale in sales), sales
    return lead_ids


def entries_of(market: Exchange, lead_id: str) -> dict[str, dict[str, int]]:
    with market.sql() as session:
        rows = session.execute(select(LedgerEntry.transaction_id, LedgerEntry.account, LedgerEntry.amount_cents)
                               .where(LedgerEntry.transaction_id.like(f"%:{lead_id}:%")))
        out: dict[str, dict[str, int]] = {}
        for transaction, account, amount in rows:
            out.setdefault(transaction.split(":")[0], {})[account] = amount
        return out


def test_a_buyer_returns_a_lead_and_the_books_reverse_the_sale(market: Exchange):
    # The default cap is 25% of the buyer's purchases: buy four, return one.
    lead_ids = sold_to_alpha_many(market, 4)
    lead_id = lead_ids[0]
    alpha, beta = market.buyer_ids["alpha"], market.buyer_ids["beta"]

    # Only the buyer of the lead may return it; a seller's key is not a buyer's.
    assert market.return_lead(lead_id, "beta").json()["errors"][0]["code"] == "LEAD_NOT_FOUND"
    assert market.return_lead(lead_id, "alpha", api_key=market.seller_key).status_code == 401
    missing = market.return_lead(lead_id, "alpha", reason=None)
    assert missing.status_code == 422 and missing.json()["errors"][0] == {
        "code": "FIELD_MISSING", "field": "reason", "message": "reason is required: say why the lead is returned"}

    # In XML, like a seller's POST.
    returned = http.post(f"{market.intake_url()}/v1/leads/{lead_id}/return", timeout=10,
                         content=b"<return><reason>disconnected phone</reason></return>",
                         headers={"Authorization": f"Bearer {market.buyer_keys['alpha']}",
                                  "Content-Type": "application/xml", "Accept": "application/json"})
    assert returned.status_code == 200, returned.text
    body = returned.json()
    assert body["status"] == "returned" and body["lead_id"] == lead_id and body["credited_cents"] == 3000

    # A repeat answers as the first did and books nothing more.
    again = market.return_lead(lead_id, "alpha")
    assert again.status_code == 200 and again.json()["returned_at_ms"] == body["returned_at_ms"]

    books = poll_until(lambda: entries_of(market, lead_id).get("return") and entries_of(market, lead_id),
                       message="the return booked")
    assert books["sale"] == {f"buyer:{alpha}": -3000, f"seller:{market.seller_id}": 2700, "platform:fees": 300}
    assert books["return"] == {account: -amount for account, amount in books["sale"].items()}
    with market.sql() as session:
        assert session.get(LedgerTransaction, f"return:{lead_id}:{alpha}").amount_cents == 3000

    # The seller hears of it: its status query and the lead.returned event, which carries no PII.
    assert poll_until(lambda: market.status(lead_id).json()["status"] == "returned", message="status returned")
    events = [m for _, m in read_topic(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.LEAD_RETURNED),
                                       ev.LeadReturned) if m.lead_id == lead_id]
    assert len(events) == 2  # the repeat re-published under the same event id; the ledger booked one
    event = events[0]
    assert (event.buyer_id, event.seller_id, event.price_cents, event.seller_fee_cents) == (
        alpha, market.seller_id, 3000, 300)
    assert event.reason == "disconnected phone" and len(event.zip3) == 3 and event.vertical == "auto_loan"
    assert beta not in {e.buyer_id for e in events}

    # A second return of four purchases would make 50%: over the cap.
    capped = market.return_lead(lead_ids[1], "alpha")
    assert capped.status_code == 422 and capped.json()["errors"][0]["code"] == "RETURN_RATE_EXCEEDED"


def test_a_lead_cannot_be_returned_after_the_window(market: Exchange):
    lead_ids = sold_to_alpha_many(market, 4)
    with market.sql() as session:  # as if sold eight days ago (the default window is seven)
        session.execute(update(Sale).where(Sale.lead_id == lead_ids[0])
                        .values(closed_at_ms=int(time.time() * 1000) - 8 * DAY_MS))
        session.commit()
    late = market.return_lead(lead_ids[0], "alpha")
    assert late.status_code == 422 and late.json()["errors"][0]["code"] == "RETURN_WINDOW_CLOSED"
    assert market.status(lead_ids[0]).json()["status"] == "sold"


def test_a_seller_s_own_fee_applies_to_its_next_sales(market: Exchange):
    with market.sql() as session:
        accounts.set_seller_fee(session, market.seller_id, 12.5)
    try:
        def a_sale_at_the_new_fee() -> ev.SaleClosed | None:
            lead_id = sold_to_alpha(market, price=1001)  # delivery re-reads the fees every 5 s
            sale = market.sale_for(lead_id)
            return sale if sale.seller_fee_cents != 100 else None
        sale = poll_until(a_sale_at_the_new_fee, timeout_s=30, interval_s=0.5, message="a sale at 12.5%")
        assert sale.seller_fee_cents == 125  # 125.125 cents, rounded
    finally:
        with market.sql() as session:
            accounts.set_seller_fee(session, market.seller_id, None)


def rating(market: Exchange, path: str, key: str, stars=None) -> httpx.Response:
    url = f"{market.intake_url()}{path}"
    headers = {"Authorization": f"Bearer {key}"}
    if stars is None:
        return http.get(url, headers=headers, timeout=10)
    return http.put(url, json={"stars": stars}, headers=headers, timeout=10)


def test_buyers_rate_sellers_they_bought_from_and_see_the_community_average(market: Exchange):
    sold_to_alpha(market)
    seller_path = f"/v1/sellers/{market.seller_id}/rating"
    assert rating(market, seller_path, market.buyer_keys["alpha"], 4).json()["your_stars"] == 4
    assert rating(market, seller_path, market.buyer_keys["alpha"], 2).json()["your_stars"] == 2  # replaces
    # gamma never bought from this seller: it may look, not rate.
    refused = rating(market, seller_path, market.buyer_keys["gamma"], 5)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "NOT_A_TRADING_PARTNER"
    market.buyers.buyers["alpha"].bid = None
    market.buyers.buyers["gamma"].bid = 2000
    response = market.post(market.new_consumer())
    poll_until(lambda: (s := market.sale_for(response.json()["lead_id"])) and s.buyer_id, message="gamma's sale")
    poll_until(lambda: rating(market, seller_path, market.buyer_keys["gamma"], 5).status_code == 200,
               message="gamma's rating, once the ledger has its purchase")
    seen = rating(market, seller_path, market.buyer_keys["gamma"]).json()
    assert (seen["your_stars"], seen["average_stars"], seen["ratings"], seen["seller"]) == (5, 3.5, 2, market.seller_id)
    assert rating(market, seller_path, market.buyer_keys["beta"]).json()["your_stars"] is None

    # Sellers may rate the buyers they sold to; bad stars and unknown accounts are refused clearly.
    buyer_path = f"/v1/buyers/{market.buyer_ids['alpha']}/rating"
    assert rating(market, buyer_path, market.seller_key, "5").json()["average_stars"] == 5.0
    for bad in (0, 6, 2.5, "many", True):
        wrong = rating(market, buyer_path, market.seller_key, bad)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "stars", bad
    assert rating(market, "/v1/buyers/b_nobody/rating", market.seller_key).status_code == 404
    assert rating(market, buyer_path, market.buyer_keys["alpha"], 5).status_code == 401  # a buyer's key


PII_VALUES_OF = ("email", "home_phone", "ssn", "last_name", "address")


def test_analysts_decode_sales_and_returns_with_the_documented_consumer_and_leadx_tail(market: Exchange, tmp_path):
    lead_ids = sold_to_alpha_many(market, 8)  # room under the 25% cap for one more return
    assert market.return_lead(lead_ids[-1], "alpha").status_code == 200
    consumer = market.new_consumer()  # whose identities must appear nowhere below
    market.buyers.buyers["alpha"].bid = 1111
    sold = market.post(consumer).json()["lead_id"]
    poll_until(lambda: market.sale_for(sold), message="the last sale")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": market.stack.kafka_bootstrap,
           "LEADX_TOPIC_PREFIX": market.prefix, "GROUP_ID": f"{market.prefix}analyst-test"}
    returns = len(read_topic(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.LEAD_RETURNED),
                             ev.LeadReturned))
    expected = len(market.sales_events()) + returns

    # The Python block of docs/analytics.md, as an analyst would run it.
    script = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "analytics.md").read_text(), re.S).group(1)
    (tmp_path / "analyst.py").write_text(script)
    ran = subprocess.run([sys.executable, str(tmp_path / "analyst.py")], env={**env, "LIMIT": str(expected)},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == expected
    assert any(line.startswith(f"return {lead_ids[-1]} 3000 300 auto_loan ") for line in lines)
    assert any(line.startswith(f"sale {sold} sold 1111 111 auto_loan ") for line in lines)
    assert not any(str(consumer[name]) in ran.stdout for name in PII_VALUES_OF)

    # `leadx tail`, live from the beginning: JSON lines of decoded events. Other tests' buyers
    # return leads on this exchange too: alpha's return is among the `returns` lines already written.
    tail = subprocess.Popen([sys.executable, "-m", "leadx.cli.main", "tail", "lead.returned", "--from-beginning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tailed = [json.loads(tail.stdout.readline()) for _ in range(returns)]
        line = next((t for t in tailed if t["event"]["buyer_id"] == market.buyer_ids["alpha"]), tailed[0])
    finally:
        tail.kill()
        tail.wait(10)
    assert line["topic"] == "lead.returned" and line["event"]["buyer_id"] == market.buyer_ids["alpha"]
    assert set(line["event"]) <= {field.name for field in ev.LeadReturned.DESCRIPTOR.fields}
