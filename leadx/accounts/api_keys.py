"""API key → account id, cached briefly so that authenticating a request does not cost a SQL
query each time. A revoked or rotated key stops working within TTL_S on every replica. Shared by
the intake gateway (sellers, buyers) and the gRPC dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


class KeyCache(Generic[T]):
    TTL_S = 30.0
    MAX_CACHED = 10_000  # bounded, so a flood of made-up keys cannot grow it without limit

    def __init__(self, sessions: sessionmaker[Session], lookup: Callable[[Session, str], T | None]) -> None:
        self.sessions = sessions
        self.lookup = lookup
        self._cache: dict[str, tuple[T | None, float]] = {}

    async def resolve(self, key: str) -> T | None:
        """What `lookup` found for this key (None: unknown, revoked or inactive)."""
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is None or cached[1] < now:
            cached = (await asyncio.to_thread(self._lookup, key), now + self.TTL_S)
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[key] = cached
        return cached[0]

    def _lookup(self, key: str) -> T | None:
        with self.sessions() as session:
            return self.lookup(session, key)


def bearer_key(header: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None if it is not one."""
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None
