"""The aiokafka consumer faust-streaming makes, adjusted in ways it has no setting for.

- Fetch wait: faust builds its consumer with a hard-coded `fetch_max_wait_ms=1500`. On a broker
  that holds a fetch over several partitions for much of its wait (tansu, the development broker),
  that delays leads, bids and close requests by up to 1.5 s, which would make a 1-second auction
  window meaningless.
- Fetch minimum: KAFKA_FETCH_MIN_BYTES, as the services' other consumers (Apache Kafka answers a
  fetch at the first record otherwise, and each lead woke the worker on its own), and after an
  empty fetch the idle wait for the first byte (KAFKA_FETCH_IDLE_WAIT_MS,
  leadx.platform.kafka.idle_fetches).
- Lag: `leadx_consumer_lag_records` (leadx.platform.metrics) reads each consumer faust makes.
- Partition ends: faust's table recovery reads each changelog partition up to the end that
  ListOffsets reports, and our local broker reports it short when the last record batch holds
  several records (leadx.platform.kafka.offsets). The auctions whose last records were in that batch came
  back without them (their bids, or the auction itself). The consumer's `end_offsets` checks the
  reported end against the records instead.

The override replaces `aiokafka.AIOKafkaConsumer` for this process (faust's driver reaches the
class through the aiokafka module). The exchange's own consumers, the bid feed's among them, are
unaffected: leadx.platform.kafka.clients bound aiokafka's class when it was imported, before this runs.
"""

from __future__ import annotations

import faust.transport.drivers.aiokafka as faust_driver

from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.idle_fetches import IdleAwareConsumer
from leadx.platform.kafka.offsets import end_offsets
from leadx.platform.metrics import CONSUMER_LAG


class AdjustedConsumer(IdleAwareConsumer):
    """aiokafka's consumer with this process's fetch wait, minimum and idle wait, and a partition
    end read from the records."""

    kafka: KafkaSettings | None = None  # the brokers and their security, for the end offsets' probe
    fetch_max_wait_ms = 500
    fetch_min_bytes = 1
    idle_fetch_wait_ms = 0

    def __init__(self, *args, **kwargs) -> None:
        kwargs["fetch_max_wait_ms"] = self.fetch_max_wait_ms
        kwargs["fetch_min_bytes"] = self.fetch_min_bytes
        super().__init__(*args, idle_fetch_wait_ms=self.idle_fetch_wait_ms, **kwargs)
        if kwargs.get("group_id"):  # a group-less one (faust makes those for client-only apps) has no lag
            CONSUMER_LAG.watch(self, kwargs["group_id"])

    async def end_offsets(self, partitions):
        if self.kafka is None:
            raise RuntimeError("adjust_faust_consumer() must give the brokers before faust makes a consumer")
        return await end_offsets(self.kafka, partitions)


def adjust_faust_consumer(kafka: KafkaSettings) -> None:
    AdjustedConsumer.kafka = kafka
    AdjustedConsumer.fetch_max_wait_ms = kafka.fetch_max_wait_ms
    AdjustedConsumer.fetch_min_bytes = kafka.fetch_min_bytes
    AdjustedConsumer.idle_fetch_wait_ms = kafka.fetch_idle_wait_ms
    # The driver refers to the class as `aiokafka.AIOKafkaConsumer` through its module object.
    faust_driver.aiokafka.AIOKafkaConsumer = AdjustedConsumer
