"""What both engines make of their rows: standings folded from appearances, current country counts,
the series a rank-history picture shows. Pure functions, no SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.milestones import MIN_REPORTING
from bot.model import PERIODS, WORLD
from bot.stats import fold
from bot.views import CountryCount, RankHistory, SeriesKey, Standing


def standings_from(
    appearances: dict[int, dict[date, tuple]],
    series_of: dict[int, tuple[str, str, str, str]],
    current: dict[int, str | date],
    on: date,
) -> list[Standing]:
    """Standings on `on` from each series' appearances of a title (rank and figures by date) and the
    newest date of each series up to `on`."""
    standings = []
    for series_id, seen in appearances.items():
        service, region, category, period = series_of[series_id]
        step = PERIODS[period]
        newest = current[series_id]
        chart_day = newest if isinstance(newest, date) else date.fromisoformat(newest)
        if chart_day not in seen or chart_day <= on - step:
            continue
        stats = fold(((d, r[0]) for d, r in sorted(seen.items())), step)
        assert stats is not None
        rank, season, points, hours, views = seen[chart_day]
        standings.append(
            Standing(
                service,
                region,
                category,
                period,
                date=chart_day,
                rank=rank,
                season=season,
                previous_rank=stats.prev_rank,
                peak=stats.peak,
                peak_date=stats.peak_date,
                periods_in_top10=stats.periods_in_top10,
                no1_streak=stats.no1_run,
                periods_at_no1=stats.periods_at_no1,
                longest_no1_run=stats.longest_no1_run,
                points=points,
                hours=hours,
                views=views,
            )
        )
    return standings


def countries_from(rows: Sequence[Sequence], on: date | None) -> list[CountryCount]:
    counts = []
    for service, category, period, day, reporting, no1, top10 in rows:
        when = day if isinstance(day, date) else date.fromisoformat(day)
        if on is not None and when <= on - PERIODS[period]:
            continue  # that group's newest period is too old to be current on `on`
        if top10 and reporting >= MIN_REPORTING:  # a handful of regions is no "countries" count
            counts.append(CountryCount(service, category, period, when, no1, top10, reporting))
    return counts


def choose_histories(
    found: dict[SeriesKey, list[tuple[date, int]]], limit: int, prefer: Sequence[str]
) -> list[RankHistory]:
    """World charts first, then the series the title spent most periods in (regions in `prefer` first
    among equals): the picture never has more lines than a reader can follow."""

    def preference(item: tuple[SeriesKey, list[tuple[date, int]]]) -> tuple:
        series, points = item
        favourite = prefer.index(series[1]) if series[1] in prefer else len(prefer)
        return (series[1] != WORLD, -len(points), min(r for _, r in points), favourite, series)

    chosen = sorted(found.items(), key=preference)[:limit]
    return [RankHistory(*series, points=sorted(points)) for series, points in chosen]
