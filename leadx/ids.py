"""Identifiers. Lead ids are 10 random letters and digits (the patent): never a sequence, so
they reveal nothing about volumes."""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid

_ALPHABET = string.ascii_uppercase + string.digits
LEAD_ID_LENGTH = 10


def new_lead_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(LEAD_ID_LENGTH))


def is_lead_id(value: str) -> bool:
    return len(value) == LEAD_ID_LENGTH and all(c in _ALPHABET for c in value)


def new_event_id() -> str:
    return uuid.uuid4().hex


def derived_event_id(*parts: str) -> str:
    """A deterministic event id for an event derived from others, so that reprocessing after a
    crash emits the same id again and consumers can drop the repeat."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
