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

from leadx.platform.config import ConfigError, KafkaSecurity, KafkaSettings
from leadx.platform.exchange_health import (
    HEALTH_URLS,
    DeadLetters,
    GroupLag,
    ServiceHealth,
    describe_dead_letter,
    one_line,
    parse_health_urls,
    read_broker_or_why,
    read_services,
    unprefixed,
)

if TYPE_CHECKING:  # imported where used: `leadx --help` should not wait for them
    from leadx.ledger.activity import Activity

SQL_CONNECT_TIMEOUT_S = 5


# --- the report --------------------------------------------------------------------------------

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


# --- the report as printed and as JSON ---------------------------------------------------------

WINDOW_TITLES = {"last_minute": "last minute", "last_hour": "last hour"}


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
                             *((unprefixed(g.group, prefix), unprefixed(g.topic, prefix), str(g.lag),
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
        lines += [f"  {describe_dead_letter(dead, prefix)}, {_ago(now_ms - dead.at_ms)}"
                  for dead in report.dead_letters.newest]
    else:
        lines.append(f"dead letters: {report.errors.get('dead_letters', 'not read')}")

    problems = report.problems()
    lines.append(f"status: {'NOT OK (' + '; '.join(problems) + ')' if problems else 'OK'}")
    return "\n".join(lines)


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
        read = await read_broker_or_why(kafka, report.topic_prefix)
        if isinstance(read, str):
            report.errors["lag"] = report.errors["dead_letters"] = read
        else:
            report.lag, report.dead_letters = read

    async def activity() -> None:
        database_url = environ.get("DATABASE_URL", "").strip()
        if not database_url:
            report.errors["activity"] = "DATABASE_URL is not set"
            return
        try:
            report.activity = await asyncio.to_thread(read_activity, database_url)
        except Exception as exc:  # idem, for SQL
            report.errors["activity"] = f"SQL: {one_line(exc)}"

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
