"""auction: lead.scored + bid.placed → auction.opened, auction.closed (faust-streaming worker)."""

from __future__ import annotations

import asyncio

import faust
import mode.loop
from faust import Worker

from leadx.accounts.directory import BuyerDirectory
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.health import HealthServer, Readiness
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.logs import logging_config
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import tune_garbage_collection
from leadx.platform.telemetry import setup_tracing
from services.auction.faust_consumer import adjust_faust_consumer
from services.auction.settings import AuctionSettings
from services.auction.worker import build_worker, changelog_topic


def faust_worker(app: faust.App, log_level: str) -> Worker:
    """faust's worker, logging as the other services do, at `log_level`.

    Without its terminal spinner: at WARNING or above faust gives the spinner a handler at DEBUG and
    sets the root logger to DEBUG, so every leadx logger below it (the auction's own, log_event's)
    built a record of each debug and info call, which the spinner then handled: at 180 leads/s 1.7%
    of the auction's py-spy samples, records nobody wrote. A service's output is not a terminal."""
    worker = Worker(app, loglevel=log_level, quiet=True, logging_config=logging_config("auction", log_level))
    worker.spinner = None
    return worker


def main() -> None:
    # uvloop, as the other services run: faust's per-event path is mostly event-loop work.
    mode.loop.use("uvloop")
    settings = AuctionSettings.from_env()
    setup_tracing("auction")
    engine = make_engine(settings.common.database_url)
    exit_unless_current(engine, "auction")
    # The event topics must exist before faust subscribes. Its table's changelog is made here too,
    # compacted, with the partitions of the topics it is co-partitioned with: on a broker that
    # creates topics on first use (Apache Kafka's default), any client asking for it before faust
    # made it (a bid feed's flush, a tool) made it with the broker's default partition count, and
    # faust then stopped on the mismatch (PartitionsMismatch).
    asyncio.run(ensure_topics(settings.common.kafka, compacted=(changelog_topic(settings.common.kafka),)))
    directory = BuyerDirectory(session_factory(engine), settings.common.accounts_refresh_s)
    directory.load()  # before the first lead, so no auction opens with an empty buyer list
    adjust_faust_consumer(settings.common.kafka)
    readiness = Readiness()
    app = build_worker(settings, directory, readiness, connect_redis(settings.common.redis))
    health = HealthServer(readiness, settings.common.health_port)

    @app.task
    async def serve_health() -> None:
        await health.start()

    worker = faust_worker(app, settings.common.log_level)
    tune_garbage_collection()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
