"""Every Kafka client of the exchange is made by leadx.platform.kafka.clients, with the brokers'
security; a client made anywhere else in leadx or services fails this suite."""

from __future__ import annotations

import ast
import asyncio
import inspect
import ssl
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSecurity, KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.consumer import EventConsumer
from leadx.platform.kafka.idle_fetches import IdleAwareConsumer, IdleFetchWait
from tests.certificates import TestCA

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path("leadx/platform/kafka/clients.py")
# aiokafka's clients and faust's app: made with a bootstrap address and, unless told, plaintext.
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "IdleAwareConsumer", "AIOKafkaAdminClient", "AIOKafkaClient",
                  "App"}


def direct_constructions(source: str, filename: str) -> list[str]:
    """`file:line Name(...)` for every call of a Kafka client class (by name or attribute, e.g.
    `aiokafka.AIOKafkaConsumer(...)`, `faust.App(...)`)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "App" and not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                                  and func.value.id == "faust"):
            continue  # only faust's App: another library's App is not a Kafka client
        if name in CLIENT_CLASSES:
            found.append(f"{filename}:{node.lineno} {name}(...)")
    return found


def test_no_kafka_client_is_made_outside_the_helper():
    found = []
    for top in ("leadx", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative != HELPER:
                found += direct_constructions(path.read_text(), str(relative))
    assert found == [], ("make Kafka clients with leadx.platform.kafka.clients (producer, consumer, admin, "
                         f"faust_app), which applies KAFKA_SECURITY_PROTOCOL and the rest: {found}")


def test_the_check_sees_each_way_of_writing_a_construction():
    source = "\n".join([
        "import aiokafka, faust",
        "from aiokafka import AIOKafkaConsumer",
        "a = AIOKafkaConsumer('t', bootstrap_servers='k:9092')",
        "b = aiokafka.AIOKafkaProducer(bootstrap_servers='k:9092')",
        "c = faust.App('id', broker='kafka://k:9092')",
        "d = starlette.App()",  # not a Kafka client
        "class Mine(aiokafka.AIOKafkaConsumer): pass",  # a subclass is made by whoever calls it
    ])
    assert direct_constructions(source, "x.py") == [
        "x.py:3 AIOKafkaConsumer(...)", "x.py:4 AIOKafkaProducer(...)", "x.py:5 App(...)"]


def settings(security: KafkaSecurity) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers="b1:9093,b2:9093", topic_prefix="", partitions=1, replication_factor=1,
                         idempotence=False, security=security)


def test_plaintext_brokers_get_no_tls_and_no_sasl():
    assert clients.connection_options(settings(KafkaSecurity())) == {
        "bootstrap_servers": "b1:9093,b2:9093", "security_protocol": "PLAINTEXT"}
    assert clients.connection_options("127.0.0.1:9092") == {
        "bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_verifies_the_brokers_and_sends_the_user(tmp_path):
    ca = TestCA(tmp_path)
    client = ca.client()
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="leadx",
                             sasl_password="pw", ssl_cafile=str(ca.cert), ssl_certfile=str(client.cert),
                             ssl_keyfile=str(client.key))
    options = clients.connection_options(settings(security))
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "b1:9093,b2:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "leadx", "sasl_plain_password": "pw"}
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "leadx test CA"),),)
    assert clients.ssl_context(security) is context  # one per process
    assert "pw" not in repr(security)  # the password stays out of logs and tracebacks


@pytest.mark.parametrize("security", [
    KafkaSecurity(),
    KafkaSecurity(protocol="SSL"),
    KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p"),
    KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="p"),
], ids=lambda s: s.protocol)
def test_the_faust_app_connects_as_the_aiokafka_clients_do(security):
    """faust turns its broker_credentials into aiokafka's arguments for every client it makes; they
    are the same as those of leadx's own clients."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    app = clients.faust_app(settings(security), "leadx-test-credentials", store="memory://")
    assert [str(url) for url in app.conf.broker] == ["kafka://b1:9093", "kafka://b2:9093"]
    given = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))
    if security.protocol == "SASL_PLAINTEXT":
        assert given.pop("ssl_context") is None  # faust names it, empty
    assert given == clients.security_options(security)


def test_a_consumer_fetches_with_the_wait_of_what_waits_on_it(consumers_made):
    async def build_and_stop() -> None:
        kafka = KafkaSettings(bootstrap_servers="b1:9093", topic_prefix="", partitions=1, replication_factor=1,
                              idempotence=False, fetch_max_wait_ms=25, background_fetch_max_wait_ms=250,
                              answer_fetch_max_wait_ms=10)

        async def handler(envelope) -> None:
            return None
        paths: list[tuple[str, clients.Waiting]] = [("pings", "sale"), ("ledger", "background"), ("dedup", "answer")]
        for group, waiting in paths:
            consumer = EventConsumer(kafka, group, {topics.AUCTION_OPENED: ev.AuctionOpened}, handler,
                                     waiting=waiting)
            await consumer.stop()  # never started: nothing to finish, its client closed
    asyncio.run(build_and_stop())
    assert {options["group_id"]: options["fetch_max_wait_ms"] for options in consumers_made} == {
        "leadx-pings": 25, "leadx-ledger": 250, "leadx-dedup": 10}


@pytest.fixture
def consumers_made(monkeypatch) -> list[dict]:
    """The options of every consumer made through clients.consumer from here on."""
    made: list[dict] = []
    make_consumer = clients.consumer

    def recorded(settings, *topic_names, **options):
        made.append(options)
        return make_consumer(settings, *topic_names, **options)
    monkeypatch.setattr(clients, "consumer", recorded)
    return made


async def make_a_services_consumer_and_the_bid_feeds(kafka: KafkaSettings) -> None:
    """An EventConsumer (group leadx-pings) and the auction's bid feed (leadx-auction-bids), made
    and closed (nothing listens at the brokers given: the feed fails to start)."""
    from services.auction.bid_feed import BidFeed

    async def handler(envelope) -> None:
        return None
    await EventConsumer(kafka, "pings", {topics.AUCTION_OPENED: ev.AuctionOpened}, handler).stop()
    feed = BidFeed(kafka, "leadx-auction-bids", "bid.placed", table=None, batch_max=1, batch_wait_s=0.01,
                   flush_interval_s=0.1)
    with pytest.raises(KafkaConnectionError):
        await feed._started()
    await feed.consumer.stop()


@pytest.mark.parametrize(("session_ms", "heartbeat_ms"), [(10_000, 2_500), (4_000, 1_000), (3_000, 1_000)])
def test_every_group_consumer_takes_its_timeouts_from_the_session_timeout(consumers_made, tmp_path, session_ms,
                                                                          heartbeat_ms):
    """The services' own consumers, the auction's bid feed and its faust app: a heartbeat every
    quarter of the session, at least a second apart; the same time for a rebalance."""
    from services.auction.worker import make_app

    # Nothing listens at 127.0.0.1:1: the bid feed's consumer is made, then fails to start at once.
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="", partitions=1, replication_factor=1,
                          idempotence=False, session_timeout_ms=session_ms)
    expected = {"session_timeout_ms": session_ms, "heartbeat_interval_ms": heartbeat_ms,
                "rebalance_timeout_ms": session_ms}
    asyncio.run(make_a_services_consumer_and_the_bid_feeds(kafka))
    given = {options["group_id"]: {name: options[name] for name in expected} for options in consumers_made}
    assert given == {"leadx-pings": expected, "leadx-auction-bids": expected}

    app = make_app(SimpleNamespace(common=SimpleNamespace(kafka=kafka), data_dir=str(tmp_path)))  # the auction's
    assert (app.conf.broker_session_timeout, app.conf.broker_heartbeat_interval, app.conf.broker_rebalance_timeout) \
        == (session_ms / 1000, heartbeat_ms / 1000, session_ms / 1000)
    assert app.conf.producer_linger == 0.002  # as EventProducer's: the worker's records share requests


def test_every_client_of_the_flow_names_itself_after_its_group(monkeypatch, tmp_path):
    """A broker's request log and its quotas know a client by its id: each consumer group's is its
    group's name, the intake's verdict reader's its own, the auction's faust clients' the auction's
    (aiokafka's and faust's defaults name only their version, the same for every service)."""
    from services.auction.worker import make_app
    from services.intake.verdicts import VerdictWaiter

    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t.", partitions=1, replication_factor=1,
                          idempotence=False)
    made: list[AIOKafkaConsumer] = []
    make_consumer = clients.consumer

    def recorded(settings, *topic_names, **options):
        made.append(make_consumer(settings, *topic_names, **options))
        return made[-1]
    monkeypatch.setattr(clients, "consumer", recorded)

    async def make_them() -> None:
        await make_a_services_consumer_and_the_bid_feeds(kafka)
        verdicts = VerdictWaiter(kafka)
        with pytest.raises(KafkaConnectionError):  # nothing listens: made, then fails to start
            await verdicts.start()
        assert verdicts._consumer is not None
        await verdicts._consumer.stop()
        # A one-off reader without a group keeps aiokafka's own id; one given an id keeps it.
        probe, named = make_consumer(kafka, group_id=None), make_consumer(kafka, group_id="g", client_id="mine")
        assert probe._client._client_id.startswith("aiokafka-") and named._client._client_id == "mine"
        await probe.stop()
        await named.stop()
    asyncio.run(make_them())
    assert [consumer._client._client_id for consumer in made] == [
        "t.leadx-pings", "leadx-auction-bids", "t.leadx-intake-verdicts"]  # the feed's group as the helper names it
    assert [consumer._group_id for consumer in made] == ["t.leadx-pings", "leadx-auction-bids", None]

    app = make_app(SimpleNamespace(common=SimpleNamespace(kafka=kafka), data_dir=str(tmp_path)))
    assert app.conf.broker_client_id == "t.leadx-auction"


def test_every_consumer_of_the_flow_waits_for_the_fetch_min_bytes_and_a_probe_does_not(monkeypatch, consumers_made):
    """Apache Kafka answers a fetch when any record arrives: at the default of 1 byte each record
    woke each consumer on its own (docs/configuration.md, KAFKA_FETCH_MIN_BYTES)."""
    import aiokafka
    import faust.transport.drivers.aiokafka as faust_driver

    from leadx.platform.kafka.offsets import read_to_end
    from services.auction import faust_consumer
    from services.intake.verdicts import VerdictWaiter

    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="", partitions=1, replication_factor=1,
                          idempotence=False, fetch_min_bytes=4096, answer_fetch_max_wait_ms=10)
    # adjust_faust_consumer changes the class faust makes for this process: put it back afterwards.
    monkeypatch.setattr(faust_driver.aiokafka, "AIOKafkaConsumer", aiokafka.AIOKafkaConsumer)
    monkeypatch.setattr(faust_consumer.AdjustedConsumer, "kafka", faust_consumer.AdjustedConsumer.kafka)

    async def build_and_stop() -> tuple[int, int, int]:
        await make_a_services_consumer_and_the_bid_feeds(kafka)
        verdicts = VerdictWaiter(kafka)
        with pytest.raises(KafkaConnectionError):  # nothing listens at 127.0.0.1:1
            await verdicts.start()
        assert verdicts._consumer is not None
        await verdicts._consumer.stop()
        with pytest.raises(KafkaConnectionError):
            await read_to_end(kafka, "lead.verified")
        faust_consumer.adjust_faust_consumer(kafka)
        worker = faust_driver.aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="leadx-auction")
        await worker.stop()
        return worker._fetch_min_bytes, worker._fetch_max_wait_ms, worker.idle_fetches.idle_wait_ms
    faust_made = asyncio.run(build_and_stop())
    given = [(options.get("group_id"), options.get("fetch_min_bytes", 1), options.get("idle_fetch_wait_ms", 0),
              options.get("fetch_max_wait_ms")) for options in consumers_made]
    idle_ms, sale_ms = kafka.fetch_idle_wait_ms, kafka.fetch_max_wait_ms
    assert given == [("leadx-pings", 4096, idle_ms, sale_ms), ("leadx-auction-bids", 4096, idle_ms, sale_ms),
                     (None, 4096, idle_ms, 10),  # the intake's verdicts: a seller's answer waits on them
                     (None, 1, 0, 10)]  # read_to_end: a one-off read
    assert faust_made == (4096, sale_ms, idle_ms)  # as the other consumers of the flow


async def made_and_stopped(**options) -> AIOKafkaConsumer:
    """A consumer made through clients.consumer (nothing listens at 127.0.0.1:1) and closed."""
    consumer = clients.consumer("127.0.0.1:1", **options)
    await consumer.stop()
    return consumer


@pytest.mark.parametrize(("min_bytes", "idle_ms", "waits_when_idle"), [(4096, 500, True), (1, 500, False),
                                                                        (4096, 0, False)])
def test_a_consumer_waits_long_when_idle_only_where_its_batch_waits_for_bytes(min_bytes, idle_ms, waits_when_idle):
    """At 1 byte every fetch already ends at the first record (and tansu, given 1 byte, would hold a
    long idle wait to its end); 0 turns the idle wait off."""
    consumer = asyncio.run(made_and_stopped(fetch_min_bytes=min_bytes, idle_fetch_wait_ms=idle_ms))
    assert isinstance(consumer, IdleAwareConsumer) and consumer.waits_when_idle is waits_when_idle


def test_the_auction_s_faust_consumer_on_tansu_s_one_byte_installs_no_idle_wait(monkeypatch):
    """faust makes its consumer from the class itself (services/auction/faust_consumer.py), not
    through clients.consumer: the class must tell a 1-byte minimum apart on its own."""
    from services.auction.faust_consumer import AdjustedConsumer

    async def made(min_bytes: int) -> bool:
        monkeypatch.setattr(AdjustedConsumer, "kafka", KafkaSettings(
            bootstrap_servers="127.0.0.1:1", topic_prefix="", partitions=1, replication_factor=1,
            idempotence=False, fetch_min_bytes=min_bytes))
        consumer = AdjustedConsumer(bootstrap_servers="127.0.0.1:1")  # its fetches from the settings alone
        await consumer.stop()
        return consumer.waits_when_idle
    assert (asyncio.run(made(1)), asyncio.run(made(4096))) == (False, True)


def test_an_idle_fetch_never_waits_less_than_the_consumer_s_batch_wait():
    """Else an idle consumer (the ledger's, at 250 ms) would fetch more often than a busy one."""
    def idle_wait_of(batch_wait_ms: int) -> int:
        consumer = asyncio.run(made_and_stopped(fetch_min_bytes=4096, fetch_max_wait_ms=batch_wait_ms,
                                                idle_fetch_wait_ms=100))
        assert isinstance(consumer, IdleAwareConsumer)
        return consumer.idle_fetches.idle_wait_ms
    assert (idle_wait_of(25), idle_wait_of(250)) == (100, 250)


A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def fetch_request(*partitions: TopicPartition) -> FetchRequest:
    """A batch fetch (25 ms, 64 KB) of these partitions from offset 0, as aiokafka's fetcher makes one."""
    return FetchRequest(25, 65_536, 50_000_000, 0, [(tp.topic, [(tp.partition, 0, 1_048_576)]) for tp in partitions])


def test_a_fetch_to_a_node_whose_last_fetch_was_empty_waits_for_the_first_byte_up_to_the_idle_wait():
    def sent(waits: IdleFetchWait, node_id: int) -> list[tuple[int, int]]:
        """The wait and minimum of the request as each protocol version sends it (v4, and v11 as
        Apache Kafka 3 and 4 take it)."""
        request = fetch_request(A0)
        waits.adjust(node_id, request, lambda: True)
        return [(built.max_wait_time, built.min_bytes) for built in (request.build(FetchRequest_v4),
                                                                     request.build(FetchRequest_v11))]

    waits = IdleFetchWait(500)
    assert sent(waits, 1) == [(25, 65_536)] * 2  # nothing known yet: a batch
    waits.note(1, brought_records=False)
    assert (sent(waits, 1), sent(waits, 2)) == ([(500, 1)] * 2, [(25, 65_536)] * 2)  # per node
    waits.note(1, brought_records=True)
    assert sent(waits, 1) == [(25, 65_536)] * 2


def test_the_fetcher_s_requests_pass_through_the_idle_wait_and_one_leaving_a_partition_out_gathers_a_batch():
    """What the wrapper relies on in aiokafka (its fetcher's per-request coroutine, by name and
    arguments; tests/integration/test_kafka_idle_fetches.py shows it on a real broker), and the
    rule that a fetch leaving out some of the node's partitions, whose records wait to be read or
    which were held back, does not hold the node for the idle wait. A partition without a leader
    is in no node's fetch."""
    assert list(inspect.signature(Fetcher._proc_fetch_request).parameters) == ["self", "assignment", "node_id",
                                                                                "request"]
    leaders = {A0: 1, A1: 1, B0: 2, TopicPartition("c", 0): None}
    answers = iter([False, False, True])  # whether each response brought records
    sent: list[tuple[int, int, int]] = []

    async def proc_fetch_request(assignment, node_id, request):
        sent.append((node_id, request._max_wait_ms, request._min_bytes))
        return next(answers)
    fetcher = SimpleNamespace(_proc_fetch_request=proc_fetch_request,
                              _client=SimpleNamespace(cluster=SimpleNamespace(leader_for_partition=leaders.get)))
    IdleFetchWait(500).install(fetcher)

    async def fetches() -> list[bool]:
        assignment = SimpleNamespace(tps=set(leaders))
        return [await fetcher._proc_fetch_request(assignment, 1, fetch_request(A0, A1)),  # empty: node 1 quiet
                await fetcher._proc_fetch_request(assignment, 1, fetch_request(A0)),  # A1 left out: a batch
                await fetcher._proc_fetch_request(assignment, 1, fetch_request(A0, A1))]  # all of node 1's: idle
    assert asyncio.run(fetches()) == [False, False, True]
    assert sent == [(1, 25, 65_536), (1, 25, 65_536), (1, 500, 1)]


def test_a_node_can_be_quiet_only_after_several_empty_fetches_in_a_row():
    """faust's worker (quiet_after=3): one empty fetch between leads under load keeps the batch."""
    waits = IdleFetchWait(500, quiet_after=3)

    def wait_sent(node_id: int = 1) -> int:
        request = fetch_request(A0)
        waits.adjust(node_id, request, lambda: True)
        return request._max_wait_ms

    seen = []
    for brought in (False, False, True, False, False, False):
        seen.append(wait_sent())
        waits.note(1, brought_records=brought)
    seen.append(wait_sent())
    assert seen == [25, 25, 25, 25, 25, 25, 500]  # quiet only once three empty fetches follow each other
    assert wait_sent(node_id=2) == 25  # per node: one never fetched from is not quiet


def test_a_partition_left_out_of_several_fetches_in_a_row_is_taken_for_one_not_read():
    """faust's table changelog once recovered: aiokafka leaves it out of every fetch. With
    left_out_after=3 a fetch without it may wait for the first byte once it has been left out of three
    fetches in a row; asked for again, it counts again. Partitions no longer assigned are forgotten.
    The services' own consumers (left_out_after None) never assume it."""
    leaders = {A0: 1, A1: 1, B0: 2}
    sent: list[int] = []

    async def proc_fetch_request(assignment, node_id, request):
        sent.append(request._max_wait_ms)
        return False  # every fetch empty: node 1 is quiet from the first

    def fetcher() -> SimpleNamespace:
        return SimpleNamespace(_proc_fetch_request=proc_fetch_request,
                               _client=SimpleNamespace(cluster=SimpleNamespace(leader_for_partition=leaders.get)))

    async def fetches(made: SimpleNamespace, requests: list[FetchRequest], assigned=None) -> None:
        assignment = SimpleNamespace(tps=set(assigned or leaders))
        for request in requests:
            await made._proc_fetch_request(assignment, 1, request)

    faust_like, services_like = fetcher(), fetcher()
    waits = IdleFetchWait(500, left_out_after=3)
    waits.install(faust_like)
    IdleFetchWait(500).install(services_like)
    asyncio.run(fetches(faust_like, [fetch_request(A0, A1)] + [fetch_request(A0)] * 4 + [fetch_request(A0, A1),
                                                                                       fetch_request(A0)]))
    # the first: nothing known; then A1 left out of 1, 2, 3 fetches: batches until it was left out of
    # three; asked for again, idle (the node's whole); left out once more: a batch again.
    assert sent == [25, 25, 25, 25, 500, 500, 25]
    assert waits.not_read(("a", 1)) is False
    sent.clear()
    asyncio.run(fetches(services_like, [fetch_request(A0, A1)] + [fetch_request(A0)] * 4))
    assert sent == [25] * 5  # the services' rule: a fetch leaving a partition out is a batch, always
    asyncio.run(fetches(faust_like, [fetch_request(A0)] * 3, assigned={A0, B0}))
    # A1, no longer assigned, is forgotten; B0 is counted by its own node's fetches only (none here).
    assert set(waits._left_out) == {("a", 0)}


def test_the_auction_s_faust_consumer_is_quiet_after_three_empty_fetches_and_skips_what_it_does_not_read():
    from services.auction.faust_consumer import AdjustedConsumer

    assert (IdleAwareConsumer.quiet_after, IdleAwareConsumer.left_out_after) == (1, None)
    assert (AdjustedConsumer.quiet_after, AdjustedConsumer.left_out_after) == (3, 3)
