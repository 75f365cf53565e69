"""The two Redis layouts a store's tests run on: one Redis (the session's `redis_url`) and a real
Redis Cluster of three primaries (the session's `redis_cluster`), where every script, MULTI and
multi-key command must keep to one hash slot. A test module parametrizes a fixture with them:

    @pytest.fixture(params=LAYOUTS)
    def redis_target(request) -> RedisSettings:
        return layout(request)
"""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from leadx.platform.config import RedisSettings
from leadx.platform.redis.client import RedisClient, connect, read_layout

LAYOUTS = ["one-redis", "cluster"]


def layout(request: pytest.FixtureRequest) -> RedisSettings:
    """What `leadx.platform.redis.client.connect` takes for the layout `request.param` names."""
    if request.param == "cluster":
        return RedisSettings(url=request.getfixturevalue("redis_cluster").url, cluster=True)
    return RedisSettings(url=request.getfixturevalue("redis_url"))


async def connected(settings: RedisSettings) -> RedisClient:
    """`connect(settings)`, a cluster client having read the cluster's layout already (as leadx's
    client does before its first command, leadx.platform.redis.client.TimedRedisCluster: redis-py
    8.1 would otherwise send a new client's first burst to one node)."""
    client = connect(settings)
    if isinstance(client, RedisCluster):
        await read_layout(client)
    return client
