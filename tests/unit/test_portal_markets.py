"""The Markets pages' pure parts: the query's checks, periods, the figures added per state and county,
ranks, the map's colour bands, the chart's bars, and the map itself (built from us-atlas)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.dev.tools import us_map as build
from leadx.leads.verticals import STATE_CODES
from leadx.platform.utc_days import period_end, shift_period
from services.portal import market_figures as figures
from services.portal.market_figures import Band, Figure, MarketQuery
from services.portal.us_map import TERRITORIES, us_map

TODAY = dt.date(2026, 12, 5)  # a Saturday
VERTICALS = ("auto_loan", "auto_insurance")


def price(state: str, sales: int, total: int, vertical: str = "auto_loan", county: str = "",
          start: str = "2026-12-01") -> pb.MarketPrice:
    return pb.MarketPrice(period_start=start, vertical=vertical, state=state, county=county, sales=sales,
                          total_cents=total, average_price_cents=total // sales)


@pytest.mark.parametrize(("start", "period", "count", "shifted", "end"), [
    ("2026-12-05", "day", -1, "2026-12-04", "2026-12-05"),
    ("2026-11-30", "week", 1, "2026-12-07", "2026-12-06"),
    ("2026-12-01", "month", 1, "2027-01-01", "2026-12-31"),
    ("2026-01-01", "month", -11, "2025-02-01", "2026-01-31"),
    ("2024-02-01", "month", 0, "2024-02-01", "2024-02-29"),
])
def test_periods_shift_and_end(start, period, count, shifted, end):
    assert shift_period(start, period, count) == shifted
    assert period_end(start, period) == end


def test_the_query_defaults_to_this_month_for_every_vertical_and_a_day_stands_for_its_period():
    assert figures.check_market({}, TODAY, VERTICALS) == (MarketQuery("month", "2026-12-01"), {})
    query, errors = figures.check_market({"period": "week", "day": "2026-12-03", "vertical": "auto_loan"},
                                         TODAY, VERTICALS)
    assert errors == {} and query == MarketQuery("week", "2026-11-30", "auto_loan")
    assert (query.end, query.history_start, query.label) == ("2026-12-06", "2026-09-14", "the week of 2026-11-30")
    assert query.params() == {"period": "week", "day": "2026-11-30", "vertical": "auto_loan"}
    assert query.shifted(-1).start == "2026-11-23"
    assert MarketQuery("month", "2026-12-01").label == "December 2026"


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"period": "year"}, "period", "choose a day, a week or a month"),
    ({"vertical": "mortgage"}, "vertical", "choose a vertical from the list"),
    ({"day": "05/12/2026"}, "day", "a day is YYYY-MM-DD"),
    ({"day": "2026-12-06"}, "day", "choose a day from 2000-01-01 to today"),
    ({"day": "1999-12-31"}, "day", "choose a day from 2000-01-01 to today"),
])
def test_each_bad_field_is_said_beside_it(params, field, message):
    query, errors = figures.check_market(params, TODAY, VERTICALS)
    assert list(errors) == [field] and errors[field].startswith(message)
    assert query.period in figures.PERIODS  # a query the page can still show its form with


def test_states_add_their_verticals_and_average_as_the_ledger_does():
    states = figures.by_state([price("NY", 2, 3001), price("NY", 1, 1000, "auto_insurance"), price("TX", 3, 900)])
    assert states == {"NY": Figure(3, 4001), "TX": Figure(3, 900)}
    assert states["NY"].average_cents == 1334  # 4001 / 3 = 1333.67, rounded half up
    assert Figure(2, 3001).average_cents == 1501 and Figure().average_cents == 0


def test_ranks_by_price_and_by_volume_with_ties_sharing_a_rank():
    # Averages 50.00, 20.00, 20.00, 10.00; sales 1, 4, 2, 4.
    rows = {"A": Figure(1, 5000), "B": Figure(4, 8000), "C": Figure(2, 4000), "D": Figure(4, 4000)}
    by_price = figures.ranked(rows)
    assert [(r.name, r.price_rank, r.volume_rank) for r in by_price] == [
        ("A", 1, 4), ("B", 2, 1), ("C", 2, 3), ("D", 4, 1)]
    assert [r.name for r in figures.ranked(rows, "volume")] == ["B", "D", "C", "A"]


def test_counties_and_the_history_keep_every_period_in_order():
    counties = figures.by_county([price("NY", 1, 100, county="Kings County"),
                                  price("NY", 1, 300, county="Kings County"), price("NY", 1, 500, county="")])
    assert counties == {"Kings County": Figure(2, 400), "(county unknown)": Figure(1, 500)}
    query = MarketQuery("month", "2026-12-01")
    history = figures.over_time([price("NY", 1, 100, start="2026-12-01"), price("NY", 2, 500, start="2026-02-01")],
                                query)
    assert len(history) == figures.HISTORY and history[0] == ("2026-01-01", Figure())
    assert history[1] == ("2026-02-01", Figure(2, 500)) and history[-1] == ("2026-12-01", Figure(1, 100))


def test_colour_bands_split_the_range_evenly_and_every_average_falls_in_one():
    bands = figures.price_bands([1000, 1500, 3500])
    assert bands == [Band(0, 1000, 1500), Band(1, 1500, 2000), Band(2, 2000, 2500), Band(3, 2500, 3000),
                     Band(4, 3000, 3500)]
    assert [figures.band_of(bands, v).index for v in (1000, 1499, 1500, 2999, 3500)] == [0, 0, 1, 3, 4]
    assert figures.price_bands([]) == [] and figures.band_of([], 100) is None
    assert figures.price_bands([700, 700]) == [Band(4, 700, 700)]  # one price: the darkest, alone
    # A few cents apart: a band per price, never two bands on one price.
    bands = figures.price_bands([100, 103, 101, 103])
    assert bands == [Band(2, 100, 100), Band(3, 101, 101), Band(4, 103, 103)]
    assert [figures.band_of(bands, v).index for v in (100, 101, 103)] == [2, 3, 4]


def test_the_chart_scales_bars_to_the_highest_average():
    points = [("2026-10-01", Figure()), ("2026-11-01", Figure(1, 1000)), ("2026-12-01", Figure(2, 4000))]
    chart = figures.price_chart(points, "month")
    bars = chart.bars
    assert chart.top_cents == 2000 and chart.baseline == figures.CHART_HEIGHT - figures.CHART_BOTTOM
    plot = figures.CHART_HEIGHT - figures.CHART_BOTTOM - figures.CHART_TOP
    assert [b.height for b in bars] == [0, round(plot / 2, 1), plot]
    assert bars[2].y == figures.CHART_TOP and bars[0].y == figures.CHART_TOP + plot
    assert [b.label for b in bars] == ["Oct 2026", "Nov", "Dec"]
    assert [b.label for b in figures.price_chart([("2026-12-01", Figure()), ("2027-01-01", Figure())], "month").bars] \
        == ["Dec 2026", "Jan 2027"]
    assert figures.price_chart([("2026-11-30", Figure())], "week").bars[0].label == "Nov 30"
    assert bars[0].x < bars[1].x < bars[2].x and bars[2].x + bars[2].width <= figures.CHART_WIDTH
    assert figures.price_chart([("2026-12-05", Figure())], "day").top_cents == 100  # nothing sold: a dollar's axis


# ---------------------------------------------------------------- the map

def test_topojson_arcs_decode_into_closed_rings_walking_reversed_arcs_backwards():
    topology = {"transform": {"scale": [0.5, 0.25], "translate": [10, 20]},
                "arcs": [[[0, 0], [4, 0], [0, 4]], [[4, 4], [-4, 0], [0, -4]]],
                "objects": {"states": {"geometries": [
                    {"type": "Polygon", "arcs": [[0, 1]], "id": "36", "properties": {"name": "New York"}},
                    {"type": "MultiPolygon", "arcs": [[[~1, ~0]]], "id": "06", "properties": {"name": "California"}}]}}}
    arcs = build.decode_arcs(topology)
    assert arcs[0] == [(10, 20), (12, 20), (12, 21)]
    assert build.ring_points(arcs, [0, 1]) == [(10, 20), (12, 20), (12, 21), (10, 21), (10, 20)]
    assert build.ring_points(arcs, [~1, ~0])[:3] == [(10, 20), (10, 21), (12, 21)]
    built = build.states_map(topology)
    assert list(built["states"]) == ["CA", "NY"]
    assert built["states"]["NY"] == {"name": "New York", "path": "M10,20l2,0 0,1 -2,0 0,-1z"}


def test_the_shipped_map_has_every_state_and_dc_as_closed_paths_inside_its_box():
    shipped = us_map()
    codes = {shape.code for shape in shipped.states}
    assert codes == STATE_CODES - set(TERRITORIES) and len(codes) == 51
    assert (shipped.width, shipped.height) == (975, 610)
    assert shipped.name_of("NY") == "New York" and shipped.name_of("PR") == "Puerto Rico"
    for shape in shipped.states:
        assert re.fullmatch(r"(M[-\d.,]+(l[-\d., ]+)?z)+", shape.path), shape.code
        for x, y in re.findall(r"M(-?[\d.]+),(-?[\d.]+)", shape.path):
            # Inside the box but for the far Aleutians, left of it as us-atlas draws them too.
            assert (float(x) >= 0 or shape.code == "AK") and -60 <= float(x) <= 975 and 0 <= float(y) <= 610
