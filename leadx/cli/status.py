"""`leadx status`: the exchange at a glance. Each service's readiness (its `/readyz`, at the base URLs
of LEADX_HEALTH_URLS), each consumer group's lag per topic, the leads received and the sales closed
in the last minute and the last hour (SQL), and the events set aside on dead.letter.

The parts are read side by side and each on its own: one that cannot be read (the broker down, SQL
unreachable, no health URLs) says so on its own line and the others still show. The exit code is 0
when every service is ready and nothing is dead-lettered, 1 otherwise (a part that decides it and
cannot be read counts as not OK), so that scripts can use it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from leadx.platform.config import ConfigError, KafkaSecurity, KafkaSettings

if TYPE_CHECKING:  # imported where used: `leadx --help` should not wait for them
    import httpx
    from aiokafka import AIOKafkaConsumer

    from leadx.ledger.activity import Activity
    from leadx.platform.kafka.dead_letters import DeadLetter

HEALTH_URLS = "LEADX_HEALTH_URLS"
HTTP_TIMEOUT_S = 2.0
BROKER_TIMEOUT_S = 15.0
SQL_CONNECT_TIMEOUT_S = 5
NEWEST_DEAD_LETTERS = 3
NEWEST_DEAD_LETTERS_WAIT_S = 2.0  # for their records; what has not come by then is left out

Partition = tuple[str, int]  # (topic, partition), as aiokafka's TopicPartition is


# --- the parts ---------------------------------------------------------------------------------

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

    def describe(self) -> str:
        if self.failing:
            return f"{self.state} (failing: {', '.join(self.failing)})"
        return f"{self.state} ({self.detail})" if self.detail else self.state


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


@dataclass
class Report:
    """What `leadx status` found; a part it could not read is None, with its reason in `errors`."""
    topic_prefix: str = ""
    services: list[ServiceHealth] | None = None
    lag: list[GroupLag] | None = None
    activity: dict[str, Activity] | None = None
    dead_letters: DeadLetters | None = None
    errors: dict[str, str] = field(default_factory=dict)  # part → why it could not be read

    def problems(self) -> list[str]:
        """Why the exit code is 1 (none: 0)."""
        found = []
        if self.services is None:
            found.append("services unknown")
        else:
            found += [f"{s.name} {s.state}" for s in self.services if not s.ready]
        if self.dead_letters is None:
            found.append("dead letters unknown")
        elif self.dead_letters.count:
            found.append(f"{self.dead_letters.count} dead-lettered")
        return found

    def exit_code(self) -> int:
        return 1 if self.problems() else 0


# --- pure parts: the setting, the lag, the dead letters' headers, the output -------------------

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
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} has a bad port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} is not http://host:port")
        if parts.query or parts.fragment:
            raise ConfigError(f"{HEALTH_URLS}: {name}'s URL {url!r} is a base URL: no ? or #")
        urls[name] = url.rstrip("/").removesuffix("/readyz")
    if not urls:
        raise ConfigError(f"{HEALTH_URLS} names no service")
    return urls


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


WINDOW_TITLES = {"last_minute": "last minute", "last_hour": "last hour"}


def _unprefixed(name: str, prefix: str) -> str:
    return name.removeprefix(prefix) if prefix else name


def _table(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    """Rows as aligned columns, two spaces apart, indented by two; `right` columns right-aligned."""
    right = set(right)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(cell.rjust(width) if column in right else cell.ljust(width)
                             for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def format_report(report: Report, now_ms: int | None = None) -> str:
    """The report as the terminal shows it: one section per part, a failed part as one line."""
    prefix = report.topic_prefix
    lines = []
    if report.services is not None:
        lines.append("services")
        lines += _table([(s.name, s.describe()) for s in report.services])
    else:
        lines.append(f"services: {report.errors.get('services', 'not read')}")

    if report.lag is not None:
        if report.lag:
            lines.append("consumer lag" + (f" (groups and topics of prefix {prefix!r})" if prefix else ""))
            lines += _table([("group", "topic", "lag", "max/partition"),
                             *((_unprefixed(g.group, prefix), _unprefixed(g.topic, prefix), str(g.lag),
                                str(g.max_partition_lag)) for g in report.lag)], right=(2, 3))
        else:
            lines.append("consumer lag: no consumer group of this exchange has committed an offset yet")
    else:
        lines.append(f"consumer lag: {report.errors.get('lag', 'not read')}")

    if report.activity is not None:
        windows = list(report.activity)
        lines.append("activity")
        lines += _table([("", *(WINDOW_TITLES.get(w, w) for w in windows)),
                         ("leads received", *(str(report.activity[w].leads) for w in windows)),
                         ("sales", *(str(report.activity[w].sales) for w in windows)),
                         ("sales value", *(_dollars(report.activity[w].sales_cents) for w in windows)),
                         ("closed unsold", *(str(report.activity[w].unsold) for w in windows))],
                        right=range(1, len(windows) + 1))
    else:
        lines.append(f"activity: {report.errors.get('activity', 'not read')}")

    if report.dead_letters is not None:
        lines.append(f"dead letters: {report.dead_letters.count}")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        lines += [f"  {_dead_letter_line(dead, prefix)}, {_ago(now_ms - dead.at_ms)}"
                  for dead in report.dead_letters.newest]
    else:
        lines.append(f"dead letters: {report.errors.get('dead_letters', 'not read')}")

    problems = report.problems()
    lines.append(f"status: {'NOT OK (' + '; '.join(problems) + ')' if problems else 'OK'}")
    return "\n".join(lines)


def _dead_letter_line(dead: DeadLetter, prefix: str) -> str:
    if not dead.topic:
        return "from an unknown topic (no leadx-dead-* headers)"
    where = _unprefixed(dead.topic, prefix)
    if dead.partition is not None:
        where += f" partition {dead.partition}"
    if dead.offset is not None:
        where += f" offset {dead.offset}"
    if dead.group:
        where += f", group {_unprefixed(dead.group, prefix)}"
    return f"from {where}: {dead.reason or 'no reason given'}"


def _ago(ms: int) -> str:
    seconds = max(0, ms) // 1000
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def report_json(report: Report) -> dict:
    """The report for machines: every part, null when it could not be read (its reason in `errors`)."""
    return {
        "ok": report.exit_code() == 0,
        "problems": report.problems(),
        "topic_prefix": report.topic_prefix,
        "services": None if report.services is None else [
            {"name": s.name, "url": s.url, "ready": s.ready, "state": s.state, "failing": list(s.failing),
             "detail": s.detail} for s in report.services],
        "lag": None if report.lag is None else [asdict(g) for g in report.lag],
        "activity": None if report.activity is None else {w: asdict(a) for w, a in report.activity.items()},
        "dead_letters": None if report.dead_letters is None else {
            "count": report.dead_letters.count, "newest": [asdict(d) for d in report.dead_letters.newest]},
        "errors": report.errors,
    }


# --- reading the exchange --------------------------------------------------------------------

def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def service_health(client: httpx.AsyncClient, name: str, base_url: str) -> ServiceHealth:
    """One service's `/readyz`: ready (200), not ready (what it names as failing), or down."""
    import httpx

    try:
        response = await client.get(f"{base_url}/readyz")
    except httpx.TimeoutException:
        return ServiceHealth(name, base_url, "down", detail=f"no answer within {HTTP_TIMEOUT_S:g}s")
    except httpx.HTTPError as exc:
        why = "connection refused" if _refused(exc) else (str(exc) or type(exc).__name__)
        return ServiceHealth(name, base_url, "down", detail=why)
    if response.status_code == 200:
        return ServiceHealth(name, base_url, "ready")
    try:
        failing = response.json().get("failing") or []
    except (ValueError, AttributeError):
        failing = []
    return ServiceHealth(name, base_url, "not ready", failing=tuple(str(check) for check in failing),
                         detail="" if failing else f"HTTP {response.status_code}")


async def read_services(urls: Mapping[str, str]) -> list[ServiceHealth]:
    import httpx

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        return list(await asyncio.gather(*(service_health(client, name, url) for name, url in urls.items())))


async def read_broker(brokers: KafkaSettings | str, prefix: str) -> tuple[list[GroupLag], DeadLetters]:
    """The lag of this exchange's consumer groups (named `<prefix>leadx-...`, the auction's faust
    app too) on this exchange's topics, and the dead.letter topic's records."""
    from leadx.contracts import topics
    from leadx.platform.kafka import clients
    from leadx.platform.kafka.offsets import end_offsets_with, partitions_of

    timeout_ms = int(BROKER_TIMEOUT_S * 1000)
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


def read_activity(database_url: str) -> dict[str, Activity]:
    """The last minute's and the last hour's leads and sales, read from SQL."""
    from sqlalchemy.engine import make_url

    from leadx.ledger.activity import recent_activity
    from leadx.platform.db.engine import make_engine, session_factory

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
        raise FileNotFoundError(f"no SQLite database at {url.database}")
    # libpq's own setting: without it an unreachable PostgreSQL host is waited for for minutes.
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(SQL_CONNECT_TIMEOUT_S))
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return recent_activity(session, int(time.time() * 1000))
    finally:
        engine.dispose()


def _why(exc: BaseException) -> str:
    """One line saying why a part could not be read (the driver's own first line, not a traceback)."""
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    kind = type(original).__name__
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    if "Unable to bootstrap" in text:  # aiokafka's words for: nothing answered at that address
        return "cannot connect (nothing answers there)"
    text = text.removeprefix(f"{kind}: ")  # aiokafka's errors repeat their name
    return f"{kind}: {text}" if text else kind


async def gather_report(environ: Mapping[str, str]) -> Report:
    """Every part, side by side; each one that fails is recorded as its error."""
    report = Report(topic_prefix=environ.get("LEADX_TOPIC_PREFIX", ""))

    async def services() -> None:
        raw = environ.get(HEALTH_URLS, "").strip()
        if not raw:
            report.errors["services"] = (f"{HEALTH_URLS} is not set: give each service's health URL as"
                                         " name=http://host:port,... (`leadx run` writes it for its exchange)")
            return
        try:
            urls = parse_health_urls(raw)
        except ConfigError as exc:
            report.errors["services"] = str(exc)
            return
        report.services = await read_services(urls)

    async def broker() -> None:
        bootstrap = environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if not bootstrap:
            report.errors["lag"] = report.errors["dead_letters"] = "KAFKA_BOOTSTRAP_SERVERS is not set"
            return
        try:
            # The brokers' security (TLS, SASL) from the settings the services read; no topic is made here.
            kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=report.topic_prefix, partitions=0,
                                  replication_factor=0, idempotence=False, security=KafkaSecurity.from_env(environ))
        except ConfigError as exc:
            report.errors["lag"] = report.errors["dead_letters"] = str(exc)
            return
        try:
            report.lag, report.dead_letters = await asyncio.wait_for(
                read_broker(kafka, report.topic_prefix), BROKER_TIMEOUT_S + 5)
        except TimeoutError:
            report.errors["lag"] = report.errors["dead_letters"] = \
                f"the broker at {bootstrap} did not answer within {BROKER_TIMEOUT_S + 5:g}s"
        except Exception as exc:  # whatever the broker or the client says, said in one line
            report.errors["lag"] = report.errors["dead_letters"] = f"the broker at {bootstrap}: {_why(exc)}"

    async def activity() -> None:
        database_url = environ.get("DATABASE_URL", "").strip()
        if not database_url:
            report.errors["activity"] = "DATABASE_URL is not set"
            return
        try:
            report.activity = await asyncio.to_thread(read_activity, database_url)
        except Exception as exc:  # idem, for SQL
            report.errors["activity"] = f"SQL: {_why(exc)}"

    await asyncio.gather(services(), broker(), activity())
    return report


def cmd_status(args) -> int:
    # aiokafka logs every failed connection attempt; the report says the broker's state once.
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        report = asyncio.run(gather_report(os.environ))
    finally:
        kafka_log.setLevel(level)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(format_report(report))
    return report.exit_code()


def add_commands(commands) -> None:
    command = commands.add_parser(
        "status", help="the exchange at a glance: services, consumer lag, leads and sales, dead letters",
        description="Each service's readiness (/readyz at the base URLs of LEADX_HEALTH_URLS,"
                    " name=http://host:port,...; `leadx run` writes them), the lag of this exchange's"
                    " consumer groups per topic, the leads received and sales closed in the last minute"
                    " and hour (DATABASE_URL), and the records on dead.letter. Exit code 0 when every"
                    " service is ready and nothing is dead-lettered, 1 otherwise (also when the services"
                    " or the broker cannot be read).")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(func=cmd_status)
