"""faust-streaming builds its aiokafka consumer with a hard-coded `fetch_max_wait_ms=1500` and no
setting to change it. On a broker that holds an idle fetch for the whole wait, that delays every
lead, bid and close request by up to 1.5 s, which would make a 1-second auction window meaningless.
This narrows the override to the consumer class faust instantiates, for this process only."""

from __future__ import annotations

import aiokafka
import faust.transport.drivers.aiokafka as faust_driver


def limit_faust_fetch_wait(fetch_max_wait_ms: int) -> None:
    base = aiokafka.AIOKafkaConsumer

    class ShortWaitConsumer(base):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["fetch_max_wait_ms"] = fetch_max_wait_ms
            super().__init__(*args, **kwargs)

    # The driver refers to the class as `aiokafka.AIOKafkaConsumer` through its module object.
    faust_driver.aiokafka.AIOKafkaConsumer = ShortWaitConsumer
