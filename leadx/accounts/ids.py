"""Account ids (a prefix and 10 random letters and digits: never a sequence) and the error for an
account that does not exist."""

from __future__ import annotations

import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_account_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


class UnknownAccount(LookupError):
    pass
