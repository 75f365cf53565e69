"""Real infrastructure for the tests: a private Kafka-protocol broker and a private Redis started
as local processes (the same ones `make run` starts), SQLite files, and a private PostgreSQL cluster
(or the one at LEADX_TEST_POSTGRES_URL, when set). Nothing here is mocked, and nothing skips for want
of a part: a machine without PostgreSQL fails the PostgreSQL tests with the reason."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from leadx.dev import warm_start
from leadx.dev.postgres import LocalPostgres
from leadx.dev.redis_cluster import LocalRedisCluster
from leadx.dev.stack import TANSU_SESSION_TIMEOUT_MS, LocalStack, fetch_min_bytes_for
from leadx.leads.sealing import PiiKeyring, new_key
from leadx.platform.config import DEFAULT_SESSION_TIMEOUT_MS
from leadx.platform.db.engine import create_schema, make_engine, session_factory


# The `leadx` commands the tests run must not find a developer's running `make run`
# (.leadx/exchange.env); tests of that file name it themselves.
os.environ["LEADX_ENV"] = "off"
# The tests' buyers are HTTP servers on 127.0.0.1: buyers created in the test process (and the
# `leadx` commands it runs) allow them, as the local stack's services do (leadx.dev.stack.base_env).
# Tests of the production rules pass leadx.accounts.buyer_urls.BuyerUrlRules() or set it false.
os.environ["BUYER_URLS_ALLOW_PRIVATE"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    # The services the tests start (LocalStack) are forks of a launcher that has their libraries
    # imported: an exchange's start costs 2.7 s of CPU instead of 7.3 (leadx/dev/warm_start.py).
    # LEADX_TEST_WARM_START=off starts each in a fresh interpreter, as `leadx run` does.
    if os.environ.get("LEADX_TEST_WARM_START", "on") != "off":
        warm_start.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    warm_start.disable()


@pytest.fixture
def warm():
    """The session's warm launcher (pytest_configure enables it), or one for this test when it is off."""
    enabled_here = warm_start.launcher() is None
    warm_start.enable()
    yield warm_start.launcher()
    if enabled_here:
        warm_start.disable()


# `leadx run` as the tests start it: at a lower CPU priority. Its start is a burst of ten cold
# processes (a broker, Redis and seven services importing their libraries), and beside it the shared
# exchange's 1-second auctions on the other worker once went without an answer from any of their
# three buyers (CI, 2026-12-06). Its own tests wait for sales for minutes, not for one window.
LEADX_RUN = ["nice", "-n", "10", sys.executable, "-m", "leadx.cli.main", "run"]


class Deadline:
    """`timeout_s` from now; `check()` raises once it has passed, naming what was waited for."""

    def __init__(self, timeout_s: float, message: str) -> None:
        self.timeout_s, self.message = timeout_s, message
        self.at = time.monotonic() + timeout_s

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise AssertionError(f"timed out after {self.timeout_s}s waiting for {self.message}")


def poll_until(condition: Callable[[], object], timeout_s: float = 30, interval_s: float = 0.05,
               message: str = "condition") -> object:
    """Wait for `condition()` to return something truthy (instead of sleeping a guessed time)."""
    deadline = Deadline(timeout_s, message)
    while not (value := condition()):
        deadline.check()
        time.sleep(interval_s)
    return value


async def poll_until_async(condition: Callable[[], object], timeout_s: float = 20, interval_s: float = 0.02,
                           message: str = "condition") -> object:
    """`poll_until` inside an event loop: the loop runs on while it waits."""
    deadline = Deadline(timeout_s, message)
    while not (value := condition()):
        deadline.check()
        await asyncio.sleep(interval_s)
    return value


# `make test` runs two pytest-xdist workers. Each runs whole groups: one per test module, except
# the integration modules that trade on the one shared exchange or have a head start
# (tests/integration/conftest.py), which are one group, so that one worker starts that exchange and
# the head-started scenarios, once. Collection checks this list against the fixtures the tests use.
# Seals and opens leads in tests that drive a service's handlers directly (a new key each run).
TEST_KEYRING = PiiKeyring.parse(new_key("test"))

EXCHANGE_GROUP = "shared-exchange"
EXCHANGE_GROUP_FILES = frozenset(f"tests/integration/{name}.py" for name in (
    "test_admin_api", "test_auction_workers", "test_crash_recovery", "test_dashboard_grpc", "test_direct_sale",
    "test_intake_contract", "test_intake_errors", "test_long_auction_window", "test_metrics", "test_outcomes",
    "test_pipeline", "test_portal", "test_portal_browser", "test_portal_leads", "test_portal_partners", "test_returns",
    "test_tracing"))


def xdist_group_of(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    return EXCHANGE_GROUP if path in EXCHANGE_GROUP_FILES else path


def pytest_xdist_make_scheduler(config, log):
    """Whole groups to a worker (xdist's own `--dist loadgroup` cannot rename test ids on pytest 9)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return ByGroup(config, log)


# The marks that move a test out of the main suite into a pass of its own (Makefile): those passes
# collect tests/integration only, so a test elsewhere so marked would run in no pass at all.
PASS_MARKS = ("browser", "kafka_only", "fault")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    stray = sorted({item.nodeid.split("::")[0] for item in items for mark in PASS_MARKS
                    if item.get_closest_marker(mark) and not item.nodeid.startswith("tests/integration/")})
    if stray:
        raise pytest.UsageError(f"{stray}: the marks {PASS_MARKS} choose a pass that runs tests/integration only")


# The session's broker: tansu (the development broker) unless LEADX_TEST_BROKER=kafka, with which
# `make test-kafka` runs the integration suite's core a second time on Apache Kafka.
TEST_BROKER = os.environ.get("LEADX_TEST_BROKER", "tansu")


def session_timeout_for(broker: str) -> int:
    """The consumers' Kafka session timeout in tests on this kind of broker: as the local stack sets
    it on a tansu it started (tansu holds each group's join for half of it: 2 s, not 5 s); the
    default on Apache Kafka, which refuses less than 6 s (group.min.session.timeout.ms)."""
    return TANSU_SESSION_TIMEOUT_MS if broker == "tansu" else DEFAULT_SESSION_TIMEOUT_MS


# The session's broker's, for the exchanges' services (tests/integration/harness.py) and the
# consumers tests make themselves. An exchange on a broker of its own passes its own.
TEST_SESSION_TIMEOUT_MS = session_timeout_for(TEST_BROKER)
TEST_FETCH_MIN_BYTES = fetch_min_bytes_for(TEST_BROKER)  # as the local stack gives a tansu it started


@pytest.fixture(scope="session")
def infra(tmp_path_factory) -> Iterator[LocalStack]:
    """A broker and a Redis for the whole session; tests isolate themselves by topic prefix."""
    stack = LocalStack(tmp_path_factory.mktemp("infra"), broker=TEST_BROKER)
    stack.start_infra()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: LocalStack) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(infra: LocalStack) -> str:
    return infra.redis_url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster for the session (3 primaries, a replica each), for what must hold on a
    cluster as production runs one. Tests that kill nodes start a cluster of their own."""
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"), primaries=3, replicas_per_primary=1)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'leadx.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str):
    """An engine on a SQLite database with today's schema, disposed after the test."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One PostgreSQL for the session: LEADX_TEST_POSTGRES_URL when set, else a private cluster."""
    configured = os.environ.get("LEADX_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    cluster = LocalPostgres()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """The SQL layer on SQLite and on PostgreSQL (in a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadx.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    try:
        _drop_schema(admin, schema)
    finally:
        admin.dispose()


# How long the drop may wait for a lock: a connection the test left in a transaction holds its
# tables for ever, and the drop waited with it (the whole suite hung once on one such read).
DROP_LOCK_TIMEOUT = "20s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


def _drop_schema(admin, schema: str) -> None:
    try:
        with admin.begin() as connection:
            connection.execute(text(f"set local lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
            connection.execute(text(f"drop schema {schema} cascade"))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        with admin.connect() as connection:
            holders = connection.execute(text(
                "select distinct a.pid, a.state, left(a.query, 200) from pg_locks l"
                " join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace"
                " join pg_stat_activity a on a.pid = l.pid"
                " where n.nspname = :schema and l.granted and a.pid <> pg_backend_pid()"), {"schema": schema}).all()
        pytest.fail(f"the test's schema {schema} could not be dropped within {DROP_LOCK_TIMEOUT}: connections "
                    f"hold locks in it {holders}; close every session the test opens", pytrace=False)


@pytest.fixture
def sessions(database_url: str):
    engine = make_engine(database_url)
    create_schema(engine)
    yield session_factory(engine)
    engine.dispose()


def backend_pid(connection) -> int:
    """The PostgreSQL server process serving this connection (a SQLAlchemy Connection or Session)."""
    return connection.execute(text("select pg_backend_pid()")).scalar_one()


@pytest.fixture
def terminate(postgres_url) -> Iterator[Callable[[int], None]]:
    """Closes a PostgreSQL connection from the server's side, as a restart does; the fixture's own
    connection is made before the test begins."""
    admin = make_engine(postgres_url)
    with admin.connect() as connection:
        connection.execute(text("select 1"))

    def close(pid: int) -> None:
        with admin.connect() as connection:
            assert connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()

    yield close
    admin.dispose()
