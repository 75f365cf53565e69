"""PII identities: normalised, then keyed with HMAC-SHA256 under the platform secret.

Only these keys reach Redis, Kafka keys, logs and metrics; the raw values stay in the lead store.
The kind is part of the HMAC input, so the same digits as an SSN and as a phone never collide.

The secret can be rotated (docs/dedup.md#rotating-the-identity-key): the platform's keyring
(`HmacKeyring`, LEADX_HMAC_KEYS) names each secret by a key id, and while it lists several, an
identity is looked up under every one of them and recorded under the current one. Where an
identity key travels (events' `identity_keys`) it names its key id, `<id>:<hex>`, except under
the implicit id `k0` (LEADX_HMAC_KEY's), which stays bare hex as every record made before key ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from leadx.platform.config import IMPLICIT_HMAC_KEY_ID, HmacKeyring

_DIGITS = re.compile(r"\D")

SSN, EMAIL, HOME_PHONE = "ssn", "email", "home_phone"
IDENTITY_FIELDS = (SSN, EMAIL, HOME_PHONE)
# Lead fields that identify the consumer: never in a ping to buyers, whatever a buyer asks.
IDENTIFYING_FIELDS = frozenset({SSN, EMAIL, HOME_PHONE, "work_phone", "first_name", "last_name", "address",
                                "date_of_birth", "employer"})

# Providers that deliver `name+anything@` to `name@`, and those that also ignore dots in the name.
_PLUS_TAG_DOMAINS = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
                               "icloud.com", "me.com", "mac.com", "protonmail.com", "proton.me",
                               "fastmail.com"})
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def canonical_email(address: str) -> str:
    """One mailbox, one spelling: `Ana.Lee+cars@googlemail.com` is `analee@gmail.com`. Applied to
    identity keys when the provider-rules setting is on (DEDUP_EMAIL_PROVIDER_RULES)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    if domain in _PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{_DOMAIN_ALIASES.get(domain, domain)}"


def normalise(kind: str, value: str, email_provider_rules: bool = False) -> str:
    value = value.strip()
    if kind == SSN:
        return _DIGITS.sub("", value)
    if kind == EMAIL:
        value = value.lower()
        return canonical_email(value) if email_provider_rules else value
    if kind == HOME_PHONE:
        digits = _DIGITS.sub("", value)
        return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    raise ValueError(f"unknown identity kind {kind!r}")


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=4)
def _hmac_states(secret: bytes) -> tuple:
    """SHA-256 already fed with the HMAC key's inner and outer pads (RFC 2104): copying them costs
    half of what hmac.digest() pays to re-key on every call, and dedup keys three identities a lead."""
    key = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def hmac_sha256(secret: bytes, message: bytes) -> bytes:
    inner_state, outer_state = _hmac_states(secret)
    inner = inner_state.copy()
    inner.update(message)
    outer = outer_state.copy()
    outer.update(inner.digest())
    return outer.digest()


def identity_key(secret: bytes, kind: str, value: str, email_provider_rules: bool = True) -> str:
    return _keyed(secret, _message(kind, value, email_provider_rules))


def _message(kind: str, value: str, email_provider_rules: bool) -> bytes:
    return f"{kind}:{normalise(kind, value, email_provider_rules)}".encode()


def _keyed(secret: bytes, message: bytes) -> str:
    return hmac_sha256(secret, message)[:16].hex()  # 128 bits: collisions are out of reach at any realistic volume


def sha256_hex(kind: str, value: str) -> str:
    """The unkeyed SHA-256 of a normalised identity: what a seller may send in a PING instead of the
    email or phone itself (`email_sha256`, `home_phone_sha256`). Never stored or used as a dedup key:
    unkeyed, it is guessable from a list of emails; the HMAC identity key above is what dedup uses."""
    return hashlib.sha256(normalise(kind, value).encode()).hexdigest()


def identity_keys(secret: bytes, fields: dict[str, str], email_provider_rules: bool = True) -> dict[str, str]:
    """Identity keys for the identity fields present and non-empty in `fields`."""
    return {kind: identity_key(secret, kind, fields[kind], email_provider_rules)
            for kind in IDENTITY_FIELDS if fields.get(kind, "").strip()}


def identity_keys_under(keys: HmacKeyring, fields: Mapping[str, str],
                        email_provider_rules: bool = True) -> dict[str, list[str]]:
    """Each identity present and non-empty in `fields` under every key of the keyring, the current
    key's first, each `tagged` with its key id: what dedup checks and records, and events carry.
    One key (no rotation under way): one identity key per kind, as `identity_keys` gives."""
    out = {}
    for kind in IDENTITY_FIELDS:
        value = fields.get(kind, "")
        if value.strip():
            message = _message(kind, value, email_provider_rules)
            out[kind] = [tagged(key_id, _keyed(secret, message)) for key_id, secret in keys.keys]
    return out


def tagged(key_id: str, identity: str) -> str:
    """An identity key (32 hex digits) named by its key id, as events carry it: `<id>:<hex>`, or the
    bare hex under the implicit id, so that records made before key ids read as made under it."""
    return identity if key_id == IMPLICIT_HMAC_KEY_ID else f"{key_id}:{identity}"


def untagged(entry: str) -> tuple[str, str]:
    """(key id, identity key) of a `tagged` entry."""
    key_id, colon, identity = entry.rpartition(":")
    return (key_id, identity) if colon else (IMPLICIT_HMAC_KEY_ID, identity)


def listed(identities: Mapping[str, Sequence[str]]) -> list[str]:
    """Identity keys by kind (`identity_keys_under`) as one list, as events' `identity_keys` carry
    them: every kind's under the current key first, then every kind's under the next key, and so on."""
    rows = list(identities.values())
    return [row[depth] for depth in range(max(map(len, rows), default=0)) for row in rows if depth < len(row)]
