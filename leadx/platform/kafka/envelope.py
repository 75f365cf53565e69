"""What every event on a topic carries besides its message: the event id and type in headers, and
the partition its key lands on."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2
from google.protobuf.message import Message

HEADER_EVENT_ID = "event-id"
HEADER_EVENT_TYPE = "event-type"


def partition_for(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner (aiokafka's, Kafka's Java client's) gives
    a key: murmur2 of its bytes, modulo the partition count."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Envelope:
    """A consumed event: the decoded message plus what the headers and the log position say."""

    topic: str  # base name, without the prefix
    key: str
    event_id: str
    message: Message
    partition: int
    offset: int
