"""The OpenAPI document names the contract's error codes and every vertical's lead schema. That it matches
the served routes is checked against a running intake in tests/integration/test_intake_formats.py."""

from __future__ import annotations

from services.intake.openapi import ERROR_CODES, openapi_document


def test_the_contract_s_error_codes_are_all_in_the_document():
    required = {"FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH", "DUPLICATE", "AUTH_INVALID",
                "PAYLOAD_MALFORMED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED", "PING_MISMATCH"}
    assert required <= set(ERROR_CODES)
    schema = openapi_document()["components"]["schemas"]
    assert schema["Error"]["properties"]["code"]["enum"] == ERROR_CODES
    assert {"Lead_auto_loan", "Lead_auto_insurance"} <= set(schema)
