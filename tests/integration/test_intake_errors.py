"""Bad input gets a specific 4xx with a code and a message, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests import http_calls as http
from tests.integration.harness import Exchange

pytestmark = pytest.mark.integration


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "rejected"
    assert body["errors"] and body["errors"][0]["message"]
    return body["errors"][0]


def post_raw(market: Exchange, content: bytes, content_type: str = "application/json",
             key: str | None = "seller") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if key == "seller":
        headers["Authorization"] = f"Bearer {market.seller_key}"
    elif key is not None:
        headers["Authorization"] = key
    return http.post(f"{market.intake_url()}/v1/post", content=content, headers=headers, timeout=10)


def test_missing_or_invalid_api_key(market: Exchange):
    assert error_of(post_raw(market, b"{}", key=None), 401)["code"] == "AUTH_INVALID"
    assert error_of(post_raw(market, b"{}", key="Bearer lx_not-a-key"), 401)["code"] == "AUTH_INVALID"
    assert error_of(post_raw(market, b"{}", key="Basic abc"), 401)["code"] == "AUTH_INVALID"


def test_body_that_is_not_json(market: Exchange):
    assert error_of(post_raw(market, b"{not json"), 400)["code"] == "PAYLOAD_MALFORMED"
    assert error_of(post_raw(market, b"\xff\xfe"), 400)["code"] == "PAYLOAD_MALFORMED"
    assert error_of(post_raw(market, b"[1, 2]"), 400)["code"] == "PAYLOAD_MALFORMED"
    assert error_of(post_raw(market, b"[" * 100_00 + b"]" * 100_00), 400)["code"] == "PAYLOAD_MALFORMED"


def test_unsupported_content_type_and_oversized_body(market: Exchange):
    assert error_of(post_raw(market, b"a=b", "text/csv"), 415)["code"] == "UNSUPPORTED_MEDIA_TYPE"
    big = b'{"vertical": "auto_loan", "pad": "' + b"x" * 70_000 + b'"}'
    assert error_of(post_raw(market, big), 413)["code"] == "PAYLOAD_TOO_LARGE"


def test_missing_and_invalid_fields(market: Exchange):
    lead = market.new_consumer()
    missing = error_of(market.post({k: v for k, v in lead.items() if k != "email"}), 422)
    assert (missing["code"], missing["field"]) == ("FIELD_MISSING", "email")

    response = market.post(lead | {"ssn": "666-12-3456", "home_phone": "123", "zip": "00000"})
    errors = {(e["code"], e["field"]) for e in response.json()["errors"]}
    assert response.status_code == 422
    assert {("FIELD_INVALID", "ssn"), ("FIELD_INVALID", "home_phone"), ("ZIP_UNKNOWN", "zip")} <= errors

    mismatch = error_of(market.post(lead | {"zip": "10001", "state": "CA"}), 422)
    assert mismatch["code"] == "ZIP_STATE_MISMATCH"
    assert error_of(market.post(lead | {"vertical": "boats"}), 422)["field"] == "vertical"
    assert error_of(market.post(lead | {"min_price": -5}), 422)["field"] == "min_price"
    assert error_of(market.post(lead | {"min_price": "ten"}), 422)["field"] == "min_price"


def test_unknown_routes_and_methods_answer_in_the_same_shape(market: Exchange):
    assert error_of(http.get(f"{market.intake_url()}/v1/nothing"), 404)["code"] == "NOT_FOUND"
    assert error_of(http.get(f"{market.intake_url()}/v1/post"), 405)["code"] == "METHOD_NOT_ALLOWED"


def test_readiness_reflects_real_state(market: Exchange):
    assert http.get(f"{market.intake_url()}/healthz").json() == {"status": "ok"}
    assert http.get(f"{market.intake_url()}/readyz").json() == {"status": "ready"}
