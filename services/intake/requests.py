"""What every intake endpoint shares: its error type, API-key authentication (with failed attempts
throttled per source address) and the per-account rate limit, a bounded body read, and reading the
request's own money and text fields."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect, Request

from leadx.accounts import accounts
from leadx.accounts.api_keys import KeyCache, bearer_key
from services.intake.auth_throttle import AuthThrottled, FailedAuthThrottle, source_address
from services.intake.formats import Answer
from services.intake.guards import RateLimiter


class ApiError(Exception):
    def __init__(self, http_status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message, self.field = http_status, code, message, field
        self.headers = headers or {}

    def answer(self) -> Answer:
        return Answer("rejected", self.http_status,
                      errors=[{"code": self.code, "field": self.field, "message": self.message}],
                      headers=self.headers)


class ApiKeyAuth:
    """The seller (or buyer) a request's `Authorization: Bearer <api key>` belongs to. A key known
    from an earlier request answers from the cache; any other is looked up in SQL only while its
    source address is under the failed-authentication throttle (services.intake.auth_throttle)."""

    def __init__(self, sessions: sessionmaker[Session], throttle: FailedAuthThrottle,
                 lookup: Callable[[Session, str], str | None] = accounts.seller_for_key) -> None:
        self.keys = KeyCache(sessions, lookup)
        self.throttle = throttle

    async def account_id(self, request: Request) -> str:
        account_id = await self.find(request)
        if account_id is None:
            await self.throttle.failed(source_address(request))
            raise invalid_key()
        return account_id

    async def find(self, request: Request) -> str | None:
        """The account of the request's key, or None when this kind of account has no such key;
        no failure is counted (a route that takes a seller's or a buyer's key asks both first)."""
        key = bearer_key(request.headers.get("authorization", ""))
        if key is None:
            raise ApiError(401, "AUTH_INVALID", "send your API key as 'Authorization: Bearer <key>'")
        account_id = self.keys.known(key)
        if account_id is not None:
            return account_id
        await refuse_if_throttled(self.throttle, source_address(request))
        return await self.keys.resolve(key)


async def refuse_if_throttled(throttle: FailedAuthThrottle, address: str) -> None:
    """429 AUTH_THROTTLED while `address` is over its failed authentications."""
    try:
        await throttle.check(address)
    except AuthThrottled as throttled:
        raise ApiError(429, "AUTH_THROTTLED",
                       f"too many requests with API keys that are not valid from {address}; "
                       f"retry in {throttled.retry_after_s} s with a valid key",
                       headers={"Retry-After": str(throttled.retry_after_s)}) from None


def invalid_key() -> ApiError:
    return ApiError(401, "AUTH_INVALID", "the API key is not valid or has been revoked")


class Callers:
    """The sellers' and the buyers' API keys (each cache shared by every route that reads it) and
    the rate limit: every account, seller or buyer, gets the same per-second allowance, shared by
    all intake replicas."""

    def __init__(self, sessions: sessionmaker[Session], limiter: RateLimiter, throttle: FailedAuthThrottle) -> None:
        self.seller_keys = ApiKeyAuth(sessions, throttle)
        self.buyer_keys = ApiKeyAuth(sessions, throttle, accounts.buyer_for_key)
        self.limiter = limiter
        self.throttle = throttle

    async def seller_or_buyer(self, request: Request) -> tuple[str | None, str | None]:
        """(seller id, None) or (None, buyer id) for a route either may call; a key neither knows
        counts once as a failed authentication."""
        seller_id = await self.seller_keys.find(request)
        if seller_id is not None:
            return seller_id, None
        buyer_id = await self.buyer_keys.find(request)
        if buyer_id is not None:
            return None, buyer_id
        await self.throttle.failed(source_address(request))
        raise invalid_key()

    async def limited(self, request: Request, keys: ApiKeyAuth) -> str:
        """The account `keys` authenticates the request as, once the rate limit lets it through."""
        account_id = await keys.account_id(request)
        limited = await self.limiter.take(account_id)
        if limited:
            raise ApiError(429, "RATE_LIMITED", f"at most {self.limiter.per_second} requests per second per account",
                           headers={"Retry-After": str(limited.retry_after_s)})
        return account_id


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {max_bytes} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {max_bytes} bytes")
    except ClientDisconnect:
        raise ApiError(400, "PAYLOAD_MALFORMED", "the client disconnected mid-body") from None
    return bytes(body)


def cents_field(payload: dict, name: str) -> int | None:
    """A money field of the request itself (JSON number or, from XML and forms, digits)."""
    value = payload.get(name)
    if value is None or value == "":
        return None
    # isascii: "²".isdigit() is true, but int() refuses it.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(422, "FIELD_INVALID", f"{name} must be a non-negative whole number of cents", field=name)
    return value


def text_field(payload: dict, name: str) -> str:
    value = payload.get(name)
    return value.strip() if isinstance(value, str) else ""
