"""What the services log never holds a consumer's data: a failed SQL statement's error (logged
wherever it is caught) shows the statement but not its values, on SQLite and on PostgreSQL; a
post's log line never repeats a buyer's reply. tests/integration/test_post_adaptation.py reads
every log line of a running exchange for a sold lead's values."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.exc import IntegrityError

from leadx.platform.db.models import PostAttempt
from leadx.platform.logs import JsonFormatter
from services.delivery.attempts import log_fields
from services.delivery.buyer_http import PostResult

CONSUMER = ("Zebulon", "Quillfeather", "487623915", "zebulon.quillfeather.8817@example.com")
BODY = json.dumps({"first_name": CONSUMER[0], "last_name": CONSUMER[1], "ssn": CONSUMER[2], "email": CONSUMER[3]})


def attempt() -> PostAttempt:
    return PostAttempt(id=7, auction_id="LEAD000001", lead_id="LEAD000001", buyer_id="b_1", sent_at_ms=1,
                       content_type="application/json", request_body=BODY, connects=1, status=200,
                       response_body=f"REJECTED: we have {CONSUMER[0]} already", latency_ms=3, outcome="rejected",
                       detail="rejected by buyer")


def test_a_failing_statements_error_shows_the_statement_but_no_values(sessions):
    with sessions.begin() as session:
        session.add(attempt())
    with pytest.raises(IntegrityError) as failed, sessions.begin() as session:
        session.add(attempt())  # the same id again

    text = str(failed.value)
    assert "INSERT INTO post_attempts" in text and "[SQL parameters hidden due to hide_parameters=True]" in text
    # As delivery logs it (log.exception): the traceback is the entry's `exc`.
    logged = JsonFormatter("delivery").format(logging.LogRecord(
        "services.delivery.attempts", logging.ERROR, __file__, 1, "post attempt not recorded", None,
        (type(failed.value), failed.value, failed.tb)))
    assert "hide_parameters=True" in json.loads(logged)["exc"]
    for value in CONSUMER:
        assert value not in text and value not in logged


def test_a_posts_log_line_never_repeats_the_buyers_reply():
    rejected = PostResult(False, f"rejected by buyer: we already have {CONSUMER[0]} {CONSUMER[1]}, SSN {CONSUMER[2]}",
                          12, status=200, response=b"REJECTED: ...")
    assert log_fields(rejected) == {"outcome": "rejected", "status": 200, "latency_ms": 12}
    accepted = PostResult(True, f"accepted, confirmation {CONSUMER[3]}", 9, status=201)
    assert log_fields(accepted) == {"outcome": "accepted", "status": 201, "latency_ms": 9}
    # Without an answer the detail is delivery's own, and says why.
    silent = PostResult(False, "no answer (may have reached the buyer): TimeoutError", 10_000, failed=True)
    assert log_fields(silent) == {"outcome": "no_answer", "status": None, "latency_ms": 10_000,
                                  "detail": "no answer (may have reached the buyer): TimeoutError"}

