"""`leadx dlq list` and `leadx dlq replay`: the events set aside on dead.letter, and putting one
back on the topic it came from once its cause is fixed (leadx.platform.kafka.dead_letters)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from leadx.platform.config import ConfigError, KafkaSettings

if TYPE_CHECKING:  # imported where used: `leadx --help` should not wait for them
    from aiokafka.structs import ConsumerRecord

    from leadx.platform.kafka.dead_letters import DeadLetter

READ_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Listed:
    id: str  # "<partition>:<offset>" on dead.letter: what `leadx dlq replay` takes
    key: str
    size: int  # bytes of the record's value
    dead: DeadLetter


async def read_dead_letters(settings: KafkaSettings) -> list[tuple[str, ConsumerRecord]]:
    """Every record of dead.letter, oldest first per partition, each with its id."""
    from leadx.contracts import topics
    from leadx.platform.kafka import clients
    from leadx.platform.kafka.offsets import end_offsets_with, partitions_of

    name = topics.name(settings.topic_prefix, topics.DEAD_LETTER)
    consumer = clients.consumer(settings, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=int(READ_TIMEOUT_S * 1000))
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, [name])
        if not partitions:
            return []
        starts = await consumer.beginning_offsets(partitions)
        ends = await end_offsets_with(consumer, partitions)
        pending = {tp for tp in partitions if ends[tp] > starts[tp]}
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        found: list[tuple[str, ConsumerRecord]] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise ConfigError(f"{name}: its records did not all come within {READ_TIMEOUT_S:.0f} s")
            for tp, records in (await consumer.getmany(*pending, timeout_ms=200)).items():
                found += [(f"{tp.partition}:{r.offset}", r) for r in records if r.offset < ends[tp]]
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


def listed(records: list[tuple[str, ConsumerRecord]]) -> list[Listed]:
    from leadx.platform.kafka.dead_letters import dead_letter_from

    return [Listed(id_, (r.key or b"").decode(errors="replace"), len(r.value or b""),
                   dead_letter_from(r.headers, r.timestamp)) for id_, r in records]


def line(item: Listed) -> str:
    dead = item.dead
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dead.at_ms / 1000))
    where = f"{dead.topic or 'an unknown topic'}"
    if dead.partition is not None and dead.offset is not None:
        where += f" {dead.partition}:{dead.offset}"
    group = f", group {dead.group}" if dead.group else ""
    return f"{item.id:>8}  {when} UTC  key {item.key or '-'}  from {where}{group}: {dead.reason or 'no reason given'}"


def _run(work):
    """Run a broker call; an unreachable or refusing broker is one line, not a traceback."""
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(work)
    except KafkaError as exc:
        raise ConfigError(f"the broker: {type(exc).__name__}: {exc}") from None


def cmd_list(args) -> int:
    items = listed(_run(read_dead_letters(KafkaSettings.from_env())))
    if args.json:
        print(json.dumps([asdict(item) for item in items], indent=2))
    elif not items:
        print("dead.letter is empty")
    else:
        print("\n".join(line(item) for item in items))
    return 0


async def replay(settings: KafkaSettings, ids: list[str]) -> list[str]:
    """Publish the dead letters `ids` again on their topics; what was done, one line each."""
    from leadx.platform.kafka import clients
    from leadx.platform.kafka.dead_letters import dead_letter_from, replay_headers

    by_id = dict(await read_dead_letters(settings))
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ConfigError(f"not on dead.letter: {', '.join(unknown)} (`leadx dlq list` shows the ids)")
    records = [(i, by_id[i], dead_letter_from(by_id[i].headers, by_id[i].timestamp)) for i in ids]
    unroutable = [i for i, _, dead in records if not dead.topic]
    if unroutable:
        raise ConfigError(f"no leadx-dead-topic header, so no topic to replay to: {', '.join(unroutable)}")
    producer = clients.producer(settings, acks="all", enable_idempotence=settings.idempotence)
    await producer.start()
    try:
        done = []
        for id_, record, dead in records:
            partition, _, offset = id_.partition(":")
            await producer.send_and_wait(dead.topic, value=record.value, key=record.key,
                                         headers=replay_headers(record.headers, int(partition), int(offset)))
            done.append(f"replayed {id_} to {dead.topic}")
        return done
    finally:
        await producer.stop()


def cmd_replay(args) -> int:
    if not args.ids:
        print("leadx dlq replay: name the ids to replay (`leadx dlq list` shows them)", file=sys.stderr)
        return 2
    print("\n".join(_run(replay(KafkaSettings.from_env(), args.ids))))
    return 0


def add_commands(commands) -> None:
    dlq = commands.add_parser("dlq", help="the events set aside on dead.letter: list them, replay them")
    verbs = dlq.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="every record on dead.letter: its id, where it came from and why")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    again = verbs.add_parser("replay", help="publish dead letters again on the topic each came from")
    again.add_argument("ids", nargs="*", metavar="PARTITION:OFFSET", help="ids as `leadx dlq list` prints them")
    again.set_defaults(func=cmd_replay)
