"""The headers that authenticate a call to a buyer, per its POST rules section (`auth ...`), and
the check a buyer makes of an HMAC signature (docs/post-rules.md shows it to integrators)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from leadx.delivery.post_adaptation.syntax import Auth


def auth_headers(auth: Auth, body: bytes, now_s: float | None = None) -> dict[str, str]:
    if auth.kind == "basic":
        token = base64.b64encode(f"{auth.user}:{auth.secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if auth.kind == "bearer":
        return {"Authorization": f"Bearer {auth.secret}"}
    if auth.kind == "hmac":
        return {auth.header: sign(auth.secret, body, int(time.time() if now_s is None else now_s))}
    return {}


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the buyer recomputes it with the
    shared secret, and refuses a stale `t` so a captured request cannot be replayed later."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now_s: float, tolerance_s: int = 300) -> bool:
    """What a buyer does with the header (used by the test buyers; documented for integrators)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now_s - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)
