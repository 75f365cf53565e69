"""PostgreSQL statements that concurrent tasks make at about the same time, sent together: one
transaction and one round trip for all of them (AsyncPostgres.run_together).

Delivery writes its dispute record in three statements a sold lead (services/delivery/attempts.py),
each its own transaction, from as many tasks as it has auctions in hand. In a whole exchange at
120 to 150 leads a second, delivery's backends used three quarters of PostgreSQL's CPU, 1.3 to 1.8
ms a sold lead, for three statements that cost it 0.38 ms made one after another alone
(bench/README.md, "delivery's statements gathered"): each one a round trip that wakes a backend,
and a commit. Gathered, the statements of the auctions one fetch brings share both.

How they gather: a statement made while none is in flight goes at once, alone, in its caller's
task, as it went before; those made while one is in flight (alone or a batch) wait for it and go
together after it (at most `max_batch` at a time). So a statement waits at most one round trip
longer than it would alone, and no task is made for a statement nobody made beside.

A batch is all or nothing in SQL; a caller's statement is not. When a batch fails, its statements
are made again one by one, each its own transaction as if it had been made alone, so one
statement's error (a constraint it breaks) is its own caller's only. A connection lost fails every
caller of the batch with ConnectionLost, as it would each alone (whether a write took effect is
not known). A caller cancelled before its batch goes has its statement left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import psycopg

from leadx.platform.db.async_postgres import AsyncPostgres, PgStatement

MAX_BATCH = 64

# One caller's statement: the statement, its values, what it fetches ("one", "all", "none") and
# the future its caller awaits.
_Call = tuple[PgStatement, Mapping[str, Any], str, asyncio.Future]


class GatheredStatements:
    """AsyncPostgres's fetch_one, fetch_all and execute, their statements gathered."""

    def __init__(self, postgres: AsyncPostgres, max_batch: int = MAX_BATCH) -> None:
        self.postgres, self.max_batch = postgres, max_batch
        self._waiting: list[_Call] = []
        # A statement or a batch is in flight; when it is done, what waits goes next.
        self._busy = False
        self._sender: asyncio.Task | None = None  # sends what waited for a batch in flight
        self._loop: asyncio.AbstractEventLoop | None = None

    async def fetch_one(self, statement: PgStatement, values: Mapping[str, Any]) -> tuple | None:
        return await self._submit(statement, values, "one")

    async def fetch_all(self, statement: PgStatement, values: Mapping[str, Any]) -> list[tuple]:
        return await self._submit(statement, values, "all")

    async def execute(self, statement: PgStatement, values: Mapping[str, Any]) -> None:
        await self._submit(statement, values, "none")

    async def close(self) -> None:
        """Send what waits, then close the connections."""
        if self._sender is not None and self._loop is asyncio.get_running_loop():
            await asyncio.wait([self._sender])
        await self.postgres.close()

    async def _submit(self, statement: PgStatement, values: Mapping[str, Any], fetch: str) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test's next asyncio.run): nothing of the last one's
            self._loop, self._waiting, self._busy, self._sender = loop, [], False, None
        if self._busy:  # sent after the batch in flight, with the others made meanwhile
            future = loop.create_future()
            self._waiting.append((statement, values, fetch, future))
            return await future
        # Nothing in flight: this one goes at once, alone, in its caller's task, as AsyncPostgres
        # would send it (no task made, no turn of the loop waited: most statements at low rates).
        self._busy = True
        try:
            return await self.postgres.run(statement, values, fetch)
        finally:
            self._then_the_rest()

    def _take_batch(self) -> list[_Call]:
        batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        return [call for call in batch if not call[3].done()]  # a caller gone meanwhile: left out

    def _then_the_rest(self) -> None:
        """A batch is done: the statements that waited for it go next, in a task, or none waits."""
        if self._waiting:
            self._sender = asyncio.create_task(self._send_all())
        else:
            self._busy = False

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                await self._send(self._take_batch())
        except BaseException:  # the loop is ending (cancelled): no caller is left waiting for ever
            for *_, future in self._waiting:
                future.cancel()
            self._waiting = []
            raise
        finally:
            self._busy = False

    async def _send(self, batch: list[_Call]) -> None:
        if not batch:
            return
        try:
            if len(batch) == 1:
                statement, values, fetch, _ = batch[0]
                results = [await self.postgres.run(statement, values, fetch)]
            else:
                results = await self.postgres.run_together([call[:3] for call in batch])
        except psycopg.Error as error:  # a statement's (a lost connection is ConnectionLost, below)
            if len(batch) == 1:
                _fail(batch, error)
            else:
                await self._send_one_by_one(batch)
            return
        except Exception as error:  # noqa: BLE001 - ConnectionLost, or the pool's: closed, no connection in time
            _fail(batch, error)
            return
        except BaseException as error:
            _fail(batch, error)
            raise
        for (*_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _send_one_by_one(self, batch: list[_Call]) -> None:
        for statement, values, fetch, future in batch:
            try:
                result = await self.postgres.run(statement, values, fetch)
            except Exception as error:  # noqa: BLE001 - its caller's to handle
                if not future.done():
                    future.set_exception(error)
            except BaseException as error:
                _fail([call for call in batch if not call[3].done()], error)
                raise
            else:
                if not future.done():
                    future.set_result(result)


def _fail(batch: list[_Call], error: BaseException) -> None:
    for *_, future in batch:
        if not future.done():
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
