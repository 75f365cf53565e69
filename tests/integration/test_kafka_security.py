"""Kafka with TLS and SCRAM against a real Apache Kafka broker (leadx.dev.kafka_broker; the embedded
tansu broker has neither TLS nor usable SCRAM): leadx's own clients (leadx.platform.kafka.clients,
through the platform's admin, producer, consumer group and offsets, and the auction's faust app),
configured from the environment as a service is, produce and consume over SASL_SSL; a wrong
password, a plaintext client and a client that does not trust the broker's CA are refused; a
listener that asks for client certificates serves a client that has one and no other."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from aiokafka.errors import KafkaConnectionError

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.kafka_broker import BrokerTls, KafkaBroker, Listener, fetch
from leadx.platform.config import KafkaSecurity, KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.consumer import EventConsumer
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.offsets import read_to_end
from leadx.platform.kafka.producer import EventProducer
from tests.certificates import Issued, TestCA

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]

USER = "leadx-test"
PASSWORD = "throwaway-test-password"  # a test value, protects nothing
WAIT_S = 30


class Secured:
    def __init__(self, broker: KafkaBroker, ca: TestCA, client: Issued) -> None:
        self.broker = broker
        self.ca = ca
        self.client = client


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[Secured]:
    """One Apache Kafka broker: SCRAM over TLS on SASL_SSL, and TLS with client certificates on MTLS."""
    fetch(quiet=True)  # cached after the first time (`make kafka-jars`)
    folder = tmp_path_factory.mktemp("kafka-tls")
    ca = TestCA(folder / "ca")
    server = ca.server("broker")
    clients_ca = TestCA(folder / "clients", name="kafka clients CA")
    with KafkaBroker([Listener("SASL_SSL", "SASL_SSL"), Listener("MTLS", "SSL", client_auth=True)],
                     tls=BrokerTls(server.cert, server.key, client_cafile=clients_ca.cert),
                     scram_users={USER: PASSWORD}, workdir=folder / "broker") as broker:
        yield Secured(broker, ca, clients_ca.client("leadx-service"))


def from_env(monkeypatch, **values: str) -> KafkaSettings:
    """KafkaSettings as a service reads them, from these variables only."""
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
                 "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "KAFKA_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADX_TOPIC_PREFIX", f"t{uuid.uuid4().hex[:8]}.")
    monkeypatch.setenv("KAFKA_PARTITIONS", "2")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return KafkaSettings.from_env()


def scram(secured: Secured, monkeypatch, mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD) -> KafkaSettings:
    return from_env(monkeypatch, KAFKA_BOOTSTRAP_SERVERS=secured.broker.bootstrap("SASL_SSL"),
                    KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM=mechanism,
                    KAFKA_SASL_USERNAME=USER, KAFKA_SASL_PASSWORD=password, KAFKA_SSL_CAFILE=str(secured.ca.cert))


async def round_trip(kafka: KafkaSettings, lead_ids: list[str]) -> list[str]:
    """Topics made, events published and consumed by a consumer group: the lead ids it handled."""
    await ensure_topics(kafka, (topics.LEAD_REJECTED,))
    producer = EventProducer(kafka, "test-security")
    await producer.start()
    seen: list[str] = []

    async def handler(envelope: Envelope) -> None:
        seen.append(envelope.message.lead_id)

    consumer = EventConsumer(kafka, "security", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
    await consumer.start()
    try:
        for lead_id in lead_ids:
            await producer.publish(topics.LEAD_REJECTED, lead_id, ev.LeadRejected(lead_id=lead_id))
        async with asyncio.timeout(WAIT_S):
            while len(seen) < len(lead_ids):
                await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
        await producer.stop()
    return seen


def test_scram_over_tls_carries_events_through_the_platform_clients(secured, monkeypatch):
    kafka = scram(secured, monkeypatch)
    assert kafka.security.protocol == "SASL_SSL" and kafka.security.sasl_mechanism == "SCRAM-SHA-512"

    async def scenario() -> None:
        assert sorted(await round_trip(kafka, ["L1", "L2", "L3"])) == ["L1", "L2", "L3"]
        records = await read_to_end(kafka, topics.name(kafka.topic_prefix, topics.LEAD_REJECTED))
        assert sorted(ev.LeadRejected.FromString(r.value).lead_id for r in records) == ["L1", "L2", "L3"]

    asyncio.run(scenario())


def test_scram_sha_256_works_too(secured, monkeypatch):
    kafka = scram(secured, monkeypatch, mechanism="SCRAM-SHA-256")
    assert asyncio.run(round_trip(kafka, ["L256"])) == ["L256"]


def test_the_auction_faust_app_publishes_over_scram_and_tls(secured, monkeypatch):
    """The faust app leadx makes (clients.faust_app, as services.auction.worker does) reaches the
    broker with the same credentials: its producer creates nothing the broker refuses and sends."""
    kafka = scram(secured, monkeypatch)
    name = topics.name(kafka.topic_prefix, topics.AUCTION_OPENED)

    async def scenario() -> None:
        await ensure_topics(kafka, (topics.AUCTION_OPENED,))
        app = clients.faust_app(kafka, f"{kafka.topic_prefix}leadx-security", store="memory://", web_enabled=False)
        topic = app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        producer = await app.maybe_start_producer()
        try:
            await (await topic.send(key=b"A1", value=b"opened over SASL_SSL"))
        finally:
            await producer.stop()
        assert [(r.key, r.value) for r in await read_to_end(kafka, name)] == [(b"A1", b"opened over SASL_SSL")]

    asyncio.run(scenario())


def refusal(kafka: KafkaSettings, caplog) -> str:
    """What aiokafka logged when the producer could not connect (it raises only 'Unable to
    bootstrap'), after checking that it could not."""
    async def attempt() -> None:
        producer = clients.producer(kafka, request_timeout_ms=10_000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(attempt())
    return "\n".join(record.getMessage() for record in caplog.records)


def test_a_wrong_password_is_refused(secured, monkeypatch, caplog):
    why = refusal(scram(secured, monkeypatch, password="not-the-password"), caplog)
    assert "Authentication failed" in why and "SCRAM-SHA-512" in why, why


def test_a_plaintext_client_and_one_that_does_not_trust_the_broker_are_refused(secured, monkeypatch, caplog):
    address = secured.broker.bootstrap("SASL_SSL")
    refusal(from_env(monkeypatch, KAFKA_BOOTSTRAP_SERVERS=address), caplog)
    # No CA file: the system's CAs, which never signed the test CA's certificate.
    untrusting = from_env(monkeypatch, KAFKA_BOOTSTRAP_SERVERS=address, KAFKA_SECURITY_PROTOCOL="SASL_SSL",
                          KAFKA_SASL_MECHANISM="SCRAM-SHA-512", KAFKA_SASL_USERNAME=USER, KAFKA_SASL_PASSWORD=PASSWORD)
    assert "CERTIFICATE_VERIFY_FAILED" in refusal(untrusting, caplog)


def test_a_listener_asking_for_client_certificates_serves_only_a_client_with_one(secured, monkeypatch, caplog):
    address = secured.broker.bootstrap("MTLS")
    with_certificate = from_env(monkeypatch, KAFKA_BOOTSTRAP_SERVERS=address, KAFKA_SECURITY_PROTOCOL="SSL",
                                KAFKA_SSL_CAFILE=str(secured.ca.cert), KAFKA_SSL_CERTFILE=str(secured.client.cert),
                                KAFKA_SSL_KEYFILE=str(secured.client.key))
    assert asyncio.run(round_trip(with_certificate, ["M1"])) == ["M1"]
    without = replace(with_certificate, security=KafkaSecurity(protocol="SSL", ssl_cafile=str(secured.ca.cert)))
    refusal(without, caplog)
