"""Identifiers. Lead ids are 10 random letters and digits: never a sequence, so they reveal
nothing about volumes."""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid

_ALPHABET = string.ascii_uppercase + string.digits
LEAD_ID_LENGTH = 10


# The largest multiple of the alphabet's size below 256: random bytes under it map evenly onto
# the alphabet, the few above it are dropped (rejection sampling).
_EVEN_BYTES = 256 - 256 % len(_ALPHABET)


def new_lead_id() -> str:
    # One call to the system's random source per id, not one per character: secrets.choice
    # per character cost ~25 µs, 4% of an intake POST.
    chars: list[str] = []
    while len(chars) < LEAD_ID_LENGTH:
        chars += [_ALPHABET[b % len(_ALPHABET)] for b in secrets.token_bytes(16) if b < _EVEN_BYTES]
    return "".join(chars[:LEAD_ID_LENGTH])


def is_lead_id(value: str) -> bool:
    return len(value) == LEAD_ID_LENGTH and all(c in _ALPHABET for c in value)


def new_event_id() -> str:
    return uuid.uuid4().hex


def derived_event_id(*parts: str) -> str:
    """A deterministic event id for an event derived from others, so that reprocessing after a
    crash emits the same id again and consumers can drop the repeat."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
