"""The exchange's health as seen from outside its services: each service's readiness (its `/readyz`,
at the base URLs of LEADX_HEALTH_URLS), each consumer group's lag per topic as the broker holds it,
and the records set aside on dead.letter. Read by `leadx status` (leadx.cli.status) and by the
portal's administration (services/portal/operations.py).

The lag is the broker's, not the services' own gauge (`leadx_consumer_lag_records`): committed
offsets against each partition's end, so it shows a group whose every replica is down, and it is
the same whichever replica answers.

The HTTP client and Kafka's are imported where used: `leadx --help` should not wait for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from leadx.platform.config import ConfigError, KafkaSettings

if TYPE_CHECKING:
    import httpx
    from aiokafka import AIOKafkaConsumer

    from leadx.platform.kafka.dead_letters import DeadLetter

HEALTH_URLS = "LEADX_HEALTH_URLS"
HTTP_TIMEOUT_S = 2.0
BROKER_TIMEOUT_S = 15.0
NEWEST_DEAD_LETTERS = 3
NEWEST_DEAD_LETTERS_WAIT_S = 2.0  # for their records; what has not come by then is left out

Partition = tuple[str, int]  # (topic, partition), as aiokafka's TopicPartition is


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    url: str  # the base URL; /readyz is asked
    state: str  # "ready", "not ready" (it answered 503 or another error) or "down" (no answer)
    failing: tuple[str, ...] = ()  # the readiness checks /readyz names as failing
    detail: str = ""  # why it is down, or the HTTP status of an answer that names nothing

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def why(self) -> str:
        """The checks that fail, or the detail; "" for a ready service."""
        return f"failing: {', '.join(self.failing)}" if self.failing else self.detail

    def describe(self) -> str:
        return f"{self.state} ({self.why})" if self.why else self.state


@dataclass(frozen=True)
class GroupLag:
    """How far one consumer group is behind on one topic: records published and not yet committed."""
    group: str
    topic: str
    lag: int  # summed over the topic's partitions
    max_partition_lag: int
    partitions: int


@dataclass(frozen=True)
class DeadLetters:
    count: int
    newest: tuple[DeadLetter, ...] = ()  # newest first


# --- pure parts: the setting, the lag ----------------------------------------------------------

def parse_health_urls(text: str) -> dict[str, str]:
    """`name=http://host:port,name2=...` → {name: base URL} in the order given. A URL may carry a
    path (a health server behind a proxy); a trailing `/readyz` is taken off, as it is added when
    asked. A ConfigError names the entry that is wrong."""
    urls: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue  # a trailing comma
        name, separator, url = (piece.strip() for piece in entry.partition("="))
        if not separator or not name or not url:
            raise ConfigError(f"{HEALTH_URLS}: {entry!r} is not name=http://host:port")
        if name in urls:
            raise ConfigError(f"{HEALTH_URLS}: {name} is given twice")
        try:
            parts = urlsplit(url)  # raises on an IPv6 host without its closing bracket
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} has a bad host or port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} is not http://host:port")
        if parts.query or parts.fragment:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} is a base URL: no ? or #")
        urls[name] = url.rstrip("/").removesuffix("/readyz")
    if not urls:
        raise ConfigError(f"{HEALTH_URLS} names no service")
    return urls


def unprefixed(name: str, prefix: str) -> str:
    """A group's or topic's name without the exchange's prefix (every one of them carries it)."""
    return name.removeprefix(prefix) if prefix else name


def describe_dead_letter(dead: DeadLetter, prefix: str) -> str:
    """Where a dead letter came from and why, in one line."""
    if not dead.topic:
        return "from an unknown topic (no leadx-dead-* headers)"
    where = unprefixed(dead.topic, prefix)
    if dead.partition is not None:
        where += f" partition {dead.partition}"
    if dead.offset is not None:
        where += f" offset {dead.offset}"
    if dead.group:
        where += f", group {unprefixed(dead.group, prefix)}"
    return f"from {where}: {dead.reason or 'no reason given'}"


def group_lags(committed: Mapping[str, Mapping[Partition, int]], starts: Mapping[Partition, int],
               ends: Mapping[Partition, int]) -> list[GroupLag]:
    """Each group's lag per topic it has committed on. `committed` holds, per group, the offset
    committed on each partition asked about (-1: none). A partition with no commit of a topic the
    group does read is behind by all it holds (a group starts from the earliest offset)."""
    lags = []
    for group in sorted(committed):
        by_topic: dict[str, list[tuple[Partition, int]]] = {}
        for partition, offset in committed[group].items():
            by_topic.setdefault(partition[0], []).append((partition, offset))
        for topic in sorted(by_topic):
            offsets = by_topic[topic]
            if all(offset < 0 for _, offset in offsets):
                continue  # a topic this group does not read
            behind = []
            for partition, offset in offsets:
                position = offset if offset >= 0 else starts.get(partition, 0)
                behind.append(max(0, ends.get(partition, position) - position))
            lags.append(GroupLag(group, topic, sum(behind), max(behind), len(offsets)))
    return lags


# --- reading the exchange --------------------------------------------------------------------

def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def service_health(client: httpx.AsyncClient, name: str, base_url: str) -> ServiceHealth:
    """One service's `/readyz`: ready (200), not ready (what it names as failing), or down. Whatever
    the address or the answer, this says so and never raises."""
    import httpx

    try:
        response = await client.get(f"{base_url}/readyz")
    except httpx.TimeoutException:
        return ServiceHealth(name, base_url, "down", detail=f"no answer, {HTTP_TIMEOUT_S:g}s timeout")
    except httpx.HTTPError as exc:
        why = "connection refused" if _refused(exc) else (str(exc) or type(exc).__name__)
        return ServiceHealth(name, base_url, "down", detail=why)
    except Exception as exc:  # an address httpx cannot even ask (a host name it cannot encode...)
        return ServiceHealth(name, base_url, "down", detail=one_line(exc))
    if response.status_code == 200:
        return ServiceHealth(name, base_url, "ready")
    try:
        failing = response.json().get("failing") or []
    except (ValueError, AttributeError):
        failing = []
    if not isinstance(failing, list):  # not a leadx health server's answer
        failing = []
    return ServiceHealth(name, base_url, "not ready", failing=tuple(str(check) for check in failing),
                         detail="" if failing else f"HTTP {response.status_code}")


async def read_services(urls: Mapping[str, str]) -> list[ServiceHealth]:
    import httpx

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        return list(await asyncio.gather(*(service_health(client, name, url) for name, url in urls.items())))


async def read_broker(brokers: KafkaSettings | str, prefix: str,
                      timeout_s: float = BROKER_TIMEOUT_S) -> tuple[list[GroupLag], DeadLetters]:
    """The lag of this exchange's consumer groups (named `<prefix>leadx-...`, the auction's faust
    app too) on this exchange's topics, and the dead.letter topic's records."""
    from leadx.contracts import topics
    from leadx.platform.kafka import clients
    from leadx.platform.kafka.offsets import end_offsets_with, partitions_of

    timeout_ms = int(timeout_s * 1000)
    admin = clients.admin(brokers, request_timeout_ms=timeout_ms)
    probe = clients.consumer(brokers, group_id=None, enable_auto_commit=False, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        await probe.start()
        group_prefix = topics.group(prefix, "")
        groups = sorted(group for group, *_ in await admin.list_consumer_groups() if group.startswith(group_prefix))
        # The exchange's topics, and the auction's faust topics (its changelog), named after its group.
        names = {topics.name(prefix, base) for base in topics.ALL}
        ours = sorted(t for t in await probe.topics() if t in names or t.startswith(group_prefix))
        partitions = await partitions_of(probe, ours)
        # Asked partition by partition: tansu (the local broker) answers an OffsetFetch for "every
        # partition the group has" with a response aiokafka cannot read.
        committed = {group: {tp: meta.offset for tp, meta in
                             (await admin.list_consumer_group_offsets(group, partitions=partitions)).items()}
                     for group in groups} if partitions else {}
        starts = await probe.beginning_offsets(partitions) if partitions else {}
        ends = await end_offsets_with(probe, partitions)
        lags = group_lags(committed, starts, ends)
        dead_topic = topics.name(prefix, topics.DEAD_LETTER)
        dead = [tp for tp in partitions if tp.topic == dead_topic]
        count = sum(max(0, ends[tp] - starts[tp]) for tp in dead)
        newest = await _newest_dead_letters(probe, {tp: (starts[tp], ends[tp]) for tp in dead}) if count else ()
        return lags, DeadLetters(count, newest)
    finally:
        await probe.stop()
        await admin.close()


async def _newest_dead_letters(probe: AIOKafkaConsumer, bounds: Mapping) -> tuple[DeadLetter, ...]:
    """The newest few records of dead.letter (the last few of each partition, read once)."""
    from leadx.platform.kafka.dead_letters import dead_letter_from

    wanted = {tp: (max(start, end - NEWEST_DEAD_LETTERS), end) for tp, (start, end) in bounds.items() if end > start}
    probe.assign(list(wanted))
    for tp, (first, _) in wanted.items():
        probe.seek(tp, first)
    found = []
    deadline = time.monotonic() + NEWEST_DEAD_LETTERS_WAIT_S
    pending = set(wanted)
    while pending and time.monotonic() < deadline:
        for tp, records in (await probe.getmany(*pending, timeout_ms=200)).items():
            found += [r for r in records if r.offset < wanted[tp][1]]
            if records and records[-1].offset + 1 >= wanted[tp][1]:
                pending.discard(tp)
    found.sort(key=lambda r: (r.timestamp, r.offset), reverse=True)
    return tuple(dead_letter_from(r.headers, r.timestamp) for r in found[:NEWEST_DEAD_LETTERS])


def one_line(exc: BaseException) -> str:
    """One line saying why a part could not be read (the driver's own first line, not a traceback)."""
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    kind = type(original).__name__
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if "Unable to bootstrap" in text:  # aiokafka's words for: nothing answered at that address
        return "cannot connect (nothing answers there)"
    text = text.removeprefix(f"{kind}: ")  # aiokafka's errors repeat their name
    return f"{kind}: {text}" if text else kind


async def read_broker_or_why(kafka: KafkaSettings, prefix: str,
                             timeout_s: float = BROKER_TIMEOUT_S) -> tuple[list[GroupLag], DeadLetters] | str:
    """read_broker, its requests each within `timeout_s` and the whole within 5 s more, or one line
    saying why it could not be read."""
    try:
        return await asyncio.wait_for(read_broker(kafka, prefix, timeout_s), timeout_s + 5)
    except TimeoutError:
        return f"the broker at {kafka.bootstrap_servers} did not answer within {timeout_s + 5:g}s"
    except Exception as exc:  # whatever the broker or the client says, said in one line
        return f"the broker at {kafka.bootstrap_servers}: {one_line(exc)}"
