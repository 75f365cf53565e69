"""`leadx tail TOPIC`: decode a topic's protobuf events and print them as JSON lines."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer
from google.protobuf.json_format import MessageToDict

from leadx import topics
from leadx.config import ConfigError, KafkaSettings
from leadx.events.v1 import events_pb2 as ev

MESSAGE_TYPES = {
    topics.LEAD_SUBMITTED: ev.LeadSubmitted,
    topics.LEAD_VERIFIED: ev.LeadVerified,
    topics.LEAD_REJECTED: ev.LeadRejected,
    topics.LEAD_SCORED: ev.LeadScored,
    topics.AUCTION_OPENED: ev.AuctionOpened,
    topics.BID_PLACED: ev.BidPlaced,
    topics.AUCTION_CLOSED: ev.AuctionClosed,
    topics.SALE_CLOSED: ev.SaleClosed,
}


async def tail(topic: str, from_beginning: bool) -> None:
    if topic not in MESSAGE_TYPES:
        raise ConfigError(f"unknown topic {topic!r}; one of {', '.join(MESSAGE_TYPES)}")
    settings = KafkaSettings.from_env()
    consumer = AIOKafkaConsumer(topics.name(settings.topic_prefix, topic),
                                bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    try:
        async for record in consumer:
            message = MESSAGE_TYPES[topic].FromString(record.value)
            print(json.dumps({"topic": topic, "key": (record.key or b"").decode(),
                              "event": MessageToDict(message, preserving_proto_field_name=True)}), flush=True)
    finally:
        await consumer.stop()
