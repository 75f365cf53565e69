"""A consumer's identifying fields, sealed before the lead leaves the intake.

Every Kafka record that carries a lead (`lead.submitted`, `lead.verified`, `lead.scored`,
`auction.closed`, the auction's changelog, dead letters) holds its identifying fields (name, SSN,
email, phones, street address, date of birth, employer: `pii.IDENTIFYING_FIELDS`) only in
`Lead.sealed`; `Lead.fields` keeps the rest. Whoever reads a topic without the keys reads no consumer.

Envelope encryption: each lead gets its own random 256-bit data key; the fields are AES-256-GCM
under it, and the data key is AES-256-GCM under a key-encryption key (KEK) named by `key_id`. A key
per lead keeps every KEK far from AES-GCM's limit of about 2^32 random nonces per key, and lets a KEK
be rotated without re-encrypting anything: records name the KEK that wrapped them.

The lead id is the associated data of both, so a sealed blob moved onto another lead does not open.

The KEKs come from `LEADX_PII_KEYS`: `id:base64,id:base64` (32 random bytes each: `openssl rand
-base64 32`); the first seals, all open. The services that seal or open a lead (intake,
dedup, scoring, delivery, ledger) need it; the auction passes sealed leads through without it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads.pii import IDENTIFYING_FIELDS
from leadx.platform.config import ConfigError, env_str

KEYS_VARIABLE = "LEADX_PII_KEYS"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class SealError(ValueError):
    """A sealed lead cannot be opened: an unknown key id, or a record altered or moved."""


@dataclass(frozen=True)
class PiiKeyring:
    current_id: str
    _keys: Mapping[str, AESGCM] = field(repr=False)

    @classmethod
    def parse(cls, text: str, variable: str = KEYS_VARIABLE) -> PiiKeyring:
        keys: dict[str, AESGCM] = {}
        for entry in (e.strip() for e in text.split(",")):
            key_id, colon, encoded = entry.partition(":")
            if not colon or not _KEY_ID.fullmatch(key_id):
                raise ConfigError(f"{variable}: each key is id:base64 (id of letters, digits, . _ -), got {key_id!r}")
            if key_id in keys:
                raise ConfigError(f"{variable}: key id {key_id!r} is listed twice")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{variable}: key {key_id!r} is not base64") from None
            if len(raw) != KEY_BYTES:
                raise ConfigError(f"{variable}: key {key_id!r} must be {KEY_BYTES} bytes, got {len(raw)}")
            keys[key_id] = AESGCM(raw)
        first = text.split(",", 1)[0].strip().partition(":")[0]
        return cls(first, keys)

    @classmethod
    def from_env(cls) -> PiiKeyring:
        return cls.parse(env_str(KEYS_VARIABLE))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, lead: ev.Lead) -> ev.Lead:
        """Moves the lead's identifying fields from `fields` into `sealed`, in place; returns the lead.
        A lead already sealed keeps its seal and gains the identifying fields found in `fields`."""
        plain = {k: v for k, v in lead.fields.items() if k in IDENTIFYING_FIELDS}
        if not plain:
            return lead
        identifying = self.open(lead) | plain
        for name in plain:
            del lead.fields[name]
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        aad = _associated(lead.lead_id)
        lead.sealed.CopyFrom(ev.SealedFields(
            key_id=self.current_id,
            wrapped_key=_encrypt(self._keys[self.current_id], data_key, aad + self.current_id.encode()),
            ciphertext=_encrypt(AESGCM(data_key), json.dumps(identifying, separators=(",", ":")).encode(), aad),
        ))
        return lead

    def open(self, lead: ev.Lead) -> dict[str, str]:
        """The lead's sealed fields (none for a lead without a seal)."""
        if not lead.HasField("sealed"):
            return {}
        sealed = lead.sealed
        kek = self._keys.get(sealed.key_id)
        if kek is None:
            raise SealError(f"lead {lead.lead_id} is sealed under key {sealed.key_id!r}, which {KEYS_VARIABLE} "
                            f"does not list (it lists {', '.join(self._keys)})")
        aad = _associated(lead.lead_id)
        try:
            data_key = _decrypt(kek, sealed.wrapped_key, aad + sealed.key_id.encode())
            opened = json.loads(_decrypt(AESGCM(data_key), sealed.ciphertext, aad))
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"lead {lead.lead_id}: its sealed fields do not open under key {sealed.key_id!r} "
                            "(altered, or sealed for another lead)") from exc
        return {str(k): str(v) for k, v in opened.items()}

    def fields_of(self, lead: ev.Lead) -> dict[str, str]:
        """All the lead's fields: the plain ones and the sealed ones."""
        return dict(lead.fields) | self.open(lead)

    def opened(self, lead: ev.Lead) -> ev.Lead:
        """A copy of the lead with every field in `fields` and no seal, for code that reads a whole
        lead (a POST to its buyer). Kept in memory: what is published again is the sealed original."""
        copy = ev.Lead()
        copy.CopyFrom(lead)
        copy.ClearField("sealed")
        copy.fields.update(self.open(lead))
        return copy


def new_key(key_id: str) -> str:
    """One `id:base64` entry of `LEADX_PII_KEYS`, with a fresh random key."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1 to 32 letters, digits, '.', '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def _associated(lead_id: str) -> bytes:
    return f"leadx-pii/v1/{lead_id}/".encode()


def _encrypt(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _decrypt(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) <= NONCE_BYTES:
        raise ValueError("too short")
    return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
