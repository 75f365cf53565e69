"""The Markets pages, open to every logged-in person as the market-prices API is:

- /markets: the map of the United States coloured by the average price of a lead per state, for a
  vertical (or all) and a day, week or month, with a legend; hovering a state shows its price and
  volume, clicking it opens its page; the same figures as a table, for every reader.
- /markets/{state}: the state's counties (the ZIP database's, the market's metro areas) ranked by
  price and by volume, and its average price over the last HISTORY periods as a chart and a table.

Everything comes from the dashboard's GetMarketPrices (docs/dashboard.md), so the pages show what
the API answers; market_figures.py adds the rows up and draws the chart. GET forms: nothing changes."""

from __future__ import annotations

import datetime as dt

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leadx.leads.verticals import STATE_CODES, load_verticals
from leadx.platform.utc_days import period_start
from services.portal import market_figures as figures
from services.portal.dashboard import DashboardRefused
from services.portal.pages import to_login
from services.portal.us_map import us_map
from services.portal.web import PortalDeps, Visitor, render, visitor

MAX_PARAM_CHARS = 40


async def _query(deps: PortalDeps, request: Request) -> tuple[Visitor, figures.MarketQuery, dict[str, str]]:
    current = await visitor(deps, request)
    query, errors = figures.check_market(_params(request), _today(deps), load_verticals())
    return current, query, errors


def _params(request: Request) -> dict[str, str]:
    return {name: value[:MAX_PARAM_CHARS] for name, value in request.query_params.items()}


def _context(deps: PortalDeps, request: Request, query: figures.MarketQuery, errors: dict[str, str]) -> dict:
    """What both pages show around their figures: the form, and the links to the periods before
    and after (none after the current one)."""
    current = period_start(_today(deps).isoformat(), query.period)
    return {"query": query, "errors": errors, "periods": figures.PERIODS, "verticals": sorted(load_verticals()),
            "typed_day": _params(request).get("day", ""), "earlier": query.shifted(-1).params(),
            "later": query.shifted(1).params() if query.start < current else None}


async def markets_page(deps: PortalDeps, request: Request) -> Response:
    current, query, errors = await _query(deps, request)
    if current.person is None:
        return to_login(deps, current)
    states: dict[str, figures.Figure] = {}
    if not errors:
        try:
            states = figures.by_state(await deps.dashboard.market_prices(
                figures.PERIOD_CALLS[query.period], query.start, query.end, vertical=query.vertical))
        except DashboardRefused as refused:
            errors["day"] = f"the market data was refused: {refused}"
    # The colours span the states drawn: a territory's price is in the table only.
    bands = figures.price_bands([states[shape.code].average_cents for shape in us_map().states if shape.code in states])
    shapes = [(shape, states.get(shape.code), figures.band_of(bands, states[shape.code].average_cents)
               if shape.code in states else None) for shape in us_map().states]
    table = [(row, us_map().name_of(row.name)) for row in figures.ranked(states)]
    return render(deps, request, current, "markets.html",
                  {"title": "Markets", "map": us_map(), "shapes": shapes, "bands": bands, "table": table,
                   "total": sum(states.values(), figures.Figure()),
                   **_context(deps, request, query, errors)}, status_code=400 if errors else 200)


async def state_page(deps: PortalDeps, request: Request) -> Response:
    current, query, errors = await _query(deps, request)
    if current.person is None:
        return to_login(deps, current)
    code = request.path_params["state"].upper()
    if code not in STATE_CODES:
        raise HTTPException(404, "There is no such state: a state's page is /markets/ and its code, e.g. /markets/NY.")
    rank_by = request.query_params.get("rank", "price")
    if rank_by not in ("price", "volume"):
        errors["rank"] = "rank by price or by volume"
        rank_by = "price"
    counties: list[figures.Ranked] = []
    history: list[tuple[str, figures.Figure]] = []
    if not errors:
        period = figures.PERIOD_CALLS[query.period]
        try:
            counties = figures.ranked(figures.by_county(await deps.dashboard.market_prices(
                period, query.start, query.end, vertical=query.vertical, state=code, by_county=True)), rank_by)
            history = figures.over_time(await deps.dashboard.market_prices(
                period, query.history_start, query.end, vertical=query.vertical, state=code), query)
        except DashboardRefused as refused:
            errors["day"] = f"the market data was refused: {refused}"
    name = us_map().name_of(code)
    return render(deps, request, current, "market_state.html",
                  {"title": f"Markets · {name}", "code": code, "name": name, "counties": counties, "rank_by": rank_by,
                   "total": sum((county.figure for county in counties), figures.Figure()), "history": history,
                   "chart": figures.price_chart(history, query.period), **_context(deps, request, query, errors)},
                  status_code=400 if errors else 200)


def _today(deps: PortalDeps) -> dt.date:
    return dt.datetime.fromtimestamp(deps.clock(), dt.UTC).date()
