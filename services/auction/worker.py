"""The auction worker: a faust-streaming app that opens an auction per scored lead
(services.auction.opener), collects bids in a table (services.auction.table, fed by
services.auction.bid_feed), and closes each auction once, when its durable deadline passes
(services.auction.closing). This module only wires them to the app.

Topics are co-partitioned: lead.scored and bid.placed are keyed by the auction id (a lead
auction's id is its lead id) and have the same partition count as the table's changelog, so the
worker that owns an auction's partition sees its lead and its bids.
"""

from __future__ import annotations

import faust

from leadx.accounts.directory import BuyerDirectory
from leadx.auction.caps.counters import CapsStore
from leadx.auction.offers import OfferWriter
from leadx.auction.terms import terms_by_vertical
from leadx.contracts import topics
from leadx.leads.verticals import load_verticals
from leadx.platform.config import KafkaSettings
from leadx.platform.health import Readiness
from leadx.platform.kafka import clients
from leadx.platform.redis.client import RedisClient
from services.auction.bid_feed import BidFeed, owned_partitions
from services.auction.closing import AuctionCloser, DeadlineKeeper
from services.auction.deadlines import DeadlineIndex
from services.auction.opener import AuctionOpener
from services.auction.settings import AuctionSettings
from services.auction.table import TABLE_NAME, auctions_table


def app_id(kafka: KafkaSettings) -> str:
    return f"{kafka.topic_prefix}leadx-auction"


def changelog_topic(kafka: KafkaSettings) -> str:
    """The auctions table's changelog topic, as faust names it (`<app id>-<table>-changelog`)."""
    return f"{app_id(kafka)}-{TABLE_NAME}-changelog"


def make_app(settings: AuctionSettings) -> faust.App:
    kafka = settings.common.kafka
    return clients.faust_app(
        kafka,
        app_id(kafka),
        store="memory://",
        datadir=settings.data_dir,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # As the services' EventProducer (KAFKA_PRODUCER_LINGER_MS, 2 ms): faust's default of 0 sent
        # most of the worker's records (auction.opened, auction.closed, the table's changelog) a
        # request each.
        producer_linger=clients.producer_linger_ms(kafka) / 1000,
        broker_commit_interval=0.5,
        # A killed worker's partitions move within the session timeout (KAFKA_SESSION_TIMEOUT_MS).
        **clients.faust_group_timeouts(kafka),
        web_enabled=False,
        # Its clients' id in the brokers' request logs and quotas (faust's default names its version).
        broker_client_id=topics.group(kafka.topic_prefix, "auction"),
    )


def event_topic(app: faust.App, kafka: KafkaSettings, base: str) -> faust.TopicT:
    """One of the exchange's event topics: protobuf bytes, keyed by id bytes."""
    return app.topic(topics.name(kafka.topic_prefix, base), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


def build_worker(settings: AuctionSettings, directory: BuyerDirectory, readiness: Readiness,
                 redis: RedisClient) -> faust.App:
    kafka = settings.common.kafka
    prefix = kafka.topic_prefix
    app = make_app(settings)
    scored_topic = event_topic(app, kafka, topics.LEAD_SCORED)
    table = auctions_table(app, kafka.partitions)
    deadlines = DeadlineIndex()

    closer = AuctionCloser(table, deadlines, event_topic(app, kafka, topics.AUCTION_CLOSED),
                           settings.common.hmac_key, closed_retention_ms=settings.closed_retention_ms)
    opener = AuctionOpener(table, deadlines, closer, event_topic(app, kafka, topics.AUCTION_OPENED), directory,
                           CapsStore(redis, prefix), OfferWriter(redis, prefix), terms_by_vertical(load_verticals()),
                           window_ms=settings.window_ms, closed_retention_ms=settings.closed_retention_ms,
                           batch_max=settings.open_batch_max, batch_wait_s=settings.batch_wait_s)
    # Bids are read beside faust (services.auction.bid_feed): applied to the table's store as they
    # come, written to its changelog behind them, on the partitions this worker owns.
    bids = BidFeed(kafka, topics.group(prefix, "auction-bids"), topics.name(prefix, topics.BID_PLACED),
                   table, batch_max=settings.bid_batch_max, batch_wait_s=settings.batch_wait_s,
                   flush_interval_s=settings.bid_flush_s)
    keeper = DeadlineKeeper(
        table, deadlines, closer, bids,
        assigned_partitions=lambda: owned_partitions(app.assignor.assigned_actives(), scored_topic.get_topic_name()),
        flush_writes=lambda: app.producer.flush(),
        close_batch_max=settings.close_batch_max, closed_retention_ms=settings.closed_retention_ms,
        recovery_grace_ms=settings.recovery_grace_ms)

    app.agent(scored_topic, name="open_auctions")(opener.open_batches)
    app.task(bids.serve)
    app.task(keeper.close_due)
    table.on_recover(keeper.rebuild)
    # mode types a receiver as a plain function of (sender, *args, signal=..., **kwargs); it calls
    # and awaits a bound coroutine method of that signature the same way.
    app.on_partitions_revoked.connect(keeper.let_partitions_go)  # type: ignore[arg-type]
    app.task(directory.refresh_forever)
    readiness.add("partitions assigned and recovered", keeper.recovered)
    readiness.add("buyers loaded", lambda: directory.loaded)
    return app
