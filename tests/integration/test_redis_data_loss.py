"""Redis restarted without its data (same port), under a running exchange: the loss is detected,
new leads are held as pending and nothing is awarded until the dedup records are rebuilt from SQL;
then the held leads are decided, and no buyer is sold a consumer it already bought.

The exchange has its own Redis (the test restarts it empty) and per-buyer dedup only
(DEDUP_PLATFORM_SCOPE=false), so a repeat of a consumer goes to auction and the per-buyer guarantee
at award is what keeps it from its earlier buyer. The rebuild is held back by taking its lock
before any lead arrives, so the held state is observed for certain, not by timing."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from leadx.dedup.store import DedupStore
from leadx.dev.stack import ManagedProcess, free_port, redis_binary, wait_for_port
from leadx.platform.db.models import BuyerPosting
from leadx.platform.redis.client import connect
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, start_exchange

pytestmark = [pytest.mark.integration, pytest.mark.fault]

DEDUP = ["dedup", "dedup-2"]
SERVICES = ["intake", *DEDUP, "scoring", "auction", "delivery", "ledger"]
UNDECIDED = ("pending", "accepted", "in_auction")  # a seller's view of a lead not yet sold or refused


@pytest.fixture(scope="module")
def redis_process(tmp_path_factory):
    """A Redis of this module's own, keeping nothing on disk: restarted, it comes back empty."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = ManagedProcess("redis", [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(folder)], {}, folder / "redis.log",
                             port=port)
    process.start()
    wait_for_port("127.0.0.1", port, 20, process.process)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def lossy(tmp_path_factory, kafka_bootstrap, redis_process) -> Exchange:
    prefix = f"l{uuid.uuid4().hex[:6]}."
    exchange = start_exchange(tmp_path_factory.mktemp("lossy"), kafka_bootstrap,
                              f"redis://127.0.0.1:{redis_process.port}/0", prefix, ["alpha", "beta"], SERVICES,
                              window_s=1.0, DEDUP_PLATFORM_SCOPE="false")
    yield exchange
    exchange.stop()


def restart_empty(process: ManagedProcess) -> None:
    process.stop()
    process.start()
    wait_for_port("127.0.0.1", process.port or 0, 20, process.process)


def run(coroutine):
    return asyncio.run(coroutine)


async def hold_the_rebuild(exchange: Exchange) -> str:
    """Take the rebuild lock, as a rebuild running elsewhere would: the dedup workers wait for it."""
    redis = connect(exchange.stack.redis_url)
    try:
        token = await DedupStore(redis, exchange.prefix).take_rebuild_lock(600_000)
        assert token is not None, "a dedup worker took the lock before any lead arrived"
        return token
    finally:
        await redis.aclose()


async def release_the_rebuild(exchange: Exchange, token: str) -> None:
    redis = connect(exchange.stack.redis_url)
    try:
        await DedupStore(redis, exchange.prefix).release_rebuild_lock(token)
    finally:
        await redis.aclose()


def metric(exchange: Exchange, service: str, name: str) -> float:
    port = exchange.stack.port_of(service, "HEALTH_PORT")
    text = http.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def status(exchange: Exchange, lead_id: str, api_key: str | None = None) -> str:
    return exchange.status(lead_id, api_key).json()["status"]


def outcome(exchange: Exchange, lead_id: str, api_key: str | None = None) -> str:
    return poll_until(lambda: (s := status(exchange, lead_id, api_key)) not in UNDECIDED and s,
                      timeout_s=90, message=f"the outcome of {lead_id}")


def post_as_a_seller_would(exchange: Exchange, lead: dict, api_key: str | None = None) -> httpx.Response:
    """POST, and again with the same Idempotency-Key while the answer is 503: the intake's first calls
    on connections to the Redis that went away fail, and it says to retry."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    return poll_until(lambda: (r := exchange.post(lead, api_key=api_key, headers=headers)).status_code != 503 and r,
                      message="an answer other than 503")


def posts_of(exchange: Exchange, buyer: str, ssn: str) -> int:
    digits = re.sub(r"\D", "", ssn)
    return sum(1 for post in exchange.buyers.buyers[buyer].posts if re.sub(r"\D", "", post["ssn"]) == digits)


def test_a_redis_restarted_empty_sells_no_consumer_twice_and_loses_no_lead(lossy: Exchange, redis_process):
    alpha, beta = lossy.buyers.buyers["alpha"], lossy.buyers.buyers["beta"]
    alpha.bid, beta.bid = 1500, 1000
    consumer = lossy.new_consumer()
    first = lossy.post(consumer).json()
    assert outcome(lossy, first["lead_id"]) == "sold"
    assert lossy.sale_for(first["lead_id"]).buyer_id == lossy.buyer_ids["alpha"]
    with lossy.sql() as session:  # the ledger recorded the posting a rebuild restores alpha's record from
        poll_until(lambda: session.scalar(select(BuyerPosting).where(BuyerPosting.lead_id == first["lead_id"])),
                   message="alpha's posting in SQL")

    restart_empty(redis_process)
    token = run(hold_the_rebuild(lossy))

    # The same consumer from another seller, and a new consumer: both accepted and held.
    again = post_as_a_seller_would(lossy, consumer, lossy.other_seller_key)
    fresh = post_as_a_seller_would(lossy, lossy.new_consumer())
    assert (again.status_code, fresh.status_code) == (202, 202), (again.text, fresh.text)
    held = [again.json()["lead_id"], fresh.json()["lead_id"]]
    assert again.json()["status"] == fresh.json()["status"] == "pending"
    # Still undecided at the status URL: no verdict, no auction.
    assert status(lossy, held[0], lossy.other_seller_key) == status(lossy, held[1]) == "pending"
    poll_until(lambda: max(metric(lossy, name, "leadx_dedup_state_held") for name in DEDUP) == 1,
               message="a dedup worker says it holds leads")
    assert lossy.sale_for(held[0]) is None and lossy.sale_for(held[1]) is None  # nothing awarded meanwhile

    run(release_the_rebuild(lossy, token))

    # Decided once the records are back: the repeat goes to beta, never again to alpha.
    assert outcome(lossy, held[0], lossy.other_seller_key) == "sold"
    assert lossy.sale_for(held[0]).buyer_id == lossy.buyer_ids["beta"]
    assert outcome(lossy, held[1]) == "sold"
    assert lossy.sale_for(held[1]).buyer_id == lossy.buyer_ids["alpha"]
    assert posts_of(lossy, "alpha", consumer["ssn"]) == 1
    assert posts_of(lossy, "beta", consumer["ssn"]) == 1
    # One of the two dedup workers saw the loss and rebuilt; the other waited for its epoch.
    assert sum(metric(lossy, name, "leadx_dedup_state_lost_total") for name in DEDUP) >= 1
    assert max(metric(lossy, name, "leadx_dedup_state_held") for name in DEDUP) == 0
    assert run(epoch_written(lossy))


async def epoch_written(exchange: Exchange) -> bool:
    redis = connect(exchange.stack.redis_url)
    try:
        return await DedupStore(redis, exchange.prefix).intact()
    finally:
        await redis.aclose()


def test_a_dedup_write_on_an_emptied_redis_is_refused_by_the_script(lossy: Exchange, redis_process):
    """The guard is in the script, atomic with the write: after a restart nothing is recorded."""
    from leadx.dedup.store import DedupStateLost

    restart_empty(redis_process)

    async def scenario():
        redis = connect(lossy.stack.redis_url)
        store = DedupStore(redis, f"probe{uuid.uuid4().hex[:6]}.")
        try:
            with pytest.raises(DedupStateLost):
                await store.reserve_for_buyer("b1", "PROBE00001", "auto_loan", ["0" * 32], 1_800_000_000_000,
                                              86_400_000)
            return [key async for key in redis.scan_iter(match=f"dd:{store.namespace}*")]
        finally:
            await redis.aclose()

    assert run(scenario()) == []

