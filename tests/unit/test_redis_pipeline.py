"""The shared Redis pipeliner against a real Redis: plain commands and scripts made in one turn
share a round trip, every caller gets its own reply or its own error."""

from __future__ import annotations

import asyncio
import uuid

import redis
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from leadx.dev.redis_cluster import LocalRedisCluster
from leadx.platform.config import RedisSettings

from leadx.platform.redis.client import connect
from leadx.platform.redis.pipeline import MAX_PIPELINE, NotReplicated, Pipeliner


def run(redis_url: str, scenario):
    async def main():
        redis = connect(redis_url)
        try:
            return await scenario(Pipeliner(redis), redis, f"rp:{uuid.uuid4().hex[:8]}:")
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_commands_made_together_share_round_trips_and_each_gets_its_reply(redis_url):
    async def scenario(pipeliner, redis, prefix):
        writes = await asyncio.gather(*(pipeliner.command("SET", f"{prefix}{n}", f"seller{n}", "EX", 60)
                                        for n in range(200)))
        reads = await asyncio.gather(*(pipeliner.command("GET", f"{prefix}{n}") for n in range(200)))
        ttl = await redis.ttl(f"{prefix}7")
        return writes, reads, ttl, pipeliner.round_trips

    writes, reads, ttl, round_trips = run(redis_url, scenario)
    assert writes == [b"OK"] * 200
    assert reads == [f"seller{n}".encode() for n in range(200)]
    assert 0 < ttl <= 60
    # 400 calls in two turns, cut into pipelines of MAX_PIPELINE: not one round trip per call.
    assert round_trips == 2 * -(-200 // MAX_PIPELINE)


def test_an_error_reply_fails_only_its_own_caller(redis_url):
    async def scenario(pipeliner, redis, prefix):
        await redis.set(f"{prefix}text", "not a number")
        return await asyncio.gather(pipeliner.command("INCR", f"{prefix}counter"),
                                    pipeliner.command("INCR", f"{prefix}text"),
                                    pipeliner.command("INCR", f"{prefix}counter"), return_exceptions=True)

    first, failed, second = run(redis_url, scenario)
    assert (first, second) == (1, 2)
    assert isinstance(failed, ResponseError)


def test_scripts_and_commands_mix_and_a_flushed_script_is_reloaded(redis_url):
    async def scenario(pipeliner, redis, prefix):
        double = pipeliner.script("return tonumber(ARGV[1]) * 2")
        first = await asyncio.gather(double([], [21]), pipeliner.command("SET", f"{prefix}k", "v"))
        await redis.script_flush()
        again = await double([], [5])
        return first, again

    first, again = run(redis_url, scenario)
    assert first == [42, b"OK"]
    assert again == 10


def test_a_broken_connection_fails_every_waiting_caller_as_a_redis_error(redis_url):
    async def scenario(_pipeliner, _redis, _prefix):
        nothing_listens = connect("redis://127.0.0.1:1/0")
        try:
            broken = Pipeliner(nothing_listens)
            return await asyncio.gather(broken.command("GET", "a"), broken.command("GET", "b"),
                                        return_exceptions=True)
        finally:
            await nothing_listens.aclose()

    results = run(redis_url, scenario)
    assert len(results) == 2
    assert all(isinstance(r, RedisError) for r in results), results


def test_a_redis_that_stops_answering_fails_its_callers_as_a_redis_error_in_time(redis_url):
    """A Redis that takes the commands and never replies (frozen, say): every waiting caller gets a
    RedisError, which callers read as Redis unavailable (the intake answers 503), not a bare
    TimeoutError (which became a 500)."""
    async def silent_on_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The connection's own set-up commands are answered; a GET never is.
        while data := await reader.read(65536):
            for command in data.split(b"*")[1:]:
                if b"GET" not in command.upper():
                    writer.write(b"+OK\r\n")
            await writer.drain()

    async def scenario(_pipeliner, _redis, _prefix):
        server = await asyncio.start_server(silent_on_get, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        frozen = connect(f"redis://127.0.0.1:{port}/0?socket_timeout=0.3")
        try:
            return await asyncio.wait_for(asyncio.gather(
                Pipeliner(frozen).command("GET", "a"), Pipeliner(frozen).command("GET", "b"),
                return_exceptions=True), timeout=10)
        finally:
            await frozen.aclose()
            server.close()

    results = run(redis_url, scenario)
    assert all(isinstance(r, RedisError) for r in results), results
    assert "no reply from Redis within 0.3s" in str(results[0])


def test_writes_no_replica_acknowledged_fail_their_callers_as_not_replicated(redis_url):
    """REDIS_WAIT_REPLICAS=1 against a Redis without replicas: every call of the round trip fails
    (NotReplicated, a RedisError a caller retries), though Redis applied the writes."""
    async def scenario(_pipeliner, redis, prefix):
        waiting = Pipeliner(redis, replicas=1, replica_timeout_ms=50)
        outcomes = await asyncio.gather(*(waiting.command("SET", f"{prefix}{n}", "v") for n in range(3)),
                                        return_exceptions=True)
        return outcomes, await redis.get(f"{prefix}0")

    outcomes, written = run(redis_url, scenario)
    assert all(isinstance(o, NotReplicated) and isinstance(o, RedisError) for o in outcomes)
    assert "0 of 1 replicas acknowledged" in str(outcomes[0])
    assert written == b"v"


def test_on_a_cluster_calls_go_to_their_slots_node_and_follow_a_slot_that_moved(tmp_path):
    """A slot migrated to another primary after the pipeliner learnt the layout: the call sent to the
    old node is answered MOVED and sent again to the new one, its caller seeing only the value."""
    cluster = LocalRedisCluster(tmp_path / "cluster", primaries=3, replicas_per_primary=0)
    cluster.start()
    try:
        async def main():
            client = connect(RedisSettings(url=cluster.url, cluster=True))
            pipeliner = Pipeliner(client)
            try:
                written = await asyncio.gather(*(pipeliner.command("SET", f"spread:{n}", n) for n in range(60)))
                slot = key_slot(b"spread:7")
                source = cluster.primary_for_slot(slot)
                target = next(node for node in cluster.nodes if node != source)
                await asyncio.to_thread(migrate, cluster, slot, source, target, b"spread:7")
                before = pipeliner.round_trips
                moved = await pipeliner.command("GET", "spread:7")
                return written, moved, pipeliner.round_trips - before, cluster.primary_for_slot(slot) == target
            finally:
                await client.aclose()

        written, moved, round_trips, migrated = asyncio.run(main())
    finally:
        cluster.stop()
    assert written == [b"OK"] * 60  # spread over the three primaries, one batch split by node
    assert migrated and moved == b"7"
    assert round_trips == 2  # MOVED from the old node, then the value from the new one


def migrate(cluster: LocalRedisCluster, slot: int, source: str, target: str, key: bytes) -> None:
    """Move one slot and its key from `source` to `target`, as `redis-cli --cluster reshard` does."""
    def client(node: str) -> redis.Redis:
        host, port = node.rsplit(":", 1)
        return redis.Redis(host=host, port=int(port))

    ids = {entry.address: entry.node_id for entry in cluster.view(source)}
    with client(source) as old, client(target) as new:
        new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        host, port = target.rsplit(":", 1)
        old.execute_command("MIGRATE", host, port, "", 0, 5000, "KEYS", key)
        for node in cluster.nodes:
            with client(node) as each:
                each.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
