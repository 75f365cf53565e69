"""The operator's `leadx` command. Its entry point runs as a real process where that is the point
(a missing setting, `leadx run`); the commands themselves run in this process through the same
`main`, with their own environment and output, because a process each cost ~1.2 s of imports."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from sqlalchemy import event, select
from sqlalchemy.pool import Pool

from leadx.accounts.accounts import buyer_for_key, hash_api_key, seller_for_key
from leadx.accounts.directory import BuyerDirectory
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.models import Buyer, BuyerProfile, Partnership, Seller, SellerBuyerChoice
from tests.conftest import LEADX_RUN, TEST_KEYRING
from tests.integration.cli import leadx, leadx_process

pytestmark = pytest.mark.integration


def test_seller_and_buyer_create_print_json_and_store_only_a_hash(database_url):
    env = {"DATABASE_URL": database_url}
    seller = leadx("seller", "create", "Acme Leads", "--json", env=env)
    assert seller.returncode == 0, seller.stderr
    created = json.loads(seller.stdout)
    assert set(created) == {"id", "api_key"} and created["api_key"].startswith("lx_")
    buyer = leadx("buyer", "create", "Big Dealer", "--ping-url", "https://b.example/ping",
                  "--post-url", "https://b.example/post", "--json", env=env)
    assert buyer.returncode == 0, buyer.stderr
    buyer_created = json.loads(buyer.stdout)

    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        stored = session.execute(select(Seller)).scalar_one()
        assert stored.id == created["id"] and stored.name == "Acme Leads"
        assert stored.api_key_hash == hash_api_key(created["api_key"])
        assert created["api_key"] not in stored.api_key_hash
        stored_buyer = session.get(Buyer, buyer_created["id"])
        assert stored_buyer.ping_url == "https://b.example/ping"
    engine.dispose()


def test_seller_keys_rotate_and_revoke(database_url):
    env = {"DATABASE_URL": database_url}
    created = json.loads(leadx("seller", "create", "Rotating Leads", "--json", env=env).stdout)
    rotated = leadx("seller", "rotate-key", created["id"], "--json", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["api_key"]
    assert new_key != created["api_key"]

    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        assert seller_for_key(session, created["api_key"]) is None
        assert seller_for_key(session, new_key) == created["id"]
    revoked = leadx("seller", "revoke-key", created["id"], env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with sessions() as session:
        assert seller_for_key(session, new_key) is None
    engine.dispose()
    unknown = leadx("seller", "rotate-key", "s_nosuchseller", env=env)
    assert unknown.returncode == 1 and "no seller s_nosuchseller" in unknown.stderr


def test_buyer_keys_rotate_and_revoke_and_a_deactivated_buyer_is_out_of_the_market(database_url):
    env = {"DATABASE_URL": database_url}
    created = json.loads(leadx("buyer", "create", "Leaky Dealer", "--ping-url", "https://l.example/ping",
                               "--json", env=env).stdout)
    buyer = created["id"]
    rotated = leadx("buyer", "rotate-key", buyer, "--json", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["api_key"]
    assert new_key != created["api_key"] and json.loads(rotated.stdout)["id"] == buyer

    engine = make_engine(database_url)
    sessions = session_factory(engine)
    directory = BuyerDirectory(sessions)
    with sessions() as session:
        assert buyer_for_key(session, created["api_key"]) is None
        assert buyer_for_key(session, new_key) == buyer
        assert session.get(Buyer, buyer).api_key_hash == hash_api_key(new_key)
    revoked = leadx("buyer", "revoke-key", buyer, env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with sessions() as session:
        assert buyer_for_key(session, new_key) is None
    directory.load()
    assert directory.get(buyer) is not None  # a revoked key does not stop the buying

    newest = leadx("buyer", "rotate-key", buyer, env=env)  # without --json: a sentence with the key
    assert newest.returncode == 0 and "shown once" in newest.stdout
    newest_key = newest.stdout.rsplit(" ", 1)[1].strip()
    deactivated = leadx("buyer", "deactivate", buyer, env=env)
    assert deactivated.returncode == 0 and "deactivated" in deactivated.stdout
    directory.load()
    assert directory.get(buyer) is None and buyer not in directory.market.buyers
    with sessions() as session:
        assert buyer_for_key(session, newest_key) is None
    assert leadx("buyer", "reactivate", buyer, env=env).returncode == 0
    directory.load()
    assert directory.get(buyer) is not None
    with sessions() as session:
        assert buyer_for_key(session, newest_key) == buyer
    engine.dispose()

    for action in ("rotate-key", "revoke-key", "deactivate", "reactivate"):
        unknown = leadx("buyer", action, "b_nosuchbuyer", env=env)
        assert unknown.returncode == 1 and "leadx: no buyer b_nosuchbuyer" in unknown.stderr, (action, unknown)


def test_direct_sale_contracts_are_added_and_ended(database_url):
    from leadx.accounts.accounts import contract_price

    env = {"DATABASE_URL": database_url}
    seller = json.loads(leadx("seller", "create", "Direct Leads", "--json", env=env).stdout)["id"]
    buyer = json.loads(leadx("buyer", "create", "Dealer", "--ping-url", "https://d.example/ping",
                             "--post-url", "https://d.example/post", "--json", env=env).stdout)["id"]
    added = leadx("contract", "add", "--seller", seller, "--buyer", buyer, "--price", "2500", env=env)
    assert added.returncode == 0, added.stderr
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        assert contract_price(session, seller, buyer) == 2500
    assert leadx("contract", "end", "--seller", seller, "--buyer", buyer, env=env).returncode == 0
    with sessions() as session:
        assert contract_price(session, seller, buyer) is None
    engine.dispose()
    unknown = leadx("contract", "add", "--seller", seller, "--buyer", "b_nosuchbuyer", "--price", "1", env=env)
    assert unknown.returncode == 1 and "no buyer b_nosuchbuyer" in unknown.stderr


def test_a_command_closes_every_database_connection_it_opened(database_url):
    """As a process's exit would: a command run inside a longer-lived process leaves no connection
    open behind it (nor for the garbage collector to find)."""
    opened, closed = [], []

    def on_connect(*_) -> None:
        opened.append(1)

    def on_close(*_) -> None:
        closed.append(1)
    event.listen(Pool, "connect", on_connect)
    event.listen(Pool, "close", on_close)
    try:
        env = {"DATABASE_URL": database_url}
        created = json.loads(leadx("seller", "create", "Closing Leads", "--json", env=env).stdout)
        assert leadx("seller", "rotate-key", created["id"], env=env).returncode == 0
        assert leadx("seller", "rotate-key", "s_nosuchseller", env=env).returncode == 1  # ended by an error
    finally:
        event.remove(Pool, "connect", on_connect)
        event.remove(Pool, "close", on_close)
    assert opened and len(closed) == len(opened)


def test_missing_configuration_fails_fast_with_its_name():
    result = leadx_process("seller", "create", "X", env={"DATABASE_URL": ""})
    assert result.returncode == 2
    assert "DATABASE_URL is required" in result.stderr


def test_leadx_run_shows_the_exchange_working(tmp_path):
    """`make run`'s command: infrastructure, services, demo seller and buyers, and a clean stop. On tansu,
    the broker of a machine without Java (test_run_supervision and test_run_on_kafka run Apache Kafka)."""
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL"}}
    result = subprocess.run([*LEADX_RUN, "--leads", "6", "--rate", "5",
                             "--window", "1", "--seed", "3", "--run-dir", str(tmp_path), "--broker", "tansu"],
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("leadx: broker: tansu (--broker tansu)\n") and "kcat" not in out
    assert "exchange ready" in out
    assert out.count("auction ") >= 2 and "opened" in out and "closed" in out
    assert "SOLD" in out or "UNSOLD" in out
    assert "DUPLICATE" in out  # the fifth lead repeats an earlier consumer
    assert "seller  PING" in out and ": accepted, wanted" in out  # the seller PINGs, in all three formats
    summary = [line for line in out.splitlines() if line.startswith("leadx: leads in")][0]
    assert "leads in 6" in summary and "duplicates caught 1" in summary
    assert "stopping services" in out


def test_seller_fee_override_and_the_books_from_the_command_line(database_url):
    from leadx.contracts import topics
    from leadx.contracts.events.v1 import events_pb2 as ev
    from leadx.platform.kafka.envelope import Envelope
    from services.ledger.recorder import Recorder

    env = {"DATABASE_URL": database_url}
    seller_id = json.loads(leadx("seller", "create", "Fee Leads", "--json", env=env).stdout)["id"]
    assert leadx("seller", "set-fee", seller_id, "12.5", env=env).returncode == 0
    for bad in ("101", "lots"):
        refused = leadx("seller", "set-fee", seller_id, bad, env=env)
        assert refused.returncode != 0 and "percent" in refused.stderr
    unknown = leadx("seller", "set-fee", "s_nobody", "5", env=env)
    assert unknown.returncode == 1 and "no seller s_nobody" in unknown.stderr
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        assert session.get(Seller, seller_id).fee_percent == 12.5

    # Two sales to one buyer, one of them returned.
    recorder = Recorder(sessions, TEST_KEYRING)
    for n, price in enumerate((1000, 3000)):
        lead_id = f"CLI000000{n}"
        sale = ev.SaleClosed(lead_id=lead_id, auction_id=lead_id, outcome=ev.SALE_OUTCOME_SOLD, buyer_id="b_cli",
                             seller_id=seller_id, price_cents=price, seller_fee_cents=price // 8, vertical="auto_loan",
                             state="NY", attempts=1, closed_at_ms=int(time.time() * 1000))
        recorder.apply(Envelope(topics.SALE_CLOSED, lead_id, f"s{n}", sale, 0, n))
    recorder.apply(Envelope(topics.LEAD_RETURNED, "CLI0000001", "r1", ev.LeadReturned(
        lead_id="CLI0000001", buyer_id="b_cli", seller_id=seller_id, price_cents=3000, seller_fee_cents=375,
        reason="wrong number", sold_at_ms=1, returned_at_ms=int(time.time() * 1000)), 0, 9))
    engine.dispose()

    books = json.loads(leadx("ledger", "balances", env=env).stdout)
    assert books == {"balances_cents": {"buyer:b_cli": -1000, "platform:fees": 125, f"seller:{seller_id}": 875},
                     "sum_cents": 0}
    assert leadx("seller", "set-fee", seller_id, "default", env=env).returncode == 0

    rates = leadx("returns", "rates", "--days", "1", env=env)
    assert rates.returncode == 0, rates.stderr
    assert json.loads(rates.stdout) == {
        "buyers": {"b_cli": {"sold": 2, "returned": 1, "percent": 50.0}},
        "sellers": {seller_id: {"sold": 2, "returned": 1, "percent": 50.0}}}


def test_buyer_settings_partnerships_and_a_seller_s_choices(database_url):
    env = {"DATABASE_URL": database_url}
    seller = json.loads(leadx("seller", "create", "Choosy Leads", "--json", env=env).stdout)["id"]
    created = leadx("buyer", "create", "Full Dealer", "--kind", "autobid", "--weight", "1.5",
                    "--time-zone", "America/Chicago", "--json", env=env)
    assert created.returncode == 0, created.stderr
    buyer = json.loads(created.stdout)["id"]
    for refused, reason in ((("--post-url", "https://w.example/post"), "needs a ping URL"),  # wholesale, no ping URL
                            (("--kind", "autobid", "--post-url", "", "--weight", "0"), "weight"),
                            (("--kind", "autobid", "--post-url", "", "--time-zone", "America"), "IANA")):
        result = leadx("buyer", "create", "Refused Dealer", *refused, env=env)
        assert result.returncode == 1 and reason in result.stderr, result.stderr

    changed = leadx("buyer", "set", buyer, "--weight", "2", "--caps", '{"leads_per_day": 30}', env=env)
    assert changed.returncode == 0, changed.stderr
    assert (json.loads(changed.stdout)["weight"], json.loads(changed.stdout)["caps"]) == (2.0, {"leads_per_day": 30})
    for refused in (("--caps", "{not json"), ("--caps", '{"leads_per_week": 1}'), ("--time-zone", "Nowhere"),
                    ("--kind", "wholesale"), ()):
        result = leadx("buyer", "set", buyer, *refused, env=env)
        assert result.returncode == 1 and result.stderr.startswith("leadx: "), (refused, result.stderr)
    assert leadx("buyer", "set", "b_nosuchbuyer", "--weight", "1", env=env).returncode == 1
    shown = json.loads(leadx("buyer", "show", buyer, env=env).stdout)
    assert {k: shown[k] for k in ("kind", "weight", "time_zone", "caps", "ping_url")} == {
        "kind": "autobid", "weight": 2.0, "time_zone": "America/Chicago", "caps": {"leads_per_day": 30},
        "ping_url": ""}

    assert "now takes" in leadx("partnership", "add", "--seller", seller, "--buyer", buyer, env=env).stdout
    assert "already" in leadx("partnership", "add", "--seller", seller, "--buyer", buyer, env=env).stdout
    assert leadx("seller", "sells-to", seller, "named", env=env).returncode == 0
    assert leadx("seller", "allow", seller, buyer, env=env).returncode == 0
    relations = json.loads(leadx("seller", "relations", seller, env=env).stdout)
    assert relations == {"seller_id": seller, "sells_to": "named", "partners": [buyer], "allowed": [buyer],
                         "blocked": []}
    assert leadx("seller", "block", seller, buyer, env=env).returncode == 0
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        assert session.get(SellerBuyerChoice, (seller, buyer)).choice == "block"
        assert session.get(Seller, seller).sells_to == "named"
        assert session.get(Partnership, (buyer, seller)) is not None
    assert leadx("seller", "forget", seller, buyer, env=env).returncode == 0
    assert leadx("partnership", "remove", "--seller", seller, "--buyer", buyer, env=env).returncode == 0
    with sessions() as session:
        assert session.get(SellerBuyerChoice, (seller, buyer)) is None
        assert session.get(Partnership, (buyer, seller)) is None
    engine.dispose()
    gone = leadx("partnership", "remove", "--seller", seller, "--buyer", buyer, env=env)
    assert gone.returncode == 1 and "no partnership" in gone.stderr
    unknown = leadx("seller", "allow", seller, "b_nosuchbuyer", env=env)
    assert unknown.returncode == 1 and "no buyer b_nosuchbuyer" in unknown.stderr
    assert leadx("seller", "sells-to", seller, "some", env=env).returncode == 2  # not one of all|named


def test_profiles_import_applies_a_yaml_document_or_nothing(database_url, tmp_path):
    env = {"DATABASE_URL": database_url}
    autobid = json.loads(leadx("buyer", "create", "Weekend Dealer", "--kind", "autobid", "--json",
                               env=env).stdout)["id"]
    document = tmp_path / "profiles.yaml"
    document.write_text(f"""\
buyers:
  - id: {autobid}
    time_zone: America/Chicago
    caps: {{leads_per_day: 100}}
    profiles:
      - name: weekend push
        windows: [{{from: "fri 08:00", to: "sun 21:00"}}]
        criteria:
          - {{states: [TX], price: 3000}}
          - {{probability: {{min: 0.2, max: 0.6}}, price: {{per_probability: 10000}}}}
""")
    imported = leadx("profiles", "import", str(document), env=env)
    assert imported.returncode == 0, imported.stderr
    ids = json.loads(imported.stdout)
    assert list(ids) == [autobid] and len(ids[autobid]) == 1
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        profile = session.get(BuyerProfile, ids[autobid][0])
        assert profile.active and profile.name == "weekend push"
        assert profile.spec["criteria"][1]["price"] == {"per_probability": 10000}
        buyer = session.get(Buyer, autobid)
        assert (buyer.time_zone, buyer.caps) == ("America/Chicago", {"leads_per_day": 100})

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("buyers: [\n  - id: x\n")
    result = leadx("profiles", "import", str(bad_yaml), env=env)
    assert result.returncode == 1 and "not valid YAML" in result.stderr and "line 2" in result.stderr

    for text, reason in ((f"buyers:\n  - id: {autobid}\n    weight: 3\n    profiles: [{{name: free, criteria: "
                          f"[{{states: [TX]}}]}}]\n", "price"),
                         (f"buyers:\n  - id: {autobid}\n    profiles: [{{name: x, price: 1, criteria: [{{county: "
                          f"Dallas}}]}}]\n", "county"),
                         (f"buyers:\n  - id: {autobid}\n    weight: 3\n  - id: b_nosuchbuyer\n", "no buyer"),
                         (f"buyers:\n  - id: {autobid}\n    profiles: [{{name: x, price: 1, active: 2026-01-01}}]\n",
                          "not JSON"),
                         ("just a sentence\n", "'buyers' list")):
        bad = tmp_path / "bad-document.yaml"
        bad.write_text(text)
        result = leadx("profiles", "import", str(bad), env=env)
        assert result.returncode == 1 and reason in result.stderr, (text, result.stderr)
    missing = leadx("profiles", "import", str(tmp_path / "nowhere.yaml"), env=env)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    with sessions() as session:  # nothing of a refused document was applied
        assert session.get(Buyer, autobid).weight == 1.0
        active = session.scalars(select(BuyerProfile.id).where(BuyerProfile.buyer_id == autobid,
                                                               BuyerProfile.active.is_(True))).all()
        assert active == ids[autobid]
    engine.dispose()
