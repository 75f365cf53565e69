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
