"""The offer record of an open auction in Redis, `offer:<namespace><auction id>`: a hash of its
close (`closes_at_ms`), reserve (`min_price_cents`) and offered buyers (`offered`, space-separated).

The auction worker writes it when it opens an auction with buyers to ping; the bid API reads it to
refuse at once a bid the worker would refuse. The worker's table stays the judge of every bid."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

# The hash and its expiry in one command: a MULTI/EXEC pipeline of the same two costs the worker
# several times the CPU (redis-py builds and parses four commands), once per auction opened.
_WRITE = """
redis.call('HSET', KEYS[1], 'closes_at_ms', ARGV[1], 'min_price_cents', ARGV[2], 'offered', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
"""


def offer_key(namespace: str, auction_id: str) -> str:
    return f"offer:{namespace}{auction_id}"


class OfferWriter:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.namespace = namespace
        self._write = redis.register_script(_WRITE)

    async def write(self, auction_id: str, closes_at_ms: int, min_price_cents: int, offered: Sequence[str],
                    ttl_ms: int) -> None:
        """The offer record of an auction, kept `ttl_ms` (its window and the time closed auctions
        are remembered)."""
        await self._write(keys=[offer_key(self.namespace, auction_id)],
                          args=[closes_at_ms, min_price_cents, " ".join(offered), ttl_ms])
