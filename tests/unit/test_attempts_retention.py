"""The dispute record of posts to buyers keeps their bodies for POST_ATTEMPT_RETENTION_DAYS only:
`leadx delivery prune-attempts` empties the bodies of older attempts and marks them, and keeps the
attempts themselves (who, when, status, latency, outcome), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from leadx.auction.selection.market import BuyerAccount
from leadx.cli.main import main
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.attempts_retention import drop_old_bodies, retention_days_from_env
from leadx.delivery.post_adaptation import PreparedPost
from leadx.dev.tools import check_k8s
from leadx.platform.config import ConfigError
from leadx.platform.db.engine import make_engine, statement_engine
from leadx.platform.db.models import PostAttempt
from leadx.platform.utc_days import DAY_MS
from services.delivery.attempts import AttemptLog
from services.delivery.buyer_http import PostResult

SENT = '{"first_name": "Zebulon", "ssn": "487623915"}'
ANSWERED = '{"accepted": false, "reason": "we have Zebulon already"}'


def attempt(lead_id: str, sent_at_ms: int) -> PostAttempt:
    return PostAttempt(auction_id=lead_id, lead_id=lead_id, buyer_id="b_1", sent_at_ms=sent_at_ms,
                       content_type="application/json", request_body=SENT, connects=1, status=200,
                       response_body=ANSWERED, latency_ms=42, outcome="rejected", detail="rejected by buyer")


def attempts(sessions) -> dict[str, PostAttempt]:
    with sessions() as session:
        return {row.lead_id: row for row in session.scalars(select(PostAttempt))}


def test_bodies_older_than_the_retention_period_are_dropped_and_the_attempts_kept(sessions):
    now = 1_800_000_000_000
    with sessions.begin() as session:
        for lead_id, age_days in (("OLD0000001", 400), ("OLD0000002", 91), ("OLD0000003", 90.01),
                                  ("NEW0000001", 89.99), ("NEW0000002", 0)):
            session.add(attempt(lead_id, now - int(age_days * DAY_MS)))

    pruned = drop_old_bodies(sessions, 90, now, batch=2)  # in two transactions and an empty third

    assert (pruned.attempts, pruned.before_ms) == (3, now - 90 * DAY_MS)
    rows = attempts(sessions)
    assert len(rows) == 5  # every attempt stays
    for lead_id in ("OLD0000001", "OLD0000002", "OLD0000003"):
        row = rows[lead_id]
        assert (row.request_body, row.response_body, row.bodies_dropped_at_ms) == ("", "", now)
        assert (row.buyer_id, row.status, row.latency_ms, row.outcome, row.connects) == ("b_1", 200, 42, "rejected", 1)
        assert row.detail == "rejected by buyer" and row.sent_at_ms < now - 90 * DAY_MS
    for lead_id in ("NEW0000001", "NEW0000002"):
        row = rows[lead_id]
        assert (row.request_body, row.response_body, row.bodies_dropped_at_ms) == (SENT, ANSWERED, None)

    again = drop_old_bodies(sessions, 90, now + 1000)
    assert again.attempts == 0  # nothing is dropped twice, and the first mark stays
    assert attempts(sessions)["OLD0000001"].bodies_dropped_at_ms == now


def test_an_attempt_delivery_records_keeps_its_bodies_for_exactly_the_retention_period(sessions):
    closed = ev.AuctionClosed(auction_id="LIVE000001", lead=ev.Lead(lead_id="LIVE000001"))
    buyer = BuyerAccount("b_2", "Acme", "http://ping", "http://post")
    result = PostResult(True, "accepted", 5, status=200, response=b'{"accepted": true}')
    async def post() -> None:
        log = AttemptLog(sessions.kw["bind"])
        await log.finish(await log.begin(closed, buyer, PreparedPost("application/json", SENT.encode(), None)), result)

    asyncio.run(post())
    [recorded] = attempts(sessions).values()
    assert recorded.bodies_dropped_at_ms is None and recorded.request_body == SENT

    assert drop_old_bodies(sessions, 30, recorded.sent_at_ms + 30 * DAY_MS).attempts == 0  # 30 days old: kept
    assert drop_old_bodies(sessions, 30, recorded.sent_at_ms + 30 * DAY_MS + 1).attempts == 1
    [pruned] = attempts(sessions).values()
    assert (pruned.request_body, pruned.response_body, pruned.status, pruned.outcome) == ("", "", 200, "accepted")


def test_the_prune_reads_the_partial_index_of_attempts_with_bodies(sessions, database_url):
    query = ("select id from post_attempts where bodies_dropped_at_ms is null and sent_at_ms < 5 "
             "order by sent_at_ms limit 1000")
    with sessions.begin() as session:
        if database_url.startswith("sqlite"):
            plan = " ".join(str(row[-1]) for row in session.execute(text(f"explain query plan {query}")))
        else:
            session.execute(text("set local enable_seqscan = off"))  # a table this small would be read whole
            plan = " ".join(row[0] for row in session.execute(text(f"explain {query}")))
    assert "ix_post_attempts_bodies_kept" in plan


def test_leadx_delivery_prune_attempts_as_the_cronjob_runs_it(sessions, database_url, monkeypatch, capsys):
    now = int(time.time() * 1000)
    with sessions.begin() as session:
        session.add(attempt("OLD0000001", now - 31 * DAY_MS))
        session.add(attempt("NEW0000001", now - 29 * DAY_MS))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("POST_ATTEMPT_RETENTION_DAYS", "30")
    assert main(["delivery", "prune-attempts"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dropped the bodies of 1 post attempts sent before 20")
    assert out.endswith(" (bodies are kept 30 days, POST_ATTEMPT_RETENTION_DAYS)\n")
    rows = attempts(sessions)
    assert rows["OLD0000001"].request_body == "" and rows["NEW0000001"].request_body == SENT
    assert main(["delivery", "prune-attempts"]) == 0
    assert capsys.readouterr().out.startswith("dropped the bodies of 0 post attempts")


@pytest.mark.parametrize("value, message", [
    ("0", "POST_ATTEMPT_RETENTION_DAYS must be at least 1 (days), got 0"),
    ("-5", "POST_ATTEMPT_RETENTION_DAYS must be at least 1 (days), got -5"),
    ("ninety", "POST_ATTEMPT_RETENTION_DAYS must be an integer, got 'ninety'"),
])
def test_a_retention_that_is_not_a_whole_number_of_days_is_refused(value, message, monkeypatch, capsys):
    monkeypatch.setenv("POST_ATTEMPT_RETENTION_DAYS", value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        retention_days_from_env()
    assert main(["delivery", "prune-attempts"]) == 2
    assert capsys.readouterr().err == f"leadx: environment variable {message}\n"


def test_the_retention_is_ninety_days_unless_set(monkeypatch):
    monkeypatch.delenv("POST_ATTEMPT_RETENTION_DAYS", raising=False)
    assert retention_days_from_env() == 90


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_deployment_runs_the_prune_daily_as_a_cronjob(overlay):
    docs = check_k8s.render(check_k8s.K8S / "overlays" / overlay)
    [cronjob] = [doc for doc in docs if doc["kind"] == "CronJob"]
    assert cronjob["metadata"]["name"] == "leadx-prune-attempts" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cronjob["spec"]["schedule"].split()) == 5 and cronjob["spec"]["schedule"].split()[2:] == ["*"] * 3
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [job] = pod["containers"]
    assert job["command"] == ["leadx", "delivery", "prune-attempts"]
    [delivery] = [doc["spec"]["template"]["spec"]["containers"][0] for doc in docs
                  if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "leadx-delivery"]
    assert job["env"] == [variable for variable in delivery["env"] if variable["name"] == "DATABASE_URL"]
    [config_ref] = job["envFrom"]
    [config] = [doc for doc in docs if doc["kind"] == "ConfigMap"
                and doc["metadata"]["name"] == config_ref["configMapRef"]["name"]]
    assert config["data"]["POST_ATTEMPT_RETENTION_DAYS"] == "90"
    # The services' policies (leadx.dev.tools.check_k8s checks Deployments): non-root, read-only, bounded.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert job["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(job["resources"]["limits"]) & set(job["resources"]["requests"])
    deployed = {doc["spec"]["template"]["spec"]["containers"][0]["image"]
                for doc in docs if doc["kind"] == "Deployment"}
    assert deployed == {job["image"]}  # the services' own image, so its schema revision is theirs


# The service's statement engine (each statement its own transaction), and a transactional one.
@pytest.mark.parametrize("kind", ["statements", "transactions"])
def test_a_post_is_written_before_it_is_sent_and_a_repeat_is_the_next_attempt(sessions, kind):
    closed = ev.AuctionClosed(auction_id="LIVE000002", lead=ev.Lead(lead_id="LIVE000002"))
    buyer = BuyerAccount("b_2", "Acme", "http://ping", "http://post")
    prepared = PreparedPost("application/json", SENT.encode(), None)
    engine = sessions.kw["bind"]
    log = AttemptLog(statement_engine(engine) if kind == "statements" else engine)

    async def crashed_then_repeated() -> None:
        await log.begin(closed, buyer, prepared)  # delivery was killed while the buyer had it
        [first] = attempts(sessions).values()
        assert (first.attempt, first.outcome, first.status, first.request_body) == (1, "sending", None, SENT)
        second = await log.begin(closed, buyer, prepared)  # the redelivered auction.closed posts again
        await log.finish(second, PostResult(True, "accepted", 5, status=200, response=b'{"accepted": true}'))

    asyncio.run(crashed_then_repeated())
    with sessions() as session:
        rows = session.scalars(select(PostAttempt).where(PostAttempt.auction_id == "LIVE000002")
                               .order_by(PostAttempt.attempt)).all()
        assert [(r.attempt, r.outcome, r.status) for r in rows] == [(1, "sending", None), (2, "accepted", 200)]
    assert [(post.buyer_id, post.outcome, post.status) for post in asyncio.run(log.posts_of("LIVE000002"))] == \
        [("b_2", "sending", None), ("b_2", "accepted", 200)]


def test_a_post_that_cannot_be_written_is_not_sent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'none.db'}")  # no schema: every insert fails
    closed = ev.AuctionClosed(auction_id="LIVE000003", lead=ev.Lead(lead_id="LIVE000003"))
    with pytest.raises(OperationalError):
        asyncio.run(AttemptLog(engine).begin(
            closed, BuyerAccount("b_2", "Acme", "http://ping", "http://post"),
            PreparedPost("application/json", SENT.encode(), None)))
    engine.dispose()
