"""delivery: auction.opened → pings → bid.placed; auction.closed → posts → sale.closed."""

from __future__ import annotations

import asyncio

from leadx.accounts.directory import BuyerDirectory
from leadx.accounts.fees import SellerFees
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads.sealing import PiiKeyring
from leadx.platform.db.engine import make_engine, session_factory, statement_engine
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import ServiceRuntime, run
from services.delivery.attempts import AttemptLog
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient
from services.delivery.list_posts import ListPoster
from services.delivery.metrics import BREAKERS
from services.delivery.pings import PingFanout
from services.delivery.post_rules import load_post_rules
from services.delivery.sale import SaleCompletion
from services.delivery.settings import DeliverySettings


async def main(stop: asyncio.Event) -> None:
    settings = DeliverySettings.from_env()
    common = settings.common
    runtime = ServiceRuntime(common)
    namespace = common.kafka.topic_prefix
    redis = connect_redis(common.redis)
    engine = make_engine(common.database_url)
    await asyncio.to_thread(exit_unless_current, engine, "delivery")
    directory = BuyerDirectory(session_factory(engine), common.accounts_refresh_s)
    fees = SellerFees(session_factory(engine), settings.seller_fee_percent)
    for table in (directory, fees):
        await asyncio.to_thread(table.load)
    refreshers = [asyncio.create_task(table.refresh_forever()) for table in (directory, fees)]
    client = BuyerClient(settings.max_concurrent_requests, settings.ping_timeout_s, settings.post_timeout_s,
                         settings.buyer_urls, settings.reply_max_bytes)
    await client.start()
    store = DedupStore(redis, namespace=namespace, bucket_bits=settings.dedup_bucket_bits,
                       wait_replicas=common.redis.wait_replicas, wait_timeout_ms=common.redis.wait_timeout_ms)
    keyring = PiiKeyring.from_env()  # the leads' identifying fields arrive sealed

    rules = load_post_rules(settings.rules_dir)
    # Pings and posts trip separate circuits: a buyer can bid well and still fail to take leads.
    ping_breaker = BREAKERS.watch(CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s), "ping")
    post_breaker = BREAKERS.watch(CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s), "post")
    pings = PingFanout(runtime.producer, redis, directory, client, namespace, rules, ping_breaker, post_breaker)
    attempts = AttemptLog(statement_engine(engine))  # the dispute record, of sales and of list awards
    sales = SaleCompletion(runtime.producer, redis, store, DedupPolicy.from_env(), directory, client,
                           fees, namespace, keyring, rules, post_breaker, attempts, stopping=stop)
    runtime.consume("delivery-pings", {topics.AUCTION_OPENED: ev.AuctionOpened}, pings.handle)
    runtime.consume("delivery-sales", {topics.AUCTION_CLOSED: ev.AuctionClosed}, sales.handle)
    lists = ListPoster(redis, directory, client, namespace, keyring, rules, post_breaker, attempts)
    runtime.consume("delivery-lists", {topics.LIST_AWARDED: ev.ListAwarded}, lists.handle, waiting="background")

    async def close_resources() -> None:
        for refresher in refreshers:
            refresher.cancel()
        await client.close()
        await attempts.close()
        await redis.aclose()
        engine.dispose()

    runtime.on_stop(close_resources)
    await runtime.run(stop)


if __name__ == "__main__":
    run(main)
