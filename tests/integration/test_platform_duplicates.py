"""Platform-wide duplicates: a consumer submitted in the last 30 days (by SSN, email or home
phone) is a duplicate platform-wide; the seller is told only DUPLICATE, the reason is recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.models import Lead
from tests.conftest import poll_until
from tests.integration.harness import start_exchange

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kafka_bootstrap, redis_url):
    exchange = start_exchange(tmp_path_factory.mktemp("dup"), kafka_bootstrap, redis_url, "dup.",
                              [], ["intake", "dedup", "ledger"])
    yield exchange
    exchange.stop()


def internal_reason(gateway, lead_id: str) -> str | None:
    engine = make_engine(gateway.stack.database_url)
    try:
        with session_factory(engine)() as session:
            row = session.execute(select(Lead.status, Lead.rejection_detail).where(Lead.id == lead_id)).first()
            return row and row.status == "duplicate" and row.rejection_detail
    finally:
        engine.dispose()


@pytest.mark.parametrize("shared", ["ssn", "email", "home_phone"])
def test_a_repeat_on_any_identity_is_a_duplicate(gateway, shared):
    first = gateway.new_consumer()
    assert gateway.post(first).status_code == 200
    second = gateway.new_consumer() | {shared: first[shared]}

    response = gateway.post(second)

    assert response.status_code == 409
    body = response.json()
    assert body["status"] == "duplicate"
    assert body["errors"] == [{"code": "DUPLICATE", "field": None,
                               "message": "the lead is a duplicate and cannot be sold"}]
    assert shared not in response.text  # never which identity matched
    reason = poll_until(lambda: internal_reason(gateway, body["lead_id"]), message="the recorded reason")
    assert reason == f"platform duplicate on {shared}"
    status = gateway.status(body["lead_id"])
    assert status.json()["status"] == "duplicate"


def test_simultaneous_submissions_of_one_consumer_let_exactly_one_through(gateway):
    from concurrent.futures import ThreadPoolExecutor

    consumer = gateway.new_consumer()
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(lambda _: gateway.post(consumer).status_code, range(12)))
    assert sorted(codes) == [200] + [409] * 11


def restart_with_hmac_keys(gateway, keys: str) -> None:
    """The intake and dedup started again with LEADX_HMAC_KEYS in place of LEADX_HMAC_KEY, as an
    operator rolls a rotation out (docs/dedup.md#rotating-the-identity-key)."""
    for name in ("intake", "dedup"):
        process = gateway.stack.services[name]
        process.stop()
        process.env.pop("LEADX_HMAC_KEY", None)
        process.env["LEADX_HMAC_KEYS"] = keys
        process.start()
    gateway.stack.wait_ready(["intake", "dedup"], timeout_s=120)


def outcome(gateway, response) -> str:
    """The lead's verdict ("duplicate" or what follows verification): the answer's, or the status
    URL's once a restarted dedup worker has joined its group and answered."""
    status = response.json()["status"]
    if status != "pending":
        return status
    lead_id = response.json()["lead_id"]
    return poll_until(lambda: (s := gateway.status(lead_id).json()["status"]) not in ("pending", "submitted") and s,
                      timeout_s=60, message="the lead's verdict")


def test_a_rotated_hmac_key_keeps_the_old_records_until_it_is_dropped(gateway):
    """Last in the module: it leaves the services on the new key alone."""
    old = gateway.stack.hmac_key  # LEADX_HMAC_KEY: the key id k0
    new = "a-new-identity-key-0123456789abcdef"
    before = gateway.new_consumer()
    first = gateway.post(before, headers={"Idempotency-Key": "rotation-1"})
    assert first.status_code == 200

    restart_with_hmac_keys(gateway, f"k1:{new},k0:{old}")
    # A retry of the same POST answered under k0 is the same lead under k1: its first answer.
    retried = gateway.post(before, headers={"Idempotency-Key": "rotation-1"})
    assert (retried.status_code, retried.json()["lead_id"]) == (200, first.json()["lead_id"])
    # Recorded under k0, found under k1.
    copy = gateway.post(gateway.new_consumer() | {"email": before["email"]})
    assert outcome(gateway, copy) == "duplicate"
    assert poll_until(lambda: internal_reason(gateway, copy.json()["lead_id"])) == "platform duplicate on email"
    during = gateway.new_consumer()
    assert outcome(gateway, gateway.post(during)) != "duplicate"  # recorded under k1

    restart_with_hmac_keys(gateway, f"k1:{new}")  # k0 dropped (after the window, in a deployment)
    assert outcome(gateway, gateway.post(gateway.new_consumer() | {"ssn": during["ssn"]})) == "duplicate"
    # Documented: what only k0 recorded no longer counts once k0 is dropped.
    assert outcome(gateway, gateway.post(gateway.new_consumer() | {"ssn": before["ssn"]})) != "duplicate"
