"""Run a service until SIGTERM/SIGINT, then shut it down in order (graceful drain)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop

log = logging.getLogger(__name__)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def freeze_startup_heap() -> None:
    """Put every object alive now (modules, settings, clients, lookup tables) out of the cyclic
    collector's reach. Each full collection otherwise walks them all again: 158 ms in intake (PINGs
    stalled at 1,000/s), 100-120 ms every few seconds in the auction worker under load (most of its
    close-lateness p99, bench/auction.py). Objects made later are collected as before, and
    reference counting still frees frozen ones."""
    gc.collect()
    gc.freeze()


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """`main(stop)` starts its parts, awaits `stop`, and stops its parts."""

    async def _runner() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)

    freeze_startup_heap()
    # uvloop: the same asyncio API at a fraction of the per-task and per-callback cost, which a
    # consumer running hundreds of records at once pays many times over (bench/dedup.py).
    uvloop.run(_runner())
