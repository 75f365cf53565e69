"""`leadx tail TOPIC`: decode a topic's protobuf events and print them as JSON lines."""

from __future__ import annotations

import asyncio
import json

from leadx.platform.config import ConfigError, KafkaSettings


async def tail(topic: str, from_beginning: bool) -> None:
    from google.protobuf.json_format import MessageToDict

    from leadx.contracts import topics
    from leadx.platform.kafka import clients

    if topic not in topics.MESSAGE_TYPES:
        raise ConfigError(f"unknown topic {topic!r}; one of {', '.join(topics.MESSAGE_TYPES)}")
    settings = KafkaSettings.from_env()
    consumer = clients.consumer(settings, topics.name(settings.topic_prefix, topic), group_id=None,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    try:
        async for record in consumer:
            message = topics.MESSAGE_TYPES[topic].FromString(record.value)
            print(json.dumps({"topic": topic, "key": (record.key or b"").decode(),
                              "event": MessageToDict(message, preserving_proto_field_name=True)}), flush=True)
    finally:
        await consumer.stop()


def cmd_tail(args) -> int:
    asyncio.run(tail(args.topic, args.from_beginning))
    return 0


def add_commands(commands) -> None:
    command = commands.add_parser("tail", help="print a topic's events as JSON, live")
    command.add_argument("topic", help="e.g. sale.closed")
    command.add_argument("--from-beginning", action="store_true")
    command.set_defaults(func=cmd_tail)
