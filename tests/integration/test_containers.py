"""The same journey against containerised Kafka (KRaft), Redis and PostgreSQL, where a Docker
engine exists (developer laptops, most CI). This machine has none, so the default suite runs
the real local processes instead; this module says so and skips."""

from __future__ import annotations

import pytest

from tests.conftest import fetch_min_bytes_for, poll_until, session_timeout_for
from tests.integration.harness import start_exchange

pytestmark = pytest.mark.integration


def docker_engine_reason() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return None
    except Exception as exc:  # no socket, no daemon, no permission: all mean "no engine"
        return f"no Docker engine reachable ({type(exc).__name__}); the local-process path covers this"


@pytest.fixture(scope="module")
def containers():
    reason = docker_engine_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis, \
            PostgresContainer("postgres:16", driver="psycopg") as postgres:
        redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        yield kafka.get_bootstrap_server(), redis_url, postgres.get_connection_url()


def test_a_lead_is_sold_through_containerised_infrastructure(containers, tmp_path):
    bootstrap, redis_url, database_url = containers
    exchange = start_exchange(tmp_path, bootstrap, redis_url, "tc.", ["alpha"],
                              ["intake", "dedup", "scoring", "auction", "delivery", "ledger"],
                              database_url=database_url, KAFKA_IDEMPOTENCE="true",
                              KAFKA_SESSION_TIMEOUT_MS=str(session_timeout_for("kafka")),
                              KAFKA_FETCH_MIN_BYTES=str(fetch_min_bytes_for("kafka")))
    try:
        exchange.buyers.buyers["alpha"].bid = 1200
        response = exchange.post(exchange.new_consumer())
        assert response.status_code == 200, response.text
        lead_id = response.json()["lead_id"]
        sale = poll_until(lambda: exchange.sale_for(lead_id), timeout_s=60, message="the sale")
        assert sale.buyer_id == exchange.buyer_ids["alpha"] and sale.price_cents == 1200
    finally:
        exchange.stop()
