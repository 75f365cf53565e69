"""What the Markets pages show, computed from the dashboard's GetMarketPrices rows: the query typed
(vertical, period, a day of it), the figures per state and per county, the map's colour classes and
the price-over-time chart. Pure: no I/O, so each rule is tested alone (tests/unit/test_portal_markets.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.ledger.reports import average
from leadx.platform.utc_days import DayRangeError, parse_day, period_end, period_start, shift_period

PERIODS = {"day": "Day", "week": "Week", "month": "Month"}
PERIOD_CALLS = {"day": pb.PERIOD_DAY, "week": pb.PERIOD_WEEK, "month": pb.PERIOD_MONTH}
FIRST_DAY = dt.date(2000, 1, 1)  # no market data is older; an earlier day is a typing mistake
HISTORY = 12  # periods on a state's price-over-time chart, the chosen one last
CLASSES = 5  # the map's colour classes


@dataclass(frozen=True)
class MarketQuery:
    period: str  # day, week or month
    start: str  # the period's first day, YYYY-MM-DD
    vertical: str = ""  # empty: every vertical together

    @property
    def end(self) -> str:
        return period_end(self.start, self.period)

    @property
    def history_start(self) -> str:
        return shift_period(self.start, self.period, 1 - HISTORY)

    def shifted(self, count: int) -> MarketQuery:
        return replace(self, start=shift_period(self.start, self.period, count))

    def params(self) -> dict[str, str]:
        """The query as a link's parameters (the vertical left out when it is every one)."""
        return {"period": self.period, "day": self.start, **({"vertical": self.vertical} if self.vertical else {})}

    @property
    def label(self) -> str:
        return period_label(self.period, self.start)


def period_label(period: str, start: str) -> str:
    """How a period is named on the pages: 2026-12-05, the week of 2026-11-30, December 2026."""
    if period == "week":
        return f"the week of {start}"
    if period == "month":
        return dt.date.fromisoformat(start).strftime("%B %Y")
    return start


def check_market(params: dict[str, str], today: dt.date,
                 verticals: Iterable[str]) -> tuple[MarketQuery, dict[str, str]]:
    """The query (default: every vertical, the current month) and the errors by field (none: it
    may be asked). Any day of a period stands for the period."""
    errors: dict[str, str] = {}
    period = params.get("period", "").strip() or "month"
    if period not in PERIODS:
        errors["period"] = "choose a day, a week or a month"
        period = "month"
    vertical = params.get("vertical", "").strip()
    if vertical and vertical not in set(verticals):
        errors["vertical"] = "choose a vertical from the list"
        vertical = ""
    day, text = today, params.get("day", "").strip()
    if text:
        try:
            day = parse_day(text)
        except DayRangeError as error:
            errors["day"] = error.message
        else:
            if not FIRST_DAY <= day <= today:
                errors["day"] = f"choose a day from {FIRST_DAY.isoformat()} to today"
                day = today
    return MarketQuery(period, period_start(day.isoformat(), period), vertical), errors


@dataclass(frozen=True)
class Figure:
    """Sales and their total over some rows; the average as the dashboard rounds it."""

    sales: int = 0
    total_cents: int = 0

    @property
    def average_cents(self) -> int:
        return average(self.total_cents, self.sales)

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.sales + other.sales, self.total_cents + other.total_cents)


def _summed(rows: Iterable[tuple[str, pb.MarketPrice]]) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    for key, price in rows:
        figures[key] = figures.get(key, Figure()) + Figure(price.sales, price.total_cents)
    return figures


def by_state(prices: Iterable[pb.MarketPrice]) -> dict[str, Figure]:
    """Each state's figure, its verticals' rows added (a row per vertical when none was chosen)."""
    return _summed((price.state, price) for price in prices)


@dataclass(frozen=True)
class Ranked:
    name: str
    figure: Figure
    price_rank: int  # 1: the highest average price
    volume_rank: int  # 1: the most sales


def ranked(figures: dict[str, Figure], by: str = "price") -> list[Ranked]:
    """The figures ranked by average price and by sales, listed by `by` (price or volume); ties
    share a rank and are listed by name."""
    def ranks(key) -> dict[str, int]:
        ordered = sorted(figures, key=lambda name: (-key(figures[name]), name))
        out: dict[str, int] = {}
        for place, name in enumerate(ordered, 1):
            earlier = ordered[place - 2] if place > 1 else None
            same = earlier is not None and key(figures[earlier]) == key(figures[name])
            out[name] = out[earlier] if same and earlier is not None else place
        return out
    price, volume = ranks(lambda f: f.average_cents), ranks(lambda f: f.sales)
    rows = [Ranked(name, figures[name], price[name], volume[name]) for name in figures]
    order = price if by == "price" else volume
    return sorted(rows, key=lambda row: (order[row.name], row.name))


def by_county(prices: Iterable[pb.MarketPrice]) -> dict[str, Figure]:
    """Each county's figure (the rows asked with by_county), its verticals' rows added."""
    return _summed((price.county or "(county unknown)", price) for price in prices)


def over_time(prices: Iterable[pb.MarketPrice], query: MarketQuery) -> list[tuple[str, Figure]]:
    """The figure of each of the HISTORY periods up to the query's, oldest first, those without a
    sale included (as zero)."""
    figures = _summed((price.period_start, price) for price in prices)
    starts = [shift_period(query.start, query.period, count) for count in range(1 - HISTORY, 1)]
    return [(start, figures.get(start, Figure())) for start in starts]


# ---------------------------------------------------------------- the map's colours

@dataclass(frozen=True)
class Band:
    index: int  # the CSS class price-<index>: lighter to darker
    low_cents: int
    high_cents: int


def price_bands(averages: Sequence[int]) -> list[Band]:
    """CLASSES bands of equal width from the lowest average to the highest (a band per price when
    they are fewer cents apart than that, none without a sale)."""
    if not averages:
        return []
    low, high = min(averages), max(averages)
    if high - low < CLASSES:  # a few cents apart: a band per price, the darkest the highest
        prices = sorted(set(averages))
        return [Band(CLASSES - len(prices) + i, price, price) for i, price in enumerate(prices)]
    edges = [low + (high - low) * step // CLASSES for step in range(CLASSES)] + [high]
    return [Band(i, edges[i], edges[i + 1]) for i in range(CLASSES)]


def band_of(bands: Sequence[Band], average_cents: int) -> Band | None:
    """The band an average falls in (a value on an edge goes to the band above it, the highest to
    the last band)."""
    for band in reversed(bands):
        if average_cents >= band.low_cents:
            return band
    return None


# ---------------------------------------------------------------- the price-over-time chart

CHART_WIDTH, CHART_HEIGHT = 720, 240
CHART_LEFT, CHART_BOTTOM, CHART_TOP = 72, 28, 12  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the period's first day, short
    start: str
    figure: Figure


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    top_cents: int  # the price at the top of the axis
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = CHART_LEFT  # where the plot starts, right of the axis labels
    top: int = CHART_TOP
    baseline: int = CHART_HEIGHT - CHART_BOTTOM  # the $0 line


def price_chart(points: Sequence[tuple[str, Figure]], period: str) -> Chart:
    """The price-over-time chart in SVG units (y down): a bar per period, scaled to the highest
    average (a dollar when nothing sold)."""
    top = max((figure.average_cents for _, figure in points), default=0) or 100
    plot_width, plot_height = CHART_WIDTH - CHART_LEFT, CHART_HEIGHT - CHART_BOTTOM - CHART_TOP
    slot = plot_width / max(len(points), 1)
    bars = []
    for index, (start, figure) in enumerate(points):
        height = plot_height * figure.average_cents / top
        label = _bar_label(start, period, first=index == 0)
        bars.append(Bar(round(CHART_LEFT + index * slot + slot * 0.15, 1), round(CHART_TOP + plot_height - height, 1),
                        round(slot * 0.7, 1), round(height, 1), label, start, figure))
    return Chart(bars, top)


def _bar_label(start: str, period: str, first: bool) -> str:
    """A bar's period, short enough for twelve side by side: Dec 05 for a day or a week; for a
    month its name, with the year on the first bar and on January's."""
    date = dt.date.fromisoformat(start)
    if period != "month":
        return date.strftime("%b %d")
    return date.strftime("%b %Y" if first or date.month == 1 else "%b")
