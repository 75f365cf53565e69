from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import pytest

from tests.conftest import EXCHANGE_GROUP_FILES, TEST_BROKER
from tests.integration.harness import Exchange, start_exchange
from tests.integration.tails import stop_all_tails

ADMIN_KEY = "test-dashboard-admin-key"  # a test value, not a secret; also the intake's ADMIN_API_KEY
# The shared exchange's API_KEY_CACHE_SECONDS (30 by default): a rotated-out key's end is waited for.
KEY_CACHE_S = 3
ALL_SERVICES = ["intake", "intake-2", "dedup", "scoring", "auction", "delivery", "ledger"]
# Every consumer group of the exchange that has committed once a lead was sold through an auction
# with a bid (`bid.placed`); the auction's faust app's group among them.
GROUPS = {"leadx-dedup", "leadx-scoring", "leadx-auction", "leadx-auction-bids", "leadx-delivery-pings",
          "leadx-delivery-sales", "leadx-ledger"}
PARTY_FIXTURES = {"exchange", "market"}
LAST_SHARED_USER = pytest.StashKey[pytest.Item | None]()
_shared_stops: list[Callable[[], None]] = []  # stops the shared exchange once its last test is done


@pytest.fixture(scope="session", autouse=True)
def topic_tails():
    """The consumers tailing the topics tests read (tests/integration/tails.py) stop with the session."""
    yield
    stop_all_tails()


def uses_shared_exchange(item: pytest.Item) -> bool:
    return "shared_exchange" in getattr(item, "fixturenames", ())


def in_exchange_group(item: pytest.Item) -> bool:
    """The tests on the shared exchange and the head-started scenarios: one group, which runs on one
    worker under pytest-xdist (and first, without it)."""
    return uses_shared_exchange(item) or item.get_closest_marker("head_start") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order of the tests.

    - The modules that trade on the shared exchange run first, so that it can stop after the last of
      them (an idle exchange still spends CPU: every consumer polls the broker).
    - Tests with a head start run last: their scenarios then had every other test's time to run.

    `make test` runs two workers, each running whole groups (tests/conftest.py): the modules of the
    exchange group must be the ones listed in EXCHANGE_GROUP_FILES, checked here."""
    grouped = {item.nodeid.split("::")[0] for item in items if in_exchange_group(item)}
    listed = {path for path in EXCHANGE_GROUP_FILES if any(item.nodeid.startswith(path) for item in items)}
    if grouped != listed:
        raise pytest.UsageError(f"tests/conftest.py EXCHANGE_GROUP_FILES is stale: add {sorted(grouped - listed)},"
                                f" remove {sorted(listed - grouped)}")
    shared_modules = {item.module for item in items if uses_shared_exchange(item)}
    items.sort(key=lambda item: (item.get_closest_marker("head_start") is not None,
                                 item.get_closest_marker("integration") is None,
                                 getattr(item, "module", None) not in shared_modules))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The shared exchange's last user among the tests that will run: found once `-m` and `-k` have
    deselected (a pass of `make test` runs some of the group's modules) and any plugin has reordered."""
    last_users = [item for item in session.items if uses_shared_exchange(item)]
    session.config.stash[LAST_SHARED_USER] = last_users[-1] if last_users else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    if item is item.config.stash.get(LAST_SHARED_USER, None):
        for stop in _shared_stops:
            stop()


# A failed test on an exchange shows what its services logged while it ran, at most this many
# lines: a timed auction that ends otherwise than a test expects is explained by its log lines
# (buyers passed over, bids at the close, posts), and CI keeps no files. A lead unsold in CI was
# explained this way: its winner's post had failed in 2 ms on a connection the buyer had closed.
EXCHANGE_LOG_LINES = 60


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    exchange = getattr(item, "funcargs", {}).get("exchange")
    if report.when == "call" and report.failed and isinstance(exchange, Exchange):
        report.sections.append(("exchange logs during the test", _logged_during(exchange, call.start)))


def _logged_during(exchange: Exchange, since_s: float) -> str:
    """The exchange's service log lines stamped at or after `since_s` (epoch seconds), oldest first."""
    since = dt.datetime.fromtimestamp(since_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    lines = []
    for path in sorted((exchange.stack.run_dir / "logs").glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(line).get("ts", "") >= since:
                    lines.append(line)
    lines.sort(key=lambda line: line[:40])  # each starts {"ts": "<ISO time>"
    return "\n".join(lines[-EXCHANGE_LOG_LINES:]) or "(nothing logged)"


class HeadStarts:
    """Scenarios that mostly wait (a two-minute auction window) get a head start. For a test
    marked `head_start(exchange=start, scenario=run)`, `start(tmp_path_factory, kafka_bootstrap,
    redis_url)` starts its exchange at the first test of the exchange group (on the test's thread:
    Alembic, which sets up each exchange's database, keeps one migration context per process; it may
    return before the services are ready), and `run(exchange)` goes on on a thread of its own, once
    they are, beside the other tests, and stops the exchange. The test runs last
    (pytest_collection_modifyitems) and waits for its outcome (`head_start.result()`: a failed
    assertion in it fails the test)."""

    def __init__(self, items: list[pytest.Item]) -> None:
        self.marks = {mark.kwargs["scenario"]: mark.kwargs["exchange"] for item in items
                      if (mark := item.get_closest_marker("head_start")) is not None}
        self.started: dict[Callable, Future] = {}

    def start(self, request: pytest.FixtureRequest) -> None:
        """Every scenario, once (later calls do nothing)."""
        if self.started or not self.marks:
            return
        arguments = [request.getfixturevalue(name) for name in ("tmp_path_factory", "kafka_bootstrap", "redis_url")]
        # On Apache Kafka the scenarios run one after another. Their exchanges' consumer groups
        # settle in about the same minute on one broker, so side by side the scenarios all began
        # at once. The buyers that answer their pings are threads of this process, and in CI they
        # then answered late (over the 5 s ping timeout), so leads went unsold.
        shared = ThreadPoolExecutor(1, thread_name_prefix="head-starts") if TEST_BROKER == "kafka" else None
        exchanges = {scenario: start(*arguments) for scenario, start in self.marks.items()}
        if shared is not None:
            # And the first test of the group waits for them to be ready: their twenty-odd processes
            # start at once, and a lead posted meanwhile starved on the two cores (twice in a row on
            # this machine: its auction opened 10 s after the POST, and delivery's pings were
            # unanswered at a 5 s close). One not ready in time fails its own test, from its thread.
            for exchange in exchanges.values():
                with contextlib.suppress(TimeoutError, RuntimeError):
                    exchange.stack.wait_ready(timeout_s=HEAD_START_READY_S)
        for scenario, exchange in exchanges.items():
            runner = shared or ThreadPoolExecutor(1, thread_name_prefix=scenario.__name__)
            self.started[scenario] = runner.submit(_run_then_stop, scenario, exchange)
            if shared is None:
                runner.shutdown(wait=False)
        if shared is not None:
            shared.shutdown(wait=False)


@pytest.fixture(scope="session")
def head_starts(request, topic_tails) -> Iterator[HeadStarts]:
    starts = HeadStarts(request.session.items)
    yield starts
    wait(starts.started.values())  # none is left running past the session


@pytest.fixture(autouse=True)
def start_head_starts_with_the_exchange_group(request, head_starts: HeadStarts) -> None:
    """Under xdist, only the worker that runs the exchange group (and so the head-start tests) starts
    the scenarios."""
    if in_exchange_group(request.node):
        head_starts.start(request)


# How long a scenario's exchange may take to be ready. Its wait begins while the other scenarios'
# exchanges, some twenty processes, are still starting on the same two cores: a loaded machine
# once took over 120 s (an intake not ready 40 s after it was the last to start).
HEAD_START_READY_S = 300


def _run_then_stop(scenario: Callable[[Exchange], None], exchange: Exchange) -> None:
    try:
        exchange.stack.wait_ready(timeout_s=HEAD_START_READY_S)
        scenario(exchange)
    finally:
        exchange.stop()


@pytest.fixture
def head_start(request, head_starts: HeadStarts) -> Future:
    """The running (or finished) scenario of this test's `head_start` mark."""
    head_starts.start(request)
    return head_starts.started[request.node.get_closest_marker("head_start").kwargs["scenario"]]


@pytest.fixture(scope="session")
def shared_exchange(request, tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    """The whole exchange with two intake replicas, started once for every test that needs only
    "an exchange": each test trades as a party of its own (a seller, another seller and three
    buyers, made before the services start), so none sees another's sales, fees or returns.
    Platform-wide dedup is off here so that per-buyer protection can be seen on its own (a
    repeated consumer is still sold, but never to a buyer that already has it)."""
    parties = sum(1 for item in request.session.items if PARTY_FIXTURES & set(getattr(item, "fixturenames", ())))
    prefix = f"{tmp_path_factory.mktemp('x').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("exchange"), kafka_bootstrap, redis_url, prefix,
                              ["alpha", "beta", "gamma"], ALL_SERVICES, spare_parties=parties,
                              DEDUP_PLATFORM_SCOPE="false", DASHBOARD_ADMIN_API_KEY=ADMIN_KEY, ADMIN_API_KEY=ADMIN_KEY,
                              API_KEY_CACHE_SECONDS=str(KEY_CACHE_S),
                              # The admin key is one for all the tests that share this exchange, one
                              # after another: their requests together passed the default 50 a second
                              # once the suite ran faster. Its limit is tested on an intake of
                              # its own (tests/unit/test_intake_rate_limits.py).
                              INTAKE_ADMIN_RATE_LIMIT_PER_SECOND="1000")
    stopped = []

    def stop_once() -> None:
        if not stopped:
            stopped.append(True)
            exchange.stop()

    _shared_stops.append(stop_once)
    yield exchange
    stop_once()


@pytest.fixture
def exchange(shared_exchange: Exchange) -> Exchange:
    """The shared exchange, with accounts no other test uses: buyers alpha, beta and gamma (none
    bidding until told to), partnered with the seller and the other seller."""
    return shared_exchange.party()


@pytest.fixture
def market(exchange: Exchange) -> Exchange:
    return exchange


@pytest.fixture(scope="session")
def portal(shared_exchange: Exchange) -> Iterator[str]:
    """The web portal on the shared exchange, started at the first test that needs it: its address.
    One for the four portal modules, not one each (a start and a stop each, on the suite's busiest
    worker); it stops with the shared exchange. Many logins fail on purpose from 127.0.0.1, so the
    per-address throttle is set high here (its own test counts it against Redis:
    tests/unit/test_portal_throttle.py)."""
    stack = shared_exchange.stack
    # The buyer home's live list polls each second, and each stream ends after 2 s (60 s in
    # production) so that the tests see one end, and the browser's reconnection, soon: a test
    # reads a stream to its end (at 5 s, five streams were half of test_portal's time).
    process = stack.add_service("portal", PORTAL_LOGIN_FAILURES_PER_ADDRESS="10000", PORTAL_LIVE_POLL_SECONDS="1",
                                PORTAL_LIVE_STREAM_SECONDS="2")
    process.start()
    try:
        stack.wait_ready(["portal"], timeout_s=60)
        yield f"http://127.0.0.1:{stack.port_of('portal', 'PORTAL_PORT')}"
    finally:
        process.stop()
        del stack.services["portal"]
