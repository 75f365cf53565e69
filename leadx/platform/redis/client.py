"""One way to connect to Redis for every service.

redis-py's asyncio pool raises MaxConnectionsError once its limit is reached, and our consumers
handle hundreds of records at once. A blocking pool makes the surplus wait for a connection
instead, and bounds what one replica asks of Redis.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_CONNECTIONS = 64


def connect(url: str, max_connections: int = MAX_CONNECTIONS) -> Redis:
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=20)
    return Redis(connection_pool=pool)
