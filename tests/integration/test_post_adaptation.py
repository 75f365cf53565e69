"""POST Adaptation through the running exchange: a buyer with a rules section receives its own
format and is read by its reply rules; a buyer whose section is broken is passed over and the lead
goes to the next bidder; `leadx delivery preview` prints the same body."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qsl

import pytest

from leadx.events.v1 import events_pb2 as ev
from tests.conftest import poll_until
from tests.integration.harness import Exchange, start_exchange

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
"""


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    rules_dir = tmp_path_factory.mktemp("post-rules")
    (rules_dir / "buyers.rules").write_text(RULES)
    exchange = start_exchange(tmp_path_factory.mktemp("adapt"), kafka_bootstrap, redis_url, "adapt.",
                              ["alpha", "beta", "gamma"],
                              ["intake", "dedup", "scoring", "auction", "delivery", "ledger"],
                              DELIVERY_RULES_DIR=str(rules_dir))
    exchange.rules_dir = rules_dir
    yield exchange
    exchange.stop()


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


def test_a_text_rejection_passes_the_lead_on(adapted: Exchange):
    buyers = adapted.buyers.buyers
    buyers["alpha"].bid, buyers["alpha"].replies_in_text, buyers["alpha"].accept = 2500, True, False
    buyers["gamma"].bid = 900
    lead_id = adapted.post(adapted.new_consumer()).json()["lead_id"]
    sale = poll_until(lambda: adapted.sale_for(lead_id), message="the sale")
    assert sale.buyer_id == adapted.buyer_ids["gamma"] and sale.attempts == 2
    assert set(sale.posted_buyer_ids) == {adapted.buyer_ids["alpha"], adapted.buyer_ids["gamma"]}
    buyers["alpha"].accept = True


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
        return subprocess.run([sys.executable, "-m", "leadx.cli", "delivery", "preview", "--buyer", buyer,
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
