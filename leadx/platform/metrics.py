"""Prometheus metrics: what every service measures the same way, and their exposition.

Each service serves `GET /metrics` on its health port (leadx.platform.health). The metrics of a
business step are defined beside the service that takes it (services/<name>/metrics.py), so each
process serves only its own; the ones here are every service's: consumer lag, event handling,
Redis and SQL latency. docs/operations.md lists them all.

Label values are bounded: a topic, a consumer group, a Redis command, an SQL operation; never a
lead id or anything a consumer typed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Buckets for calls that take milliseconds (Redis, SQL) up to seconds (a stalled part).
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Buckets for calls to buyers' servers and other waits counted in tenths of a second to seconds.
SLOW_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EVENT_HANDLER_FAILURES = Counter(
    "leadx_event_handler_failures", "Failed attempts to handle an event; each is retried.", ["topic"])
EVENTS_DEAD_LETTERED = Counter(
    "leadx_events_dead_lettered", "Events set aside on dead.letter because no retry can handle them.",
    ["topic", "reason"])
REDIS_COMMAND_SECONDS = Histogram(
    "leadx_redis_command_duration_seconds", "A Redis command or pipeline, sent to answered.", ["command"],
    buckets=FAST_BUCKETS)
SQL_QUERY_SECONDS = Histogram(
    "leadx_sql_query_duration_seconds", "One SQL statement, sent to answered.", ["operation"],
    buckets=FAST_BUCKETS)

# The SQL operations named in labels; anything else (PRAGMA, BEGIN, a CTE) counts as "other".
SQL_OPERATIONS = frozenset({"select", "insert", "update", "delete", "with"})


def sql_operation(statement: str) -> str:
    word = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else ""
    return word if word in SQL_OPERATIONS else "other"


class ConsumerLag(Collector):
    """`leadx_consumer_lag_records`: per partition a consumer is assigned, the broker's end offset
    (the highwater of its last fetch) minus the consumer's position, read when Prometheus scrapes.

    aiokafka has no synchronous position getter; the subscription state it reads from is used
    directly (`AIOKafkaConsumer.position` awaits it the same way). A partition without a fetch yet
    or without a position is left out rather than guessed."""

    def __init__(self) -> None:
        self._consumers: weakref.WeakKeyDictionary[AIOKafkaConsumer, str] = weakref.WeakKeyDictionary()

    def watch(self, consumer: AIOKafkaConsumer, group: str) -> None:
        self._consumers[consumer] = group

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("leadx_consumer_lag_records",
                                   "Records of a partition not yet read by the consumer group.",
                                   labels=["group", "topic", "partition"])
        for consumer, group in list(self._consumers.items()):
            for tp, lag in partition_lags(consumer).items():
                family.add_metric([group, tp.topic, str(tp.partition)], lag)
        yield family


def partition_lags(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    lags: dict[TopicPartition, int] = {}
    subscription = consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return lags
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        end = consumer.highwater(tp)
        if end is None or state is None or not state.has_valid_position:
            continue
        lags[tp] = max(0, end - state.position)
    return lags


CONSUMER_LAG = ConsumerLag()
REGISTRY.register(CONSUMER_LAG)


def exposition() -> tuple[bytes, str]:
    """The body and content type of `GET /metrics`."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
