"""Dedup on a Redis Cluster whose primary dies mid-stream (docs/dedup.md#on-redis-cluster).

- With a replica per primary and REDIS_WAIT_REPLICAS=1, a primary SIGKILLed while awards and
  platform records are being written, its replica stalled just before (so that the primary held
  writes no replica had), loses none of them: its replica takes over its slots, the
  calls that failed meanwhile are retried (as the services retry them) until the dead node is back
  as the new primary's replica, and afterwards every consumer is held by exactly the lead that won
  it, so no second lead of it reaches the buyer.
- Without replicas, the primary started again has lost its data: the dedup calls on its shards
  are refused as state lost (DedupStateLost), the store is not intact, and a rebuild from SQL
  restores the protection, as on one Redis that lost its data.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from leadx.dedup.rebuild import rebuild
from leadx.dedup.scopes import DedupPolicy, DedupScopes
from leadx.dedup.store import DedupStateLost, DedupStore
from leadx.dev.redis_cluster import LocalRedisCluster
from leadx.leads import pii
from leadx.platform.config import RedisSettings
from leadx.platform.db.models import BuyerPosting, Lead
from leadx.platform.redis.client import connect
from leadx.platform.utc_days import DAY_MS

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SECRET = b"failover-test-secret-0123"
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
V = "auto_loan"
CONSUMERS = 400
RETRY_FOR_S = 60  # a call failing while the cluster fails over is retried this long, as a service would


def consumer(n: int) -> dict[str, str]:
    return {"ssn": f"432-10-{n:04d}", "email": f"failover{n}@example.com", "home_phone": f"718-555-{n:04d}"}


def identities(n: int) -> dict[str, str]:
    return pii.identity_keys(SECRET, consumer(n))


async def retried(call):
    """`call()` until Redis answers: the calls that fail during a failover are retried, like a
    dedup worker retries its event or delivery its award."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            return await call()
        except DedupStateLost:
            raise
        except RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_a_primary_killed_mid_stream_loses_no_award_with_replicas_waited_for(tmp_path):
    cluster = LocalRedisCluster(tmp_path / "cluster", primaries=3, replicas_per_primary=1)
    cluster.start()
    try:
        namespace = f"f{uuid.uuid4().hex[:6]}:"
        killed = threading.Event()

        async def main():
            clients = [connect(RedisSettings(url=cluster.url, cluster=True)) for _ in range(2)]
            stores = [DedupStore(c, namespace, wait_replicas=1, wait_timeout_ms=1000) for c in clients]
            await stores[0].declare_intact(NOW)
            victim = cluster.primary_for_slot(key_slot(stores[0].state_keys(0)[1].encode()))

            async def first_leads(n: int) -> tuple[bool, bool]:
                store = stores[n % 2]  # two workers
                check = await retried(lambda: store.check_submission(f"A{n:05d}", V, identities(n), NOW, WINDOW))
                won = await retried(lambda: store.reserve_for_buyer("b1", f"A{n:05d}", V,
                                                                   list(identities(n).values()), NOW, WINDOW))
                return check.platform_duplicate_on is None, won

            async def kill_mid_stream() -> str:
                while sum(1 for task in workload if task.done()) < CONSUMERS // 4:
                    await asyncio.sleep(0.01)
                # The victim's replica stalls first: what the primary then takes reaches no replica.
                # Without waiting for replicas those writes would be acknowledged, then lost with
                # the primary, and the second leads below would win the consumers again.
                replica = cluster.replicas_of(victim)[0]
                cluster.pause(replica)
                host, port = victim.rsplit(":", 1)
                with redis.Redis(host=host, port=int(port)) as primary:
                    primary.client_kill_filter(_type="replica")  # the stalled replica cannot reconnect
                await asyncio.sleep(1.5)
                await asyncio.to_thread(cluster.kill, victim)
                cluster.resume(replica)
                killed.set()
                successor = await asyncio.to_thread(cluster.wait_failover, victim)
                # Until the dead node is back (as its successor's replica), no write on those slots
                # reaches a replica, and REDIS_WAIT_REPLICAS=1 refuses them: the calls wait, as the
                # services would while Kubernetes restarts the pod.
                await asyncio.to_thread(cluster.restart, victim)
                return successor

            workload = [asyncio.ensure_future(first_leads(n)) for n in range(CONSUMERS)]
            successor = await kill_mid_stream()
            firsts = await asyncio.gather(*workload)
            # Second leads of every consumer, from the other worker: all must find it taken.
            seconds = await asyncio.gather(*(retried(lambda n=n: stores[(n + 1) % 2].check_submission(
                f"B{n:05d}", V, identities(n), NOW + 1000, WINDOW)) for n in range(CONSUMERS)))
            again = await asyncio.gather(*(retried(lambda n=n: stores[(n + 1) % 2].reserve_for_buyer(
                "b1", f"B{n:05d}", V, list(identities(n).values()), NOW + 1000, WINDOW)) for n in range(CONSUMERS)))
            for client in clients:
                await client.aclose()
            return victim, successor, firsts, seconds, again

        victim, successor, firsts, seconds, again = asyncio.run(main())
    finally:
        cluster.stop()

    assert killed.is_set() and successor != victim
    assert all(new and won for new, won in firsts)  # each first lead recorded and won its buyer
    assert all(s.platform_duplicate_on is not None for s in seconds), "a platform record was lost in the failover"
    assert not any(again), "an award was lost in the failover: the buyer would receive the consumer twice"


def test_a_primary_without_a_replica_that_comes_back_empty_is_detected_and_rebuilt(tmp_path, sessions):
    cluster = LocalRedisCluster(tmp_path / "cluster", primaries=3, replicas_per_primary=0)
    cluster.start()
    run_id = uuid.uuid4().hex[:4].upper()
    with sessions.begin() as session:  # what SQL holds of the leads sold before the loss
        session.add_all([Lead(id=f"{run_id}L{n:04d}", seller_id="s_1", vertical=V, status="sold", status_rank=0,
                              fields=consumer(n), min_price_cents=0, direct_buyer_id="", seller_reference="",
                              submitted_at_ms=NOW - DAY_MS, updated_at_ms=NOW - DAY_MS, redrives=0)
                         for n in range(40)])
        session.add_all([BuyerPosting(lead_id=f"{run_id}L{n:04d}", buyer_id="b1", posted_at_ms=NOW - DAY_MS)
                         for n in range(40)])
    policy = DedupPolicy({V: DedupScopes()})
    try:
        async def main():
            client = connect(RedisSettings(url=cluster.url, cluster=True))
            store = DedupStore(client, f"g{run_id}:")
            try:
                await rebuild(sessions, store, policy, SECRET, NOW)  # the state as the exchange had it
                intact_before = await store.intact()
                victim = cluster.primary_for_slot(key_slot(store.state_keys(0)[1].encode()))
                await asyncio.to_thread(cluster.kill, victim)
                await asyncio.to_thread(cluster.restart, victim)  # same slots, no data (no persistence)
                refused, answered = 0, 0
                for n in range(40):
                    try:
                        await retried(lambda n=n: store.reserve_for_buyer("b1", f"{run_id}X{n:04d}", V,
                                                                          list(identities(n).values()), NOW, WINDOW))
                        answered += 1
                    except DedupStateLost:
                        refused += 1
                intact_after_loss = await store.intact()
                report = await rebuild(sessions, store, policy, SECRET, NOW)
                after = [await store.reserve_for_buyer("b1", f"{run_id}Y{n:04d}", V, list(identities(n).values()),
                                                       NOW, WINDOW) for n in range(40)]
                return intact_before, refused, answered, intact_after_loss, report, await store.intact(), after
            finally:
                await client.aclose()

        intact_before, refused, answered, intact_after_loss, report, intact, after = asyncio.run(main())
    finally:
        cluster.stop()

    assert intact_before
    # The consumers whose identities lie in the emptied node's shards are refused, never awarded
    # again; the others are answered (and were already taken: none of those awards won, see below).
    assert refused > 0 and not intact_after_loss
    assert (report.leads, report.postings) == (40, 40) and intact
    assert not any(after), "after the rebuild, b1 must still hold every consumer it bought"
