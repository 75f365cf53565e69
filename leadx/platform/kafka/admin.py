"""Topics are created at start with the configured partitions (`ensure_topics`)."""

from __future__ import annotations

from aiokafka.admin import NewTopic

from leadx.contracts import topics as topic_names
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients

_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(settings: KafkaSettings, bases: tuple[str, ...] = topic_names.ALL) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = clients.admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(topic_names.name(settings.topic_prefix, base), settings.partitions,
                     settings.replication_factor)
            for base in bases
            if topic_names.name(settings.topic_prefix, base) not in existing
        ]
        if wanted:
            response = await admin.create_topics(wanted)
            for topic, code, *_ in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {topic}: error code {code}")
    finally:
        await admin.close()
