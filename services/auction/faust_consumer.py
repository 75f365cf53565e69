"""The aiokafka consumer faust-streaming makes, adjusted in ways it has no setting for.

- Fetch wait: faust builds its consumer with a hard-coded `fetch_max_wait_ms=1500`. On a broker
  that holds a fetch over several partitions for much of its wait (tansu, the development broker),
  that delays leads, bids and close requests by up to 1.5 s, which would make a 1-second auction
  window meaningless.
- Fetch minimum: KAFKA_FETCH_MIN_BYTES, as the services' other consumers (Apache Kafka answers a
  fetch at the first record otherwise, and each lead woke the worker on its own), and after three
  empty fetches in a row the idle wait for the first byte (KAFKA_FETCH_IDLE_WAIT_MS,
  leadx.platform.kafka.idle_fetches), its table's changelog partitions, which it stops reading once
  recovered, left out of the count (`AdjustedConsumer.quiet_after`, `left_out_after`).
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
from leadx.platform.kafka import clients
from leadx.platform.kafka.idle_fetches import IdleAwareConsumer
from leadx.platform.kafka.offsets import end_offsets
from leadx.platform.metrics import CONSUMER_LAG


class AdjustedConsumer(IdleAwareConsumer):
    """aiokafka's consumer fetching as the services' other consumers of the flow do
    (clients.flow_fetches), with a partition end read from the records."""

    kafka: KafkaSettings | None = None  # this process's brokers (adjust_faust_consumer)
    # faust leaves its table's changelog partitions out of every fetch once recovered (their last
    # records stay unread in aiokafka's buffer), so with the services' rule (a fetch that leaves a
    # partition out gathers a batch) the worker never fetched idly: some forty fetches a second at
    # rest, the broker's largest source of requests then. A partition left out of three fetches in a
    # row is taken for one it does not read. And a node is quiet only after three empty fetches in a
    # row (about 75 ms without a lead): no seller's answer waits on this worker, and a first-byte
    # fetch after each gap between leads made its fetches carry one lead each under load
    # (bench/README.md, eighth and ninth sessions).
    quiet_after = 3
    left_out_after = 3

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, **clients.flow_fetches(self._settings())})
        if kwargs.get("group_id"):  # a group-less one (faust makes those for client-only apps) has no lag
            CONSUMER_LAG.watch(self, kwargs["group_id"])

    @classmethod
    def _settings(cls) -> KafkaSettings:
        if cls.kafka is None:
            raise RuntimeError("adjust_faust_consumer() must give the brokers before faust makes a consumer")
        return cls.kafka

    async def end_offsets(self, partitions):
        return await end_offsets(self._settings(), partitions)


def adjust_faust_consumer(kafka: KafkaSettings) -> None:
    AdjustedConsumer.kafka = kafka
    # The driver refers to the class as `aiokafka.AIOKafkaConsumer` through its module object.
    faust_driver.aiokafka.AIOKafkaConsumer = AdjustedConsumer
