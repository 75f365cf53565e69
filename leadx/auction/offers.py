"""The offer record of an open auction in Redis, `offer:<namespace><auction id>`: a hash of its
close (`closes_at_ms`), reserve (`min_price_cents`) and offered buyers (`offered`, space-separated).

The auction worker writes it when it opens an auction with buyers to ping; the bid API reads it to
refuse at once a bid the worker would refuse. The worker's table stays the judge of every bid."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from leadx.platform.redis.client import RedisClient

# The hash and its expiry in one command: a MULTI/EXEC pipeline of the same two costs the worker
# several times the CPU (redis-py builds and parses four commands), once per auction opened.
_WRITE = """
redis.call('HSET', KEYS[1], 'closes_at_ms', ARGV[1], 'min_price_cents', ARGV[2], 'offered', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
"""


def offer_key(namespace: str, auction_id: str) -> str:
    return f"offer:{namespace}{auction_id}"


class OfferWriter:
    """Writes offer records, those asked for at the same moment in one round trip: the worker opens a
    batch of leads side by side (services.auction.streams.by_auction), and a Redis call each was an
    eighth of an open's CPU (py-spy, bench/auction.py)."""

    def __init__(self, redis: RedisClient, namespace: str) -> None:
        self.namespace = namespace
        self._redis = redis
        self._waiting: list[tuple[str, list, asyncio.Future]] = []

    async def write(self, auction_id: str, closes_at_ms: int, min_price_cents: int, offered: Sequence[str],
                    ttl_ms: int) -> None:
        """The offer record of an auction, kept `ttl_ms` (its window and the time closed auctions
        are remembered). Raises RedisError if it was not written."""
        loop = asyncio.get_running_loop()
        written = loop.create_future()
        self._waiting.append((offer_key(self.namespace, auction_id),
                              [closes_at_ms, min_price_cents, " ".join(offered), ttl_ms], written))
        if len(self._waiting) == 1:
            # After the tasks already scheduled, i.e. the rest of the batch, have asked too.
            loop.call_soon(lambda: asyncio.ensure_future(self._send()))
        await written

    async def _send(self) -> None:
        waiting, self._waiting = self._waiting, []
        pipe = self._redis.pipeline(transaction=False)
        for key, args, _ in waiting:
            # EVAL, not a registered script: redis-py checks a pipeline's registered scripts with an
            # extra round trip on every execute. The server compiles the body once and caches it.
            pipe.eval(_WRITE, 1, key, *args)
        try:
            outcomes = await pipe.execute(raise_on_error=False)
        except Exception as error:  # noqa: BLE001 - whatever it was, every waiting writer hears of it
            outcomes = [error] * len(waiting)
        for (_, _, written), outcome in zip(waiting, outcomes, strict=True):
            if written.done():
                continue  # its writer was cancelled
            if isinstance(outcome, Exception):
                written.set_exception(outcome)
            else:
                written.set_result(None)
