"""Topics are created at start with the configured partitions (`ensure_topics`)."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadx.contracts import topics as topic_names
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients

_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(settings: KafkaSettings, bases: tuple[str, ...] = topic_names.ALL,
                        compacted: tuple[str, ...] = ()) -> None:
    """Create missing topics; existing ones are left as they are. `compacted` are full topic names
    of changelogs (a key's last record is kept), made with the same partitions and replicas."""
    admin = clients.admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(topic_names.name(settings.topic_prefix, base), settings.partitions,
                     settings.replication_factor)
            for base in bases
            if topic_names.name(settings.topic_prefix, base) not in existing
        ] + [
            NewTopic(name, settings.partitions, settings.replication_factor,
                     topic_configs={"cleanup.policy": "compact"})
            for name in compacted if name not in existing
        ]
        if wanted:
            response = await admin.create_topics(wanted)
            for topic, code, *_ in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {topic}: error code {code}")
            await _until_led(admin, [topic.name for topic in wanted], settings.topics_ready_timeout_s)
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Wait until every partition of the new topics has a leader. A broker answers CreateTopics before
    its partitions have elected one, and a first produce in between fails NotLeaderForPartition. On a
    broker starved of CPU (a whole exchange starting beside it on two cores) the elections took over
    30 s, hence a generous default (KAFKA_TOPICS_READY_TIMEOUT_S)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        leaderless = sorted(
            topic["topic"] for topic in described
            if topic["error_code"] != 0 or not topic["partitions"]
            or any(part["error_code"] != 0 or part["leader"] < 0 for part in topic["partitions"]))
        if not leaderless:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics without a leader after {timeout_s:.0f} s"
                               f" (KAFKA_TOPICS_READY_TIMEOUT_S): {', '.join(leaderless)}")
        await asyncio.sleep(0.1)
