"""The metrics every service shares, against real parts: the health server's /metrics over a real
socket, Redis commands and pipelines timed against a real Redis, SQL statements timed on SQLite,
the intake's lead counting and the delivery breakers' gauge."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.routing import Route

from leadx.dev.stack import free_port
from leadx.platform.db.engine import make_engine
from leadx.platform.health import HealthServer, Readiness
from leadx.platform.metrics import sql_operation
from leadx.platform.redis.client import command_name, connect
from leadx.platform.redis.pipeline import Pipeliner
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import PostResult, post_outcome
from services.delivery.metrics import BreakerStates
from services.intake.formats import Answer
from services.intake.metrics import HttpMetrics, counted_leads
from services.intake.requests import ApiError


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_health_port_serves_metrics_in_prometheus_text_beside_health_and_readiness():
    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        readiness = Readiness()
        readiness.add("broker", lambda: False)
        server = HealthServer(readiness, free_port(), host="127.0.0.1")
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                return await client.get("/metrics"), await client.get("/readyz"), await client.get("/nope")
        finally:
            await server.stop()

    metrics, ready, missing = asyncio.run(scenario())
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(metrics.text)}
    assert {"leadx_consumer_lag_records", "leadx_redis_command_duration_seconds",
            "leadx_sql_query_duration_seconds", "leadx_events_dead_lettered"} <= names
    assert ready.status_code == 503 and ready.json() == {"status": "not ready", "failing": ["broker"]}
    assert missing.status_code == 404


def test_redis_commands_and_pipelines_are_timed_by_command_name_only(redis_url):
    async def scenario() -> None:
        redis = connect(redis_url)
        key = f"metrics:{uuid.uuid4().hex}"
        try:
            await redis.set(key, "secret-value", ex=60)
            async with redis.pipeline(transaction=False) as pipe:
                await pipe.get(key).ttl(key).execute()
            await Pipeliner(redis).command("GET", key)
        finally:
            await redis.aclose()

    before = {c: sample("leadx_redis_command_duration_seconds_count", command=c) for c in ("SET", "PIPELINE")}
    asyncio.run(scenario())
    assert sample("leadx_redis_command_duration_seconds_count", command="SET") == before["SET"] + 1
    # The redis-py pipeline and the Pipeliner's batch: one observation each.
    assert sample("leadx_redis_command_duration_seconds_count", command="PIPELINE") == before["PIPELINE"] + 2
    assert command_name(b"script load") == "SCRIPT LOAD"


def test_sql_statements_are_timed_by_operation_and_a_failed_one_leaves_no_stale_start():
    engine = make_engine("sqlite://")
    before = sample("leadx_sql_query_duration_seconds_count", operation="select")
    with engine.connect() as connection:
        connection.execute(text("select 1"))
        try:
            connection.execute(text("select * from no_such_table"))
        except Exception:  # noqa: BLE001 - the failure is the point
            pass
        connection.execute(text("select 2"))
        assert connection.info.get("leadx_started") == []
    engine.dispose()
    assert sample("leadx_sql_query_duration_seconds_count", operation="select") == before + 2
    assert [sql_operation(s) for s in ("  SELECT 1", "insert into t", "PRAGMA x", "", "with a as (select 1)")] == [
        "select", "insert", "other", "other", "with"]


def test_pings_and_posts_are_counted_by_what_the_seller_was_answered():
    async def accepted(_request) -> Answer:
        return Answer("accepted", 200, "L1")

    async def duplicate(_request) -> Answer:
        return Answer("duplicate", 409, "L2", errors=[{"code": "DUPLICATE", "field": None, "message": "x"}])

    async def unauthenticated(_request) -> Answer:
        raise ApiError(401, "UNAUTHORIZED", "no key")

    async def answer_all() -> None:
        for handler in (accepted, duplicate, unauthenticated):
            try:
                await counted_leads("unit", handler)(None)  # type: ignore[arg-type]
            except ApiError:
                pass

    received = sample("leadx_leads_received_total", kind="unit")
    asyncio.run(answer_all())
    assert sample("leadx_leads_received_total", kind="unit") == received + 3
    assert sample("leadx_leads_accepted_total", kind="unit") == 1
    assert sample("leadx_leads_rejected_total", kind="unit", code="DUPLICATE") == 1
    assert sample("leadx_leads_rejected_total", kind="unit", code="UNAUTHORIZED") == 1


def test_http_requests_are_labelled_by_route_template_never_by_path():
    async def show(_request):
        from starlette.responses import PlainTextResponse
        return PlainTextResponse("ok")

    app = HttpMetrics(Starlette(routes=[Route("/v1/things/{thing_id}", show, methods=["GET"])]))

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://unit") as client:
            assert (await client.get("/v1/things/L-123")).status_code == 200
            assert (await client.get("/elsewhere/L-456")).status_code == 404

    template = "/v1/things/{thing_id}"
    before = sample("leadx_http_requests_total", route=template, method="GET", status="200")
    asyncio.run(scenario())
    assert sample("leadx_http_requests_total", route=template, method="GET", status="200") == before + 1
    assert sample("leadx_http_requests_total", route="unmatched", method="GET", status="404") >= 1
    exposed = "\n".join(str(m.samples) for m in REGISTRY.collect())
    assert "L-123" not in exposed and "L-456" not in exposed


def test_a_post_outcome_says_whether_the_buyer_answered_and_how():
    assert post_outcome(PostResult(True, "ok", 10, status=200)) == "accepted"
    assert post_outcome(PostResult(False, "no", 10, status=200)) == "rejected"
    assert post_outcome(PostResult(False, "down", 10, status=503, failed=True)) == "error"
    assert post_outcome(PostResult(False, "timeout", 10, failed=True)) == "no_answer"
    assert post_outcome(PostResult(False, "refused", 10, failed=True, reached=False)) == "not_reached"


def test_the_breaker_gauge_is_one_while_a_buyers_circuit_is_open():
    now = [0.0]
    breaker = CircuitBreaker(failures=2, cooldown_s=30, clock=lambda: now[0])
    states = BreakerStates()
    states.watch(breaker, "post")
    breaker.record("b_ok", ok=True)
    breaker.record("b_down", ok=False)
    breaker.record("b_down", ok=False)

    def gauge() -> dict[str, float]:
        [family] = states.collect()
        return {s.labels["buyer"]: s.value for s in family.samples if s.labels["call"] == "post"}

    assert gauge() == {"b_ok": 0.0, "b_down": 1.0}
    now[0] = 31.0
    assert gauge() == {"b_ok": 0.0, "b_down": 0.0}
