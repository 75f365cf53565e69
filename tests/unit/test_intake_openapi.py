"""The OpenAPI document names the contract's error codes and every vertical's lead schema, documents
exactly the app's routes and methods (here, from the app's route table; against a running intake in
tests/integration/test_intake_contract.py, and request by request by schemathesis in
tests/integration/test_openapi_contract.py), and gives every operation the answers every route can
give."""

from __future__ import annotations

import re
from pathlib import Path

import services.intake
from services.intake.openapi import BEYOND_SCHEMA, ERROR_CODES, openapi_document


def test_the_contract_s_error_codes_are_all_in_the_document():
    required = {"FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH", "DUPLICATE", "AUTH_INVALID",
                "PAYLOAD_MALFORMED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED", "PING_MISMATCH"}
    assert required <= set(ERROR_CODES)
    schema = openapi_document()["components"]["schemas"]
    assert schema["Error"]["properties"]["code"]["enum"] == ERROR_CODES
    assert {"Lead_auto_loan", "Lead_auto_insurance"} <= set(schema)


def test_every_served_route_and_method_is_documented_and_nothing_else():
    from types import SimpleNamespace

    from leadx.platform.health import Readiness
    from services.intake.admin import Admin
    from services.intake.app import build_app
    from services.intake.buyers import Buyers
    from services.intake.lists import Lists
    from services.intake.sellers import Sellers

    # Only what the audiences read while wiring their routes; no request is served.
    deps = SimpleNamespace(sessions=None, secret=b"k" * 32, dedup=None, redis=None, producer=None, namespace="",
                           max_body_bytes=1024, admin_api_key="")
    app = build_app(Sellers(deps), Buyers(deps), Admin(deps.sessions, deps.admin_api_key),
                    Lists(deps.sessions, None, deps.admin_api_key, deps.max_body_bytes), Readiness())
    served: dict[str, set[str]] = {}
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # a parameter's convertor is no part of the path
        served.setdefault(path, set()).update(m.lower() for m in route.methods if m != "HEAD")
    documented = {path: {m for m in item if m in ("get", "put", "post", "patch", "delete")}
                  for path, item in openapi_document()["paths"].items()}
    assert served == documented


def test_admin_operations_use_the_admin_key_and_the_bid_api_a_buyer_s():
    document = openapi_document()
    admin_key = document["components"]["securitySchemes"]["adminKey"]
    assert (admin_key["type"], admin_key["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/admin/"):
                assert operation["security"] == [{"adminKey": []}], (method, path)
                assert "401" in operation["responses"], (method, path)
    bids = document["paths"]["/v1/auctions/{auction_id}/bids"]["post"]
    assert "security" not in bids  # the document's default: a seller's or buyer's API key
    assert {"202", "404", "409", "422"} <= set(bids["responses"])
    assert {"AUCTION_NOT_FOUND", "AUCTION_CLOSED", "BID_TOO_LOW", "PARTNERSHIP_NOT_FOUND"} <= set(ERROR_CODES)


def test_every_code_the_intake_answers_is_in_the_document():
    from leadx.accounts import buyer_urls
    from leadx.ledger import returns
    from services.intake import admin, buyers, lists, outcomes

    # The codes written where refusals are made (ApiError(status, "CODE", ...), the domain's
    # Refusals), and those the intake names by constant.
    sources = [*Path(services.intake.__file__).parent.glob("*.py"), Path(returns.__file__), Path(lists.store.__file__)]
    answered = {code for source in sources
                for code in re.findall(r"(?:ApiError|Refusal)\(\s*\d{3},\s*\"([A-Z_]+)\"", source.read_text())}
    answered |= {admin.ACCOUNT_NOT_FOUND, admin.PARTNERSHIP_NOT_FOUND, buyers.AUCTION_NOT_FOUND, buyers.AUCTION_CLOSED,
                 buyers.BID_TOO_LOW, buyers.LEAD_NOT_FOUND, lists.LIST_NOT_FOUND, lists.LIST_CLOSED, lists.LIST_OPEN,
                 lists.LIST_EMPTY, lists.BELOW_RESERVE, returns.NOT_FOUND, outcomes.NOT_FOUND,
                 buyer_urls.URL_INVALID, buyer_urls.URL_NOT_HTTPS, buyer_urls.URL_ADDRESS_FORBIDDEN}
    assert {"AUTH_INVALID", "RATE_LIMITED", "RETURN_WINDOW_CLOSED"} <= answered  # the search found them
    assert answered <= set(ERROR_CODES), sorted(answered - set(ERROR_CODES))


def test_every_operation_lists_the_answers_every_route_can_give():
    document = openapi_document()
    shared = document["components"]["responses"]
    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            answers = operation["responses"]
            assert {"405", "429", "503"} <= set(answers), (method, path)
            assert "Allow" in shared[answers["405"]["$ref"].rsplit("/", 1)[1]]["headers"]
            assert "Retry-After" in shared[answers["429"]["$ref"].rsplit("/", 1)[1]]["headers"]
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(answers), (method, path)
            if operation.get("security") != []:
                assert "401" in answers, (method, path)
            for entry in operation.get(BEYOND_SCHEMA, []):
                assert entry["code"] in ERROR_CODES and str(entry["status"]) in answers, (method, path, entry)
    assert len(operation_ids) == len(set(operation_ids))


def test_the_document_s_bounds_are_the_intake_s():
    from services.intake import admin, lists, openapi, requests, sellers

    assert (openapi.MAX_REFERENCE, openapi.MAX_CENTS, openapi.MAX_NAME, openapi.MAX_URL) == (
        sellers.MAX_REFERENCE, requests.MAX_CENTS, admin.MAX_NAME, admin.MAX_URL)
    assert openapi.MAX_JSON_NUMBER == admin.MAX_JSON_NUMBER
    assert (openapi.MAX_LIST_TARGET, openapi.MAX_LIST_COUNT, openapi.MAX_LIST_WINDOW_S, openapi.MAX_LIST_TOP) == (
        lists.MAX_TARGET, lists.MAX_COUNT, lists.MAX_WINDOW_S, lists.MAX_LIMIT)
