"""Redis calls made in one event-loop turn, sent as one pipeline.

A service that handles many requests or records concurrently makes its Redis calls from many
tasks at once; each paying its own round trip through redis-py costs far more CPU than the call
itself (the dedup worker's checks, the intake's owner marks). A Pipeliner collects the calls made
in one turn of the event loop and sends them together. A burst is cut into pipelines of
MAX_PIPELINE calls on separate connections, so Redis runs one while this process packs the next.

On a Redis Cluster each call goes to the primary serving its first key's slot (every key of one
call must share that slot): a batch is split by node and sent to the nodes side by side. A call
redirected (MOVED: a failover or a resharding moved its slot; TRYAGAIN, ASK: a slot migrating), or
sent to a node that is gone, is sent again once the client has re-read the cluster's layout, a few
times, then failed like any call Redis did not answer.

With `replicas`, every round trip ends with Redis's WAIT: its calls succeed only once that many
replicas hold what they wrote, so a replica promoted when its primary dies has it. Otherwise they
fail (NotReplicated, a RedisError): what they wrote is on the primary only, and a caller retries
them as it retries a Redis that did not answer (leadx's writes are idempotent per lead).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time

import hiredis

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (AskError, ClusterDownError, MovedError, NoScriptError, RedisError,
                              ResponseError, TryAgainError)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leadx.platform.metrics import REDIS_COMMAND_SECONDS
from leadx.platform.redis.client import read_layout

_PIPELINE_SECONDS = REDIS_COMMAND_SECONDS.labels("PIPELINE")
MAX_PIPELINE = 64  # calls per round trip (bench/dedup.py: 32-128 were alike, 256 slower)
REPLY_TIMEOUT_S = 30  # for a pipeline's replies, when the connection sets no socket timeout
# On a cluster, a redirected call or a node gone is retried after these pauses (seconds): a
# failover takes the node timeout (a few seconds) plus an election, which the last pauses outlast.
CLUSTER_RETRY_PAUSES_S = (0.05, 0.25, 0.5, 1.0, 2.0, 4.0)
_REDIRECTED = (MovedError, AskError, TryAgainError, ClusterDownError)
# On a cluster, how long calls may wait for a round trip in flight before they go on their own.
CLUSTER_HOLD_S = 0.002


class NotReplicated(RedisError):
    """Redis wrote a round trip's calls, but fewer replicas than required acknowledged them in time."""


class Script:
    """A Lua script called by its SHA1. One Redis does not know (restarted, flushed) is loaded
    and the call retried once."""

    def __init__(self, pipeliner: Pipeliner, source: str) -> None:
        self.pipeliner = pipeliner
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list) -> asyncio.Future:
        packed = _pack(["EVALSHA", self.sha, len(keys), *keys, *args])
        return self.pipeliner.submit(packed, self, keys[0] if keys else None)


# One call: the command packed, its script (to load it where Redis does not know it), the key
# that routes it on a cluster, and the future its caller awaits.
Call = tuple[bytes, Script | None, str | bytes | None, asyncio.Future]


class Pipeliner:
    def __init__(self, redis: Redis | RedisCluster, replicas: int = 0, replica_timeout_ms: int = 500) -> None:
        self.redis = redis
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        self._wait = _pack(["WAIT", replicas, replica_timeout_ms]) if replicas > 0 else b""
        # On a cluster a batch is split by node, and calls made while one is in flight wait for it
        # (or for a full batch, or CLUSTER_HOLD_S): a caller whose next call depends on its last
        # (the dedup store's shards, one after another) then shares a pipeline with many others
        # instead of a few.
        self._max_batch = MAX_PIPELINE * (4 if self._cluster is not None else 1)
        self._replicas = replicas
        self.round_trips = 0  # pipelines sent: what bench/dedup.py reports per lead
        self._pending: list[Call] = []
        self._in_flight: set[asyncio.Task] = set()

    def script(self, source: str) -> Script:
        return Script(self, source)

    def command(self, *parts: str | bytes | int) -> asyncio.Future:
        """Any Redis command, e.g. command("SET", key, value, "EX", 60); its reply as RESP2 gives it
        (bytes for a bulk string, an int, None), or its error raised. On a cluster its first
        argument after the name is the key that routes it."""
        key = parts[1] if len(parts) > 1 and not isinstance(parts[1], int) else None
        return self.submit(_pack(parts), None, key)

    def submit(self, packed: bytes, script: Script | None, key: str | bytes | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((packed, script, key, future))
        if len(self._pending) >= self._max_batch:
            self._send(self._pending)
            self._pending = []
        elif len(self._pending) == 1:
            if self._cluster is not None and self._in_flight:
                # Held for the round trip in flight, but never long: one stuck on a node that
                # fails over must not hold the calls bound for the others.
                loop.call_later(CLUSTER_HOLD_S, self._send_pending)
            else:
                loop.call_soon(self._send_pending)
        return future

    def _send_pending(self) -> None:
        if self._pending:
            self._send(self._pending)
            self._pending = []

    def _send(self, batch: list) -> None:
        task = asyncio.ensure_future(self._flush(batch))
        self._in_flight.add(task)  # held, so the task is not collected mid-flight
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        if self._cluster is not None and self._pending and not self._in_flight:
            asyncio.get_running_loop().call_soon(self._send_pending)

    async def _flush(self, batch: list[Call]) -> None:
        try:
            if self._cluster is None:
                results = await self._with_scripts_loaded(batch, self._execute)
            else:
                results = await self._on_cluster(self._cluster, batch)
        except Exception as error:  # noqa: BLE001 - every waiting caller gets the failure
            results = [error] * len(batch)
        for (_, _, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _with_scripts_loaded(self, batch: list[Call], execute, node: ClusterNode | None = None) -> list:
        """`execute(batch)`'s replies; the calls of scripts Redis did not know are sent again once
        they are loaded (on `node`, on a cluster: each node has its own script cache)."""
        results = await execute(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError) and batch[i][1]]
        if missing:
            for script in {batch[i][1] for i in missing}:
                assert script is not None
                if node is None:
                    await self.redis.script_load(script.source)
                else:
                    await self._on_node(node, [(_pack(["SCRIPT", "LOAD", script.source]), None, None, None)])
            retried = await execute([batch[i] for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        return results

    async def _on_cluster(self, cluster: RedisCluster, batch: list[Call]) -> list:
        """The batch split by the node serving each call's slot, the parts sent side by side; calls
        redirected or whose node failed are retried after re-reading the layout."""
        await read_layout(cluster)
        results: list = [None] * len(batch)
        pending = list(range(len(batch)))
        for pause_s in (*CLUSTER_RETRY_PAUSES_S, None):
            by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
            for i in pending:
                key = batch[i][2]
                node = (cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key)) if key is not None
                        else cluster.get_default_node())
                by_node.setdefault(node.name, (node, []))[1].append(i)
            parts = await asyncio.gather(*(
                self._with_scripts_loaded([batch[i] for i in indices],
                                          lambda calls, node=node: self._on_node(node, calls), node)
                for node, indices in by_node.values()), return_exceptions=True)
            pending = []
            for (_node, indices), part in zip(by_node.values(), parts, strict=True):
                replies = part if isinstance(part, list) else [part] * len(indices)
                for i, reply in zip(indices, replies, strict=True):
                    results[i] = reply
                    if isinstance(reply, (*_REDIRECTED, RedisConnectionError, RedisTimeoutError)):
                        pending.append(i)
            if not pending or pause_s is None:
                return results
            await asyncio.sleep(pause_s)
            if all(isinstance(results[i], MovedError) for i in pending):  # slots moved: learn where to
                for i in pending:
                    await cluster.nodes_manager.move_slot(results[i])
            else:  # a node gone, or the cluster re-forming: read the whole layout again
                await cluster.nodes_manager.initialize()
        return results

    async def _on_node(self, node: ClusterNode, batch: list) -> list:
        """One round trip to one node of a cluster, as `_execute` to the one Redis."""
        connection = node.acquire_connection()
        return await self._round_trip(connection, batch, lambda: node.release(connection))

    async def _execute(self, batch: list[Call]) -> list:
        """One round trip: every call of the batch written at once, then every reply read. The
        commands are packed here rather than by redis-py's Pipeline, which costs several times
        more CPU per call (it was the largest item in the dedup worker's profile)."""
        assert isinstance(self.redis, Redis)
        pool = self.redis.connection_pool
        connection = await pool.get_connection()
        return await self._round_trip(connection, batch, lambda: pool.release(connection))

    async def _round_trip(self, connection, batch: list, release) -> list:
        self.round_trips += 1
        packed = b"".join(call[0] for call in batch) + self._wait
        started = time.perf_counter()
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
                    if self._wait:
                        acknowledged = await connection.read_response(timeout=math.inf)
                        if int(acknowledged) < self._replicas:
                            results = [NotReplicated(f"{acknowledged} of {self._replicas} replicas acknowledged "
                                                     "the writes in time")] * len(batch)
            except TimeoutError as error:
                # As redis-py says it: callers treat every RedisError as Redis unavailable (the
                # intake answers 503), and a bare TimeoutError would have been a 500.
                raise RedisTimeoutError(f"no reply from Redis within {deadline_s:g}s") from error
        except BaseException:
            await connection.disconnect()  # a half-read connection must not be reused
            raise
        finally:
            released = release()
            if asyncio.iscoroutine(released):
                await released
            _PIPELINE_SECONDS.observe(time.perf_counter() - started)
        return results


def _pack(parts) -> bytes:
    """One command in the Redis protocol (RESP2): an array of bulk strings (strings, bytes and
    integers). hiredis, in C, packs it in a third of the time Python took (on a cluster, where a
    lead costs a call per shard, packing was a fifth of the dedup worker's CPU)."""
    return hiredis.pack_command(tuple(parts))
