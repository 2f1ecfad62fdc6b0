"""A title's rank history, chart by chart: what the rank-history picture is drawn from.

Plain functions of a sqlite3 connection, run on the database thread with `await store.run(fn, ...)`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.model import WORLD

SeriesKey = tuple[str, str, str, str]  # (service, region, category, period)


@dataclass(frozen=True, slots=True)
class RankHistory:
    """One chart series of a title: its best rank on each date it charted, oldest first."""

    service: str
    region: str
    category: str
    period: str
    points: list[tuple[date, int]]

    @property
    def series(self) -> SeriesKey:
        return (self.service, self.region, self.category, self.period)


def rank_history(
    conn: sqlite3.Connection,
    title_key: str,
    *,
    region: str | None = None,
    category: str | None = None,
    until: date | None = None,
    days: int = 365,
    limit: int = 5,
    prefer: Sequence[str] = (),
) -> list[RankHistory]:
    """The title's ranks over the `days` before `until` (default: its last appearance), in at most
    `limit` series: world charts first, then the series it spent most periods in (regions in `prefer`
    first among equals).

    One pass over the title's entries (index `entries_by_title`); the choice of series is made here
    so the picture never has more lines than a reader can follow.
    """
    row = conn.execute("SELECT id FROM titles WHERE title_key = ?", (title_key,)).fetchone()
    if row is None:
        return []
    title_id = row[0]
    conditions, params = ["e.title_id = ?"], [title_id]
    if region is not None:
        conditions.append("s.region = ?")
        params.append(region)
    if category is not None:
        conditions.append("s.category = ?")
        params.append(category)
    if until is None:
        last = conn.execute(
            "SELECT max(c.date) FROM entries e JOIN charts c ON c.id = e.chart_id "
            "JOIN series s ON s.id = c.series_id WHERE " + " AND ".join(conditions),
            params,
        ).fetchone()[0]
        if last is None:
            return []
        until = date.fromisoformat(last)
    since = until - timedelta(days=days)
    rows = conn.execute(
        "SELECT s.service, s.region, s.category, s.period, c.date, min(e.rank) "
        "FROM entries e JOIN charts c ON c.id = e.chart_id JOIN series s ON s.id = c.series_id "
        "WHERE " + " AND ".join(conditions) + " AND c.date > ? AND c.date <= ? "
        "GROUP BY c.id",
        (*params, since.isoformat(), until.isoformat()),
    )
    found: dict[SeriesKey, list[tuple[date, int]]] = defaultdict(list)
    for service, region_code, category_name, period, day, rank in rows:
        found[(service, region_code, category_name, period)].append((date.fromisoformat(day), rank))

    def preference(item: tuple[SeriesKey, list[tuple[date, int]]]) -> tuple:
        series, points = item
        favourite = prefer.index(series[1]) if series[1] in prefer else len(prefer)
        return (series[1] != WORLD, -len(points), min(r for _, r in points), favourite, series)

    chosen = sorted(found.items(), key=preference)[:limit]
    return [RankHistory(*series, points=sorted(points)) for series, points in chosen]


def set_cache_size(conn: sqlite3.Connection, kib: int) -> None:
    """Cap this connection's page cache. The bot is a long-running reader of a file the OS caches
    anyway: scanning the title catalog of a 5-year history would otherwise keep ~50 MB resident."""
    conn.execute(f"PRAGMA cache_size = -{int(kib)}")
