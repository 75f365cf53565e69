"""PING tokens: what a seller's PING said, signed, so that the POST can be held to it (bait-and-switch).

Stateless: the token is the PING's checked fields plus the seller, vertical and expiry, signed with
HMAC-SHA256 under a key derived from the platform secret, so any intake replica can check it. It
carries no raw identity: the SSN travels as its HMAC identity key, hashed email and phone as the
seller sent them (SHA-256 of the normalised value).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from leadx.leads import pii

# The fields a PING may carry (the minimal subset) and whose POST values must not differ.
PING_FIELDS = ("zip", "gross_monthly_income", "ssn")
HASHED_FIELDS = {"email_sha256": pii.EMAIL, "home_phone_sha256": pii.HOME_PHONE}


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class PingClaims:
    seller_id: str
    vertical: str
    buyer_id: str  # "" for an auction sale
    expires_at_ms: int
    values: dict[str, str]  # zip, gross_monthly_income, ssn identity key, hashed email / phone


class PingTokens:
    def __init__(self, platform_secret: bytes) -> None:
        # A key of its own, so a token's signature can never be confused with an identity key.
        self._key = hmac.new(platform_secret, b"leadx ping token v1", hashlib.sha256).digest()

    def _sign(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()[:20]).decode().rstrip("=")

    def issue(self, claims: PingClaims) -> str:
        body = json.dumps({"s": claims.seller_id, "v": claims.vertical, "b": claims.buyer_id,
                           "e": claims.expires_at_ms, "f": claims.values}, separators=(",", ":"), sort_keys=True)
        encoded = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{encoded}.{self._sign(body.encode())}"

    def read(self, token: str, seller_id: str, now_ms: int) -> PingClaims:
        """The token's claims if it is genuine, this seller's and unexpired; TokenError otherwise."""
        encoded, _, signature = token.partition(".")
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise TokenError("ping_token is not a token this exchange issued") from None
        if not signature or not hmac.compare_digest(signature, self._sign(body)):
            raise TokenError("ping_token is not a token this exchange issued")
        raw = json.loads(body)
        claims = PingClaims(raw["s"], raw["v"], raw["b"], raw["e"], raw["f"])
        if claims.seller_id != seller_id:
            raise TokenError("ping_token was issued to another seller")
        if claims.expires_at_ms < now_ms:
            raise TokenError("ping_token has expired; PING again")
        return claims


def ping_values(fields: dict[str, str], hashed: dict[str, str], secret: bytes) -> dict[str, str]:
    """What a PING is held to: its verified minimal fields (SSN as its identity key) and hashes."""
    values = {name: fields[name] for name in PING_FIELDS if name in fields and name != "ssn"}
    if "ssn" in fields:
        values["ssn"] = pii.identity_key(secret, pii.SSN, fields["ssn"])
    values.update(hashed)
    return values


def mismatches(claims: PingClaims, vertical: str, buyer_id: str, fields: dict[str, str],
               secret: bytes) -> list[str]:
    """The fields in which a POST contradicts its PING (names only: the seller sent both)."""
    different = []
    if claims.vertical != vertical:
        different.append("vertical")
    if claims.buyer_id != buyer_id:
        different.append("buyer")
    posted = ping_values(fields, {}, secret)
    for name, pinged in claims.values.items():
        if name in HASHED_FIELDS:
            kind = HASHED_FIELDS[name]
            value = fields.get(kind)
            if value is None or pii.sha256_hex(kind, value) != pinged:
                different.append(kind)
        elif posted.get(name) != pinged:
            different.append(name)
    return different
