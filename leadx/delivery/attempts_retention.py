"""How long the dispute record of posts to buyers (the `post_attempts` table) keeps what was sent and
what came back. Those bodies are the consumer's data, so they are kept for the retention period
only (`POST_ATTEMPT_RETENTION_DAYS`, 90 days by default), long enough for a buyer to dispute a sale
or a return; then `leadx delivery prune-attempts` (a daily CronJob, docs/deploy.md) empties them
and marks the attempt dropped. The attempt itself stays: who it went to, when, the HTTP status, the
latency, the outcome and delivery's reading of the reply, which disputes and ratings still need."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from leadx.platform.config import ConfigError, env_int
from leadx.platform.db.models import PostAttempt
from leadx.platform.utc_days import DAY_MS

RETENTION_SETTING = "POST_ATTEMPT_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90
# Attempts emptied per transaction: each batch is short, so delivery's inserts never wait long,
# and a prune stopped half-way has kept what it did (the next run goes on from there).
BATCH = 1000


def retention_days_from_env() -> int:
    days = env_int(RETENTION_SETTING, DEFAULT_RETENTION_DAYS)
    if days < 1:
        raise ConfigError(f"environment variable {RETENTION_SETTING} must be at least 1 (days), got {days}")
    return days


@dataclass(frozen=True)
class Pruned:
    attempts: int  # whose bodies this run dropped
    before_ms: int  # the attempts sent before this were due


def drop_old_bodies(sessions: sessionmaker[Session], retention_days: int, now_ms: int,
                    batch: int = BATCH) -> Pruned:
    """Empty the request and response bodies of every attempt sent more than `retention_days` before
    `now_ms` and not emptied yet, oldest first, `batch` attempts per transaction; each is marked
    with `bodies_dropped_at_ms = now_ms`. Running it again, or two at once, drops nothing twice."""
    before_ms = now_ms - retention_days * DAY_MS
    due = (select(PostAttempt.id)
           .where(PostAttempt.bodies_dropped_at_ms.is_(None), PostAttempt.sent_at_ms < before_ms)
           .order_by(PostAttempt.sent_at_ms)  # ix_post_attempts_bodies_kept, in its order
           .limit(batch))
    dropped = 0
    while True:
        with sessions.begin() as session:
            ids = session.scalars(due).all()
            if not ids:
                return Pruned(dropped, before_ms)
            done = session.execute(
                update(PostAttempt)
                .where(PostAttempt.id.in_(ids), PostAttempt.bodies_dropped_at_ms.is_(None))
                .values(request_body="", response_body="", bodies_dropped_at_ms=now_ms)
                .execution_options(synchronize_session=False))
            dropped += done.rowcount  # type: ignore[attr-defined]
