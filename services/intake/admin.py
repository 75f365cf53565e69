"""The operators' admin API (`/v1/admin/...`): accounts and their keys, buyers' auction settings and AutoBid
profiles, partnerships and sellers' choices of buyers. docs/admin-api.md is its reference.

Every request carries `Authorization: Bearer <ADMIN_API_KEY>`; without an ADMIN_API_KEY the whole
admin API answers 401, so an intake deployed without one exposes nothing. The admin key has a rate
limit of its own (services.intake.requests.Callers). Bodies are I-JSON (profiles are nested documents
that the sellers' flat formats cannot carry): numbers within ±(2^53 - 1), every string Unicode text.
The rules live in leadx.accounts.accounts, leadx.accounts.buyer_settings and
leadx.accounts.partnerships; this module only authenticates, reads the request, runs them in a
worker thread and turns their refusals into answers.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadx.accounts.accounts import (
    create_buyer,
    create_seller,
    revoke_buyer_key,
    revoke_seller_key,
    rotate_buyer_key,
    rotate_seller_key,
    set_buyer_active,
)
from leadx.accounts.ids import UnknownAccount
from leadx.accounts.api_keys import bearer_key
from leadx.accounts.buyer_settings import (
    SETTINGS,
    buyer_settings,
    check_buyer_settings,
    import_document,
    replace_profiles,
    update_buyer,
)
from leadx.accounts.buyer_urls import BuyerUrlRefused, BuyerUrlRules
from leadx.accounts.partnerships import (
    NoPartnership,
    add_partnership,
    remove_partnership,
    seller_relations,
    set_choice,
    set_sells_to,
)
from leadx.auction.selection.market import AUTOBID, WHOLESALE
from leadx.platform.logs import log_event
from services.intake.auth_throttle import source_address
from services.intake.endpoints import Handler, endpoint
from services.intake.formats import Answer, json_leaves, json_number, lone_surrogate
from services.intake.requests import ApiError, Callers, read_body, refuse_if_throttled, text_field

log = logging.getLogger(__name__)

MAX_ADMIN_BODY_BYTES = 64 * 1024
MAX_NAME = 200  # the accounts tables' name columns
MAX_URL = 2000
MAX_JSON_NUMBER = 2**53 - 1  # I-JSON (RFC 7493): what every JSON reader holds exactly
ACCOUNT_NOT_FOUND, PARTNERSHIP_NOT_FOUND = "ACCOUNT_NOT_FOUND", "PARTNERSHIP_NOT_FOUND"

T = TypeVar("T")


async def check_admin_key(request: Request, expected: bytes, callers: Callers | None = None) -> None:
    """The operators' key, or 401: no ADMIN_API_KEY (`expected` empty) means no admin API. A wrong
    key counts as a failed authentication of its address (services.intake.auth_throttle), and an
    address over its allowance is refused before its key is compared, the right one too: else a
    guesser would still learn when it guessed right. A request with no key is held to its address's
    rate limit, one with the right key to the operators' (`callers`; None: neither is counted)."""
    if not expected:
        if callers is not None:
            await callers.anonymous(request)
        raise ApiError(401, "AUTH_INVALID", "the admin API is off: set ADMIN_API_KEY",
                       headers={"WWW-Authenticate": "Bearer"})
    address = source_address(request)
    if callers is not None:
        await refuse_if_throttled(callers.throttle, address)
    key = bearer_key(request.headers.get("authorization", ""))
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any byte.
    if key is None or not hmac.compare_digest(key.encode(), expected):
        if callers is not None:
            await (callers.anonymous(request) if key is None else callers.throttle.failed(address))
        raise ApiError(401, "AUTH_INVALID", "send the admin key as 'Authorization: Bearer <ADMIN_API_KEY>'",
                       headers={"WWW-Authenticate": "Bearer"})
    if callers is not None:
        await callers.operator()


def admin_endpoint(handler: Handler, expected: bytes,
                   callers: Callers | None = None) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint (services.intake.endpoints) for an operators' handler: the admin key
    and its rate limit are checked first."""
    async def authenticated(request: Request) -> Answer | Response:
        await check_admin_key(request, expected, callers)
        return await handler(request)
    return endpoint(authenticated)


class Admin:
    def __init__(self, sessions: sessionmaker[Session], admin_api_key: str,
                 buyer_urls: BuyerUrlRules | None = None, callers: Callers | None = None) -> None:
        self.sessions = sessions
        self.expected = admin_api_key.encode()
        # The failed-authentication throttle and the rate limits (None: neither counted nor limited).
        self.callers = callers
        # Where buyers' URLs may point (leadx.accounts.buyer_urls): BUYER_URLS_ALLOW_PRIVATE, read at start.
        self.buyer_urls = buyer_urls if buyer_urls is not None else BuyerUrlRules.from_env()

    def routes(self) -> list[Route]:
        def key_checked(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            return admin_endpoint(handler, self.expected, self.callers)

        return [
            Route("/v1/admin/sellers", key_checked(self.create_seller), methods=["POST"]),
            Route("/v1/admin/buyers", key_checked(self.create_buyer), methods=["POST"]),
            Route("/v1/admin/buyers/{buyer_id}", key_checked(self.show_buyer), methods=["GET"]),
            Route("/v1/admin/buyers/{buyer_id}", key_checked(self.change_buyer), methods=["PATCH"]),
            Route("/v1/admin/buyers/{buyer_id}/profiles", key_checked(self.put_profiles), methods=["PUT"]),
            Route("/v1/admin/buyers/{buyer_id}/rotate-key", key_checked(self.rotate_buyer_key),
                  methods=["POST"]),
            Route("/v1/admin/buyers/{buyer_id}/revoke-key", key_checked(self.revoke_buyer_key),
                  methods=["POST"]),
            Route("/v1/admin/buyers/{buyer_id}/deactivate", key_checked(self.buyer_active), methods=["POST"]),
            Route("/v1/admin/buyers/{buyer_id}/reactivate", key_checked(self.buyer_active), methods=["POST"]),
            Route("/v1/admin/sellers/{seller_id}/rotate-key", key_checked(self.rotate_seller_key),
                  methods=["POST"]),
            Route("/v1/admin/sellers/{seller_id}/revoke-key", key_checked(self.revoke_seller_key),
                  methods=["POST"]),
            Route("/v1/admin/profiles/import", key_checked(self.import_profiles), methods=["POST"]),
            Route("/v1/admin/partnerships", key_checked(self.put_partnership), methods=["PUT"]),
            Route("/v1/admin/partnerships", key_checked(self.delete_partnership), methods=["DELETE"]),
            Route("/v1/admin/sellers/{seller_id}/relations", key_checked(self.relations), methods=["GET"]),
            Route("/v1/admin/sellers/{seller_id}/sells-to", key_checked(self.put_sells_to), methods=["PUT"]),
            Route("/v1/admin/sellers/{seller_id}/buyers/{buyer_id}", key_checked(self.choice),
                  methods=["PUT", "DELETE"]),
        ]

    async def _run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(_in_session, self.sessions, work)

    # ------------------------------------------------------------------ accounts

    async def create_seller(self, request: Request) -> Answer:
        body = _only(await json_object(request), {"name"})
        name = _name(body)
        created = await self._run(lambda session: create_seller(session, name))
        log_event(log, "admin: seller created", seller_id=created.id)
        return Answer("created", 201, extra={"id": created.id, "api_key": created.api_key})

    async def create_buyer(self, request: Request) -> Answer:
        body = _only(await json_object(request), {"name", "ping_url", "post_url", *SETTINGS})
        name = _name(body)
        kind = body.get("kind", WHOLESALE)
        try:  # first: whether a ping URL is needed depends on it
            check_buyer_settings(kind=kind)
        except ValueError as error:
            raise ApiError(422, "FIELD_INVALID", str(error), field="kind") from None
        ping_url = _url(body, "ping_url", required=kind != AUTOBID)
        post_url = _url(body, "post_url", required=False)
        settings = {k: body[k] for k in ("kind", "weight", "time_zone") if k in body}
        _not_null(settings)
        caps = body.get("caps")

        created = await self._run(
            lambda session: create_buyer(session, name, ping_url, post_url, caps=caps, urls=self.buyer_urls,
                                         **settings))
        log_event(log, "admin: buyer created", buyer_id=created.id, kind=kind)
        return Answer("created", 201, extra={"id": created.id, "api_key": created.api_key})

    async def show_buyer(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        return Answer("ok", 200, extra=await self._run(lambda session: buyer_settings(session, buyer_id)))

    async def change_buyer(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        settings = _only(await json_object(request), set(SETTINGS))
        if not settings:
            raise ApiError(422, "FIELD_MISSING", f"give at least one of {', '.join(SETTINGS)}")
        _not_null({k: v for k, v in settings.items() if k != "caps"})  # null caps: no caps

        def change(session: Session) -> dict:
            update_buyer(session, buyer_id, **settings)
            return buyer_settings(session, buyer_id)

        found = await self._run(change)
        log_event(log, "admin: buyer settings changed", buyer_id=buyer_id, settings=sorted(settings))
        return Answer("ok", 200, extra=found)

    # ------------------------------------------------------------------ keys and deactivation
    # Keys are stored only as hashes, so a new one is shown once, here. The readers cache keys for
    # API_KEY_CACHE_SECONDS (30 s by default): an old or revoked key works at most that long after the answer.

    async def rotate_buyer_key(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        created = await self._run(lambda session: rotate_buyer_key(session, buyer_id))
        log_event(log, "admin: buyer key rotated", buyer_id=buyer_id)
        return Answer("ok", 200, extra={"id": created.id, "api_key": created.api_key})

    async def revoke_buyer_key(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        await self._run(lambda session: revoke_buyer_key(session, buyer_id))
        log_event(log, "admin: buyer key revoked", buyer_id=buyer_id)
        return Answer("ok", 200, extra={"id": buyer_id})

    async def buyer_active(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        active = request.url.path.endswith("/reactivate")

        def change(session: Session) -> dict:
            set_buyer_active(session, buyer_id, active)
            return buyer_settings(session, buyer_id)

        found = await self._run(change)
        log_event(log, "admin: buyer reactivated" if active else "admin: buyer deactivated", buyer_id=buyer_id)
        return Answer("ok", 200, extra=found)

    async def rotate_seller_key(self, request: Request) -> Answer:
        seller_id = request.path_params["seller_id"]
        created = await self._run(lambda session: rotate_seller_key(session, seller_id))
        log_event(log, "admin: seller key rotated", seller_id=seller_id)
        return Answer("ok", 200, extra={"id": created.id, "api_key": created.api_key})

    async def revoke_seller_key(self, request: Request) -> Answer:
        seller_id = request.path_params["seller_id"]
        await self._run(lambda session: revoke_seller_key(session, seller_id))
        log_event(log, "admin: seller key revoked", seller_id=seller_id)
        return Answer("ok", 200, extra={"id": seller_id})

    # ------------------------------------------------------------------ AutoBid profiles

    async def put_profiles(self, request: Request) -> Answer:
        buyer_id = request.path_params["buyer_id"]
        body = await json_body(request)
        if isinstance(body, dict):
            body = _only(body, {"profiles"}).get("profiles")
        if not isinstance(body, list):
            raise ApiError(422, "FIELD_INVALID", "send a list of profile documents, or {\"profiles\": [...]}",
                           field="profiles")
        _profile_names(body, "profiles")
        ids = await self._run(lambda session: replace_profiles(session, buyer_id, body))
        log_event(log, "admin: profiles replaced", buyer_id=buyer_id, profiles=len(ids))
        return Answer("ok", 200, extra={"buyer_id": buyer_id, "profile_ids": ids})

    async def import_profiles(self, request: Request) -> Answer:
        document = await json_body(request)
        if isinstance(document, dict):
            _only(document, {"buyers"})
            entries = document.get("buyers")
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):  # the rest of each entry's shape is import_document's to judge
                    _not_null({k: v for k, v in entry.items() if k in SETTINGS and k != "caps"})
                    if isinstance(entry.get("profiles"), list):
                        _profile_names(entry["profiles"], "buyers")
        created = await self._run(lambda session: import_document(session, document))
        log_event(log, "admin: profiles imported", buyers=sorted(created))
        return Answer("ok", 200, extra={"profile_ids": created})

    # ------------------------------------------------------------------ partnerships and choices

    async def put_partnership(self, request: Request) -> Answer:
        seller_id, buyer_id = _pair(await json_object(request))
        created = await self._run(lambda session: add_partnership(session, seller_id, buyer_id))
        log_event(log, "admin: partnership added", seller_id=seller_id, buyer_id=buyer_id, new=created)
        extra: dict[str, object] = {"seller_id": seller_id, "buyer_id": buyer_id}
        return Answer("created", 201, extra=extra) if created else Answer("ok", 200, extra=extra)

    async def delete_partnership(self, request: Request) -> Answer:
        body = await json_object(request)
        seller_id, buyer_id = _pair(body or dict(request.query_params))

        await self._run(lambda session: remove_partnership(session, seller_id, buyer_id))
        log_event(log, "admin: partnership removed", seller_id=seller_id, buyer_id=buyer_id)
        return Answer("ok", 200, extra={"seller_id": seller_id, "buyer_id": buyer_id})

    async def relations(self, request: Request) -> Answer:
        seller_id = request.path_params["seller_id"]
        return Answer("ok", 200, extra=await self._run(lambda session: seller_relations(session, seller_id)))

    async def put_sells_to(self, request: Request) -> Answer:
        seller_id = request.path_params["seller_id"]
        sells_to = _required_text(_only(await json_object(request), {"sells_to"}), "sells_to")

        def change(session: Session) -> dict:
            set_sells_to(session, seller_id, sells_to)
            return seller_relations(session, seller_id)

        found = await self._run(change)
        log_event(log, "admin: seller sells to", seller_id=seller_id, sells_to=sells_to)
        return Answer("ok", 200, extra=found)

    async def choice(self, request: Request) -> Answer:
        seller_id, buyer_id = request.path_params["seller_id"], request.path_params["buyer_id"]
        chosen = None
        if request.method == "PUT":
            chosen = _required_text(_only(await json_object(request), {"choice"}), "choice")

        def change(session: Session) -> dict:
            set_choice(session, seller_id, buyer_id, chosen)
            return seller_relations(session, seller_id)

        found = await self._run(change)
        log_event(log, "admin: seller's choice", seller_id=seller_id, buyer_id=buyer_id, choice=chosen)
        return Answer("ok", 200, extra=found)


def _in_session(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run `work` in a session of its own; the rules' refusals become answers."""
    with sessions() as session:
        try:
            return work(session)
        except NoPartnership as error:
            raise ApiError(404, PARTNERSHIP_NOT_FOUND, str(error)) from None
        except UnknownAccount as error:
            raise ApiError(404, ACCOUNT_NOT_FOUND, str(error)) from None
        except BuyerUrlRefused as error:
            raise ApiError(422, error.code, str(error), field=error.field) from None
        except ValueError as error:
            raise ApiError(422, "FIELD_INVALID", str(error)) from None


async def json_body(request: Request) -> object:
    """The request's JSON document (an empty body is an empty object), held to I-JSON: NaN and
    Infinity are refused (they are not JSON, and PostgreSQL's JSON columns would refuse them
    later), so are lone surrogates (not text: no column can store them) and numbers beyond
    ±MAX_JSON_NUMBER (JSON readers differ on them: a float would round them), naming the member
    of the body that holds one."""
    raw = await read_body(request, MAX_ADMIN_BODY_BYTES)
    if not raw.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       f"the admin API takes JSON (Content-Type: application/json), not {media_type}")

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    try:
        document = json.loads(raw, parse_constant=no_constant, parse_float=json_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(400, "PAYLOAD_MALFORMED", f"the body is not valid JSON: {error}") from None
    problem = lone_surrogate(raw, document)
    if problem:
        raise ApiError(400, "PAYLOAD_MALFORMED", problem)
    members = document.items() if isinstance(document, dict) else [(None, document)]
    for name, value in members:
        for leaf in json_leaves(value):
            # 1e400 reads as infinity; bool is an int to Python, not a number to JSON.
            if isinstance(leaf, int | float) and not isinstance(leaf, bool) and not (
                    -MAX_JSON_NUMBER <= leaf <= MAX_JSON_NUMBER):
                number = repr(leaf) if isinstance(leaf, float) else f"a number of {len(str(abs(leaf)))} digits"
                raise ApiError(422, "FIELD_INVALID", f"{name or 'the body'} holds {number}, beyond "
                               f"±{MAX_JSON_NUMBER}: numbers are those every JSON reader holds exactly (I-JSON)",
                               field=name)
    return document


async def json_object(request: Request) -> dict:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "PAYLOAD_MALFORMED", "the body must be a JSON object")
    return body


def _only(body: dict, allowed: set[str]) -> dict:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, "FIELD_INVALID", f"unknown fields {', '.join(unknown)}; this takes "
                       f"{', '.join(sorted(allowed))}", field=unknown[0])
    return body


def _not_null(settings: dict) -> None:
    for name, value in settings.items():
        if value is None:
            raise ApiError(422, "FIELD_INVALID", f"{name} cannot be null", field=name)


def _profile_names(profiles: list, field: str) -> None:
    """A profile's name is kept trimmed in a column of MAX_NAME characters: a longer one is refused
    here, not by the database."""
    for profile in profiles:
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(name, str) and len(name.strip()) > MAX_NAME:
            raise ApiError(422, "FIELD_INVALID", f"a profile's name is at most {MAX_NAME} characters", field=field)


def _required_text(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise ApiError(422, "FIELD_MISSING", f"{name} is required", field=name)
    if not isinstance(value, str):
        raise ApiError(422, "FIELD_INVALID", f"{name} must be text", field=name)
    return value.strip()


def _name(body: dict) -> str:
    name = _required_text(body, "name")
    if not name or len(name) > MAX_NAME:
        raise ApiError(422, "FIELD_INVALID", f"name must be 1 to {MAX_NAME} characters", field="name")
    return name


def _url(body: dict, name: str, required: bool) -> str:
    """An http(s) URL; absent or empty is no URL (an AutoBid buyer is not pinged; a buyer without a
    post URL has its leads accepted for it, and reads them with its key)."""
    if name not in body and required:
        raise ApiError(422, "FIELD_MISSING", f"{name} is required", field=name)
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):  # {} or false is no URL either, but no absent one
        raise ApiError(422, "FIELD_INVALID", f"{name} must be text", field=name)
    value = value.strip()
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > MAX_URL:
            raise ApiError(422, "FIELD_INVALID", f"{name} must be an http(s) URL of at most {MAX_URL} characters",
                           field=name)
    return value


def _pair(body: dict) -> tuple[str, str]:
    """The seller and buyer ids a partnership request names."""
    _only(body, {"seller", "buyer"})
    ids = []
    for party in ("seller", "buyer"):
        account_id = text_field(body, party)
        if not account_id:
            raise ApiError(422, "FIELD_MISSING", f"{party} (the {party}'s id) is required", field=party)
        ids.append(account_id)
    return ids[0], ids[1]
