"""The read path in SQLite: `ChartQueries` (standings, charts, titles, milestones, rank histories)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from bot.model import ALL_TIME, PERIODS, WORLD
from bot.store.shaping import choose_histories, countries_from, milestone_from_row, standings_from
from bot.store.sqlite.connection import Db, placeholders
from bot.views import (
    ChartRow,
    ChartView,
    CountryCount,
    LastSeen,
    RankHistory,
    Series,
    SeriesKey,
    Standing,
    StoredMilestone,
    TitleReport,
)

# The columns `milestone_from_row` reads, from `outbox o JOIN titles t JOIN series s`.
MILESTONE_COLUMNS = (
    "o.kind, o.source, s.service, s.region, s.category, s.period, o.date, t.title_key, t.title, "
    "o.value, o.previous, o.detail, o.context"
)
MILESTONE_JOINS = "outbox o JOIN titles t ON t.id = o.title_id JOIN series s ON s.id = o.series_id"


class SqliteChartQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    # --- titles -----------------------------------------------------------------------------------

    async def title_catalog(self) -> list[tuple[str, str, int]]:
        return await self.db.fetch(
            "SELECT t.title_key, t.title, coalesce(sum(ts.periods_in_top10), 0) FROM titles t "
            "LEFT JOIN title_stats ts ON ts.title_id = t.id GROUP BY t.id"
        )

    async def titles_by_prefix(self, prefix: str, limit: int = 25) -> list[tuple[str, str]]:
        """Titles whose key starts with `prefix` (already a title key), from the unique index."""
        return await self.db.fetch(
            "SELECT title_key, title FROM titles WHERE title_key >= ? AND title_key < ? ORDER BY title_key LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        )

    async def _title(self, title_key: str) -> tuple[int, str] | None:
        return await self.db.fetchone("SELECT id, title FROM titles WHERE title_key = ?", (title_key,))

    # --- standings --------------------------------------------------------------------------------

    async def title_report(self, title_key: str, on: date | None = None) -> TitleReport | None:
        row = await self._title(title_key)
        if row is None:
            return None
        title_id, title = row
        standings = await (
            self._standings_latest(title_id) if on is None else self._standings_on(title_id, on)
        )
        standings.sort(key=lambda s: (s.rank, s.region != WORLD, s.region, s.category, s.period))
        return TitleReport(
            title=title,
            title_key=title_key,
            standings=standings,
            countries=await self._countries(title_id, on),
            last_seen=await self._last_seen(title_id, on),
        )

    async def _standings_latest(self, title_id: int) -> list[Standing]:
        """The charts the title is in at each series' newest period: a lookup in the running stats."""
        rows = await self.db.fetch(
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

    async def _standings_on(self, title_id: int, on: date) -> list[Standing]:
        """Standings on a past date: the title's history up to then, folded."""
        appearances: dict[int, dict[date, tuple]] = defaultdict(dict)
        series_of: dict[int, tuple[str, str, str, str]] = {}
        rows = await self.db.fetch(
            "SELECT c.series_id, s.service, s.region, s.category, s.period, c.date, e.rank, e.season, "
            "e.points, e.hours, e.views FROM entries e JOIN charts c ON c.id = e.chart_id "
            "JOIN series s ON s.id = c.series_id WHERE e.title_id = ? AND c.date <= ? AND s.period != ?",
            (title_id, on.isoformat(), ALL_TIME),
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
            await self.db.fetch(
                f"SELECT series_id, max(date) FROM charts WHERE series_id IN ({placeholders(len(ids))}) "
                "AND date <= ? GROUP BY series_id",
                (*ids, on.isoformat()),
            )
        )
        return standings_from(appearances, series_of, current, on)

    async def _countries(self, title_id: int, on: date | None) -> list[CountryCount]:
        """Countries at No. 1 / in the top 10 in the period current at `on` (default: the newest)."""
        bound = on.isoformat() if on else "9999-12-31"
        rows = await self.db.fetch(
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
        return countries_from(rows, on)

    async def _last_seen(self, title_id: int, on: date | None) -> LastSeen | None:
        row = await self.db.fetchone(
            "SELECT s.service, s.region, s.category, s.period, c.date, e.rank, "
            "(SELECT min(peak) FROM title_stats WHERE title_id = ?) "
            "FROM entries e JOIN charts c ON c.id = e.chart_id JOIN series s ON s.id = c.series_id "
            "WHERE e.title_id = ? AND c.date <= ? AND s.period != ? ORDER BY c.date DESC, e.rank LIMIT 1",
            (title_id, title_id, on.isoformat() if on else "9999-12-31", ALL_TIME),
        )
        if row is None:
            return None
        return LastSeen(*row[:4], date=date.fromisoformat(row[4]), rank=row[5], peak=row[6])

    # --- charts -----------------------------------------------------------------------------------

    async def find_series(
        self,
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
        rows = await self.db.fetch(
            "SELECT service, region, category, period, latest_date FROM series "
            f"WHERE {' AND '.join(conditions)} ORDER BY service, region, category, period",
            params,
        )
        return [Series(*row[:4], latest_date=date.fromisoformat(row[4])) for row in rows]

    async def _series_id(self, series: Series | SeriesKey) -> int | None:
        key = series.key if isinstance(series, Series) else series
        return await self.db.scalar(
            "SELECT id FROM series WHERE service = ? AND region = ? AND category = ? AND period = ?", key
        )

    async def chart_dates(self, series: Series) -> list[date]:
        series_id = await self._series_id(series)
        rows = await self.db.fetch("SELECT date FROM charts WHERE series_id = ? ORDER BY date", (series_id,))
        return [date.fromisoformat(day) for (day,) in rows]

    async def chart_view(self, series: Series, on: date | None = None) -> ChartView | None:
        """The chart current at `on` (default: the newest), with movement and periods in the top 10."""
        series_id = await self._series_id(series)
        if series_id is None:
            return None
        step = PERIODS.get(series.period)  # None: an all-time list, whose versions have no fixed step
        row = await self.db.fetchone(
            "SELECT id, date, source, complete FROM charts WHERE series_id = ? AND date <= ? "
            "ORDER BY date DESC LIMIT 1",
            (series_id, (on or series.latest_date).isoformat()),
        )
        if row is None or (on is not None and step is not None and date.fromisoformat(row[1]) <= on - step):
            return None
        chart_id, day, source, complete = row
        chart_day = date.fromisoformat(day)
        previous: dict[int, int] = {}
        if step is None:  # an all-time list moves against the version before it
            prev_row = await self.db.fetchone(
                "SELECT id FROM charts WHERE series_id = ? AND date < ? ORDER BY date DESC LIMIT 1",
                (series_id, day),
            )
        else:
            prev_row = await self.db.fetchone(
                "SELECT id FROM charts WHERE series_id = ? AND date = ?",
                (series_id, (chart_day - step).isoformat()),
            )
        if prev_row:
            for title_id, rank in await self.db.fetch(
                "SELECT title_id, min(rank) FROM entries WHERE chart_id = ? GROUP BY title_id", (prev_row[0],)
            ):
                previous[title_id] = rank
        entries = await self.db.fetch(
            "SELECT e.rank, t.title, t.title_key, e.season, e.points, e.hours, e.views, e.title_id, "
            "(SELECT count(DISTINCT c2.date) FROM entries e2 JOIN charts c2 ON c2.id = e2.chart_id "
            " WHERE e2.title_id = e.title_id AND c2.series_id = ? AND c2.date <= ?) "
            "FROM entries e JOIN titles t ON t.id = e.title_id WHERE e.chart_id = ? ORDER BY e.rank",
            (series_id, day, chart_id),
        )
        return ChartView(
            series=series,
            date=chart_day,
            source=source,
            complete=bool(complete),
            has_previous=prev_row is not None,
            entries=[
                ChartRow(*r[:7], previous_rank=previous.get(r[7]), periods_in_top10=r[8]) for r in entries
            ],
        )

    # --- milestones -------------------------------------------------------------------------------

    async def milestones(
        self,
        *,
        title_key: str | None = None,
        since: date | None = None,
        statuses: tuple[str, ...] = ("pending", "sent", "skipped"),
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StoredMilestone]:
        conditions, params = [f"o.status IN ({placeholders(len(statuses))})"], list(statuses)
        if title_key is not None:
            conditions.append("t.title_key = ?")
            params.append(title_key)
        if since is not None:
            conditions.append("o.date >= ?")
            params.append(since.isoformat())
        order = "DESC" if newest_first else "ASC"
        rows = await self.db.fetch(
            f"SELECT {MILESTONE_COLUMNS}, o.status, o.revision, o.id FROM {MILESTONE_JOINS} "
            f"WHERE {' AND '.join(conditions)} ORDER BY o.date {order}, o.id {order} LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, offset),
        )
        return [StoredMilestone(milestone_from_row(r), status=r[13], revision=r[14], id=r[15]) for r in rows]

    # --- rank history -----------------------------------------------------------------------------

    async def rank_history(
        self,
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
        `limit` series (see `choose_histories`). One pass over the title's entries (`entries_by_title`)."""
        row = await self._title(title_key)
        if row is None:
            return []
        conditions, params = ["e.title_id = ?", "s.period != ?"], [row[0], ALL_TIME]
        if region is not None:
            conditions.append("s.region = ?")
            params.append(region)
        if category is not None:
            conditions.append("s.category = ?")
            params.append(category)
        where = " AND ".join(conditions)
        joins = "entries e JOIN charts c ON c.id = e.chart_id JOIN series s ON s.id = c.series_id"
        if until is None:
            last = await self.db.scalar(f"SELECT max(c.date) FROM {joins} WHERE {where}", params)
            if last is None:
                return []
            until = date.fromisoformat(last)
        since = until - timedelta(days=days)
        rows = await self.db.fetch(
            f"SELECT s.service, s.region, s.category, s.period, c.date, min(e.rank) FROM {joins} "
            f"WHERE {where} AND c.date > ? AND c.date <= ? GROUP BY c.id",
            (*params, since.isoformat(), until.isoformat()),
        )
        found: dict[SeriesKey, list[tuple[date, int]]] = defaultdict(list)
        for service, region_code, category_name, period, day, rank in rows:
            found[(service, region_code, category_name, period)].append((date.fromisoformat(day), rank))
        return choose_histories(found, limit, prefer)
