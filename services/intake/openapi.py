"""The intake's API as an OpenAPI 3.1 document, served at /openapi.json: the sellers' PING, POST
and status, the buyers' returns, outcome reports and bids, ratings, list auctions
(docs/list-auctions.md), and the operators' admin API (docs/admin-api.md).

Written by hand (the app is plain Starlette) and held to the app by tests/unit/test_intake_openapi.py:
every route and method of the app is documented, and nothing documented is missing from the app.
"""

from __future__ import annotations

from leadx.leads.verticals import load_verticals
from leadx.ledger.outcomes import MAX_NOTE_CHARS, OUTCOMES

ERROR_CODES = [
    "FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH", "DUPLICATE", "AUTH_INVALID",
    "AUTH_THROTTLED", "PAYLOAD_MALFORMED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED",
    "PING_MISMATCH",
    "IDEMPOTENCY_KEY_REUSED", "LEAD_NOT_FOUND", "NOT_FOUND", "METHOD_NOT_ALLOWED", "SERVICE_UNAVAILABLE",
    "RETURN_WINDOW_CLOSED", "RETURN_RATE_EXCEEDED", "ACCOUNT_NOT_FOUND", "NOT_A_TRADING_PARTNER",
    "AUCTION_NOT_FOUND", "AUCTION_CLOSED", "BID_TOO_LOW", "PARTNERSHIP_NOT_FOUND",
    "LIST_NOT_FOUND", "LIST_CLOSED", "LIST_OPEN", "LIST_EMPTY", "BELOW_RESERVE",
]
WARNING_CODES = ["PHONE_AREA_MISMATCH"]

_TYPES = {"money": "integer", "integer": "integer"}


def _problem(codes: list[str]) -> dict:
    return {"type": "object", "required": ["code", "field", "message"], "properties": {
        "code": {"type": "string", "enum": codes},
        "field": {"type": ["string", "null"], "description": "the field at fault, when there is one"},
        "message": {"type": "string", "description": "what is wrong, for a person to read"},
    }}


def _lead_schema(vertical) -> dict:
    properties = {"vertical": {"type": "string", "const": vertical.name}}
    for spec in vertical.fields:
        prop: dict = {"type": [_TYPES.get(spec.type, "string"), "string"] if spec.type in _TYPES else "string"}
        if spec.values:
            prop["enum"] = list(spec.values)
        if spec.type == "date":
            prop["format"] = "date"
        if spec.type == "money":
            prop["description"] = "integer cents"
        properties[spec.name] = prop
    properties["min_price"] = {"type": ["integer", "string"], "description": "the reserve for an auction sale, cents"}
    properties["buyer"] = {"type": "string", "description": "a buyer id for a direct sale, instead of an auction"}
    properties["ping_token"] = {"type": "string", "description": "from this lead's PING: the POST is held to it"}
    properties["reference"] = {"type": "string", "description": "the seller's own id; also an idempotency key"}
    required = ["vertical", *(spec.name for spec in vertical.fields if spec.required)]
    return {"type": "object", "required": required, "properties": properties}


def openapi_document() -> dict:
    verticals = load_verticals()
    leads = {f"Lead_{name}": _lead_schema(v) for name, v in sorted(verticals.items())}
    bodies = {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in leads]}
    ping = {"type": "object", "required": ["vertical"], "properties": {
        "vertical": {"type": "string", "enum": sorted(verticals)},
        "zip": {"type": "string"}, "gross_monthly_income": {"type": ["integer", "string"]},
        "ssn": {"type": "string"},
        "email_sha256": {"type": "string", "description": "hex SHA-256 of the lower-cased, trimmed email"},
        "home_phone_sha256": {"type": "string", "description": "hex SHA-256 of the phone's 10 digits"},
        "buyer": {"type": "string"},
    }}
    answer = {"type": "object", "required": ["status", "lead_id", "errors"], "properties": {
        "status": {"type": "string", "enum": ["accepted", "rejected", "duplicate", "pending", "in_auction",
                                              "sold", "unsold", "returned", "reported", "rated", "ok",
                                              "created", "open", "closing", "closed"]},
        "lead_id": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9]{10}$"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}},
        "status_url": {"type": "string", "description": "on 202: where to ask for the verdict"},
        "ping_token": {"type": "string", "description": "PING only: send it with the POST"},
        "expires_at_ms": {"type": "integer", "description": "PING only: when the token expires"},
        "wanted": {"type": "boolean", "description": "PING only: some eligible buyer can take the lead"},
        "credited_cents": {"type": "integer", "description": "return only: the price credited back to the buyer"},
        "returned_at_ms": {"type": "integer", "description": "return only: when the return was recorded"},
        "outcome": {"type": "string", "enum": list(OUTCOMES), "description": "outcome only: the outcome stored"},
        "at_ms": {"type": "integer", "description": "outcome only: when it happened (Unix ms)"},
        "reported_at_ms": {"type": "integer", "description": "outcome only: when it was first reported"},
        "note": {"type": "string", "description": "outcome only: the note stored with it"},
        "your_stars": {"type": ["integer", "null"], "description": "ratings only: your rating of the account"},
        "average_stars": {"type": ["number", "null"], "description": "ratings only: every rater's average"},
        "ratings": {"type": "integer", "description": "ratings only: how many have rated the account"},
        "auction_id": {"type": "string", "description": "bids only: the auction bid on"},
        "bid": {"type": "integer", "description": "bids only: the bid accepted, cents"},
        "closes_at_ms": {"type": "integer", "description": "bids only: when the auction closes (Unix ms)"},
    }}
    bid_body = {"type": "object", "required": ["bid"], "properties": {
        "bid": {"type": ["integer", "string"], "minimum": 0, "description": "cents"}}}
    rating_body = {"type": "object", "required": ["stars"], "properties": {
        "stars": {"type": ["integer", "string"], "minimum": 1, "maximum": 5}}}

    def rating_path(rater: str, ratee: str) -> dict:
        param = [{"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}]
        found = {"200": f"your stars for the {ratee} and the average", "401": f"AUTH_INVALID: a {rater}'s key",
                 "404": f"ACCOUNT_NOT_FOUND: no such {ratee}"}
        return {
            "get": {"summary": f"A {rater} reads its rating of a {ratee} and the community average",
                    "parameters": param, "responses": responses(found)},
            "put": {"summary": f"A {rater} rates a {ratee} it has traded with, 1 to 5 stars (replaces its last)",
                    "parameters": param, "requestBody": {"required": True, "content": content(rating_body)},
                    "responses": responses({**found, "403": "NOT_A_TRADING_PARTNER",
                                            "422": "FIELD_MISSING or FIELD_INVALID (stars)"})}}
    return_body = {"type": "object", "required": ["reason"], "properties": {
        "reason": {"type": "string", "maxLength": 500, "description": "why the lead is returned"}}}
    outcome_body = {"type": "object", "required": ["outcome"], "properties": {
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "at": {"type": "string", "format": "date-time", "description": "when it happened, with its zone (e.g. "
               "2024-05-01T14:30:00Z); not before the sale nor more than 5 minutes ahead; default now"},
        "note": {"type": "string", "maxLength": MAX_NOTE_CHARS, "description": "kept with the report, never "
                 "published"}}}

    def content(schema: dict) -> dict:
        return {media: {"schema": schema} for media in
                ("application/json", "application/xml", "text/xml", "application/x-www-form-urlencoded")}

    answers = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                           "application/xml": {"schema": {"$ref": "#/components/schemas/Answer"}}}}

    def responses(codes: dict[str, str]) -> dict:
        return {code: {"description": text, **answers} for code, text in codes.items()}

    common = {"400": "PAYLOAD_MALFORMED", "401": "AUTH_INVALID", "413": "PAYLOAD_TOO_LARGE",
              "415": "UNSUPPORTED_MEDIA_TYPE", "422": "rejected: FIELD_MISSING, FIELD_INVALID, ZIP_UNKNOWN, "
              "ZIP_STATE_MISMATCH, PING_MISMATCH", "429": "RATE_LIMITED or AUTH_THROTTLED, with Retry-After"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadx seller intake", "version": "1",
                 "description": "PING and POST consumer leads; see docs/integration-spec.md."},
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "a seller's or a buyer's API key"},
                "adminKey": {"type": "http", "scheme": "bearer",
                             "description": "the operators' ADMIN_API_KEY (unset: the admin API answers 401)"},
            },
            "schemas": {"Error": _problem(ERROR_CODES), "Warning": _problem(WARNING_CODES), "Answer": answer,
                        "Ping": ping, **leads, **_ADMIN_SCHEMAS, **_LIST_SCHEMAS},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/ping": {"post": {
                "summary": "Ask whether a lead is wanted before sending it whole",
                "requestBody": {"required": True, "content": content({"$ref": "#/components/schemas/Ping"})},
                "responses": responses({"200": "accepted, with a ping token", "409": "DUPLICATE", **common}),
            }},
            "/v1/post": {"post": {
                "summary": "Submit a whole lead for an auction or a direct sale",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "description": "a retry with the same key and the same lead gets the first answer; "
                                "with a different lead, 422 IDEMPOTENCY_KEY_REUSED. Without it, `reference` is "
                                "the key", "schema": {"type": "string", "maxLength": 200}}],
                "requestBody": {"required": True, "content": content(bodies)},
                "responses": responses({"200": "accepted", "202": "pending: ask status_url", "409": "DUPLICATE",
                                        "503": "SERVICE_UNAVAILABLE: retry", **common,
                                        "422": f"{common['422']}, IDEMPOTENCY_KEY_REUSED"}),
            }},
            "/v1/leads/{lead_id}": {"get": {
                "summary": "A lead's status, for the seller who sent it",
                "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": responses({"200": "the status", "401": "AUTH_INVALID",
                                        "404": "LEAD_NOT_FOUND: not yours, or no such lead"}),
            }},
            "/v1/leads/{lead_id}/return": {"post": {
                "summary": "A buyer returns a lead it bought, within the return window (buyer API key)",
                "description": "Credits the buyer the price and debits the seller the price less the platform "
                               "fee. Repeating a return of the same lead answers as the first did.",
                "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": content(return_body)},
                "responses": responses({"200": "returned", "400": "PAYLOAD_MALFORMED", "401": "AUTH_INVALID",
                                        "404": "LEAD_NOT_FOUND: you did not buy this lead",
                                        "413": "PAYLOAD_TOO_LARGE", "415": "UNSUPPORTED_MEDIA_TYPE",
                                        "422": "FIELD_MISSING or FIELD_INVALID (reason), RETURN_WINDOW_CLOSED, "
                                               "RETURN_RATE_EXCEEDED",
                                        "503": "SERVICE_UNAVAILABLE: retry"}),
            }},
            "/v1/leads/{lead_id}/outcome": {"post": {
                "summary": "A buyer reports what became of a lead it bought (buyer API key)",
                "description": "contacted, converted, returned or not_contacted, with when it happened. A "
                               "report moves no money: a returned report is not a return (use /return). A "
                               "repeated report of the same outcome answers 200 with the report as first stored.",
                "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": content(outcome_body)},
                "responses": responses({"201": "reported", "200": "reported before: the stored report",
                                        "400": "PAYLOAD_MALFORMED", "401": "AUTH_INVALID: a buyer's key",
                                        "404": "LEAD_NOT_FOUND: you did not buy this lead",
                                        "413": "PAYLOAD_TOO_LARGE", "415": "UNSUPPORTED_MEDIA_TYPE",
                                        "422": "FIELD_MISSING or FIELD_INVALID (outcome, at, note)",
                                        "429": "RATE_LIMITED or AUTH_THROTTLED, with Retry-After",
                                        "503": "SERVICE_UNAVAILABLE: retry"}),
            }},
            "/v1/auctions/{auction_id}/bids": {"post": {
                "summary": "A buyer bids on an auction it was offered (buyer API key)",
                "description": "Checked at once: the auction must have been offered to this buyer and still be "
                               "open, and the bid at least the seller's minimum. An accepted bid counts if it "
                               "arrived before the close; a buyer that bids twice keeps its higher bid.",
                "parameters": [{"name": "auction_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": content(bid_body)},
                "responses": responses({"202": "accepted: counted if before closes_at_ms",
                                        "400": "PAYLOAD_MALFORMED", "401": "AUTH_INVALID: a buyer's key",
                                        "404": "AUCTION_NOT_FOUND: no such auction was offered to you",
                                        "409": "AUCTION_CLOSED", "413": "PAYLOAD_TOO_LARGE",
                                        "415": "UNSUPPORTED_MEDIA_TYPE",
                                        "422": "FIELD_MISSING or FIELD_INVALID (bid), BID_TOO_LOW",
                                        "429": "RATE_LIMITED or AUTH_THROTTLED, with Retry-After",
                                        "503": "SERVICE_UNAVAILABLE"}),
            }},
            **_admin_paths(),
            **_list_paths(),
            "/v1/sellers/{account_id}/rating": rating_path("buyer", "seller"),
            "/v1/buyers/{account_id}/rating": rating_path("seller", "buyer"),
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Readiness: broker connected, verdict partitions positioned",
                                "security": [], "responses": {"200": {"description": "ready"},
                                                              "503": {"description": "not ready"}}}},
        },
    }


# ---------------------------------------------------------------------- the operators' admin API

_PROFILE = {"type": "object", "required": ["name"], "description": "an AutoBid profile (docs/admin-api.md)",
            "properties": {
                "name": {"type": "string"},
                "windows": {"type": "array", "items": {"type": "object", "properties": {
                    "from": {"type": "string", "examples": ["fri 08:00"]},
                    "to": {"type": "string", "examples": ["sun 21:00"]}}}},
                "price": {"$ref": "#/components/schemas/Price"},
                "caps": {"$ref": "#/components/schemas/Caps"},
                "criteria": {"type": "array", "items": {"type": "object", "description": "conditions and a price: "
                             "states, zips, zip_radius, income, requested_amount, residence_types, probability, "
                             "timing, clusters, fields, price"}},
                "active": {"type": "boolean"}}}
_SETTINGS = {
    "kind": {"type": "string", "enum": ["wholesale", "autobid"]},
    "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "description": "weighted bid = bid x weight"},
    "time_zone": {"type": "string", "description": "IANA zone of the profile windows and caps",
                  "examples": ["America/Chicago"]},
    "caps": {"$ref": "#/components/schemas/Caps"},
}
_RELATIONS = {"type": "object", "properties": {
    "status": {"type": "string"}, "seller_id": {"type": "string"},
    "sells_to": {"type": "string", "enum": ["all", "named"]},
    "partners": {"type": "array", "items": {"type": "string"}, "description": "buyers opted in to its leads"},
    "allowed": {"type": "array", "items": {"type": "string"}},
    "blocked": {"type": "array", "items": {"type": "string"}}}}
_ADMIN_SCHEMAS = {
    "Price": {"oneOf": [{"type": "integer", "minimum": 0, "description": "cents"},
                        {"type": "object", "required": ["per_probability"], "properties": {
                            "per_probability": {"type": "integer", "minimum": 0,
                                                "description": "cents x the lead's response probability"}}}]},
    "Caps": {"type": ["object", "null"], "additionalProperties": False, "properties": {
        name: {"type": ["integer", "null"], "minimum": 0}
        for name in ("leads_per_hour", "leads_per_day", "spend_per_day_cents", "spend_per_month_cents")}},
    "Profile": _PROFILE,
    "Created": {"type": "object", "properties": {
        "status": {"type": "string", "const": "created"}, "id": {"type": "string"},
        "api_key": {"type": "string", "description": "shown once; only its hash is stored"}}},
    "NewKey": {"type": "object", "properties": {
        "status": {"type": "string", "const": "ok"}, "id": {"type": "string"},
        "api_key": {"type": "string", "description": "shown once; only its hash is stored. The old key works "
                    "at most 30 s more (the readers' key cache)"}}},
    "BuyerSettings": {"type": "object", "properties": {
        "status": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"}, **_SETTINGS,
        "ping_url": {"type": "string"}, "post_url": {"type": "string"}, "active": {"type": "boolean"},
        "profiles": {"type": "array", "items": {"$ref": "#/components/schemas/Profile"},
                     "description": "the active profiles, each with its id"}}},
    "SellerRelations": _RELATIONS,
    "Partnership": {"type": "object", "required": ["seller", "buyer"], "properties": {
        "seller": {"type": "string"}, "buyer": {"type": "string"}}},
}


def _admin_paths() -> dict:
    def op(summary: str, answer: str | dict, codes: dict[str, str], body: dict | None = None,
           params: tuple[str, ...] = ()) -> dict:
        schema = {"$ref": f"#/components/schemas/{answer}"} if isinstance(answer, str) else answer
        success = {code: {"description": text, "content": {"application/json": {"schema": schema}}}
                   for code, text in codes.items() if code.startswith("2")}
        problems = {"401": "AUTH_INVALID: no admin key, a wrong one, or ADMIN_API_KEY unset",
                    **{code: text for code, text in codes.items() if not code.startswith("2")}}
        if body is not None:
            problems = {"400": "PAYLOAD_MALFORMED: not JSON", "413": "PAYLOAD_TOO_LARGE (64 KiB)",
                        "415": "UNSUPPORTED_MEDIA_TYPE: send application/json", **problems}
        item: dict = {"summary": summary, "security": [{"adminKey": []}], "tags": ["admin"], "responses": {
            **success, **{code: {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Answer"}}}} for code, text in problems.items()}}}
        if params:
            item["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                  for name in params]
        if body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        return item

    def obj(required: list[str], properties: dict) -> dict:
        return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}

    ids = {"type": "object", "properties": {"status": {"type": "string"}, "seller_id": {"type": "string"},
                                            "buyer_id": {"type": "string"}}}
    invalid = "FIELD_MISSING or FIELD_INVALID, with the reason"
    no_buyer, no_seller = "ACCOUNT_NOT_FOUND: no such buyer", "ACCOUNT_NOT_FOUND: no such seller"
    profiles = {"type": "array", "items": {"$ref": "#/components/schemas/Profile"}}
    revoked = {"type": "object", "properties": {"status": {"type": "string"}, "id": {"type": "string"}}}
    return {
        "/v1/admin/sellers": {"post": op(
            "Create a seller; its API key is shown once", "Created", {"201": "created", "422": invalid},
            obj(["name"], {"name": {"type": "string", "maxLength": 200}}))},
        "/v1/admin/buyers": {"post": op(
            "Create a buyer; its API key is shown once", "Created", {"201": "created", "422": invalid},
            obj(["name"], {"name": {"type": "string", "maxLength": 200},
                                       "ping_url": {"type": "string", "description": "required for wholesale"},
                                       "post_url": {"type": "string", "description": "absent or empty: leads are "
                                                    "accepted for the buyer, which reads them with its key"},
                                       **_SETTINGS}))},
        "/v1/admin/buyers/{buyer_id}": {
            "get": op("A buyer's auction settings and active AutoBid profiles", "BuyerSettings",
                      {"200": "the settings", "404": no_buyer}, params=("buyer_id",)),
            "patch": op("Change a buyer's kind, weight, time zone or caps (null caps: none)", "BuyerSettings",
                        {"200": "the updated settings", "404": no_buyer, "422": invalid},
                        obj([], _SETTINGS), params=("buyer_id",)),
        },
        "/v1/admin/buyers/{buyer_id}/profiles": {"put": op(
            "Replace all of a buyer's AutoBid profiles (none is stored unless all are valid)",
            {"type": "object", "properties": {"status": {"type": "string"}, "buyer_id": {"type": "string"},
                                              "profile_ids": {"type": "array", "items": {"type": "string"}}}},
            {"200": "the new profiles' ids", "404": no_buyer, "422": invalid},
            {"oneOf": [profiles, obj(["profiles"], {"profiles": profiles})]}, params=("buyer_id",))},
        "/v1/admin/buyers/{buyer_id}/rotate-key": {"post": op(
            "A new API key for the buyer, shown once; the old one stops working within 30 s", "NewKey",
            {"200": "the new key", "404": no_buyer}, params=("buyer_id",))},
        "/v1/admin/buyers/{buyer_id}/revoke-key": {"post": op(
            "Revoke the buyer's API key (within 30 s); it has none until rotated", revoked,
            {"200": "revoked", "404": no_buyer}, params=("buyer_id",))},
        "/v1/admin/buyers/{buyer_id}/deactivate": {"post": op(
            "Offer the buyer no more leads and refuse its key (within 30 s)", "BuyerSettings",
            {"200": "the settings, active false", "404": no_buyer}, params=("buyer_id",))},
        "/v1/admin/buyers/{buyer_id}/reactivate": {"post": op(
            "Offer the buyer leads again and accept its key", "BuyerSettings",
            {"200": "the settings, active true", "404": no_buyer}, params=("buyer_id",))},
        "/v1/admin/sellers/{seller_id}/rotate-key": {"post": op(
            "A new API key for the seller, shown once; the old one stops working within 30 s", "NewKey",
            {"200": "the new key", "404": no_seller}, params=("seller_id",))},
        "/v1/admin/sellers/{seller_id}/revoke-key": {"post": op(
            "Revoke the seller's API key (within 30 s); it has none until rotated", revoked,
            {"200": "revoked", "404": no_seller}, params=("seller_id",))},
        "/v1/admin/profiles/import": {"post": op(
            "Apply an import document: several buyers' settings and profiles, all checked first",
            {"type": "object", "properties": {"status": {"type": "string"}, "profile_ids": {
                "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
            {"200": "each buyer's new profile ids", "404": no_buyer, "422": invalid},
            obj(["buyers"], {"buyers": {"type": "array", "items": {"type": "object", "required": ["id"],
                                                                   "properties": {
                "id": {"type": "string"}, **_SETTINGS, "profiles": profiles}}}}))},
        "/v1/admin/partnerships": {
            "put": op("A buyer opts in to a seller's leads", ids,
                      {"201": "created", "200": "it already existed", "404": "ACCOUNT_NOT_FOUND", "422": invalid},
                      {"$ref": "#/components/schemas/Partnership"}),
            "delete": {**op("End a partnership (the ids in the body or as query parameters)", ids,
                            {"200": "removed", "404": "ACCOUNT_NOT_FOUND, or PARTNERSHIP_NOT_FOUND",
                             "422": invalid}),
                       "parameters": [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                                      for name in ("seller", "buyer")]},
        },
        "/v1/admin/sellers/{seller_id}/relations": {"get": op(
            "A seller's partners, what it sells to, and the buyers it allowed or blocked", "SellerRelations",
            {"200": "the relations", "404": no_seller}, params=("seller_id",))},
        "/v1/admin/sellers/{seller_id}/sells-to": {"put": op(
            "Sell to every partnered buyer but those blocked (all), or only to those allowed (named)",
            "SellerRelations", {"200": "the relations", "404": no_seller, "422": invalid},
            obj(["sells_to"], {"sells_to": {"type": "string", "enum": ["all", "named"]}}), params=("seller_id",))},
        "/v1/admin/sellers/{seller_id}/buyers/{buyer_id}": {
            "put": op("The seller allows or blocks one buyer", "SellerRelations",
                      {"200": "the relations", "404": "ACCOUNT_NOT_FOUND", "422": invalid},
                      obj(["choice"], {"choice": {"type": "string", "enum": ["allow", "block"]}}),
                      params=("seller_id", "buyer_id")),
            "delete": op("Forget the seller's word on that buyer", "SellerRelations",
                         {"200": "the relations", "404": "ACCOUNT_NOT_FOUND"}, params=("seller_id", "buyer_id")),
        },
    }


# ---------------------------------------------------------------------- list auctions (docs/list-auctions.md)

_SPREAD = {"count": {"type": "integer"}, "probability_min": {"type": "number"},
           "probability_max": {"type": "number"}, "probability_mean": {"type": "number"},
           "expected_responses": {"type": "number", "description": "the sum of the probabilities"}}
_LIST_SCHEMAS = {
    "ListOpen": {"type": "object", "required": ["vertical", "profile"], "additionalProperties": False,
                 "properties": {
                     "vertical": {"type": "string"},
                     "profile": {"type": "object", "required": ["criteria"], "properties": {
                         "criteria": {"type": "array", "items": {"type": "object"}, "description":
                                      "AutoBid criteria without prices (states, zips, zip_radius, income, "
                                      "requested_amount, residence_types, probability, clusters, fields); a "
                                      "customer matching any is on the list; none: the whole pool"}}},
                     "window_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 2_592_000,
                                        "default": 120},
                     "reserve": {"type": "integer", "minimum": 0, "default": 0, "description": "cents per customer"},
                     "band_width": {"type": "number", "minimum": 0.01, "maximum": 1, "default": 0.05,
                                    "description": "whole hundredths"}}},
    "ListPreview": {"type": "object", "required": ["vertical", "profile"], "additionalProperties": False,
                    "properties": {
                        "vertical": {"type": "string"},
                        "profile": {"type": "object", "required": ["criteria"], "properties": {
                            "criteria": {"type": "array", "items": {"type": "object"}}}},
                        "band_width": {"type": "number", "minimum": 0.01, "maximum": 1, "default": 0.05},
                        "top": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100,
                                "description": "how many of the best customers to list"}}},
    "ListCustomer": {"type": "object", "description": "no PII", "properties": {
        "prospect_id": {"type": "string"}, "state": {"type": "string"}, "zip3": {"type": "string"},
        "probability": {"type": "number", "description": "of answering a direct offer"},
        "cluster": {"type": "string"},
        "buyer_id": {"type": ["string", "null"], "description": "operators, once closed: who won it"},
        "price_cents": {"type": ["integer", "null"], "description": "operators, once closed: its price"}}},
    "ListBid": {"type": "object", "properties": {
        "id": {"type": "integer"}, "buyer_id": {"type": "string"},
        "scope": {"type": "string", "enum": ["customer", "cluster", "band"]}, "target": {"type": "string"},
        "price_cents": {"type": "integer"}, "max_count": {"type": ["integer", "null"]},
        "max_budget_cents": {"type": ["integer", "null"]}, "placed_at_ms": {"type": "integer"}}},
    "ListBidBody": {"type": "object", "required": ["scope", "target", "price"], "additionalProperties": False,
                    "properties": {
                        "scope": {"type": "string", "enum": ["customer", "cluster", "band"]},
                        "target": {"type": "string", "maxLength": 64, "description": "a prospect id, a cluster "
                                   "id (c2), a band (0.10-0.15) or one probability (0.15)"},
                        "price": {"type": ["integer", "string"], "minimum": 1, "description": "cents per customer"},
                        "max_count": {"type": ["integer", "string"], "minimum": 1,
                                      "description": "group bids: at most this many customers"},
                        "max_budget": {"type": ["integer", "string"], "minimum": 1,
                                       "description": "group bids: at most this many cents in all"}}},
    "ListBidAccepted": {"type": "object", "properties": {
        "status": {"type": "string", "const": "accepted"}, "list_id": {"type": "string"},
        "closes_at_ms": {"type": "integer"}, "bid": {"$ref": "#/components/schemas/ListBid"}}},
    "ListView": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["open", "closing", "closed"], "description": "closing: the window "
                   "has ended and the ledger is closing it"},
        "list_id": {"type": "string"}, "vertical": {"type": "string"},
        "opened_at_ms": {"type": "integer"}, "closes_at_ms": {"type": "integer"},
        "closed_at_ms": {"type": ["integer", "null"]}, "seconds_left": {"type": "number"},
        "reserve_cents": {"type": "integer"}, "band_width": {"type": "number"},
        "count": {"type": "integer", "description": "customers on the list"},
        "clusters": {"type": "array", "items": {"type": "object", "properties": {
            "cluster": {"type": "string"}, "description": {"type": "string"}, **_SPREAD}}},
        "bands": {"type": "array", "items": {"type": "object", "properties": {"band": {"type": "string"},
                                                                              **_SPREAD}}},
        "offset": {"type": "integer"},
        "customers": {"type": "array", "items": {"$ref": "#/components/schemas/ListCustomer"},
                      "description": "best first, from offset"},
        "your_bids": {"type": "array", "items": {"$ref": "#/components/schemas/ListBid"},
                      "description": "dealers: their own bids"},
        "won": {"type": ["object", "null"], "description": "dealers, once closed: count and total_cents won"},
        "profile": {"type": "object", "description": "operators"},
        "tie_break_seed": {"type": "integer", "description": "operators: the seed of the recorded draw"},
        "bids": {"type": "array", "items": {"$ref": "#/components/schemas/ListBid"},
                 "description": "operators: every bid"},
        "awards": {"type": ["object", "null"], "description": "operators, once closed: count, total_cents, "
                   "unsold, published, by_buyer"}}},
    "ListWon": {"type": "object", "properties": {
        "list_id": {"type": "string"}, "buyer_id": {"type": "string"}, "count": {"type": "integer"},
        "total_cents": {"type": "integer"},
        "customers": {"type": "array", "items": {"type": "object", "properties": {
            "prospect_id": {"type": "string"}, "price_cents": {"type": "integer"},
            "probability": {"type": "number"}, "cluster": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "the customer's fields, PII included: the dealer bought them"}}}}}},
}


def _list_paths() -> dict:
    def ref(name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def answer(text: str) -> dict:
        return {"description": text, "content": {"application/json": {"schema": ref("Answer")}}}

    def success(text: str, schema: str) -> dict:
        return {"description": text, "content": {"application/json": {"schema": ref(schema)}}}

    list_id = {"name": "list_id", "in": "path", "required": True, "schema": {"type": "string"}}
    page = [{"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}]
    not_found = answer("LIST_NOT_FOUND")
    rate = answer("RATE_LIMITED or AUTH_THROTTLED, with Retry-After")
    return {
        "/v1/admin/lists": {"post": {
            "summary": "Open a list auction of the prospect pool's customers matching a profile",
            "security": [{"adminKey": []}], "tags": ["admin", "lists"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ListOpen")}}},
            "responses": {"201": success("open: the list, its groups and its best customers", "ListView"),
                          "400": answer("PAYLOAD_MALFORMED: not JSON"),
                          "401": answer("AUTH_INVALID: no admin key, a wrong one, or ADMIN_API_KEY unset"),
                          "413": answer("PAYLOAD_TOO_LARGE (64 KiB)"),
                          "415": answer("UNSUPPORTED_MEDIA_TYPE: send application/json"),
                          "422": answer("FIELD_MISSING or FIELD_INVALID (the field; a bad profile names its "
                                        "criterion), LIST_EMPTY: no customer matches"),
                          "503": answer("SERVICE_UNAVAILABLE: retry")}}},
        "/v1/admin/lists/{list_id}": {"get": {
            "summary": "A list auction whole: profile, groups, customers (with their winners once closed), "
                       "every bid, and the awards per dealer",
            "security": [{"adminKey": []}], "tags": ["admin", "lists"], "parameters": [list_id, *page],
            "responses": {"200": success("open, closing or closed", "ListView"),
                          "401": answer("AUTH_INVALID: no admin key, a wrong one, or ADMIN_API_KEY unset"),
                          "404": not_found, "422": answer("FIELD_INVALID (offset, limit)")}}},
        "/v1/lists/preview": {"post": {
            "summary": "A list built from the prospect pool by a profile, without an auction: its groups per "
                       "cluster and probability band and its best customers, no PII (buyer API key)",
            "tags": ["lists"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ListPreview")}}},
            "responses": {"200": {"description": "the list", "content": {"application/json": {"schema": {
                              "type": "object"}}}},
                          "400": answer("PAYLOAD_MALFORMED: not JSON"), "401": answer("AUTH_INVALID: a buyer's key"),
                          "413": answer("PAYLOAD_TOO_LARGE"), "415": answer("UNSUPPORTED_MEDIA_TYPE"),
                          "422": answer("FIELD_MISSING or FIELD_INVALID (vertical, profile, band_width, top)"),
                          "429": rate}}},
        "/v1/lists/{list_id}": {"get": {
            "summary": "The list a dealer bids on: groups per cluster and band, customers best first without "
                       "PII, its own bids, and once closed what it won (buyer API key)",
            "tags": ["lists"], "parameters": [list_id, *page],
            "responses": {"200": success("open, closing or closed", "ListView"),
                          "401": answer("AUTH_INVALID: a buyer's key"), "404": not_found,
                          "422": answer("FIELD_INVALID (offset, limit)"), "429": rate}}},
        "/v1/lists/{list_id}/bids": {"post": {
            "summary": "A dealer bids a price per customer on one customer, a cluster or a probability band, "
                       "optionally with a count or budget limit (buyer API key)",
            "tags": ["lists"], "parameters": [list_id],
            "requestBody": {"required": True, "content": {
                media: {"schema": ref("ListBidBody")} for media in
                ("application/json", "application/xml", "text/xml", "application/x-www-form-urlencoded")}},
            "responses": {"201": success("accepted: the bid stands until the close", "ListBidAccepted"),
                          "400": answer("PAYLOAD_MALFORMED"), "401": answer("AUTH_INVALID: a buyer's key"),
                          "403": answer("AUTH_INVALID: the buyer is not active"), "404": not_found,
                          "409": answer("LIST_CLOSED: its window has ended"),
                          "413": answer("PAYLOAD_TOO_LARGE"), "415": answer("UNSUPPORTED_MEDIA_TYPE"),
                          "422": answer("FIELD_MISSING or FIELD_INVALID (scope, target, price, max_count, "
                                        "max_budget; a target naming no customer of the list), BELOW_RESERVE"),
                          "429": rate, "503": answer("SERVICE_UNAVAILABLE: retry")}}},
        "/v1/lists/{list_id}/won": {"get": {
            "summary": "After the close, the customers this dealer won, with their fields and prices, as JSON "
                       "or CSV (buyer API key)",
            "tags": ["lists"], "parameters": [list_id, {"name": "format", "in": "query", "required": False,
                                                        "schema": {"type": "string", "enum": ["json", "csv"],
                                                                   "default": "json"}}],
            "responses": {"200": {"description": "what it won (nothing: an empty list, or a CSV header alone)",
                                  "content": {"application/json": {"schema": ref("ListWon")},
                                              "text/csv": {"schema": {"type": "string"}}}},
                          "401": answer("AUTH_INVALID: a buyer's key"), "404": not_found,
                          "409": answer("LIST_OPEN: not closed yet"), "422": answer("FIELD_INVALID (format)"),
                          "429": rate}}},
    }
