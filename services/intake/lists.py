"""List auctions over HTTP (docs/list-auctions.md), for the two sides of them: operators open them
from the prospect pool, dealers read them without PII, bid per customer, cluster or probability
band, and after the close read, or download as CSV, the customers they won.

- `POST /v1/admin/lists`, `GET /v1/admin/lists/{list_id}`: the operators' admin API
  (`Authorization: Bearer <ADMIN_API_KEY>`, JSON bodies, as services.intake.admin).
- `POST /v1/lists/preview` (a list built by a profile, no auction), `GET /v1/lists/{list_id}`,
  `POST /v1/lists/{list_id}/bids`, `GET /v1/lists/{list_id}/won`: a buyer's API key,
  rate-limited like every buyer route.

The rules live in leadx.lists (store, award, building) and the documents in leadx.lists.views;
this module authenticates, reads the request, runs the store in a worker thread and turns its
refusals into answers with codes. The ledger closes the auctions (services.ledger.list_closer).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response
from starlette.routing import Route

from leadx.auction.selection.criteria import CriterionError
from leadx.leads.verticals import load_verticals
from leadx.lists import store, views
from leadx.lists.building import DEFAULT_BAND_WIDTH, Customer, ListProfile, build_list, profile_problem
from leadx.lists.store import read_listing
from leadx.platform.db.models import ListAuction, Prospect
from leadx.platform.ids import is_lead_id
from leadx.platform.logs import log_event
from services.intake.admin import admin_endpoint, json_object
from services.intake.endpoints import endpoint
from services.intake.formats import Answer, parse_body, request_format
from services.intake.requests import ApiError, Callers, read_body

log = logging.getLogger(__name__)

LIST_NOT_FOUND, LIST_CLOSED, LIST_OPEN, LIST_EMPTY = "LIST_NOT_FOUND", "LIST_CLOSED", "LIST_OPEN", "LIST_EMPTY"
BELOW_RESERVE = "BELOW_RESERVE"  # leadx.lists.store's refusal of a price under the reserve
DEFAULT_WINDOW_S = 120  # a live auction: two minutes unless the operator says otherwise
MAX_WINDOW_S = 30 * 86_400
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_CENTS = 10**12  # $10bn: far above any price, far below the BigInteger columns' limit
MAX_COUNT = 2**31 - 1  # list_bids.max_count is an Integer
MAX_TARGET = 64  # list_bids.target
BID_FIELDS = ("scope", "target", "price", "max_count", "max_budget")
OPEN_FIELDS = ("vertical", "profile", "window_seconds", "reserve", "band_width")
PREVIEW_FIELDS = ("vertical", "profile", "band_width", "top")

T = TypeVar("T")


class ListIdConvertor(Convertor):
    """A list auction's id in a path: 10 capital letters and digits (leadx.platform.ids). Routed
    only as one, so that /v1/lists/preview is the preview's path alone, as the OpenAPI document says
    (a path without parameters comes before one with), and its other methods are 405."""

    regex = "[A-Z0-9]{10}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("list_id", ListIdConvertor())


class ClusterDescriptions:
    """The served model bundle's description of each cluster, read from its meta.json (the models
    themselves are not loaded into the intake) on first use and again when SCORING_MODELS names
    another current version (looked at every CHECK_S seconds at most). A bundle that cannot be
    read leaves the descriptions empty, never an answer failed: the groups are the list's, the
    words only help."""

    CHECK_S = 30.0

    def __init__(self, load: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._load = load or _served_descriptions
        self._lock = threading.Lock()
        self._marker: str | None = None
        self._checked = 0.0
        self._descriptions: dict[str, str] = {}

    def __call__(self) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            if self._marker is not None and now - self._checked < self.CHECK_S:
                return self._descriptions
            self._checked = now
            marker = _current_version_marker()
            if marker != self._marker:
                try:
                    self._descriptions = dict(self._load())
                    self._marker = marker
                except Exception:
                    log.warning("cluster descriptions unavailable: the model bundle could not be read",
                                exc_info=True)
            return self._descriptions


def _served_descriptions() -> Mapping[str, str]:
    from leadx.scoring.registry import cluster_descriptions

    return cluster_descriptions()


def _current_version_marker() -> str:
    """What changes when another bundle becomes the served one (the registry's `current` file)."""
    folder = os.environ.get("SCORING_MODELS", "").strip()
    current = Path(folder) / "current" if folder else None
    try:
        return f"{folder}:{current.read_text().strip()}" if current is not None and current.exists() else folder
    except OSError:
        return folder


class Lists:
    """`descriptions` gives the clusters' descriptions (ClusterDescriptions by default)."""

    def __init__(self, sessions: sessionmaker[Session], callers: Callers, admin_api_key: str, max_body_bytes: int,
                 descriptions: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.sessions = sessions
        self.callers = callers
        self.expected = admin_api_key.encode()
        self.max_body_bytes = max_body_bytes
        self.described = descriptions or ClusterDescriptions()
        self.verticals = load_verticals()

    def routes(self) -> list[Route]:
        key, callers = self.expected, self.callers
        return [
            Route("/v1/admin/lists", admin_endpoint(self.open_list, key, callers), methods=["POST"]),
            Route("/v1/admin/lists/{list_id:list_id}", admin_endpoint(self.show_list, key, callers), methods=["GET"]),
            Route("/v1/lists/preview", endpoint(self.preview_list), methods=["POST"]),
            Route("/v1/lists/{list_id:list_id}", endpoint(self.dealer_list), methods=["GET"]),
            Route("/v1/lists/{list_id:list_id}/bids", endpoint(self.place_bid), methods=["POST"]),
            Route("/v1/lists/{list_id:list_id}/won", endpoint(self.won), methods=["GET"]),
        ]

    async def _dealer(self, request: Request) -> str:
        """The buyer's id, held to the rate limit like every buyer route."""
        return await self.callers.limited(request, self.callers.buyer_keys)

    async def _run(self, work: Callable[[Session], T]) -> T:
        def in_session() -> T:
            with self.sessions() as session:
                return work(session)
        return await asyncio.to_thread(in_session)

    def _view_of(self, list_id: str, offset: int, limit: int, buyer_id: str | None) -> Callable[[Session], dict]:
        def work(session: Session) -> dict:
            listing = read_listing(session, list_id, offset, limit, buyer_id)
            if listing is None:
                raise not_found(list_id)
            shown = views.dealer_view if buyer_id is not None else views.operator_view
            return shown(listing.auction, listing.members, listing.page, offset, listing.bids, listing.awards,
                         self.described(), int(time.time() * 1000))
        return work

    def _checked(self, body: dict, fields: tuple[str, ...]) -> tuple[str, float]:
        """The vertical and band width of a request naming a profile, every field checked."""
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise ApiError(422, "FIELD_INVALID", f"unknown fields {', '.join(unknown)}; a list takes "
                           f"{', '.join(fields)}", field=unknown[0])
        vertical = body.get("vertical")
        if vertical is None or vertical == "":
            raise ApiError(422, "FIELD_MISSING", "vertical is required", field="vertical")
        if not isinstance(vertical, str) or vertical not in self.verticals:  # a list is not even hashable
            raise ApiError(422, "FIELD_INVALID", f"vertical must be one of {', '.join(sorted(self.verticals))}",
                           field="vertical")
        if "profile" not in body:
            raise ApiError(422, "FIELD_MISSING", 'profile is required: {"criteria": [...]}; an empty list of '
                           "criteria takes the whole pool", field="profile")
        problem = profile_problem(body["profile"])
        if problem:
            raise ApiError(422, "FIELD_INVALID", f"profile: {problem}", field="profile")
        band_width = body.get("band_width", DEFAULT_BAND_WIDTH)
        problem = views.band_width_problem(band_width)
        if problem:
            raise ApiError(422, "FIELD_INVALID", f"band_width {problem}", field="band_width")
        return vertical, round(float(band_width), 2)

    # ------------------------------------------------------------------ operators

    async def open_list(self, request: Request) -> Answer:
        body = await json_object(request)
        vertical, band_width = self._checked(body, OPEN_FIELDS)
        window_s = _number(body, "window_seconds", DEFAULT_WINDOW_S, above=0, at_most=MAX_WINDOW_S)
        reserve = _whole(body, "reserve", 0, at_least=0, at_most=MAX_CENTS)
        now_ms = int(time.time() * 1000)

        def work(session: Session) -> str:
            with session.begin():
                try:
                    auction = store.open_auction(session, vertical, body["profile"], band_width, reserve,
                                                 max(1, round(window_s * 1000)), now_ms)
                except (CriterionError, OverflowError) as error:
                    raise ApiError(422, "FIELD_INVALID", f"profile: {error}", field="profile") from None
                except ValueError as error:  # everything else was checked above: nobody matched
                    raise ApiError(422, LIST_EMPTY, str(error), field="profile") from None
                return auction.id

        list_id = await self._run(work)
        view = await self._run(self._view_of(list_id, 0, DEFAULT_LIMIT, None))
        log_event(log, "admin: list auction opened", list_id=list_id, vertical=vertical, customers=view["count"],
                  closes_at_ms=view["closes_at_ms"])
        return Answer(view["status"], 201, extra=view, headers={"Location": f"/v1/admin/lists/{list_id}"})

    async def show_list(self, request: Request) -> Answer:
        view = await self._run(self._view_of(list_id_of(request), *page_of(request), None))
        return Answer(view["status"], 200, extra=view)

    # ------------------------------------------------------------------ dealers

    async def preview_list(self, request: Request) -> Answer:
        """A list built by a profile without opening an auction (a dealer selects profiles and the
        exchange generates the list): its groups and best customers, no PII."""
        await self._dealer(request)
        body = await json_object(request)
        vertical, band_width = self._checked(body, PREVIEW_FIELDS)
        top = _whole(body, "top", DEFAULT_LIMIT, at_least=0, at_most=MAX_LIMIT)
        try:
            profile = ListProfile.parse(body["profile"])
        except CriterionError as error:
            raise ApiError(422, "FIELD_INVALID", f"profile: {error}", field="profile") from None

        def work(session: Session) -> dict:
            pool = [Customer(p.id, p.probability, p.cluster, p.fields or {})
                    for p in session.scalars(select(Prospect).where(Prospect.vertical == vertical))]
            return views.preview(vertical, build_list(pool, profile, band_width), self.described(), top)

        return Answer("accepted", 200, extra=await self._run(work))

    async def dealer_list(self, request: Request) -> Answer:
        buyer_id = await self._dealer(request)
        view = await self._run(self._view_of(list_id_of(request), *page_of(request), buyer_id))
        return Answer(view["status"], 200, extra=view)

    async def place_bid(self, request: Request) -> Answer:
        buyer_id = await self._dealer(request)
        list_id = list_id_of(request)
        kind = request_format(request.headers.get("content-type", ""))
        spec = bid_spec(parse_body(kind, await read_body(request, self.max_body_bytes), ("bid",)))
        now_ms = int(time.time() * 1000)

        def work(session: Session) -> dict:
            with session.begin():
                placed = store.place_bid(session, list_id, buyer_id, spec, now_ms)
                if isinstance(placed, store.Refusal):
                    raise ApiError(placed.status, placed.code, placed.message, field=placed.field or None)
                auction = session.get(ListAuction, list_id)
                assert auction is not None  # place_bid refuses a list that does not exist
                return {"list_id": list_id, "closes_at_ms": auction.closes_at_ms, "bid": views.bid(placed)}

        placed = await self._run(work)
        log_event(log, "list bid placed", list_id=list_id, buyer_id=buyer_id, bid_id=placed["bid"]["id"],
                  scope=placed["bid"]["scope"], price_cents=placed["bid"]["price_cents"])
        return Answer("accepted", 201, extra=placed)

    async def won(self, request: Request) -> Answer | Response:
        buyer_id = await self._dealer(request)
        list_id = list_id_of(request)
        kind = request.query_params.get("format", "json").strip().lower() or "json"
        if kind not in ("json", "csv"):
            raise ApiError(422, "FIELD_INVALID", "format is json or csv", field="format")

        def work(session: Session) -> tuple[ListAuction, list[dict]]:
            auction = session.get(ListAuction, list_id)
            if auction is None:
                raise not_found(list_id)
            if auction.status != store.CLOSED:
                raise ApiError(409, LIST_OPEN, f"list auction {list_id} has not closed yet (its window ends at "
                               f"{auction.closes_at_ms}, Unix ms; the ledger then closes it): what you won is "
                               "known once it has")
            return auction, views.won(store.won(session, list_id, buyer_id))

        auction, customers = await self._run(work)
        if kind == "json":
            return Answer("ok", 200, extra=views.won_document(list_id, buyer_id, customers))
        vertical = self.verticals.get(auction.vertical)
        order = [spec.name for spec in vertical.fields] if vertical is not None else []
        return Response(views.won_csv(customers, order), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="list-{list_id}-won.csv"'})


def list_id_of(request: Request) -> str:
    list_id = request.path_params["list_id"]
    if not is_lead_id(list_id):
        raise not_found(list_id)
    return list_id


def not_found(list_id: str) -> ApiError:
    return ApiError(404, LIST_NOT_FOUND, f"there is no list auction {list_id}")


def page_of(request: Request) -> tuple[int, int]:
    """?offset= (from 0) and ?limit= (1 to 1000, default 100) of the customers shown."""
    found = []
    for name, default, lowest, highest in (("offset", 0, 0, None), ("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)):
        text = request.query_params.get(name, "").strip()
        if not text:
            found.append(default)
            continue
        value = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else -1
        if value < lowest or (highest is not None and value > highest):
            bound = f"from {lowest} to {highest}" if highest is not None else f"at least {lowest}"
            raise ApiError(422, "FIELD_INVALID", f"{name} must be a whole number {bound}", field=name)
        found.append(value)
    return found[0], found[1]


def bid_spec(payload: dict) -> dict:
    """A bid's fields from JSON, XML (`<bid>`) or a form: digits sent as text are numbers; unknown
    fields are refused (a misspelt max_budget must not become a bid without a limit)."""
    unknown = sorted(set(payload) - set(BID_FIELDS))
    if unknown:
        raise ApiError(422, "FIELD_INVALID", f"unknown fields {', '.join(unknown)}; a bid takes "
                       f"{', '.join(BID_FIELDS)}", field=unknown[0])
    spec = dict(payload)
    for name in ("price", "max_count", "max_budget"):
        value = spec.get(name)
        if isinstance(value, str):
            text = value.strip()
            # isascii: "²" is a digit to str.isdigit, not to int().
            spec[name] = int(text) if text.isascii() and text.isdigit() else (value if text else None)
        highest = MAX_COUNT if name == "max_count" else MAX_CENTS
        if isinstance(spec.get(name), int) and not isinstance(spec[name], bool) and spec[name] > highest:
            raise ApiError(422, "FIELD_INVALID", f"{name} must be at most {highest}", field=name)
    for name, what in (("scope", "customer, cluster or band"), ("target", "the customer, cluster or band bid on"),
                       ("price", "cents per customer")):
        if spec.get(name) is None or spec.get(name) == "":
            raise ApiError(422, "FIELD_MISSING", f"{name} ({what}) is required", field=name)
    if isinstance(spec["target"], str) and len(spec["target"].strip()) > MAX_TARGET:
        raise ApiError(422, "FIELD_INVALID", f"target is at most {MAX_TARGET} characters", field="target")
    return spec


def _number(body: dict, name: str, default: float, above: float, at_most: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not above < value <= at_most:
        raise ApiError(422, "FIELD_INVALID", f"{name} must be a number above {above} and at most {at_most}",
                       field=name)
    return float(value)


def _whole(body: dict, name: str, default: int, at_least: int, at_most: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not at_least <= value <= at_most:
        raise ApiError(422, "FIELD_INVALID", f"{name} must be a whole number of cents from {at_least} to "
                       f"{at_most}", field=name)
    return value
