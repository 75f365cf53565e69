"""The sellers' API as an OpenAPI 3.1 document, served at /openapi.json.

Written by hand (the app is plain Starlette) and held to the app by tests/unit/test_intake_openapi.py:
every route and method of the app is documented, and nothing documented is missing from the app.
"""

from __future__ import annotations

from leadx.verticals import load_verticals

ERROR_CODES = [
    "FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH", "DUPLICATE", "AUTH_INVALID",
    "PAYLOAD_MALFORMED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED", "PING_MISMATCH",
    "LEAD_NOT_FOUND", "NOT_FOUND", "METHOD_NOT_ALLOWED", "SERVICE_UNAVAILABLE",
    "RETURN_WINDOW_CLOSED", "RETURN_RATE_EXCEEDED", "ACCOUNT_NOT_FOUND", "NOT_A_TRADING_PARTNER",
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
                                              "sold", "unsold", "returned"]},
        "lead_id": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9]{10}$"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}},
        "status_url": {"type": "string", "description": "on 202: where to ask for the verdict"},
        "ping_token": {"type": "string", "description": "PING only: send it with the POST"},
        "expires_at_ms": {"type": "integer", "description": "PING only: when the token expires"},
        "wanted": {"type": "boolean", "description": "PING only: some eligible buyer can take the lead"},
        "credited_cents": {"type": "integer", "description": "return only: the price credited back to the buyer"},
        "returned_at_ms": {"type": "integer", "description": "return only: when the return was recorded"},
        "your_stars": {"type": ["integer", "null"], "description": "ratings only: your rating of the account"},
        "average_stars": {"type": ["number", "null"], "description": "ratings only: every rater's average"},
        "ratings": {"type": "integer", "description": "ratings only: how many have rated the account"},
    }}
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

    def content(schema: dict) -> dict:
        return {media: {"schema": schema} for media in
                ("application/json", "application/xml", "text/xml", "application/x-www-form-urlencoded")}

    answers = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}},
                           "application/xml": {"schema": {"$ref": "#/components/schemas/Answer"}}}}

    def responses(codes: dict[str, str]) -> dict:
        return {code: {"description": text, **answers} for code, text in codes.items()}

    common = {"400": "PAYLOAD_MALFORMED", "401": "AUTH_INVALID", "413": "PAYLOAD_TOO_LARGE",
              "415": "UNSUPPORTED_MEDIA_TYPE", "422": "rejected: FIELD_MISSING, FIELD_INVALID, ZIP_UNKNOWN, "
              "ZIP_STATE_MISMATCH, PING_MISMATCH", "429": "RATE_LIMITED, with Retry-After"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadx seller intake", "version": "1",
                 "description": "PING and POST consumer leads; see docs/integration-spec.md."},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _problem(ERROR_CODES), "Warning": _problem(WARNING_CODES), "Answer": answer,
                        "Ping": ping, **leads},
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
                                "schema": {"type": "string", "maxLength": 200}}],
                "requestBody": {"required": True, "content": content(bodies)},
                "responses": responses({"200": "accepted", "202": "pending: ask status_url", "409": "DUPLICATE",
                                        "503": "SERVICE_UNAVAILABLE: retry", **common}),
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
