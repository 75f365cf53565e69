"""What every intake endpoint shares: its error type, API-key authentication (with failed attempts
throttled per source address), the rate limits (per account, for the operators' admin key, and per
source address for requests that carry no key), a bounded body read, and reading the request's own
money and text fields."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect, Request

from leadx.accounts import accounts
from leadx.accounts.api_keys import DEFAULT_TTL_S, KeyCache, bearer_key
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
    source address is under the failed-authentication throttle (services.intake.auth_throttle). A
    request with no key at all is held to its address's allowance (`addresses`) before its 401."""

    def __init__(self, sessions: sessionmaker[Session], throttle: FailedAuthThrottle,
                 lookup: Callable[[Session, str], str | None] = accounts.seller_for_key,
                 addresses: RateLimiter | None = None, key_ttl_s: float = DEFAULT_TTL_S) -> None:
        self.keys = KeyCache(sessions, lookup, key_ttl_s)
        self.throttle = throttle
        self.addresses = addresses

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
            await within_address_allowance(self.addresses, request)
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


async def within(limiter: RateLimiter | None, bucket: str, per_what: str) -> None:
    """429 RATE_LIMITED, with Retry-After, while `bucket` is over `limiter`'s allowance (None: no limit)."""
    if limiter is None:
        return
    limited = await limiter.take(bucket)
    if limited:
        raise ApiError(429, "RATE_LIMITED", f"at most {limiter.per_second} requests per second {per_what}; "
                       f"retry in {limited.retry_after_s} s", headers={"Retry-After": str(limited.retry_after_s)})


async def within_address_allowance(addresses: RateLimiter | None, request: Request) -> None:
    """A request that carries no key is held to its source address's allowance."""
    address = source_address(request)
    await within(addresses, address, f"from {address} without an API key")


class Callers:
    """Who may call, and how often: the sellers' and the buyers' API keys (each cache shared by
    every route that reads it), the failed-authentication throttle, and the rate limits, each
    shared by all intake replicas: every account, seller or buyer, gets the same per-second
    allowance (`limiter`); the operators' admin key gets its own (`operators`); and a request that
    carries no key (the OpenAPI document, health and readiness, a request without its key) is held
    to its source address's (`addresses`). None switches a limit off. Keys are cached for `key_ttl_s`."""

    def __init__(self, sessions: sessionmaker[Session], limiter: RateLimiter, throttle: FailedAuthThrottle,
                 operators: RateLimiter | None = None, addresses: RateLimiter | None = None,
                 key_ttl_s: float = DEFAULT_TTL_S) -> None:
        self.seller_keys = ApiKeyAuth(sessions, throttle, addresses=addresses, key_ttl_s=key_ttl_s)
        self.buyer_keys = ApiKeyAuth(sessions, throttle, accounts.buyer_for_key, addresses, key_ttl_s)
        self.limiter = limiter
        self.throttle = throttle
        self.operators = operators
        self.addresses = addresses

    async def seller_or_buyer(self, request: Request) -> tuple[str | None, str | None]:
        """(seller id, None) or (None, buyer id) for a route either may call, once the account's
        rate limit lets it through; a key neither knows counts once as a failed authentication."""
        seller_id = await self.seller_keys.find(request)
        buyer_id = await self.buyer_keys.find(request) if seller_id is None else None
        account_id = seller_id or buyer_id
        if account_id is None:
            await self.throttle.failed(source_address(request))
            raise invalid_key()
        await within(self.limiter, account_id, "per account")
        return seller_id, buyer_id

    async def limited(self, request: Request, keys: ApiKeyAuth) -> str:
        """The account `keys` authenticates the request as, once the rate limit lets it through."""
        account_id = await keys.account_id(request)
        await within(self.limiter, account_id, "per account")
        return account_id

    async def operator(self) -> None:
        """An admin API request whose key was right, once the operators' rate limit lets it through."""
        await within(self.operators, "admin", "with the admin key")

    async def anonymous(self, request: Request) -> None:
        """A request that carries no key, once its address's rate limit lets it through."""
        await within_address_allowance(self.addresses, request)


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


MAX_CENTS = 10**12  # ten billion dollars: beyond any price, within the events' and SQL's 64-bit integers


def cents_field(payload: dict, name: str) -> int | None:
    """A money field of the request itself (JSON number or, from XML and forms, digits), at most
    MAX_CENTS; absent, null or empty is None."""
    value = payload.get(name)
    if value is None or value == "":
        return None
    # isascii: "²".isdigit() is true, but int() refuses it.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CENTS:
        raise ApiError(422, "FIELD_INVALID", f"{name} must be a whole number of cents from 0 to {MAX_CENTS}",
                       field=name)
    return value


def text_field(payload: dict, name: str) -> str:
    """A text field of the request itself, trimmed; absent, null or empty is "". Any other JSON
    value (a number, true, a list) is refused: the field is text."""
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, "FIELD_INVALID", f"{name} must be text", field=name)
    return value.strip()
