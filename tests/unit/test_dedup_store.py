"""The Redis dedup store against a real Redis: scopes, window edges, idempotency, atomicity, layout.

Each behaviour is checked on every layout (`dedup_target`, tests/unit/conftest.py): one Redis as
deployed (one shard: one script per call), one Redis split into shards (a consumer's identities in
several shards: one script per shard in ascending order, the calls made on a Redis Cluster) and a
real Redis Cluster."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from leadx.dedup.store import DedupStore, lead_fingerprint
from leadx.leads import pii
from tests.unit.conftest import DedupTarget
from leadx.platform.utc_days import DAY_MS

SECRET = b"unit-test-secret-0123456789"
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
V = "auto_loan"
CONSUMER = {"ssn": "123-45-6789", "email": "Ana@Example.com", "home_phone": "212-555-0142"}
OTHER = {"ssn": "987-65-4321", "email": "bob@example.com", "home_phone": "646-555-0199"}


def identities(fields: dict | None = None) -> dict[str, str]:
    return pii.identity_keys(SECRET, fields or CONSUMER)


def run(target: DedupTarget, scenario, **options):
    async def main():
        redis = target.connect()  # the services' own pool: many calls share a bounded set
        try:
            store = DedupStore(redis, namespace=f"u{uuid.uuid4().hex[:8]}:", shards=target.shards, **options)
            await store.declare_intact(NOW)  # a first start: nothing to rebuild
            return await scenario(store, redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def submit(store, lead_id, fields=None, at=NOW, **flags):
    return store.check_submission(lead_id, V, identities(fields), at, WINDOW, **flags)


def reserve(store, buyer, lead_id, at=NOW, keys=None):
    return store.reserve_for_buyer(buyer, lead_id, V, keys or list(identities().values()), at, WINDOW)


@pytest.mark.parametrize("shared", ["ssn", "email", "home_phone"])
def test_a_repeat_on_any_identity_is_a_platform_duplicate(dedup_target, shared):
    async def scenario(store, _redis):
        first = await submit(store, "LEAD000001")
        second = await submit(store, "LEAD000002", OTHER | {shared: CONSUMER[shared]}, NOW + 1000)
        return first, second

    first, second = run(dedup_target, scenario)
    assert first.platform_duplicate_on is None
    assert second.platform_duplicate_on == shared


def test_a_redelivered_lead_is_not_its_own_duplicate(dedup_target):
    async def scenario(store, _redis):
        await submit(store, "LEAD000001")
        return await submit(store, "LEAD000001", at=NOW + 5000)

    assert run(dedup_target, scenario).platform_duplicate_on is None


def test_without_recording_nothing_is_kept(dedup_target):
    async def scenario(store, _redis):
        await submit(store, "LEAD000001", platform=False, record=False)
        return await submit(store, "LEAD000002", at=NOW + 1000)

    assert run(dedup_target, scenario).platform_duplicate_on is None


@pytest.mark.parametrize(("later_ms", "duplicate"), [
    (WINDOW - 3_600_000, True),   # 29 days 23 hours later: still a duplicate
    (WINDOW - 1_000, True),       # 29 days 23:59:59
    (WINDOW, False),              # exactly 30 days: the entry has run out
    (WINDOW + 1_000, False),      # 30 days and 1 second
])
def test_the_platform_window_is_exact_per_entry(dedup_target, later_ms, duplicate):
    async def scenario(store, _redis):
        await submit(store, "LEAD000001")
        return await submit(store, "LEAD000002", at=NOW + later_ms)

    assert (run(dedup_target, scenario).platform_duplicate_on == "ssn") is duplicate


@pytest.mark.parametrize(("later_ms", "refused"), [(WINDOW - 3_600_000, True), (WINDOW + 1_000, False)])
def test_the_buyer_window_is_exact_per_entry(dedup_target, later_ms, refused):
    async def scenario(store, _redis):
        await reserve(store, "b1", "LEAD000001")
        return await reserve(store, "b1", "LEAD000002", NOW + later_ms)

    assert run(dedup_target, scenario) is (not refused)


def test_each_entry_keeps_its_own_time(dedup_target):
    """A later write for one buyer does not stretch another's entry: no whole-key TTL decides."""
    async def scenario(store, _redis):
        await reserve(store, "b1", "LEAD000001")
        await reserve(store, "b2", "LEAD000002", NOW + 20 * DAY_MS)
        return await submit(store, "LEAD000003", at=NOW + WINDOW + 1_000, platform=False, record=False)

    assert run(dedup_target, scenario).duplicate_buyer_ids == frozenset({"b2"})


def test_reservation_per_buyer(dedup_target):
    async def scenario(store, _redis):
        results = [
            await reserve(store, "b1", "LEAD000001"),
            await reserve(store, "b1", "LEAD000001", NOW + 1000),  # the same lead again
            await reserve(store, "b1", "LEAD000002", NOW + 2000),  # same consumer, other lead
            await reserve(store, "b2", "LEAD000002", NOW + 3000),
        ]
        later = await submit(store, "LEAD000003", at=NOW + 4000, platform=False)
        return results, later

    results, later = run(dedup_target, scenario)
    assert results == [True, True, False, True]
    assert later.duplicate_buyer_ids == frozenset({"b1", "b2"})


def test_the_buyer_scope_can_be_off(dedup_target):
    async def scenario(store, _redis):
        await reserve(store, "b1", "LEAD000001")
        return await submit(store, "LEAD000002", at=NOW + 1000, platform=False, buyers=False)

    assert run(dedup_target, scenario).duplicate_buyer_ids == frozenset()


def test_a_reservation_on_any_one_identity_blocks_the_buyer(dedup_target):
    async def scenario(store, _redis):
        await reserve(store, "b1", "LEAD000001", keys=[identities()["email"]])
        return await reserve(store, "b1", "LEAD000002", NOW + 1000)

    assert run(dedup_target, scenario) is False


def test_verticals_are_separate(dedup_target):
    async def scenario(store, _redis):
        await submit(store, "LEAD000001")
        await reserve(store, "b1", "LEAD000001")
        other = await store.check_submission("LEAD000002", "auto_insurance", identities(), NOW + 1000, WINDOW)
        award = await store.reserve_for_buyer("b1", "LEAD000002", "auto_insurance",
                                              list(identities().values()), NOW + 1000, WINDOW)
        return other, award

    other, award = run(dedup_target, scenario)
    assert other.platform_duplicate_on is None and other.duplicate_buyer_ids == frozenset()
    assert award is True


def test_simultaneous_awards_of_one_consumer_to_one_buyer_let_exactly_one_win(dedup_target):
    async def scenario(store, _redis):
        return await asyncio.gather(*(reserve(store, "b1", f"LEAD{i:06d}") for i in range(200)))

    assert sum(run(dedup_target, scenario)) == 1


def test_simultaneous_submissions_of_one_consumer_let_exactly_one_through(dedup_target):
    async def scenario(store, _redis):
        return await asyncio.gather(*(submit(store, f"LEAD{i:06d}") for i in range(100)))

    results = run(dedup_target, scenario)
    assert sum(1 for r in results if r.platform_duplicate_on is None) == 1


def with_two_workers(target: DedupTarget, scenario):
    """`scenario(stores)`'s outcome, with two stores over one namespace on clients of their own (two
    dedup workers)."""
    async def main():
        namespace = f"u{uuid.uuid4().hex[:8]}:"
        clients = [target.connect(), target.connect()]
        stores = [target.store(c, namespace) for c in clients]
        await stores[0].declare_intact(NOW)
        try:
            return await scenario(stores)
        finally:
            for client in clients:
                await client.aclose()

    return asyncio.run(main())


def test_two_stores_on_separate_connections_race_safely(dedup_target):
    """Two workers (two pools, two pipelines) awarding the same consumers to the same buyers."""
    consumers = [{"ssn": f"123-45-{i:04d}"} for i in range(1, 21)]

    async def scenario(stores):
        results = await asyncio.gather(*(
            stores[n % 2].reserve_for_buyer(f"b{n % 3}", f"L{n:08d}X", V,
                                            list(identities(consumers[n % 20]).values()), NOW, WINDOW)
            for n in range(600)))
        won = {(n % 3, n % 20) for n, ok in enumerate(results) if ok}
        return sum(results), won

    wins, won = with_two_workers(dedup_target, scenario)
    assert wins == 60 == len(won)  # every (buyer, consumer) pair exactly once


def test_concurrent_calls_share_round_trips(dedup_target):
    async def scenario(store, redis):
        for n in range(300):  # many buyers already hold consumers: the cost must not grow with them
            await reserve(store, f"buyer{n}", "LEAD999999")
        nodes = {"target_nodes": redis.get_primaries()} if dedup_target.cluster else {}
        await redis.config_resetstat(**nodes)
        before = store.round_trips
        results = await asyncio.gather(*(submit(store, f"LEAD{i:06d}", {"ssn": f"123-45-{i + 1:04d}"})
                                         for i in range(500)))
        stats = await redis.info("commandstats", **nodes)
        per_node = stats.values() if dedup_target.cluster else [stats]
        # Less those refused NOSCRIPT (a node's first sight of the script, which is then loaded).
        calls = sum(node.get("cmdstat_evalsha", {}).get("calls", 0) - node.get("cmdstat_evalsha", {}).get(
            "failed_calls", 0) for node in per_node)
        return results, calls, store.round_trips - before, len(per_node)

    results, calls, round_trips, nodes = run(dedup_target, scenario)
    assert all(r.platform_duplicate_on is None for r in results)
    assert calls == 500  # one script call per lead, whatever the number of buyers
    # Sent together: the 500 concurrent checks shared a few pipelines (on a cluster, a few per node).
    assert round_trips < 10 * nodes


def test_a_flushed_script_cache_is_reloaded(dedup_target):
    async def scenario(store, redis):
        await submit(store, "LEAD000001")
        await redis.script_flush()
        return await submit(store, "LEAD000002", at=NOW + 1000)

    assert run(dedup_target, scenario).platform_duplicate_on == "ssn"


def test_stale_records_are_swept_from_the_bucket(dedup_target):
    async def scenario(store, redis):
        await submit(store, "LEAD000001", OTHER)
        ssn_key, ssn_field = store.location(V, identities(OTHER)["ssn"])
        # A month later a different consumer lands in the same bucket: its write sweeps the bucket.
        neighbour = next(s for s in (f"{a:03d}-45-6789" for a in range(100, 900))
                         if store.location(V, pii.identity_key(SECRET, "ssn", s))[0] == ssn_key)
        await submit(store, "LEAD000002", {"ssn": neighbour}, NOW + WINDOW + 2 * DAY_MS)
        return await redis.hexists(ssn_key, ssn_field)

    assert run(dedup_target, scenario, bucket_bits=8) is False


def test_records_are_compact(dedup_target):
    async def scenario(store, redis):
        await submit(store, "LEAD000001")
        await reserve(store, "b1", "LEAD000001")
        key, field = store.location(V, identities()["ssn"])
        return await redis.hget(key, field), await redis.object("encoding", key)

    value, encoding = run(dedup_target, scenario)
    assert len(value) == 22  # the platform record and one buyer's, 11 bytes each
    assert value.endswith(lead_fingerprint("LEAD000001"))
    assert encoding in (b"listpack", b"ziplist")


def test_no_raw_pii_reaches_redis(dedup_target):
    async def scenario(store, redis):
        await submit(store, "LEAD000001")
        await reserve(store, "b1", "LEAD000001")
        dump = []
        async for key in redis.scan_iter(match=f"dd:{store.namespace}*"):
            dump.append(key)
            dump.extend(k + v for k, v in (await redis.hgetall(key)).items())
        return b" ".join(dump)

    dump = run(dedup_target, scenario).lower()
    assert dump
    for raw in ("123456789", "123-45-6789", "ana@example.com", "2125550142", "212-555-0142"):
        assert raw.encode() not in dump


def test_a_ping_only_asks_and_a_direct_sale_is_recorded_without_the_platform_check(dedup_target):
    async def scenario(store, _redis):
        ping = await submit(store, "", record=False)
        after_ping = await submit(store, "LEAD000001", at=NOW + 1000)
        direct = await submit(store, "LEAD000002", at=NOW + 2000, platform=False, record=True)
        auction_after_direct = await submit(store, "LEAD000003", at=NOW + 3000)
        return ping, after_ping, direct, auction_after_direct

    ping, after_ping, direct, auction_after_direct = run(dedup_target, scenario)
    assert ping.platform_duplicate_on is None
    assert after_ping.platform_duplicate_on is None  # the PING left no record behind
    assert direct.platform_duplicate_on is None  # not checked platform-wide...
    assert auction_after_direct.platform_duplicate_on == "ssn"  # ...but recorded, so later leads are caught


def test_a_reservation_that_never_reached_the_buyer_is_released(dedup_target):
    async def scenario(store, _redis):
        await reserve(store, "b1", "LEAD000001")
        await reserve(store, "b2", "LEAD000001")
        other_lead = await store.release_for_buyer("b1", "LEAD000009", V, list(identities().values()), NOW, WINDOW)
        released = await store.release_for_buyer("b1", "LEAD000001", V, list(identities().values()), NOW, WINDOW)
        unknown = await store.release_for_buyer("b7", "LEAD000001", V, list(identities().values()), NOW, WINDOW)
        after = await submit(store, "LEAD000002", at=NOW + 1000, platform=False, record=False)
        return other_lead, released, unknown, after, await reserve(store, "b1", "LEAD000003", NOW + 2000)

    other_lead, released, unknown, after, again = run(dedup_target, scenario)
    assert (other_lead, released, unknown) == (False, True, False)  # only this lead's own reservation
    assert after.duplicate_buyer_ids == frozenset({"b2"})
    assert again is True


def split_consumer(store: DedupStore) -> dict[str, str]:
    """A consumer whose SSN falls in a lower shard than its email (on one shard: any consumer)."""
    def shard(kind: str, value: str) -> int:
        return store._place(V, pii.identity_key(SECRET, kind, value))[0]

    for n in range(1000):
        fields = {"ssn": f"321-54-{n:04d}", "email": f"split{n}@example.com"}
        if store.shards == 1 or shard("ssn", fields["ssn"]) < shard("email", fields["email"]):
            return fields
    raise AssertionError("no consumer spans two shards")


def test_a_consumer_found_taken_in_a_later_shard_keeps_no_record_in_the_earlier_ones(dedup_target):
    """The second lead records its SSN (lower shard) before it finds its email taken (higher shard):
    that record is undone, so a third lead with the SSN alone is new, as on one Redis."""
    async def scenario(store, _redis):
        consumer = split_consumer(store)
        email_only = await submit(store, "LEAD000001", {"email": consumer["email"]})
        both = await submit(store, "LEAD000002", consumer, NOW + 1000)
        ssn_only = await submit(store, "LEAD000003", {"ssn": consumer["ssn"]}, NOW + 2000)
        return email_only, both, ssn_only

    email_only, both, ssn_only = run(dedup_target, scenario)
    assert email_only.platform_duplicate_on is None
    assert both.platform_duplicate_on == "email"
    assert ssn_only.platform_duplicate_on is None


def test_an_award_refused_in_a_later_shard_keeps_no_reservation_in_the_earlier_ones(dedup_target):
    async def scenario(store, _redis):
        consumer = split_consumer(store)

        def award(lead_id, fields):
            return store.reserve_for_buyer("b1", lead_id, V, list(identities(fields).values()), NOW, WINDOW)

        return (await award("LEAD000001", {"email": consumer["email"]}), await award("LEAD000002", consumer),
                await award("LEAD000003", {"ssn": consumer["ssn"]}))

    assert run(dedup_target, scenario) == (True, False, True)


def pairs_sharing(count: int, shared_kinds: int) -> list[tuple[dict, dict]]:
    """Pairs of consumers that share one or two identities (different kinds from pair to pair) and
    nothing else."""
    kinds = ["ssn", "email", "home_phone"]
    values = {"ssn": lambda n, t: f"55{t}-{n // 100:02d}-{n % 100:04d}",
              "email": lambda n, t: f"pair{n}-{t}@example.com",
              "home_phone": lambda n, t: f"31{t}-555-{n:04d}"}
    pairs = []
    for n in range(count):
        shared = [kinds[(n + i) % 3] for i in range(shared_kinds)]
        first = {kind: values[kind](n, 1) for kind in kinds}
        second = {kind: values[kind](n, 2) for kind in kinds} | {kind: first[kind] for kind in shared}
        pairs.append((first, second))
    return pairs


@pytest.mark.parametrize("shared_kinds", [1, 2])
def test_of_two_simultaneous_leads_sharing_identities_exactly_one_passes(dedup_target, shared_kinds):
    """Ordered acquisition: the two meet first on the lowest shard of what they share, where one
    script decides; the other stops there, so never both refused (which two calls taking their
    shards in different orders could be) nor both passed. Two stores, as two workers."""
    pairs = pairs_sharing(150, shared_kinds)

    async def scenario(stores):
        checks = [submit(stores[side], f"L{n:05d}{side}", pair[side])
                  for n, pair in enumerate(pairs) for side in (0, 1)]
        awards = [stores[side].reserve_for_buyer("b1", f"L{n:05d}{side}", V, list(identities(pair[side]).values()),
                                                 NOW, WINDOW) for n, pair in enumerate(pairs) for side in (1, 0)]
        return await asyncio.gather(*checks), await asyncio.gather(*awards)

    checks, awards = with_two_workers(dedup_target, scenario)
    passed = [r.platform_duplicate_on is None for r in checks]
    assert all(passed[2 * n] != passed[2 * n + 1] for n in range(len(pairs)))
    assert all(awards[2 * n] != awards[2 * n + 1] for n in range(len(pairs)))


def test_overlapping_consumers_racing_never_let_two_through_on_one_identity(dedup_target):
    """A chain of leads, each sharing its email with one neighbour and its phone with the other, all
    at once through two stores: no two leads that pass (or win one buyer) share an identity."""
    leads = [{"ssn": f"777-01-{k:04d}", "email": f"chain{k // 2}@example.com",
              "home_phone": f"415-555-{(k + 1) // 2:04d}"} for k in range(240)]

    async def scenario(stores):
        checks = asyncio.gather(*(submit(stores[k % 2], f"C{k:05d}", fields) for k, fields in enumerate(leads)))
        awards = asyncio.gather(*(stores[k % 2].reserve_for_buyer("b1", f"A{k:05d}", V,
                                                                  list(identities(fields).values()), NOW, WINDOW)
                                  for k, fields in enumerate(leads)))
        return await checks, await awards

    checks, awards = with_two_workers(dedup_target, scenario)
    for outcome in ([r.platform_duplicate_on is None for r in checks], awards):
        winners = [leads[k] for k, won in enumerate(outcome) if won]
        assert winners
        for kind in ("email", "home_phone"):
            assert len({w[kind] for w in winners}) == len(winners), f"two winners share an {kind}"


def test_on_a_cluster_a_call_covers_the_consecutive_shards_one_node_serves(redis_cluster):
    """On a cluster a lead's shards go in ascending order, and consecutive shards served by one node
    share a script call: every key of a call is on one node, two calls in a row are on different
    nodes, and over many consumers there are fewer calls than shards."""
    async def main():
        redis = DedupTarget(redis_cluster.url, cluster=True).connect()
        try:
            store = DedupStore(redis, namespace=f"u{uuid.uuid4().hex[:8]}:")
            await store.declare_intact(NOW)
            shard_of_epoch = {store.state_keys(shard)[1]: shard for shard in range(store.shards)}
            calls = shards = 0
            for n in range(300):
                fields = {"ssn": f"661-{n // 100:02d}-{n % 100:04d}", "email": f"c{n}@example.com",
                          "home_phone": f"213-555-{n:04d}"}
                made = await store._calls(V, list(identities(fields).values()), 3)
                order, nodes = [], []
                for call in made:
                    on = {redis.nodes_manager.get_node_from_slot(redis.keyslot(key)).name for key in call.keys}
                    assert len(on) == 1
                    nodes.append(on.pop())
                    at = 0
                    for count in call.shards[::2]:
                        order.append(shard_of_epoch[call.keys[at]])
                        at += 3 + count
                assert order == sorted(order) and len(set(order)) == len(order)
                assert all(a != b for a, b in itertools.pairwise(nodes))
                assert sorted(call_index for call in made for call_index in call.indices) == [0, 1, 2]
                calls += len(made)
                shards += len(order)
                # The calls themselves: the consumer is new, then a duplicate on its SSN.
                assert (await submit(store, f"N{n:05d}", fields)).platform_duplicate_on is None
                assert (await submit(store, f"M{n:05d}", fields)).platform_duplicate_on == "ssn"
            assert calls < shards
        finally:
            await redis.aclose()

    asyncio.run(main())
