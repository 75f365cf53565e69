"""POST Adaptation through the running exchange: a buyer with a rules section receives its own
format and is read by its reply rules; a buyer whose section is broken is passed over and the lead
goes to the next bidder; `leadx delivery preview` prints the same body."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.store import DedupStore
from leadx.dev.demo.consumers import ping_subset
from leadx.dev.stack import free_port
from leadx.leads import pii
from leadx.leads.phone_areas import area_codes_of
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.models import Buyer, PostAttempt
from leadx.platform.redis.client import connect
from leadx.platform.utc_days import DAY_MS
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, Party, start_exchange

pytestmark = pytest.mark.integration

RULES = """
[buyer alpha]
format form
zip_code   <- zip
phone_area <- home_phone[1:3]
phone_rest <- home_phone[4:10]
name       <- first_name + " " + last_name
owns       <- residence_type {own: yes, rent: no, other: no}
income     <- gross_monthly_income as dollars
ref        <- lead_id
reply text
accepted     <- /^ACCEPTED/
confirmation <- /ref=(\\S+)/
error        <- /^REJECTED: (.*)$/

[buyer beta]
format json
zip <- res_zip

[buyer delta]
auth bearer env:DELTA_TOKEN
ping fields residence_type months_employed

[buyer epsilon]
auth hmac env:EPSILON_KEY
timeout 1
"""
BUYERS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "ghost"]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    rules_dir = tmp_path_factory.mktemp("post-rules")
    (rules_dir / "buyers.rules").write_text(RULES)

    def unreachable_ghost(session: Session, party: Party) -> None:
        # ghost bids through the buyers' server, but its post URL has nothing listening.
        session.get(Buyer, party.buyer_ids["ghost"]).post_url = f"http://127.0.0.1:{free_port()}/post"

    # At DEBUG, as the dev overlay runs: the logs test_no_log_line_holds_the_consumers_data reads are
    # every line the services write.
    exchange = start_exchange(tmp_path_factory.mktemp("adapt"), kafka_bootstrap, redis_url, "adapt.", BUYERS,
                              ["intake", "dedup", "scoring", "auction", "delivery", "ledger"],
                              prepare=unreachable_ghost, DELIVERY_RULES_DIR=str(rules_dir), DELTA_TOKEN="tok-delta",
                              EPSILON_KEY="k-eps", DELIVERY_BREAKER_FAILURES="2",
                              DELIVERY_BREAKER_COOLDOWN_SECONDS="600", LOG_LEVEL="DEBUG")
    exchange.rules_dir = rules_dir
    yield exchange
    exchange.stop()


@pytest.fixture(autouse=True)
def fresh_buyers(adapted: Exchange) -> None:
    adapted.reset_buyers()


def attempts_of(exchange: Exchange, lead_id: str) -> list[PostAttempt]:
    engine = make_engine(exchange.stack.database_url)
    try:
        with session_factory(engine)() as session:
            query = select(PostAttempt).where(PostAttempt.lead_id == lead_id).order_by(PostAttempt.id)
            return list(session.scalars(query))
    finally:
        engine.dispose()


def sold(exchange: Exchange) -> tuple[str, ev.SaleClosed]:
    lead_id = exchange.post(exchange.new_consumer()).json()["lead_id"]
    return lead_id, poll_until(lambda: exchange.sale_for(lead_id), message="the sale")


def test_a_buyer_gets_its_own_format_and_its_reply_is_read(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["alpha"].bid, buyers["alpha"].replies_in_text = 2500, True
    lead = adapted.new_consumer()
    lead_id = adapted.post(lead).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    assert sale.outcome == ev.SALE_OUTCOME_SOLD and sale.buyer_id == adapted.buyer_ids["alpha"]
    posted = buyers["alpha"].posts[-1]
    assert posted["_content_type"] == "application/x-www-form-urlencoded"
    phone = "".join(c for c in lead["home_phone"] if c.isdigit())
    assert parse_qsl(posted["_raw"]) == [
        ("zip_code", lead["zip"]), ("phone_area", phone[:3]), ("phone_rest", phone[3:]),
        ("name", f"{lead['first_name']} {lead['last_name']}"),
        ("owns", {"own": "yes"}.get(lead["residence_type"], "no")),
        ("income", f"{lead['gross_monthly_income'] // 100}.{lead['gross_monthly_income'] % 100:02d}"),
        ("ref", lead_id),
    ]
    [attempt] = attempts_of(adapted, lead_id)  # the dispute record: what was sent, what came back
    assert (attempt.buyer_id, attempt.status, attempt.outcome) == (adapted.buyer_ids["alpha"], 200, "accepted")
    assert attempt.request_body == posted["_raw"] and attempt.response_body.startswith("ACCEPTED ref=")
    assert attempt.content_type == "application/x-www-form-urlencoded" and attempt.connects == 1


def test_a_text_rejection_passes_the_lead_on(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["alpha"].bid, buyers["alpha"].replies_in_text, buyers["alpha"].accept = 2500, True, False
    buyers["gamma"].bid = 900
    lead_id = adapted.post(adapted.new_consumer()).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.attempts == 2
    assert set(sale.posted_buyer_ids) == {adapted.buyer_ids["alpha"], adapted.buyer_ids["gamma"]}
    assert [(a.outcome, a.detail) for a in attempts_of(adapted, lead_id)] == [
        ("rejected", "rejected by buyer: not for us"), ("accepted", "accepted")]


def test_a_buyer_with_broken_rules_is_passed_over(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["alpha"].bid = None
    buyers["beta"].bid, buyers["gamma"].bid = 5000, 800  # beta's section names an unknown field
    before = len(buyers["beta"].posts)
    lead_id = adapted.post(adapted.new_consumer()).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.price_cents == 800
    assert len(buyers["beta"].posts) == before  # never sent anything
    log = (adapted.stack.run_dir / "logs" / "delivery.log").read_text()
    assert "unknown lead field 'res_zip'" in log and "buyers.rules:18" in log


def test_preview_prints_what_would_be_sent(adapted: Exchange, tmp_path):
    lead = adapted.new_consumer()
    sample = tmp_path / "lead.json"
    sample.write_text(json.dumps(lead))

    def preview(buyer: str):
        return subprocess.run([sys.executable, "-m", "leadx.cli.main", "delivery", "preview", "--buyer", buyer,
                               "--lead", str(sample), "--rules", str(adapted.rules_dir), "--price", "1999"],
                              capture_output=True, text=True, timeout=60)

    shown = preview("alpha")
    assert shown.returncode == 0, shown.stderr
    header, body = shown.stdout.split("\n\n", 1)
    assert "buyers.rules:2" in header and "Content-Type: application/x-www-form-urlencoded" in header
    assert parse_qsl(body.strip())[0] == ("zip_code", lead["zip"])
    broken = preview("beta")
    assert broken.returncode == 1 and "unknown lead field 'res_zip'" in broken.stderr
    plain = preview("gamma")
    assert plain.returncode == 0 and "the exchange's own JSON" in plain.stdout
    assert json.loads(plain.stdout.split("\n\n", 1)[1])["price"] == 1999


def test_buyers_get_their_authentication_and_the_ping_fields_they_ask_for(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["delta"].bid, buyers["delta"].authorization = 3000, "Bearer tok-delta"
    lead_id, sale = sold(adapted)
    assert sale.buyer_id == adapted.buyer_ids["delta"] and buyers["delta"].refused == 0
    ping = buyers["delta"].pings[-1]
    assert {"residence_type", "months_employed"} <= set(ping) and "ssn" not in ping and "email" not in ping
    assert "residence_type" not in buyers["gamma"].pings[-1]  # only for the buyer that asked

    adapted.reset_buyers()
    buyers = adapted.buyers.buyers
    buyers["epsilon"].bid, buyers["epsilon"].hmac_secret = 3000, "k-eps"  # checks every signature
    lead_id, sale = sold(adapted)
    assert sale.buyer_id == adapted.buyer_ids["epsilon"] and buyers["epsilon"].refused == 0


def test_a_post_that_times_out_is_not_resent_and_the_lead_moves_on(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["epsilon"].bid, buyers["epsilon"].post_delay_s = 4000, 2.5  # its section: timeout 1
    buyers["gamma"].bid = 900
    lead_id, sale = sold(adapted)
    assert sale.buyer_id == adapted.buyer_ids["gamma"]
    # epsilon answers 2.5 s after the POST came (long after delivery gave up on it): once it has,
    # a resend would have come too. The buyer's server counts POSTs as they come, before its delay.
    poll_until(lambda: buyers["epsilon"].posts, timeout_s=30, message="epsilon's late answer")
    time.sleep(1)
    assert len(buyers["epsilon"].arrivals) == 1  # never sent twice
    outcomes = [(a.buyer_id, a.outcome, a.status) for a in attempts_of(adapted, lead_id)]
    assert outcomes == [(adapted.buyer_ids["epsilon"], "failed", None), (adapted.buyer_ids["gamma"], "accepted", 200)]


def test_a_failing_buyer_is_skipped_once_its_circuit_opens(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["zeta"].bid, buyers["zeta"].post_status = 5000, 500
    buyers["gamma"].bid = 900
    for _ in range(2):  # two failures in a row open the circuit (DELIVERY_BREAKER_FAILURES=2)
        _, sale = sold(adapted)
        assert sale.buyer_id == adapted.buyer_ids["gamma"]
    assert buyers["zeta"].failures_served == 2
    pings_before = len(buyers["zeta"].pings)
    lead_id, sale = sold(adapted)
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.attempts == 1
    assert buyers["zeta"].failures_served == 2  # passed over: not posted to
    assert len(buyers["zeta"].pings) == pings_before  # and not pinged during its cool-down
    assert [a.buyer_id for a in attempts_of(adapted, lead_id)] == [adapted.buyer_ids["gamma"]]


def test_a_post_that_never_connected_does_not_count_as_received(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["ghost"].bid, buyers["gamma"].bid = 6000, 900
    lead = adapted.new_consumer()
    lead_id = adapted.post(lead).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    ghost = adapted.buyer_ids["ghost"]
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.attempts == 1
    assert ghost not in sale.posted_buyer_ids
    [unreached, accepted] = attempts_of(adapted, lead_id)
    assert (unreached.buyer_id, unreached.outcome, unreached.connects, unreached.status) == (ghost, "failed", 3, None)
    assert accepted.outcome == "accepted"

    async def buyers_holding_the_consumer() -> frozenset[str]:
        redis = connect(adapted.stack.redis_url)
        try:
            store = DedupStore(redis, adapted.prefix)
            keys = pii.identity_keys(adapted.stack.hmac_key.encode(), {k: str(v) for k, v in lead.items()})
            check = await store.check_submission("PROBE00001", "auto_loan", keys, int(time.time() * 1000),
                                                 30 * DAY_MS, platform=False, record=False)
            return check.duplicate_buyer_ids
        finally:
            await redis.aclose()

    # gamma has the consumer; ghost, which was never reached, is still free to buy it.
    assert asyncio.run(buyers_holding_the_consumer()) == frozenset({adapted.buyer_ids["gamma"]})


def test_no_log_line_holds_the_consumers_data(adapted: Exchange):
    """A lead pinged, refused once as malformed, sold after a rejection, then posted again as a
    duplicate: none of its consumer's data (name, SSN, email, phones, street address, date of
    birth) is in any service's log, in any form the exchange handles it in."""
    buyers = adapted.buyers.buyers
    buyers["alpha"].bid, buyers["alpha"].replies_in_text, buyers["alpha"].accept = 2500, True, False
    buyers["gamma"].bid = 900
    lead = adapted.new_consumer()
    area = (area_codes_of(lead["state"]) or ("212",))[0]
    lead |= {"first_name": "Zebulon", "last_name": "Quillfeather", "email": "zebulon.quillfeather.8817@example.com",
             "ssn": "487-62-3915", "home_phone": f"({area}) 739-4821", "work_phone": f"{area}-246-8135",
             "address": "4417 Wisteria Hollow Lane", "date_of_birth": "1979-08-23"}
    secrets = ["Zebulon", "Quillfeather", "zebulon.quillfeather", "487-62-3915", "487623915",
               "4417 Wisteria", "Wisteria Hollow", "1979-08-23", "19790823"]
    for phone in ("7394821", "2468135"):
        secrets += [f"{area}{phone}", f"{area}-{phone[:3]}-{phone[3:]}", f"({area}) {phone[:3]}-{phone[3:]}"]

    pinged = http.post(f"{adapted.intake_url()}/v1/ping", json=ping_subset(lead), timeout=10,
                       headers={"Authorization": f"Bearer {adapted.seller_key}"})
    assert pinged.status_code == 200, pinged.text
    malformed = adapted.post(lead | {"months_employed": "since 1999"})
    assert malformed.status_code == 422, malformed.text
    lead_id = adapted.post(lead).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.attempts == 2  # alpha saw it and said no
    posted = buyers["alpha"].posts[-1]["_raw"]
    assert "Zebulon" in posted and "7394821" in posted  # the buyer did get the consumer's data
    repeat_id = adapted.post(lead).json()["lead_id"]
    poll_until(lambda: adapted.status(repeat_id).json().get("status") == "duplicate", message="the duplicate")
    poll_until(lambda: adapted.status(lead_id).json().get("status") == "sold", message="the ledger's sale")

    logs = sorted((adapted.stack.run_dir / "logs").glob("*.log"))
    assert {path.stem for path in logs} >= {"intake", "dedup", "scoring", "auction", "delivery", "ledger"}
    lines = [(path.stem, line) for path in logs for line in path.read_text(errors="replace").splitlines()]
    assert any(lead_id in line for _, line in lines)  # the lead itself is logged, by its id
    leaked = [(service, secret, line[:300]) for service, line in lines for secret in secrets
              if secret.lower() in line.lower()]
    assert leaked == []
