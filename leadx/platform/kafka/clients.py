"""The one place Kafka clients are made: aiokafka's producer, consumer and admin client, and the
auction's faust app. Each takes the brokers' address and the connection's security (TLS, SASL) from
the same KafkaSettings, so no client of the exchange can be left talking plaintext to a broker
that wants TLS and SCRAM. tests/unit/test_kafka_clients.py fails when a client is made anywhere
else in leadx or services.

Where a bare bootstrap string is given instead of settings (tests, benches, the local stack), the
broker is taken to be PLAINTEXT.
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from leadx.platform.config import KafkaSecurity, KafkaSettings
from leadx.platform.kafka.idle_fetches import IdleAwareConsumer

if TYPE_CHECKING:  # faust is imported by the auction alone
    import faust

Brokers = KafkaSettings | str


@functools.cache
def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """The TLS context of a connection to the brokers: their certificates are verified against
    the CA file (the system's CAs without one), host name included; the client certificate is
    presented when one is configured. One per process and security settings."""
    context = ssl.create_default_context(cafile=security.ssl_cafile or None)
    if security.ssl_certfile:
        context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
    return context


def security_options(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka's keyword arguments for this security: the protocol, the TLS context, the SASL
    mechanism and user."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = ssl_context(security)
    if security.sasl:
        options.update(sasl_mechanism=security.sasl_mechanism, sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password)
    return options


def connection_options(brokers: Brokers) -> dict[str, Any]:
    """`bootstrap_servers` and the security options, for any aiokafka client."""
    if isinstance(brokers, str):
        return {"bootstrap_servers": brokers, "security_protocol": "PLAINTEXT"}
    return {"bootstrap_servers": brokers.bootstrap_servers, **security_options(brokers.security)}


def producer(brokers: Brokers, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer (made inside the running event loop, which aiokafka binds it to)."""
    return AIOKafkaProducer(**connection_options(brokers), **options)


def consumer(brokers: Brokers, *topics: str, idle_fetch_wait_ms: int = 0, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer; with `idle_fetch_wait_ms` and a fetch minimum above 1 byte, its fetch
    after an empty one waits that long for the first byte (leadx.platform.kafka.idle_fetches). A
    group's consumer is named (`client_id`) after its group unless told: a broker's request log and
    its quotas know a client by that name, which aiokafka's default gives every client alike."""
    if options.get("group_id") and "client_id" not in options:
        options["client_id"] = options["group_id"]
    return IdleAwareConsumer(*topics, idle_fetch_wait_ms=idle_fetch_wait_ms, **connection_options(brokers),
                             **options)


# What waits on a consumer's records, which sets how long its fetches wait: a seller's HTTP answer
# (KAFKA_ANSWER_FETCH_MAX_WAIT_MS), a sale (KAFKA_FETCH_MAX_WAIT_MS), or nobody
# (KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS: the ledger, list awards).
Waiting = Literal["answer", "sale", "background"]


def flow_fetches(kafka: KafkaSettings, waiting: Waiting = "sale") -> dict[str, int]:
    """How a consumer of the flow fetches: waiting for the fetch minimum up to the wait of what
    waits on it, and after an empty fetch for the first byte up to the idle wait. One-off reads
    (to the end of a topic, an offset probe) keep aiokafka's fetch minimum of 1 byte."""
    answer = kafka.fetch_max_wait_ms if kafka.answer_fetch_max_wait_ms is None else kafka.answer_fetch_max_wait_ms
    waits = {"answer": answer, "sale": kafka.fetch_max_wait_ms, "background": kafka.background_fetch_max_wait_ms}
    return {"fetch_max_wait_ms": waits[waiting], "fetch_min_bytes": kafka.fetch_min_bytes,
            "idle_fetch_wait_ms": kafka.fetch_idle_wait_ms}


def producer_linger_ms(kafka: KafkaSettings, waiting: Waiting = "sale") -> int:
    """How long a producer of the flow holds a record for others to share its request: its own
    setting where someone's HTTP answer waits on it (KAFKA_ANSWER_PRODUCER_LINGER_MS)."""
    return kafka.answer_producer_linger_ms if waiting == "answer" else kafka.producer_linger_ms


def group_timeouts(kafka: KafkaSettings) -> dict[str, int]:
    """aiokafka's group timeouts from the session timeout (KAFKA_SESSION_TIMEOUT_MS): a heartbeat
    every quarter of it, at least once a second, and the same time for a rebalance."""
    session_ms = kafka.session_timeout_ms
    return {"session_timeout_ms": session_ms, "heartbeat_interval_ms": max(1000, session_ms // 4),
            "rebalance_timeout_ms": session_ms}


def faust_group_timeouts(kafka: KafkaSettings) -> dict[str, float]:
    """The same timeouts as faust's app settings (in seconds)."""
    timeouts = group_timeouts(kafka)
    return {"broker_session_timeout": timeouts["session_timeout_ms"] / 1000,
            "broker_heartbeat_interval": timeouts["heartbeat_interval_ms"] / 1000,
            "broker_rebalance_timeout": timeouts["rebalance_timeout_ms"] / 1000}


def admin(brokers: Brokers, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(brokers), **options)


def faust_credentials(security: KafkaSecurity) -> Any:
    """faust's `broker_credentials` for this security (None for PLAINTEXT). faust gives them to
    every client it makes: its consumers, its producer and its topic creation."""
    import faust

    if security.sasl:
        return faust.SASLCredentials(username=security.sasl_username, password=security.sasl_password,
                                     mechanism=security.sasl_mechanism,
                                     ssl_context=ssl_context(security) if security.tls else None)
    if security.tls:
        return faust.SSLCredentials(ssl_context(security))
    return None


def faust_app(kafka: KafkaSettings, app_id: str, **options: Any) -> faust.App:
    """A faust app on these brokers, with their security."""
    import faust

    return faust.App(app_id, broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
                     broker_credentials=faust_credentials(kafka.security), **options)
