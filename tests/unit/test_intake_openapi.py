"""The OpenAPI document names the contract's error codes and every vertical's lead schema, and documents
exactly the app's routes and methods (here, from the app's route table; against a running intake in
tests/integration/test_intake_contract.py)."""

from __future__ import annotations

import re

from services.intake.openapi import ERROR_CODES, openapi_document


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
