"""PING tokens: genuine, per seller, expiring, and holding the POST to what the PING said."""

from __future__ import annotations

import pytest

from leadx.leads.pii import sha256_hex
from services.intake.ping_tokens import PingClaims, PingTokens, TokenError, mismatches, ping_values

SECRET = b"unit-test-secret-0123456789"
PINGED = {"zip": "10001", "gross_monthly_income": "450000", "ssn": "123456789"}
HASHES = {"email_sha256": sha256_hex("email", "Ana@Example.com")}


def claims(**changes) -> PingClaims:
    base = dict(seller_id="s_1", vertical="auto_loan", buyer_id="", expires_at_ms=2_000,
                values=ping_values(PINGED, HASHES, SECRET))
    return PingClaims(**(base | changes))


def test_a_token_reads_back_for_its_seller_until_it_expires():
    tokens = PingTokens(SECRET)
    token = tokens.issue(claims())
    assert tokens.read(token, "s_1", now_ms=1_999) == claims()
    with pytest.raises(TokenError, match="expired"):
        tokens.read(token, "s_1", now_ms=2_001)
    with pytest.raises(TokenError, match="another seller"):
        tokens.read(token, "s_2", now_ms=1_000)


def test_the_token_carries_no_raw_ssn():
    token = PingTokens(SECRET).issue(claims())
    import base64
    body = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert "123456789" not in body


@pytest.mark.parametrize("forge", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),      # signature altered
    lambda t: "e30" + t[t.index("."):],                                # body replaced
    lambda t: t.split(".")[0],                                         # no signature
    lambda t: "!!!.???",
])
def test_altered_or_foreign_tokens_are_refused(forge):
    tokens = PingTokens(SECRET)
    with pytest.raises(TokenError, match="not a token this exchange issued"):
        tokens.read(forge(tokens.issue(claims())), "s_1", now_ms=1_000)
    other_platform = PingTokens(b"another-secret-0123456789").issue(claims())
    with pytest.raises(TokenError):
        tokens.read(other_platform, "s_1", now_ms=1_000)


def test_a_post_matching_its_ping_passes():
    posted = PINGED | {"email": "ana@example.com ", "first_name": "Ana"}
    assert mismatches(claims(), "auto_loan", "", posted, SECRET) == []


def test_bait_and_switch_is_named_field_by_field():
    posted = {"zip": "10002", "gross_monthly_income": "990000", "ssn": "123456789", "email": "bob@example.com"}
    assert mismatches(claims(), "auto_loan", "", posted, SECRET) == ["zip", "gross_monthly_income", "email"]
    assert mismatches(claims(), "auto_insurance", "b_x", PINGED | {"email": "ana@example.com"}, SECRET) == [
        "vertical", "buyer"]
    assert mismatches(claims(), "auto_loan", "", {**PINGED, "ssn": "123456780", "email": "ana@example.com"},
                      SECRET) == ["ssn"]
