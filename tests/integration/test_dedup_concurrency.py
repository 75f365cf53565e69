"""The duplicate-protection proof under concurrency: hundreds of simultaneous submissions of the
same consumers through two intake replicas, two dedup workers and two delivery workers. Then
Redis loses the dedup state, `leadx dedup rebuild` restores it from SQL, and duplicates are
still caught.

auto_loan has the platform-wide scope (one lead per consumer in 30 days gets through);
auto_insurance has only the per-buyer scope (every lead is sold, but never one consumer twice to
one buyer), so one exchange shows both races.

The whole module runs twice: on one Redis, and with every service on a Redis Cluster of three
primaries (REDIS_CLUSTER=true), where a script, MULTI or multi-key command spanning hash slots fails.
One buyer has caps (never reached), so delivery counts and gives back its sales in Redis too."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from leadx.accounts.buyer_settings import update_buyer
from leadx.dev.demo.consumers import make_consumer, ping_subset
from tests import http_calls as http
from tests.conftest import TEST_BROKER, poll_until
from tests.integration.harness import Exchange, start_exchange

pytestmark = pytest.mark.integration

SERVICES = ["intake", "intake-2", "dedup", "dedup-2", "scoring", "auction", "delivery", "delivery-2", "ledger"]
CONSUMERS, COPIES = 20, 10


@pytest.fixture(scope="module", params=["one-redis", "cluster"])
def race(request, tmp_path_factory, kafka_bootstrap) -> Exchange:
    prefix = f"race{random.randrange(10**6)}."
    if request.param == "cluster":
        redis_url, redis_env = request.getfixturevalue("redis_cluster").url, {"REDIS_CLUSTER": "true"}
    else:
        redis_url, redis_env = request.getfixturevalue("redis_url"), {}
    # A 3 s window (5 s on Apache Kafka, as the harness gives it): the buyers answer pings from this
    # test process, which is busy sending hundreds of leads at once; at 1 s, and on a machine busy
    # with other exchanges at 2 s, many pings came back after the close, and too few consumers
    # reached several buyers to show the race.
    # For the same reason pings time out in the bursts, and five in a row opened a buyer's circuit
    # breaker for 30 s: the next test then found every buyer's breaker open and nothing was sold. The
    # breaker is not what these tests are about (test_delivery_reliability is), so it is out of reach.
    # alpha's caps are far above what it is sold here: they only make delivery count its sales.
    exchange = start_exchange(tmp_path_factory.mktemp("race"), kafka_bootstrap, redis_url, prefix,
                              ["alpha", "beta", "gamma"], SERVICES, window_s=5.0 if TEST_BROKER == "kafka" else 3.0,
                              prepare=lambda session, party: update_buyer(session, party.buyer_ids["alpha"],
                                                                          caps={"leads_per_day": 100_000}),
                              DELIVERY_BREAKER_FAILURES="100000", **redis_env)
    buyers = exchange.buyers.buyers
    buyers["alpha"].bid, buyers["beta"].bid, buyers["gamma"].bid = 3000, 2000, 1000
    # alpha turns down a third of what it is posted: the lead passes on, but alpha has seen it.
    buyers["alpha"].accept = lambda lead: sum(map(ord, lead["lead_id"])) % 3 != 0
    yield exchange
    exchange.stop()


def submit_all(exchange: Exchange, leads: list[dict]) -> list[tuple[int, dict]]:
    """Every lead at once, alternating between the two intake replicas."""
    def send(numbered: tuple[int, dict]) -> tuple[int, dict]:
        n, lead = numbered
        response = exchange.post(lead, instance="intake" if n % 2 else "intake-2")
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=48) as pool:
        return list(pool.map(send, enumerate(leads)))


def settled_status(exchange: Exchange, answer: dict) -> str:
    """The lead's final status: the answer itself, or the status URL once the pipeline is done."""
    if answer["status"] != "pending":
        return answer["status"]
    return poll_until(lambda: (s := exchange.status(answer["lead_id"]).json()["status"]) not in
                      ("pending", "submitted", "verified", "scored", "in_auction") and s,
                      timeout_s=60, message="the pending lead's outcome")


def copies_of(consumers: list[dict]) -> list[dict]:
    leads = [dict(c) for c in consumers for _ in range(COPIES)]
    random.Random(3).shuffle(leads)
    return leads


def received_per_buyer(exchange: Exchange, vertical: str) -> dict[str, Counter]:
    return {name: Counter(re.sub(r"\D", "", p["ssn"]) for p in b.posts if p["vertical"] == vertical)
            for name, b in exchange.buyers.buyers.items()}


def test_simultaneous_copies_let_one_lead_per_consumer_through_platform_wide(race: Exchange):
    rng = random.Random(11)
    consumers = [make_consumer(rng, "auto_loan") for _ in range(CONSUMERS)]
    answers = submit_all(race, copies_of(consumers))

    assert {code for code, _ in answers} <= {200, 202, 409}
    statuses = [settled_status(race, answer) for _, answer in answers]
    assert Counter(s == "duplicate" for s in statuses) == {True: CONSUMERS * (COPIES - 1), False: CONSUMERS}
    poll_until(lambda: len(race.sale_rows()) >= CONSUMERS or None, timeout_s=90, message="the sales")
    for name, counts in received_per_buyer(race, "auto_loan").items():
        assert max(counts.values(), default=0) <= 1, f"{name} received a consumer twice"


def test_simultaneous_copies_never_reach_one_buyer_twice(race: Exchange):
    rng = random.Random(12)
    consumers = [make_consumer(rng, "auto_insurance") for _ in range(CONSUMERS)]
    leads = copies_of(consumers)
    answers = submit_all(race, leads)

    assert all(code in (200, 202) for code, _ in answers), answers[:3]
    # Nothing accepted is lost: every copy ends in an outcome (auto_insurance is a shared sale: a
    # lead may have a sale row per buyer).
    poll_until(lambda: len({s.lead_id for s in race.sale_rows() if s.vertical == "auto_insurance"}) >= len(leads)
               or None, timeout_s=120, message="an outcome for every copy")
    received = received_per_buyer(race, "auto_insurance")
    for name, counts in received.items():
        assert max(counts.values(), default=0) <= 1, f"{name} received a consumer twice"
    # The race was real: most consumers reached several buyers. Not necessarily all three: a bid
    # that arrives after a busy auction's close keeps a buyer from that copy, and on a slow machine
    # (CI, on Apache Kafka: 37 buyer-consumer pairs of 60) a consumer's later copies can all miss one.
    reached = sum(len(counts) for counts in received.values())
    assert reached >= 1.5 * CONSUMERS, f"only {reached} buyer-consumer pairs for {CONSUMERS} consumers"
    sold = [s for s in race.sale_rows() if s.vertical == "auto_insurance" and s.sold]
    assert CONSUMERS <= len(sold) <= 3 * CONSUMERS  # never more than one sale per consumer and buyer


def redis_of(exchange: Exchange) -> redis.Redis | redis.RedisCluster:
    """A client of the exchange's Redis, or of its Redis Cluster (the whole cluster, from one node)."""
    if exchange.stack.extra_env.get("REDIS_CLUSTER") == "true":
        return redis.RedisCluster.from_url(exchange.stack.redis_url)
    return redis.Redis.from_url(exchange.stack.redis_url)


def leads_counted_against_caps(exchange: Exchange, buyer_id: str) -> int:
    """The leads counted against a buyer's caps, over every day kept (the day may have turned)."""
    client = redis_of(exchange)
    try:
        return sum(int(client.hget(key, "n") or 0)
                   for key in client.scan_iter(match=f"caps:{exchange.prefix}*{buyer_id}:d:*", count=1000))
    finally:
        client.close()


def test_caps_count_every_sale_once_and_give_back_every_lead_not_taken(race: Exchange):
    """alpha was posted leads it turned down: each was counted before its POST and given back after."""
    alpha = race.buyer_ids["alpha"]

    seen: dict[str, int] = {}

    def counted_as_sold() -> int | None:
        seen["sold"] = sold = sum(1 for s in race.sale_rows() if s.buyer_id == alpha and s.sold)
        seen["counted"] = leads_counted_against_caps(race, alpha)
        return sold if sold and seen["counted"] == sold else None

    try:
        sold = poll_until(counted_as_sold, timeout_s=60, message="alpha's caps to count exactly its sales")
    except AssertionError as error:
        raise AssertionError(f"{error}: {seen['sold']} sold, {seen['counted']} counted") from None
    assert len(race.buyers.buyers["alpha"].posts) > sold  # some were turned down, and given back


def ping(exchange: Exchange, lead: dict) -> httpx.Response:
    return http.post(f"{exchange.intake_url()}/v1/ping", json=ping_subset(lead),
                     headers={"Authorization": f"Bearer {exchange.seller_key}"}, timeout=10)


def test_after_losing_redis_a_rebuild_still_catches_duplicates(race: Exchange):
    rng = random.Random(13)
    consumer = make_consumer(rng, "auto_loan")
    first = race.post(consumer).json()
    assert first["status"] in ("accepted", "pending")
    poll_until(lambda: any(s.lead_id == first["lead_id"] for s in race.sale_rows()) or None,
               message="the first sale recorded")

    client = redis_of(race)
    lost = [k for k in client.scan_iter(match=f"dd:{race.prefix}*", count=1000)]
    client.delete(*lost)  # Redis lost the dedup state
    client.close()
    assert ping(race, consumer).json()["status"] == "accepted"  # a PING only asks: it records nothing

    env = race.stack.base_env()
    result = subprocess.run([sys.executable, "-m", "leadx.cli.main", "dedup", "rebuild"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"dedup rebuilt: [1-9]\d* platform records, [1-9]\d* buyer records", result.stdout)

    assert ping(race, consumer).json()["status"] == "duplicate"
    again = race.post(consumer | {"email": "someone.else@example.com", "home_phone": "2125550199"})
    assert again.status_code == 409 and again.json()["status"] == "duplicate"
