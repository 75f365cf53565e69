"""Redis calls made in one event-loop turn, sent as one pipeline.

A service that handles many requests or records concurrently makes its Redis calls from many
tasks at once; each paying its own round trip through redis-py costs far more CPU than the call
itself (the dedup worker's checks, the intake's owner marks). A Pipeliner collects the calls made
in one turn of the event loop and sends them together. A burst is cut into pipelines of
MAX_PIPELINE calls on separate connections, so Redis runs one while this process packs the next.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leadx.platform.metrics import REDIS_COMMAND_SECONDS

_PIPELINE_SECONDS = REDIS_COMMAND_SECONDS.labels("PIPELINE")
MAX_PIPELINE = 64  # calls per round trip (bench/dedup.py: 32-128 were alike, 256 slower)
REPLY_TIMEOUT_S = 30  # for a pipeline's replies, when the connection sets no socket timeout


class Script:
    """A Lua script called by its SHA1. One Redis does not know (restarted, flushed) is loaded
    and the call retried once."""

    def __init__(self, pipeliner: Pipeliner, source: str) -> None:
        self.pipeliner = pipeliner
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list) -> asyncio.Future:
        packed = _pack(["EVALSHA", self.sha, len(keys), *keys, *args])
        return self.pipeliner.submit(packed, self)


class Pipeliner:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.round_trips = 0  # pipelines sent: what bench/dedup.py reports per lead
        self._pending: list[tuple[bytes, Script | None, asyncio.Future]] = []
        self._in_flight: set[asyncio.Task] = set()

    def script(self, source: str) -> Script:
        return Script(self, source)

    def command(self, *parts: str | bytes | int) -> asyncio.Future:
        """Any Redis command, e.g. command("SET", key, value, "EX", 60); its reply as RESP2 gives it
        (bytes for a bulk string, an int, None), or its error raised."""
        return self.submit(_pack(parts), None)

    def submit(self, packed: bytes, script: Script | None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((packed, script, future))
        if len(self._pending) >= MAX_PIPELINE:
            self._send(self._pending)
            self._pending = []
        elif len(self._pending) == 1:
            loop.call_soon(self._send_pending)
        return future

    def _send_pending(self) -> None:
        if self._pending:
            self._send(self._pending)
            self._pending = []

    def _send(self, batch: list) -> None:
        task = asyncio.ensure_future(self._flush(batch))
        self._in_flight.add(task)  # held, so the task is not collected mid-flight
        task.add_done_callback(self._in_flight.discard)

    async def _flush(self, batch: list) -> None:
        try:
            results = await self._execute(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError) and batch[i][1]]
            if missing:
                for script in {batch[i][1] for i in missing}:
                    await self.redis.script_load(script.source)
                retried = await self._execute([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except Exception as error:  # noqa: BLE001 - every waiting caller gets the failure
            results = [error] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch) -> list:
        """One round trip: every call of the batch written at once, then every reply read. The
        commands are packed here rather than by redis-py's Pipeline, which costs several times
        more CPU per call (it was the largest item in the dedup worker's profile)."""
        self.round_trips += 1
        packed = b"".join(call for call, _, _ in batch)
        pool = self.redis.connection_pool
        started = time.perf_counter()
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed, check_health=False)
            results = []
            # One deadline for the whole batch rather than redis-py's per reply (a tenth of the CPU).
            deadline_s = connection.socket_timeout or REPLY_TIMEOUT_S
            try:
                async with asyncio.timeout(deadline_s):
                    for _ in batch:
                        try:
                            results.append(await connection.read_response(timeout=math.inf))
                        except ResponseError as error:  # a reply that is an error; the others still come
                            results.append(error)
            except TimeoutError as error:
                # As redis-py says it: callers treat every RedisError as Redis unavailable (the
                # intake answers 503), and a bare TimeoutError would have been a 500.
                raise RedisTimeoutError(f"no reply from Redis within {deadline_s:g}s") from error
        except BaseException:
            await connection.disconnect()  # a half-read connection must not be reused
            raise
        finally:
            await pool.release(connection)
            _PIPELINE_SECONDS.observe(time.perf_counter() - started)
        return results


def _pack(parts) -> bytes:
    """One command in the Redis protocol (RESP2): an array of bulk strings."""
    items = [p if isinstance(p, bytes) else str(p).encode() for p in parts]
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)
