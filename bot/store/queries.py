"""The read path: standings, charts, titles and milestones, as plain dataclasses.

Each function takes a sqlite3 connection and runs on the database thread (see `Store`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from bot.milestones import MIN_REPORTING
from bot.model import PERIODS, WORLD, ChartKey, Milestone
from bot.stats import fold


@dataclass(frozen=True, slots=True)
class Series:
    service: str
    region: str
    category: str
    period: str
    latest_date: date


@dataclass(frozen=True, slots=True)
class Standing:
    service: str
    region: str
    category: str
    period: str
    date: date
    rank: int
    season: str | None
    previous_rank: int | None
    peak: int
    peak_date: date
    periods_in_top10: int
    no1_streak: int
    periods_at_no1: int
    longest_no1_run: int
    points: float | None
    hours: int | None
    views: int | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["peak_date"] = self.peak_date.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class CountryCount:
    service: str
    category: str
    period: str
    date: date
    no1: int
    top10: int
    reporting: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"date": self.date.isoformat()}


@dataclass(frozen=True, slots=True)
class LastSeen:
    service: str
    region: str
    category: str
    period: str
    date: date
    rank: int
    peak: int


@dataclass(frozen=True, slots=True)
class TitleReport:
    title: str
    title_key: str
    standings: list[Standing]
    countries: list[CountryCount]
    last_seen: LastSeen | None  # the most recent appearance anywhere, for a title off every chart now

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "title_key": self.title_key,
            "standings": [s.as_json() for s in self.standings],
            "countries": [c.as_json() for c in self.countries],
        }


@dataclass(frozen=True, slots=True)
class ChartRow:
    rank: int
    title: str
    title_key: str
    season: str | None
    points: float | None
    hours: int | None
    views: int | None
    previous_rank: int | None
    periods_in_top10: int


@dataclass(frozen=True, slots=True)
class ChartView:
    series: Series
    date: date
    source: str
    complete: bool
    has_previous: bool  # whether the previous period is stored (movement is meaningful)
    entries: list[ChartRow]

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.series.service,
            "region": self.series.region,
            "category": self.series.category,
            "period": self.series.period,
            "date": self.date.isoformat(),
            "entries": [
                {
                    "rank": r.rank,
                    "title": r.title,
                    "title_key": r.title_key,
                    "season": r.season,
                    "points": r.points,
                    "hours": r.hours,
                    "views": r.views,
                    "previous_rank": r.previous_rank,
                    "periods_in_top10": r.periods_in_top10,
                }
                for r in self.entries
            ],
        }


@dataclass(frozen=True, slots=True)
class StoredMilestone:
    milestone: Milestone
    status: str
    revision: int
    created_at: str


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


# --- titles -------------------------------------------------------------------------------------------


def title_catalog(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(title_key, title, periods in any top 10): the fuzzy index is built from this."""
    return conn.execute(
        "SELECT t.title_key, t.title, coalesce(sum(ts.periods_in_top10), 0) FROM titles t "
        "LEFT JOIN title_stats ts ON ts.title_id = t.id GROUP BY t.id"
    ).fetchall()


def titles_by_prefix(conn: sqlite3.Connection, prefix: str, limit: int = 25) -> list[tuple[str, str]]:
    """Titles whose key starts with `prefix` (already a title key), from the unique index."""
    return conn.execute(
        "SELECT title_key, title FROM titles WHERE title_key >= ? AND title_key < ? ORDER BY title_key LIMIT ?",
        (prefix, prefix + "\U0010ffff", limit),
    ).fetchall()


def title_row(conn: sqlite3.Connection, title_key: str) -> tuple[int, str] | None:
    return conn.execute("SELECT id, title FROM titles WHERE title_key = ?", (title_key,)).fetchone()


# --- standings ----------------------------------------------------------------------------------------


def title_report(conn: sqlite3.Connection, title_key: str, on: date | None = None) -> TitleReport | None:
    row = title_row(conn, title_key)
    if row is None:
        return None
    title_id, title = row
    standings = _standings_latest(conn, title_id) if on is None else _standings_on(conn, title_id, on)
    standings.sort(key=lambda s: (s.rank, s.region != WORLD, s.region, s.category, s.period))
    return TitleReport(
        title=title,
        title_key=title_key,
        standings=standings,
        countries=_countries(conn, title_id, on),
        last_seen=_last_seen(conn, title_id, on),
    )


def _standings_latest(conn: sqlite3.Connection, title_id: int) -> list[Standing]:
    """The charts the title is in at each series' newest period: a lookup in the running stats."""
    rows = conn.execute(
        "SELECT s.service, s.region, s.category, s.period, s.latest_date, ts.last_rank, ts.prev_rank, "
        "ts.peak, ts.peak_date, ts.periods_in_top10, ts.no1_run, ts.periods_at_no1, ts.longest_no1_run, "
        "e.rank, e.season, e.points, e.hours, e.views "
        "FROM title_stats ts JOIN series s ON s.id = ts.series_id "
        "JOIN charts c ON c.series_id = s.id AND c.date = s.latest_date "
        "JOIN entries e ON e.chart_id = c.id AND e.title_id = ts.title_id "
        "WHERE ts.title_id = ? AND ts.last_date = s.latest_date ORDER BY e.rank",
        (title_id,),
    )
    best: dict[tuple, Standing] = {}
    for row in rows:
        series = tuple(row[:4])
        if series in best:
            continue  # another season of the same show, ranked lower
        best[series] = Standing(
            *row[:4],
            date=date.fromisoformat(row[4]),
            rank=row[5],
            season=row[14],
            previous_rank=row[6],
            peak=row[7],
            peak_date=date.fromisoformat(row[8]),
            periods_in_top10=row[9],
            no1_streak=row[10],
            periods_at_no1=row[11],
            longest_no1_run=row[12],
            points=row[15],
            hours=row[16],
            views=row[17],
        )
    return list(best.values())


def _standings_on(conn: sqlite3.Connection, title_id: int, on: date) -> list[Standing]:
    """Standings on a past date: the title's history up to then, folded."""
    appearances: dict[int, dict[date, tuple]] = defaultdict(dict)
    series_of: dict[int, tuple[str, str, str, str]] = {}
    rows = conn.execute(
        "SELECT c.series_id, s.service, s.region, s.category, s.period, c.date, e.rank, e.season, "
        "e.points, e.hours, e.views FROM entries e JOIN charts c ON c.id = e.chart_id "
        "JOIN series s ON s.id = c.series_id WHERE e.title_id = ? AND c.date <= ?",
        (title_id, on.isoformat()),
    )
    for series_id, service, region, category, period, day, rank, *figures in rows:
        series_of[series_id] = (service, region, category, period)
        when = date.fromisoformat(day)
        seen = appearances[series_id].get(when)
        if seen is None or rank < seen[0]:
            appearances[series_id][when] = (rank, *figures)
    if not appearances:
        return []
    ids = list(appearances)
    current = dict(
        conn.execute(
            f"SELECT series_id, max(date) FROM charts WHERE series_id IN ({','.join('?' * len(ids))}) "
            "AND date <= ? GROUP BY series_id",
            (*ids, on.isoformat()),
        ).fetchall()
    )
    standings = []
    for series_id, seen in appearances.items():
        service, region, category, period = series_of[series_id]
        step = PERIODS[period]
        chart_day = date.fromisoformat(current[series_id])
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


def _countries(conn: sqlite3.Connection, title_id: int, on: date | None) -> list[CountryCount]:
    """Countries at No. 1 / in the top 10 in the period current at `on` (default: the newest)."""
    bound = on.isoformat() if on else "9999-12-31"
    rows = conn.execute(
        "SELECT p.service, p.category, p.period, p.date, p.reporting, coalesce(cc.no1, 0), "
        "coalesce(cc.top10, 0) FROM country_periods p "
        "JOIN (SELECT service, category, period, max(date) AS date FROM country_periods WHERE date <= ? "
        "      GROUP BY service, category, period) cur "
        "  ON cur.service = p.service AND cur.category = p.category AND cur.period = p.period "
        "  AND cur.date = p.date "
        "LEFT JOIN country_counts cc ON cc.service = p.service AND cc.category = p.category "
        "  AND cc.period = p.period AND cc.date = p.date AND cc.title_id = ?",
        (bound, title_id),
    )
    counts = []
    for service, category, period, day, reporting, no1, top10 in rows:
        when = date.fromisoformat(day)
        if on is not None and when <= on - PERIODS[period]:
            continue  # that group's newest period is too old to be current on `on`
        if top10 and reporting >= MIN_REPORTING:  # a handful of regions is no "countries" count
            counts.append(CountryCount(service, category, period, when, no1, top10, reporting))
    return counts


def _last_seen(conn: sqlite3.Connection, title_id: int, on: date | None) -> LastSeen | None:
    row = conn.execute(
        "SELECT s.service, s.region, s.category, s.period, c.date, e.rank, "
        "(SELECT min(peak) FROM title_stats WHERE title_id = ?) "
        "FROM entries e JOIN charts c ON c.id = e.chart_id JOIN series s ON s.id = c.series_id "
        "WHERE e.title_id = ? AND c.date <= ? ORDER BY c.date DESC, e.rank LIMIT 1",
        (title_id, title_id, on.isoformat() if on else "9999-12-31"),
    ).fetchone()
    if row is None:
        return None
    return LastSeen(*row[:4], date=date.fromisoformat(row[4]), rank=row[5], peak=row[6])


# --- charts ---------------------------------------------------------------------------------------------


def find_series(
    conn: sqlite3.Connection,
    service: str | None = None,
    region: str | None = None,
    category: str | None = None,
    period: str | None = None,
) -> list[Series]:
    conditions, params = ["latest_date IS NOT NULL"], []
    for column, value in (
        ("service", service),
        ("region", region),
        ("category", category),
        ("period", period),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    rows = conn.execute(
        "SELECT service, region, category, period, latest_date FROM series "
        f"WHERE {' AND '.join(conditions)} ORDER BY service, region, category, period",
        params,
    )
    return [Series(*row[:4], latest_date=date.fromisoformat(row[4])) for row in rows]


def chart_view(conn: sqlite3.Connection, series: Series, on: date | None = None) -> ChartView | None:
    """The chart current at `on` (default: the newest), with movement and periods in the top 10."""
    series_id = conn.execute(
        "SELECT id FROM series WHERE service = ? AND region = ? AND category = ? AND period = ?",
        (series.service, series.region, series.category, series.period),
    ).fetchone()[0]
    step = PERIODS[series.period]
    row = conn.execute(
        "SELECT id, date, source, complete FROM charts WHERE series_id = ? AND date <= ? "
        "ORDER BY date DESC LIMIT 1",
        (series_id, (on or series.latest_date).isoformat()),
    ).fetchone()
    if row is None or (on is not None and date.fromisoformat(row[1]) <= on - step):
        return None
    chart_id, day, source, complete = row
    chart_day = date.fromisoformat(day)
    previous: dict[int, int] = {}
    prev_row = conn.execute(
        "SELECT id FROM charts WHERE series_id = ? AND date = ?",
        (series_id, (chart_day - step).isoformat()),
    ).fetchone()
    if prev_row:
        for title_id, rank in conn.execute(
            "SELECT title_id, min(rank) FROM entries WHERE chart_id = ? GROUP BY title_id", (prev_row[0],)
        ):
            previous[title_id] = rank
    entries = conn.execute(
        "SELECT e.rank, t.title, t.title_key, e.season, e.points, e.hours, e.views, e.title_id, "
        "(SELECT count(DISTINCT c2.date) FROM entries e2 JOIN charts c2 ON c2.id = e2.chart_id "
        " WHERE e2.title_id = e.title_id AND c2.series_id = ? AND c2.date <= ?) "
        "FROM entries e JOIN titles t ON t.id = e.title_id WHERE e.chart_id = ? ORDER BY e.rank",
        (series_id, day, chart_id),
    ).fetchall()
    return ChartView(
        series=series,
        date=chart_day,
        source=source,
        complete=bool(complete),
        has_previous=prev_row is not None,
        entries=[ChartRow(*r[:7], previous_rank=previous.get(r[7]), periods_in_top10=r[8]) for r in entries],
    )


# --- milestones -----------------------------------------------------------------------------------------


def milestones(
    conn: sqlite3.Connection,
    *,
    title_key: str | None = None,
    since: date | None = None,
    statuses: tuple[str, ...] = ("pending", "sent", "skipped"),
    newest_first: bool = False,
    limit: int = -1,
) -> list[StoredMilestone]:
    conditions, params = [f"o.status IN ({','.join('?' * len(statuses))})"], list(statuses)
    if title_key is not None:
        conditions.append("t.title_key = ?")
        params.append(title_key)
    if since is not None:
        conditions.append("o.date >= ?")
        params.append(since.isoformat())
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        f"SELECT {MILESTONE_COLUMNS}, o.status, o.revision, o.created_at "
        "FROM outbox o JOIN titles t ON t.id = o.title_id "
        f"WHERE {' AND '.join(conditions)} ORDER BY o.date {order}, o.id {order} LIMIT ?",
        (*params, limit),
    )
    return [
        StoredMilestone(milestone_from_row(r), status=r[12], revision=r[13], created_at=r[14]) for r in rows
    ]


# the columns milestone_from_row reads, from `outbox o JOIN titles t`
MILESTONE_COLUMNS = (
    "o.kind, o.source, o.service, o.region, o.category, o.period, o.date, t.title_key, t.title, "
    "o.value, o.previous, o.key, o.context"
)


def milestone_from_row(row: Sequence) -> Milestone:
    """A Milestone from the first 12 columns of MILESTONE_COLUMNS (more may follow)."""
    return Milestone(
        kind=row[0],
        chart=ChartKey(*row[1:6], date=date.fromisoformat(row[6])),
        title_key=row[7],
        title=row[8],
        value=row[9],
        previous=row[10],
        key=row[11],
        context=json.loads(row[12]),
    )
