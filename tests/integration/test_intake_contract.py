"""The sellers' integration contract through a running intake: the three formats, XML answers,
PING then POST with its token, bait-and-switch, idempotent retries (and a key reused for another
lead refused), revoked keys, the OpenAPI document against the served routes, and random bodies that
never get a 5xx."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadx.accounts import accounts
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.consumers import ping_subset
from leadx.dev.demo.exchange import encode
from leadx.platform.db.engine import make_engine, session_factory
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic, start_exchange

pytestmark = pytest.mark.integration

CONTENT_TYPES = ["application/json", "application/xml", "text/xml", "application/x-www-form-urlencoded"]


def as_xml(fields: dict, root: str = "lead") -> bytes:
    return encode(fields, "application/xml", root)


RETURN_PATH = "/v1/leads/NOTBOUGHT1/return"  # a buyer's request: the body is read before the lead is looked up


def send(market: Exchange, path: str, content: bytes, content_type: str, **headers: str) -> httpx.Response:
    key = market.buyer_keys["alpha"] if path == RETURN_PATH else market.seller_key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type, **headers}
    return http.post(f"{market.intake_url()}{path}", content=content, headers=headers, timeout=15)


def xml_answer(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"].startswith("application/xml"), response.headers
    return ET.fromstring(response.content)


def test_an_xml_lead_is_accepted_and_answered_in_xml(market: Exchange):
    response = send(market, "/v1/post", as_xml(market.new_consumer() | {"min_price": 500}), "text/xml")
    assert response.status_code == 200, response.text
    root = xml_answer(response)
    assert root.findtext("status") == "accepted" and len(root.findtext("lead_id")) == 10
    assert root.find("errors") is not None and not list(root.find("errors"))


def test_a_url_encoded_lead_is_answered_in_xml_or_in_json_when_accept_asks(market: Exchange):
    body = urllib.parse.urlencode(market.new_consumer()).encode()
    root = xml_answer(send(market, "/v1/post", body, "application/x-www-form-urlencoded"))
    assert root.findtext("status") == "accepted"
    again = urllib.parse.urlencode(market.new_consumer()).encode()
    response = send(market, "/v1/post", again, "application/x-www-form-urlencoded", Accept="application/json")
    assert response.json()["status"] == "accepted"


def test_xml_rejections_carry_every_error_with_code_and_field(market: Exchange):
    lead = market.new_consumer() | {"zip": "10001", "state": "CA", "ssn": "900-12-3456"}
    root = xml_answer(send(market, "/v1/post", as_xml(lead), "application/xml"))
    assert root.findtext("status") == "rejected"
    errors = {(e.get("code"), e.get("field")) for e in root.iter("error")}
    assert errors == {("ZIP_STATE_MISMATCH", "state"), ("FIELD_INVALID", "ssn")}
    assert all(e.text for e in root.iter("error"))


def test_a_phone_from_another_state_is_accepted_with_a_warning(market: Exchange):
    lead = market.new_consumer() | {"zip": "10001", "state": "NY", "city": "New York", "home_phone": "4152345678"}
    body = market.post(lead).json()
    assert body["status"] == "accepted"
    assert [(w["code"], w["field"]) for w in body["warnings"]] == [("PHONE_AREA_MISMATCH", "home_phone")]


def test_ping_then_post_with_its_token(market: Exchange):
    market.buyers.buyers["alpha"].bid = 1500
    lead = market.new_consumer()
    pinged = send(market, "/v1/ping", json.dumps(ping_subset(lead)).encode(), "application/json")
    assert pinged.status_code == 200, pinged.text
    body = pinged.json()
    assert body["status"] == "accepted" and body["wanted"] is True and body["lead_id"] is None
    posted = market.post(lead | {"ping_token": body["ping_token"]})
    assert posted.status_code == 200 and posted.json()["status"] == "accepted"
    lead_id = posted.json()["lead_id"]
    sale = poll_until(lambda: market.sale_for(lead_id), message="the pinged lead sold")
    assert sale.buyer_id == market.buyer_ids["alpha"]


def test_a_ping_in_xml_is_answered_in_xml_with_a_token(market: Exchange):
    lead = market.new_consumer()
    root = xml_answer(send(market, "/v1/ping", as_xml(ping_subset(lead), root="ping"), "application/xml"))
    assert root.findtext("status") == "accepted" and root.findtext("ping_token")
    assert root.findtext("wanted") == "true"


def test_a_post_that_contradicts_its_ping_is_rejected(market: Exchange):
    lead = market.new_consumer()
    token = send(market, "/v1/ping", json.dumps(ping_subset(lead)).encode(), "application/json").json()["ping_token"]
    switched = lead | {"gross_monthly_income": lead["gross_monthly_income"] + 100_000,
                       "email": "someone.else@example.com", "ping_token": token}
    response = market.post(switched)
    assert response.status_code == 422
    assert {(e["code"], e["field"]) for e in response.json()["errors"]} == {
        ("PING_MISMATCH", "gross_monthly_income"), ("PING_MISMATCH", "email")}
    forged = market.post(lead | {"ping_token": token[:-3] + "abc"})
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "ping_token"
    other_seller = market.post(lead | {"ping_token": token}, api_key=market.other_seller_key)
    assert "another seller" in other_seller.json()["errors"][0]["message"]


def test_a_ping_checks_only_the_minimal_subset(market: Exchange):
    lead = market.new_consumer()
    too_much = send(market, "/v1/ping", json.dumps(ping_subset(lead) | {"email": lead["email"]}).encode(),
                    "application/json")
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "email"
    bad = send(market, "/v1/ping", json.dumps({"vertical": "auto_loan", "zip": "99999", "ssn": "000-00-0000",
                                               "email_sha256": "nope"}).encode(), "application/json")
    assert bad.status_code == 422
    assert {(e["code"], e["field"]) for e in bad.json()["errors"]} == {
        ("ZIP_UNKNOWN", "zip"), ("FIELD_INVALID", "ssn"), ("FIELD_INVALID", "email_sha256")}


def test_a_ping_for_a_consumer_every_buyer_has_is_not_wanted(market: Exchange):
    for behaviour in market.buyers.buyers.values():
        behaviour.bid = 1000
    lead = market.new_consumer()
    sold_to = set()
    for _ in market.buyers.buyers:  # platform dedup is off here: sell the consumer to each buyer in turn
        lead_id = market.post(lead).json()["lead_id"]
        sold_to.add(poll_until(lambda lead_id=lead_id: market.sale_for(lead_id), message="sale").buyer_id)
    assert sold_to == set(market.buyer_ids.values())
    answer = send(market, "/v1/ping", json.dumps(ping_subset(lead)).encode(), "application/json").json()
    assert answer["status"] == "accepted" and answer["wanted"] is False


def test_a_retried_post_gets_the_first_answer_and_makes_no_second_lead(market: Exchange):
    market.buyers.buyers["alpha"].bid = 1500
    lead = market.new_consumer()
    first = market.post(lead, headers={"Idempotency-Key": "order-77"})
    retry = market.post(lead, headers={"Idempotency-Key": "order-77"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    by_reference = [market.post(lead | {"reference": "ref-9"}).json() for _ in range(2)]
    assert by_reference[0] == by_reference[1]
    assert by_reference[0]["lead_id"] != first.json()["lead_id"]
    # Four POSTs of this consumer, two leads: one per key.
    submitted = read_topic(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.LEAD_SUBMITTED),
                           ev.LeadSubmitted)
    leads = {event.lead.lead_id for _, event in submitted if market.fields_of(event.lead)["email"] == lead["email"]}
    assert leads == {first.json()["lead_id"], by_reference[0]["lead_id"]}


def test_a_key_used_again_for_a_different_lead_is_refused_and_that_lead_never_submitted(market: Exchange):
    def by_header(lead: dict, key: str) -> httpx.Response:
        return market.post(lead, headers={"Idempotency-Key": key})

    # The reference is the key when no header is sent; the second consumer goes to the other replica.
    first_consumer, second_consumer = market.new_consumer(), market.new_consumer()
    first = market.post(first_consumer | {"reference": "R1"})
    assert first.status_code == 200, first.text
    first_id = first.json()["lead_id"]
    reused = market.post(second_consumer | {"reference": "R1"}, instance="intake-2")
    assert reused.status_code == 422, reused.text
    assert reused.json()["status"] == "rejected" and reused.json()["lead_id"] is None
    [error] = reused.json()["errors"]
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED" and error["field"] == "reference"
    assert "reference 'R1'" in error["message"] and f"lead {first_id}" in error["message"]
    assert market.post(first_consumer | {"reference": "R1"}).json() == first.json()  # a true retry still is one

    # By header: the same lead in XML, its fields in another order and sent to the other replica, is
    # a retry of the JSON one; a different consumer, or the same at another price, is refused.
    lead = market.new_consumer() | {"min_price": 500}
    in_json = by_header(lead, "order-88")
    assert in_json.status_code == 200, in_json.text
    headers = {"Authorization": f"Bearer {market.seller_key}", "Content-Type": "application/xml",
               "Accept": "application/json", "Idempotency-Key": "order-88"}
    in_xml = http.post(f"{market.intake_url('intake-2')}/v1/post", content=as_xml(dict(reversed(lead.items()))),
                       headers=headers, timeout=15)
    assert in_xml.status_code == 200 and in_xml.json() == in_json.json()
    other_consumer = market.new_consumer() | {"min_price": 500}
    for different in (other_consumer, lead | {"min_price": 600}):
        refused = by_header(different, "order-88")
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["code"] == "IDEMPOTENCY_KEY_REUSED" and error["field"] is None
        assert f"Idempotency-Key 'order-88' was first used for lead {in_json.json()['lead_id']}" in error["message"]

    # A PING is not keyed: the same key twice on PINGs takes nothing from the POST that uses it next.
    pinged = market.new_consumer()
    for _ in range(2):
        ping = send(market, "/v1/ping", json.dumps(ping_subset(pinged)).encode(), "application/json",
                    **{"Idempotency-Key": "order-99"})
        assert ping.status_code == 200 and ping.json()["ping_token"], ping.text
    posted = by_header(pinged | {"ping_token": ping.json()["ping_token"]}, "order-99")
    assert posted.status_code == 200 and posted.json()["status"] == "accepted", posted.text

    submitted = read_topic(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.LEAD_SUBMITTED),
                           ev.LeadSubmitted)
    leads_of: dict[str, set[str]] = {}
    for _, event in submitted:
        leads_of.setdefault(market.fields_of(event.lead)["email"], set()).add(event.lead.lead_id)
    assert leads_of.get(first_consumer["email"]) == {first_id}
    assert leads_of.get(lead["email"]) == {in_json.json()["lead_id"]}  # one lead for JSON and XML
    assert second_consumer["email"] not in leads_of and other_consumer["email"] not in leads_of  # never submitted
    assert leads_of.get(pinged["email"]) == {posted.json()["lead_id"]}


def test_a_revoked_key_is_refused(market: Exchange):
    engine = make_engine(market.stack.database_url)
    with session_factory(engine)() as session:
        created = accounts.create_seller(session, "short-lived seller")
        accounts.revoke_seller_key(session, created.id)
    engine.dispose()
    response = market.post(market.new_consumer(), api_key=created.api_key)
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == "AUTH_INVALID"


def test_the_openapi_document_matches_the_served_routes(market: Exchange):
    document = http.get(f"{market.intake_url()}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        url = market.intake_url() + re.sub(r"\{\w+\}", "ABCDEFGHIJ", path)  # an id of lead (and list) form
        for method in item:
            response = http.request(method, url, headers={"Authorization": f"Bearer {market.seller_key}"},
                                    timeout=10)
            assert response.status_code not in (404, 405) or (
                response.json()["errors"][0]["code"] in ("LEAD_NOT_FOUND", "ACCOUNT_NOT_FOUND")), (
                method, path, response.text)
        # A method the document does not list is not served either.
        unlisted = next(m for m in ("delete", "patch", "put", "post") if m not in item)
        assert http.request(unlisted, url, timeout=10).status_code == 405


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(content_type=st.sampled_from(CONTENT_TYPES), path=st.sampled_from(["/v1/post", "/v1/ping", RETURN_PATH]),
       body=st.one_of(
           st.binary(max_size=3000),
           st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=40), st.integers(), st.none(),
                                                          st.floats(allow_nan=True), st.booleans()),
                           max_size=20).map(lambda d: json.dumps(d).encode()),
           st.dictionaries(st.from_regex(r"[a-z_]{1,15}", fullmatch=True), st.text(max_size=30), max_size=20)
           .map(lambda d: as_xml(d)),
           st.dictionaries(st.text(max_size=15), st.text(max_size=30), max_size=20)
           .map(lambda d: urllib.parse.urlencode(d).encode()),
       ),
       cut=st.integers(min_value=0, max_value=100))
def test_random_truncated_and_malformed_bodies_never_get_a_5xx(exchange: Exchange, content_type, path, body, cut):
    truncated = body[: max(0, len(body) - cut)] if cut % 3 == 0 else body
    response = send(exchange, path, truncated, content_type)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        answer = response.json() if response.headers["content-type"].startswith("application/json") else None
        if answer is not None:
            assert answer["errors"][0]["code"]
        else:
            assert xml_answer(response).find("errors/error").get("code")


def test_the_service_is_still_healthy_after_the_fuzzing(exchange: Exchange):
    assert http.get(f"{exchange.intake_url()}/readyz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def strict(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    """Intake and dedup only, platform-wide dedup on, and a low rate limit."""
    prefix = f"{tmp_path_factory.mktemp('s').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("strict"), kafka_bootstrap, redis_url, prefix, ["alpha"],
                              ["intake", "dedup"], INTAKE_RATE_LIMIT_PER_SECOND="5")
    yield exchange
    exchange.stop()


def test_a_seller_over_its_rate_gets_429_with_retry_after(strict: Exchange):
    ping = json.dumps(ping_subset(strict.new_consumer())).encode()
    headers = {"Authorization": f"Bearer {strict.seller_key}", "Content-Type": "application/json"}

    async def burst() -> list[httpx.Response]:
        # All at once, so the burst lands inside the one-second window however slow the machine is.
        async with httpx.AsyncClient(timeout=15) as client:
            return await asyncio.gather(*(client.post(f"{strict.intake_url()}/v1/ping", content=ping,
                                                      headers=headers) for _ in range(20)))

    answers = asyncio.run(burst())
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 429}, codes
    # 5 per second: a burst of 20 gets 5 through (a few more only if it straddled two windows).
    assert 5 <= codes.count(200) <= 10, codes
    limited = [a for a in answers if a.status_code == 429]
    assert limited[0].json()["errors"][0]["code"] == "RATE_LIMITED"
    assert int(limited[0].headers["Retry-After"]) >= 1
    other = http.post(f"{strict.intake_url()}/v1/ping", content=ping, timeout=10, headers={
        "Authorization": f"Bearer {strict.other_seller_key}", "Content-Type": "application/json"})
    assert other.status_code == 200  # the limit is per seller


def test_a_ping_with_a_recently_submitted_ssn_is_a_duplicate_without_saying_why(strict: Exchange):
    lead = strict.new_consumer()
    poll_until(lambda: strict.post(lead, api_key=strict.other_seller_key).status_code == 200, interval_s=0.5,
               message="the first submission accepted")
    answer = poll_until(lambda: (r := send(strict, "/v1/ping", json.dumps(ping_subset(lead)).encode(),
                                           "application/json")).status_code != 429 and r, interval_s=0.5,
                        message="a PING under the rate limit")
    assert answer.status_code == 409
    body = answer.json()
    assert body["status"] == "duplicate"
    assert body["errors"] == [{"code": "DUPLICATE", "field": None,
                               "message": "the lead is a duplicate and cannot be sold"}]
