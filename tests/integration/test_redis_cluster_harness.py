"""The local Redis Cluster the tests and benches start (leadx.dev.redis_cluster): it spreads keys
over its primaries as a production cluster does, and a killed primary's replica takes over its slots
with the data it had, seen through redis-py's cluster client; the killed node, started again,
rejoins as the replica of its successor."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from leadx.dev.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.integration


def node_client(node: str) -> redis.Redis:
    host, port = node.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), decode_responses=True)


def test_keys_spread_over_every_primary(redis_cluster: LocalRedisCluster) -> None:
    prefix = f"spread:{uuid.uuid4().hex[:8]}:"
    keys = {f"{prefix}{n}": str(n) for n in range(100)}

    async def write_and_read() -> list[str | None]:
        client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
        try:
            for key, value in keys.items():
                await client.set(key, value)
            return [await client.get(key) for key in keys]
        finally:
            await client.aclose()

    assert asyncio.run(write_and_read()) == list(keys.values())
    primaries = sorted({redis_cluster.primary_for_slot(slot) for slot in (0, 8000, 16383)})
    assert len(primaries) == 3
    held = {}
    for primary in primaries:
        with node_client(primary) as client:
            held[primary] = set(client.scan_iter(match=f"{prefix}*", count=1000))
    assert all(held.values()), f"a primary holds none of the keys: { {p: len(k) for p, k in held.items()} }"
    assert set().union(*held.values()) == set(keys)
    for primary, its_keys in held.items():
        assert all(redis_cluster.primary_for_slot(key_slot(key.encode())) == primary for key in its_keys)


@pytest.mark.fault
def test_killed_primary_fails_over_and_rejoins_as_replica(tmp_path: Path) -> None:
    with LocalRedisCluster(tmp_path / "cluster", primaries=3, replicas_per_primary=1) as cluster:
        key = f"survivor:{uuid.uuid4().hex[:8]}"
        old_primary = cluster.primary_for_slot(key_slot(key.encode()))
        (replica,) = cluster.replicas_of(old_primary)

        async def scenario() -> str | None:
            client = RedisCluster.from_url(cluster.url, decode_responses=True)
            try:
                await client.set(key, "kept")
                with node_client(old_primary) as primary:
                    assert primary.execute_command("WAIT", 1, 1000) == 1  # the replica has the write
                cluster.kill(old_primary)
                assert await asyncio.to_thread(cluster.wait_failover, old_primary) == replica
                return await client.get(key)  # the same client, which must find the new primary itself
            finally:
                await client.aclose()

        assert asyncio.run(scenario()) == "kept"
        assert cluster.role(replica) == "master"

        cluster.restart(old_primary)
        assert cluster.role(old_primary) == "slave"
        assert cluster.replicas_of(replica) == [old_primary]
        with node_client(old_primary) as rejoined:
            rejoined.execute_command("READONLY")
            assert rejoined.get(key) == "kept"  # synced from its successor
