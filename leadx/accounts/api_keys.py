"""API key → account id, cached briefly so that authenticating a request does not cost a SQL
query each time. A revoked or rotated key stops working within the cache's time on every replica
(`API_KEY_CACHE_SECONDS`, 30 s by default). Shared by the intake gateway (sellers, buyers) and the
gRPC dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from leadx.platform.config import ConfigError, env_float

T = TypeVar("T")
DEFAULT_TTL_S = 30.0
TTL_VARIABLE = "API_KEY_CACHE_SECONDS"


def cache_ttl_from_env() -> float:
    """How long a key's account (or its absence) is trusted: a revoked or rotated key works at most
    this long after the change. Shorter costs a SQL look-up per key that often, per replica."""
    ttl_s = env_float(TTL_VARIABLE, DEFAULT_TTL_S)
    if not 0 < ttl_s <= 3600:  # also refuses nan
        raise ConfigError(f"environment variable {TTL_VARIABLE} must be more than 0 and at most 3600 seconds,"
                          f" got {ttl_s!r}")
    return ttl_s


class KeyCache(Generic[T]):
    """Keys found and keys not found are cached apart, each for `ttl_s`: a flood of made-up keys
    (each a miss, then cached as one, so a repeat costs no SQL) fills only the misses, and never
    pushes the real callers' keys out to cost a look-up each again."""

    MAX_CACHED = 10_000  # per kind, bounded so that made-up keys cannot grow it without limit

    def __init__(self, sessions: sessionmaker[Session], lookup: Callable[[Session, str], T | None],
                 ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.clock = clock
        self._found: dict[str, tuple[T, float]] = {}
        self._missed: dict[str, float] = {}
        self.lookups = 0  # SQL look-ups made: what a flood of bad keys costs (the tests read it)

    def known(self, key: str) -> T | None:
        """The account of a key found within `ttl_s`, without a look-up (None: not known now)."""
        found = self._found.get(key)
        return found[0] if found is not None and found[1] >= self.clock() else None

    async def resolve(self, key: str) -> T | None:
        """What `lookup` found for this key (None: unknown, revoked or inactive)."""
        now = self.clock()
        found = self._found.get(key)
        if found is not None and found[1] >= now:
            return found[0]
        missed = self._missed.get(key)
        if missed is not None and missed >= now:
            return None
        self.lookups += 1
        value = await asyncio.to_thread(self._lookup, key)
        if value is not None:
            _bounded(self._found, self.MAX_CACHED)[key] = (value, now + self.ttl_s)
        else:
            _bounded(self._missed, self.MAX_CACHED)[key] = now + self.ttl_s
        return value

    def _lookup(self, key: str) -> T | None:
        with self.sessions() as session:
            return self.lookup(session, key)


def _bounded(cache: dict, most: int) -> dict:
    """`cache`, emptied first when full."""
    if len(cache) >= most:
        cache.clear()
    return cache


def bearer_key(header: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None if it is not one."""
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None
