"""One way to connect to Redis for every service, over TLS when its URL is `rediss://`.

redis-py's asyncio pool raises MaxConnectionsError once its limit is reached, and our consumers
handle hundreds of records at once. A blocking pool makes the surplus wait for a connection
instead, and bounds what one replica asks of Redis.

Every command and pipeline is timed into `leadx_redis_command_duration_seconds` (the Pipeliner's
batches of leadx.platform.redis.pipeline too), labelled by the command's name only.
"""

from __future__ import annotations

import time

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster

from leadx.platform.config import RedisSettings
from leadx.platform.metrics import REDIS_COMMAND_SECONDS

MAX_CONNECTIONS = 64

# One Redis, or a Redis Cluster (REDIS_CLUSTER=true): every leadx use of Redis works on both
# (docs/dedup.md#on-redis-cluster), so the code that takes a client takes either.
RedisClient = Redis | RedisCluster


class TimedRedis(Redis):
    async def execute_command(self, *args, **options):
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)
        finally:
            REDIS_COMMAND_SECONDS.labels(command_name(args[0])).observe(time.perf_counter() - started)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class TimedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True):
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error)
        finally:
            REDIS_COMMAND_SECONDS.labels("PIPELINE").observe(time.perf_counter() - started)


class TimedRedisCluster(RedisCluster):
    async def execute_command(self, *args, **kwargs):
        # redis-py 8.1 picks a node for a keyed command before it has read the cluster's layout:
        # commands made together on a fresh client all went to one node and came back MOVED, and
        # after five it closed every connection, some in use (AttributeError, not a RedisError: a
        # 500 at the intake). Reading the layout first avoids it (30 of 300 calls failed before).
        await read_layout(self)
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            REDIS_COMMAND_SECONDS.labels(command_name(args[0])).observe(time.perf_counter() - started)


async def read_layout(cluster: RedisCluster) -> None:
    """Have the client read which node serves which slot, once, before it routes anything."""
    if cluster.nodes_manager.default_node is None:
        await cluster.initialize()


def hash_tag(redis: RedisClient, value: str) -> str:
    """`{value}` on a Redis Cluster, where a script, MULTI or multi-key command may touch one hash
    slot only and keys sharing this tag share a slot; nothing on one Redis, whose key names stay
    as they always were (live counters and marks must survive an upgrade)."""
    return f"{{{value}}}" if isinstance(redis, RedisCluster) else ""


def command_name(name) -> str:
    """`SET`, `EVALSHA`, `SCRIPT LOAD`: the words of a command's name, never its arguments."""
    return (name.decode() if isinstance(name, bytes) else str(name)).upper()


def connect(redis: RedisSettings | str, max_connections: int = MAX_CONNECTIONS) -> RedisClient:
    """A client of the Redis at `redis` (its settings, or a bare URL). A `rediss://` URL connects
    over TLS, verifying the server's certificate and host name against the settings' CA file, or
    the system's CAs without one; the URL's password (and ACL user) authenticates each connection.
    With `cluster` the URL is one node of a Redis Cluster and the client one of the whole cluster
    (its connections, `max_connections` per node, are made as calls need them)."""
    settings = RedisSettings(url=redis) if isinstance(redis, str) else redis
    options = {"ssl_ca_certs": settings.ssl_ca_certs} if settings.tls and settings.ssl_ca_certs else {}
    if settings.cluster:
        return TimedRedisCluster.from_url(settings.url, max_connections=max_connections, **options)
    pool = BlockingConnectionPool.from_url(settings.url, max_connections=max_connections, timeout=20, **options)
    return TimedRedis(connection_pool=pool)
