"""Which chart `/top` and `chartbot top` mean when a fan leaves parts out: one rule for both.

The service asked (else Netflix), the region asked (else the world, else wherever charts are stored),
the category asked (else TV; TV at the world level means both of Netflix's TV lists), the period asked
(else the freshest of daily and weekly; an all-time list only when asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.i18n import ENGLISH, Messages
from bot.model import ALL_TIME, CATEGORIES, WORLD, InputError
from bot.render import category_word, chart_name, date_text, in_place, service_name
from bot.store import ChartQueries
from bot.views import ChartView, Series

_CATEGORY_ORDER = {c: i for i, c in enumerate(CATEGORIES)}
_PERIODS = ("day", "week", ALL_TIME)  # periods with words of their own (`charts.none.<period>`)


def pick_series(
    available: Sequence[Series],
    *,
    region: str,
    category: str | None,
    service: str | None,
    period: str | None = None,
    tr: Messages = ENGLISH,
) -> list[Series]:
    """The chart(s) to show from the series stored in a region (see the module's docstring); an
    InputError in `tr`'s language when there is none."""
    place = in_place(region, tr)
    if service is not None:
        available = [s for s in available if s.service == service]
        if not available:
            raise InputError(tr.gettext("charts.no_service", service=service_name(service), where=place))
    elif available:
        services = {s.service for s in available}
        chosen = "netflix" if "netflix" in services else sorted(services)[0]
        available = [s for s in available if s.service == chosen]
    if period is not None:
        available = [s for s in available if s.period == period]
    elif any(s.period != ALL_TIME for s in available):
        available = [s for s in available if s.period != ALL_TIME]
    if not available:
        key = f"charts.none.{period}" if period in _PERIODS else "charts.none"
        raise InputError(tr.gettext(key, where=place))
    wanted = category or "tv"
    matches = [s for s in available if s.category == wanted]
    if not matches:
        matches = [s for s in available if s.category.startswith(wanted + "-")]
    if not matches and category is None:
        first = min(available, key=lambda s: _CATEGORY_ORDER.get(s.category, 99))
        matches = [s for s in available if s.category == first.category]
    if not matches:
        have = sorted({s.category for s in available}, key=lambda c: _CATEGORY_ORDER.get(c, 99))
        words = ", ".join(category_word(c, tr) or c for c in have)
        word = category_word(wanted, tr) or wanted
        raise InputError(tr.gettext("charts.no_category", category=word, where=place, available=words))
    by_category: dict[str, Series] = {}
    for s in sorted(matches, key=lambda s: (s.latest_date, s.period == "day")):
        by_category[s.category] = s  # the freshest period wins
    return sorted(by_category.values(), key=lambda s: _CATEGORY_ORDER.get(s.category, 99))


async def top_charts(
    charts: ChartQueries,
    *,
    region: str | None,
    category: str | None,
    service: str | None,
    period: str | None = None,
    on: date | None = None,
    tr: Messages = ENGLISH,
) -> list[ChartView]:
    """The chart views `/top` and `chartbot top` show; InputError (one line, in `tr`'s language) when
    there is none."""
    where = region or WORLD
    available = await charts.find_series(service=service, region=where)
    if not available and region is None:  # no world charts stored: any region's will do
        available = await charts.find_series(service=service)
        if available:
            where = min(available, key=lambda s: (s.region != "us", s.region)).region
            available = [s for s in available if s.region == where]
    chosen = pick_series(available, region=where, category=category, service=service, period=period, tr=tr)
    views = [view for series in chosen if (view := await charts.chart_view(series, on)) is not None]
    if not views:
        first = chosen[0]
        name = chart_name(first.service, where, first.category, first.period, tr)
        when = date_text(on, tr) if on else tr.gettext("charts.latest_period")
        raise InputError(tr.gettext("charts.no_view", chart=name, when=when))
    return views
