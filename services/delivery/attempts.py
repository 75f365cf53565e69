"""The dispute record: every POST to a buyer written to SQL (post_attempts) before it is sent, then
completed with what came back."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import PreparedPost
from leadx.delivery.progress import PostRecord
from leadx.platform.db.async_postgres import AsyncPostgres, ConnectionLost, PgStatement
from leadx.platform.db.gathered_statements import GatheredStatements
from leadx.platform.db.models import PostAttempt
from services.delivery.buyer_http import PostResult, post_outcome

MAX_RESPONSE_CHARS = 8192
# The table itself rather than the mapped class: the statements below are plain SQL, and through the
# class each went through the ORM's statement handling first (bulk persistence for the writes, ORM
# loading for the read).
POST_ATTEMPTS = cast(Table, PostAttempt.__table__)
_COLUMNS = POST_ATTEMPTS.c
# Built once, with bound parameters: a statement made per call with its values in it was keyed for
# SQLAlchemy's compiled cache on every execution, which cost more CPU than the round trip.
_POSTS_OF = (select(_COLUMNS.buyer_id, _COLUMNS.outcome, _COLUMNS.status, _COLUMNS.connects, _COLUMNS.detail)
             .where(_COLUMNS.auction_id == bindparam("auction_id")).order_by(_COLUMNS.id))
# The attempt's number counted in the INSERT itself: one round trip to SQL, not two. One delivery
# handles an auction at a time (its records are keyed by auction), so the count is not raced.
_INSERT = (insert(POST_ATTEMPTS)
           .values(attempt=select(func.count() + 1).select_from(POST_ATTEMPTS)
                   .where(_COLUMNS.auction_id == bindparam("of_auction"), _COLUMNS.buyer_id == bindparam("of_buyer"))
                   .scalar_subquery())
           .returning(_COLUMNS.id))
_UPDATE = update(POST_ATTEMPTS).where(_COLUMNS.id == bindparam("row_id"))  # SET: the columns given
# The same, compiled once for the event loop's PostgreSQL connections (AttemptLog on PostgreSQL).
_PG_POSTS_OF = PgStatement.of(_POSTS_OF)
_PG_INSERT = PgStatement.of(_INSERT, ["auction_id", "lead_id", "buyer_id", "sent_at_ms", "content_type", "request_body",
                                      "connects", "status", "response_body", "latency_ms", "outcome", "detail"])
_PG_UPDATE = PgStatement.of(_UPDATE, ["connects", "status", "latency_ms", "response_body", "outcome", "detail"])
log = logging.getLogger(__name__)


def outcome_of(result: PostResult) -> str:
    """What post_attempts stores: accepted, rejected (the buyer answered no) or failed (no usable
    answer: not reached, no answer, an HTTP 5xx)."""
    outcome = post_outcome(result)
    return outcome if outcome in ("accepted", "rejected") else "failed"


def log_fields(result: PostResult) -> dict[str, object]:
    """What a log line says of a post: how it went, never the buyer's own words. A reply read by
    the buyer's rules becomes the detail (`rejected by buyer: <its error>`), and a buyer may
    repeat the consumer's name or SSN back in it; the detail is kept here, in SQL, for disputes.
    Without an answer the detail is delivery's own (the error's type) and is logged."""
    fields: dict[str, object] = {"outcome": post_outcome(result), "status": result.status,
                                 "latency_ms": result.latency_ms}
    if result.status is None:
        fields["detail"] = result.detail
    return fields


SENDING = "sending"  # the outcome of an attempt written before its POST and not finished since


class AttemptLog:
    """Every POST is written before it goes out (`begin`, numbered per auction and buyer) and
    completed with its answer (`finish`). A delivery killed while it waits on the buyer leaves the
    row `sending`: the dispute record shows that POST, and the repeat after the restart, which the
    buyer receives with the same Idempotency-Key, is the next attempt.

    Each of its reads and writes is one statement, complete in itself, so the service gives it
    a statement engine (leadx.platform.db.engine.statement_engine): each is then one round trip, not
    three (BEGIN, the statement, COMMIT or ROLLBACK), three times a sold lead. On PostgreSQL they run
    on the event loop's own connections (leadx.platform.db.async_postgres, to the engine's database):
    through the engine on a thread, the thread's handoff and SQLAlchemy's work made a sold lead's
    three cost 1.15 ms of delivery's CPU, on these 0.51 ms (bench/attempts.py). There, those made
    while one is in flight (the auctions of one fetch are handled side by side) go together, in one
    round trip and one transaction (leadx.platform.db.gathered_statements); a statement whose batch
    fails is made again alone, so each still takes effect or fails on its own. Elsewhere (SQLite)
    they run on a Connection of the engine, on a thread, not through a Session, whose machinery cost
    as much CPU as the statement. A transactional engine works too; its writes are committed.
    `close` closes the connections."""

    def __init__(self, engine: Engine | None, *, on_the_loop: bool = True, gathered: bool = True) -> None:
        """`on_the_loop=False`: on PostgreSQL too, the engine on a thread (as before 2026-12-07);
        `gathered=False`: on the loop, each statement sent alone (as before 2026-12-08). Both for
        bench/attempts.py's baselines."""
        self.engine = engine  # None: not recorded (unit tests of the sale logic)
        on_postgres = engine is not None and engine.dialect.name == "postgresql"
        self._postgres: GatheredStatements | AsyncPostgres | None = None
        if on_postgres and on_the_loop and engine is not None:
            # The statements of the auctions in hand at once share a round trip and a commit: most
            # of PostgreSQL's CPU a sold lead was these statements', one round trip and commit each.
            self._postgres = AsyncPostgres(engine.url)
            if gathered:
                self._postgres = GatheredStatements(self._postgres)

    async def close(self) -> None:
        if self._postgres is not None:
            await self._postgres.close()

    async def begin(self, closed: ev.AuctionClosed, buyer: BuyerAccount, prepared: PreparedPost) -> int | None:
        """The attempt's row id. Raises when SQL cannot take it: the POST is not sent unrecorded,
        the sale's handler fails and is retried."""
        if self.engine is None:
            return None
        row = {"auction_id": closed.auction_id, "lead_id": closed.lead.lead_id, "buyer_id": buyer.id,
               "sent_at_ms": int(time.time() * 1000), "content_type": prepared.content_type,
               "request_body": prepared.body.decode("utf-8", "replace"), "connects": 0, "status": None,
               "response_body": "", "latency_ms": 0, "outcome": SENDING, "detail": "sent; no answer recorded yet"}
        values = {**row, "of_auction": row["auction_id"], "of_buyer": row["buyer_id"]}
        if self._postgres is not None:
            inserted = await self._postgres.fetch_one(_PG_INSERT, values)
            assert inserted is not None, "an INSERT ... RETURNING answers its row"
            return int(inserted[0])
        return await asyncio.to_thread(self._insert, values)

    async def finish(self, row_id: int | None, result: PostResult) -> None:
        """Never raises: a failure here must not fail the sale, whose retry would post again."""
        if self.engine is None or row_id is None:
            return
        done = {"connects": result.connects, "status": result.status, "latency_ms": result.latency_ms,
                "response_body": result.response[:MAX_RESPONSE_CHARS].decode("utf-8", "replace"),
                "outcome": outcome_of(result), "detail": result.detail}
        # Shielded: a stop that cancels the sale's handler does not cut short the write of an answer
        # already had (written on a thread, it went on regardless).
        await asyncio.shield(self._record_answer(row_id, done))

    async def _record_answer(self, row_id: int, done: dict) -> None:
        try:
            try:
                await self._update(row_id, done)
            except (DBAPIError, ConnectionLost) as error:
                if isinstance(error, DBAPIError) and not error.connection_invalidated:
                    raise
                # The server closed the connection (PostgreSQL restarted while the buyer answered; a
                # connection used a moment ago is not pinged first): the pool is renewed by now, and
                # an update by id can be made again.
                await self._update(row_id, done)
        except Exception:  # noqa: BLE001 - logged; the sale goes on, the row stays `sending`
            log.exception("post attempt's answer not recorded", extra={"fields": {
                "attempt_id": row_id, "outcome": done["outcome"]}})

    async def posts_of(self, auction_id: str) -> list[PostRecord]:
        """Every post of this auction, in the order they were made: what its progress is rebuilt
        from when Redis lost it (leadx.delivery.progress.DeliveryProgress.from_posts)."""
        if self.engine is None:
            return []
        if self._postgres is not None:
            rows = await self._postgres.fetch_all(_PG_POSTS_OF, {"auction_id": auction_id})
            return [PostRecord(*row) for row in rows]
        return await asyncio.to_thread(self._posts_of, auction_id)

    async def _update(self, row_id: int, done: dict) -> None:
        if self._postgres is not None:
            await self._postgres.execute(_PG_UPDATE, {**done, "row_id": row_id})
        else:
            await asyncio.to_thread(self._update_on_a_thread, row_id, done)

    def _connection(self) -> Connection:
        assert self.engine is not None  # the public methods return early when attempts are not recorded
        return self.engine.connect()

    def _posts_of(self, auction_id: str) -> list[PostRecord]:
        with self._connection() as connection:
            return [PostRecord(*row) for row in connection.execute(_POSTS_OF, {"auction_id": auction_id})]

    def _insert(self, values: dict) -> int:
        with self._connection() as connection:
            row_id = connection.execute(_INSERT, values).scalar_one()
            connection.commit()
            return row_id

    def _update_on_a_thread(self, row_id: int, done: dict) -> None:
        with self._connection() as connection:
            connection.execute(_UPDATE, {**done, "row_id": row_id})
            connection.commit()
