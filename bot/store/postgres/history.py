"""The history write path in PostgreSQL: `HistoryWrite` over one transaction of one pooled connection.

Every history write holds the HISTORY advisory lock exclusively (bot/store/postgres/connection.py),
so two imports at once, or an import while the bot polls, run one after the other: the same history,
stats and milestones as if they had. A write waits for the one in flight however long it takes.

Titles and series are named by their keys across the seam and by integer ids here; the two maps are
kept between transactions (ids never change once committed) and dropped when a transaction rolls back.
Reads and writes take whole batches at once as arrays (`unnest($1::int[], …)`), so a day of 190 charts
costs a dozen round trips; entries go in with COPY.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from bot.model import PERIODS, WORLD, ChartKey, Entry, Milestone, Snapshot
from bot.stats import TitleStats
from bot.store.interfaces import (
    HISTORY_CHANGED,
    CountryInputs,
    CountryTally,
    GroupKey,
    RunRecord,
    SeriesState,
    SeriesUpdate,
    StoreError,
)
from bot.store.postgres.connection import FOREVER, HISTORY, Conn, Pg
from bot.store.shaping import Identities, tally_rows
from bot.views import SeriesKey

TRUNCATED = "…"
log = logging.getLogger(__name__)
END_OF_TIME = date(9999, 12, 31)
ENTRY_COLUMNS = (
    "chart_id",
    "rank",
    "title_id",
    "season",
    "points",
    "hours",
    "views",
    "runtime",
    "weeks_reported",
    "window_days",
)
STATS_FIELD_NAMES = tuple(TitleStats.__dataclass_fields__)
STATS_FIELDS = ", ".join(STATS_FIELD_NAMES)
_STATS_TYPES = tuple("date" if name.endswith(("date", "_end")) else "int" for name in STATS_FIELD_NAMES)
UPSERT_STATS = (
    f"INSERT INTO title_stats (series_id, title_id, {STATS_FIELDS}) SELECT * FROM unnest($1::int[], $2::int[], "
    + ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_STATS_TYPES, start=3))
    + ") ON CONFLICT (title_id, series_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in STATS_FIELD_NAMES)
)
# What varies by milestone goes as arrays; what a call shares (scope, when, which read) as one value each.
INSERT_OUTBOX = (
    "INSERT INTO outbox (title_id, series_id, date, kind, detail, scope, source, value, previous, context, "
    "created_at, read_id) SELECT m.title_id, m.series_id, m.date, m.kind, m.detail, $6, m.source, m.value, "
    "m.previous, m.context, $11, $12 FROM unnest($1::int[], $2::int[], $3::date[], $4::text[], $5::text[], "
    "$7::text[], $8::bigint[], $9::bigint[], $10::text[]) "
    "AS m (title_id, series_id, date, kind, detail, source, value, previous, context) "
    "ON CONFLICT (title_id, series_id, date, kind, detail) DO NOTHING"
)
INSERT_ENTRIES = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) SELECT * FROM unnest($1::int[], $2::int[], $3::int[], "
    "$4::text[], $5::float8[], $6::bigint[], $7::bigint[], $8::float8[], $9::int[], $10::int[])"
)
ADD_COUNTRY_COUNTS = (
    "INSERT INTO country_counts (service, category, period, date, title_id, no1, top10) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int[], $6::int[], $7::int[]) "
    "ON CONFLICT (service, category, period, date, title_id) DO UPDATE SET "
    "no1 = country_counts.no1 + excluded.no1, top10 = country_counts.top10 + excluded.top10"
)
ADD_COUNTRY_PERIODS = (
    "INSERT INTO country_periods (service, category, period, date, reporting) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int[]) "
    "ON CONFLICT (service, category, period, date) DO UPDATE SET "
    "reporting = country_periods.reporting + excluded.reporting"
)
COPY_AT = 500  # entries from which COPY beats one INSERT of arrays


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column: the arrays an `unnest(…)` statement takes."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def stats_to_row(s: TitleStats) -> tuple:
    """In STATS_FIELD_NAMES order; spelled out because it runs once per title and chart."""
    return (
        s.first_date,
        s.last_date,
        s.last_rank,
        s.prev_rank,
        s.peak,
        s.peak_date,
        s.periods_in_top10,
        s.periods_at_no1,
        s.no1_run,
        s.longest_no1_run,
        s.longest_no1_end,
        s.top10_run,
    )


def stats_from_row(row: Sequence) -> TitleStats:
    return TitleStats(*row)


# The very JSON the SQLite engine writes (sorted keys, UTF-8 text): a milestone's context compares
# equal across engines, byte for byte.
_CONTEXT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
_CONTEXTS: dict[str, str] = {}  # repr -> JSON: the same few contexts recur


def context_json(context: Mapping[str, Any]) -> str:
    if not context:
        return "{}"
    text = repr(context)  # tells True from 1, unlike the dict itself as a key
    encoded = _CONTEXTS.get(text)
    if encoded is None:
        if len(_CONTEXTS) >= 4096:
            _CONTEXTS.clear()
        encoded = _CONTEXTS[text] = _CONTEXT_JSON.encode(dict(context))
    return encoded


def moment() -> datetime:
    """A write's timestamp: UTC, whole seconds (as the SQLite engine keeps the outbox's)."""
    return datetime.now(UTC).replace(microsecond=0)


class PostgresHistory:
    """`ChartHistory`: one history write at a time across every process (the HISTORY lock).

    A history that has doubled since its statistics were taken (from ANALYZE_FROM entries on) is
    analyzed as soon as the write that doubled it commits. Autovacuum looks a minute later at best,
    and until then a fresh database's queries are planned as if its tables were empty: the country
    news, for one, read the whole group's history by the wrong index every period."""

    ANALYZE_FROM = 10_000  # entries
    HISTORY_TABLES = ("charts", "entries", "title_stats", "country_counts", "country_periods", "outbox")

    def __init__(self, pg: Pg) -> None:
        self.pg = pg
        self.ids = Identities()
        self.analyzed = 0  # entries this process had written when it last analyzed the history
        self.written = 0  # entries it has written since

    @asynccontextmanager
    async def write(self, read: int | None = None) -> AsyncIterator[PostgresHistoryWrite]:
        try:
            async with self.pg.transaction() as conn:
                await conn.lock(HISTORY, wait=FOREVER)
                if read is None:
                    read = await begin_read(conn, "file")
                write = PostgresHistoryWrite(conn, self.ids, read)
                yield write
                # heard by every process once this commits: their title indexes, the planner
                await conn.notify(HISTORY_CHANGED, "milestones" if write.news else "")
        except BaseException:
            self.ids.forget()  # ids given out in the rolled-back transaction no longer exist
            raise
        self.written += write.entries
        if self.written >= max(self.ANALYZE_FROM, self.analyzed):
            await self._analyze()

    async def _analyze(self) -> None:
        """Fresh planner statistics for the history tables. The write has committed: a failure here
        is only logged (autovacuum will get to them)."""
        try:
            async with self.pg.connection() as conn:
                await conn.execute(f"ANALYZE {', '.join(self.HISTORY_TABLES)}")
        except StoreError as exc:
            log.warning("could not analyze the history tables after a large write: %s", exc)
            return
        self.analyzed += self.written
        self.written = 0


class PostgresHistoryWrite:
    """`HistoryWrite` in PostgreSQL."""

    def __init__(self, conn: Conn, ids: Identities, read: int) -> None:
        self.db = conn
        self.ids = ids
        self.read = read
        self.now = moment()
        self.news = False  # milestones were written (or withdrawn): the planner has work
        self.entries = 0  # entries written

    # --- titles -----------------------------------------------------------------------------------

    async def resolve_titles(self, names: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        ids = self.ids
        await self._load_titles_by_key([k for k in names if k not in ids.title_ids])
        missing = {k: n for k, n in names.items() if k not in ids.title_ids}
        for key, name in missing.items():
            if name.endswith(TRUNCATED):
                await self._join_the_full_title(key)
        new = [(k, n, n.endswith(TRUNCATED)) for k, n in missing.items() if k not in ids.title_ids]
        if new:
            await self.db.execute(
                "INSERT INTO titles (title_key, title, cut_short) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bool[]) ON CONFLICT (title_key) DO NOTHING",
                *columns(new, 3),
            )
            await self._load_titles_by_key([k for k, _, _ in new])
            await self._complete_cut_short([k for k, _, cut in new if not cut])
        answer = {}
        for key in names:
            title_id = ids.title_ids[key]
            answer[key] = (ids.title_keys[title_id], ids.title_names[title_id])
        return answer

    async def _join_the_full_title(self, key: str) -> None:
        """A title cut short with "…" (the U.S. daily file does that) is the one stored title it begins."""
        rows = await self.db.fetch(
            "SELECT id, title_key, title FROM titles WHERE title_key > $1 AND title_key < $2 LIMIT 2",
            key + " ",
            key + "\U0010ffff",
        )
        if len(rows) == 1:
            title_id, full_key, name = rows[0]
            self.ids.remember_titles([(title_id, full_key, name)])
            self.ids.title_ids[key] = title_id

    async def _complete_cut_short(self, full_keys: Sequence[str]) -> None:
        """A full title arriving after its cut-short form lends it its full display name."""
        if not full_keys:
            return
        cut = await self.db.fetch("SELECT id, title_key FROM titles WHERE cut_short")
        for title_id, cut_key in cut:
            completing = [k for k in full_keys if k.startswith(cut_key) and k != cut_key]
            if len(completing) != 1:
                continue
            full_name = self.ids.title_names[self.ids.title_ids[completing[0]]]
            await self.db.execute(
                "UPDATE titles SET title = $1, cut_short = false WHERE id = $2", full_name, title_id
            )
            if title_id in self.ids.title_names:
                self.ids.title_names[title_id] = full_name

    async def _load_titles_by_key(self, keys: Sequence[str]) -> None:
        if keys:
            rows = await self.db.fetch(
                "SELECT id, title_key, title FROM titles WHERE title_key = ANY($1::text[])", list(keys)
            )
            self.ids.remember_titles(rows)

    async def _load_titles_by_id(self, title_ids: Iterable[int]) -> None:
        missing = [i for i in set(title_ids) if i not in self.ids.title_keys]
        if missing:
            rows = await self.db.fetch(
                "SELECT id, title_key, title FROM titles WHERE id = ANY($1::int[])", missing
            )
            self.ids.remember_titles(rows)

    async def _title_ids(self, keys: Iterable[str]) -> dict[str, int]:
        keys = set(keys)
        await self._load_titles_by_key([k for k in keys if k not in self.ids.title_ids])
        return {k: self.ids.title_ids[k] for k in keys if k in self.ids.title_ids}

    async def _keys_of(self, title_ids: Iterable[int]) -> dict[int, str]:
        title_ids = set(title_ids)
        await self._load_titles_by_id(title_ids)
        return {i: self.ids.title_keys[i] for i in title_ids}

    async def title_names(self, keys: Collection[str]) -> dict[str, str]:
        found = await self._title_ids(keys)
        return {key: self.ids.title_names[title_id] for key, title_id in found.items()}

    # --- series -----------------------------------------------------------------------------------

    async def series_states(self, keys: Collection[SeriesKey]) -> dict[SeriesKey, SeriesState]:
        found: dict[SeriesKey, SeriesState] = {}
        keys = list(keys)
        if keys:
            rows = await self.db.fetch(
                "SELECT s.id, s.service, s.region, s.category, s.period, s.latest_date, s.record_run, "
                "s.record_end, s.version, t.title_key, t.title "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS w (service, region, category, period) "
                "JOIN series s USING (service, region, category, period) "
                "LEFT JOIN titles t ON t.id = s.record_holder",
                *columns(keys, 4),
            )
            for series_id, *key_parts, latest, run, end, version, holder_key, holder_title in rows:
                key = tuple(key_parts)
                self.ids.series_ids[key] = series_id  # type: ignore[index]
                record = RunRecord(run, holder_key, holder_title, end) if holder_key else None
                found[key] = SeriesState(key, latest, record, version, is_new=False)  # type: ignore[index]
        for key in keys:
            if key not in found:
                await self._series_id(key)
                found[key] = SeriesState(key, None, None, 0, is_new=True)
        return found

    async def _series_id(self, key: SeriesKey) -> int:
        """The id of a series, created when missing (country news has a series of its own)."""
        series_id = self.ids.series_ids.get(key)
        if series_id is None:
            series_id = await self.db.fetchval(
                "INSERT INTO series (service, region, category, period) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (service, region, category, period) DO UPDATE SET version = series.version "
                "RETURNING id",
                *key,
            )
            assert series_id is not None
            self.ids.series_ids[key] = series_id
        return series_id

    async def _series_ids(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
        return {key: await self._series_id(key) for key in set(keys)}

    async def update_series(self, updates: Sequence[SeriesUpdate]) -> None:
        holders = await self._title_ids(u.record.holder for u in updates if u.record)
        rows = []
        for u in updates:
            record = u.record
            rows.append(
                (
                    u.latest,
                    record.run if record else 0,
                    holders.get(record.holder) if record else None,
                    record.end if record else None,
                    await self._series_id(u.key),
                )
            )
        await self.db.executemany(
            "UPDATE series SET latest_date = $1, record_run = $2, record_holder = $3, record_end = $4, "
            "version = version + 1 WHERE id = $5",
            rows,
        )

    # --- charts -----------------------------------------------------------------------------------

    async def chart_digests(self, since: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[date, str]]:
        by_id = {await self._series_id(key): key for key in since}
        found: dict[SeriesKey, dict[date, str]] = defaultdict(dict)
        if by_id:
            rows = await self.db.fetch(
                "SELECT c.series_id, c.date, c.digest FROM unnest($1::int[], $2::date[]) AS w (series_id, since) "
                "JOIN charts c ON c.series_id = w.series_id AND c.date >= w.since",
                list(by_id),
                [since[key] for key in by_id.values()],
            )
            for series_id, day, dig in rows:
                found[by_id[series_id]][day] = dig
        return dict(found)

    async def ranks_before(self, before: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[str, int]]:
        by_id = {await self._series_id(key): key for key in before}
        ranks: dict[int, dict[int, int]] = defaultdict(dict)
        if by_id:
            rows = await self.db.fetch(
                "SELECT w.series_id, e.title_id, e.rank FROM unnest($1::int[], $2::date[]) AS w (series_id, before) "
                "CROSS JOIN LATERAL (SELECT c.id FROM charts c WHERE c.series_id = w.series_id "
                "  AND c.date < w.before ORDER BY c.date DESC LIMIT 1) AS last "
                "JOIN entries e ON e.chart_id = last.id ORDER BY e.rank DESC",
                list(by_id),
                [before[key] for key in by_id.values()],
            )
            for series_id, title_id, rank in rows:  # best rank last: two seasons of one show
                ranks[series_id][title_id] = rank
        keys = await self._keys_of(t for chart in ranks.values() for t in chart)
        return {by_id[s]: {keys[t]: r for t, r in chart.items()} for s, chart in ranks.items()}

    async def _chart_id(self, series: SeriesKey, day: date) -> int | None:
        return await self.db.fetchval(
            "SELECT id FROM charts WHERE series_id = $1 AND date = $2", await self._series_id(series), day
        )

    async def chart_ranks(self, series: SeriesKey, day: date) -> dict[str, int]:
        chart_id = await self._chart_id(series, day)
        if chart_id is None:
            return {}
        rows = await self.db.fetch(
            "SELECT title_id, rank FROM entries WHERE chart_id = $1 ORDER BY rank DESC", chart_id
        )
        keys = await self._keys_of(t for t, _ in rows)
        return {keys[t]: r for t, r in rows}

    async def chart_before(self, series: SeriesKey, before: date) -> Snapshot | None:
        row = await self.db.fetchrow(
            "SELECT id, date, source FROM charts WHERE series_id = $1 AND date < $2 ORDER BY date DESC LIMIT 1",
            await self._series_id(series),
            before,
        )
        if row is None:
            return None
        chart_id, day, source = row
        rows = await self.db.fetch(
            "SELECT e.rank, t.title, t.title_key, e.season, e.points, e.hours, e.views, e.runtime, "
            "e.weeks_reported, e.window_days FROM entries e JOIN titles t ON t.id = e.title_id "
            "WHERE e.chart_id = $1 ORDER BY e.rank",
            chart_id,
        )
        return Snapshot(ChartKey(source, *series, day), tuple(Entry(*r) for r in rows))

    async def add_charts(self, charts: Sequence[tuple[Snapshot, str]]) -> None:
        if not charts:
            return
        series_ids = await self._series_ids(s.key.series for s, _ in charts)  # type: ignore[misc]
        title_ids = await self._title_ids(e.title_key for s, _ in charts for e in s.entries)
        rows = [
            (series_ids[s.key.series], s.key.date, s.key.source, dig, s.complete)  # type: ignore[index]
            for s, dig in charts
        ]
        returned = await self.db.fetch(
            "INSERT INTO charts (series_id, date, source, digest, complete, ingested_at) "
            "SELECT *, $6::timestamptz FROM unnest($1::int[], $2::date[], $3::text[], $4::text[], $5::bool[]) "
            "RETURNING id, series_id, date",
            *columns(rows, 5),
            self.now,
        )
        chart_ids = {(series_id, day): chart_id for chart_id, series_id, day in returned}
        entries = []
        for snapshot, _ in charts:
            chart_id = chart_ids[(series_ids[snapshot.key.series], snapshot.key.date)]  # type: ignore[index]
            entries.extend(_entry_rows(chart_id, snapshot, title_ids))
        await self._insert_entries(entries)

    async def _insert_entries(self, entries: list[tuple]) -> None:
        self.entries += len(entries)
        if len(entries) >= COPY_AT:
            await self.db.copy_rows("entries", ENTRY_COLUMNS, entries)
        elif entries:
            await self.db.execute(INSERT_ENTRIES, *columns(entries, len(ENTRY_COLUMNS)))

    async def replace_chart(self, snapshot: Snapshot, digest: str) -> None:
        chart_id = await self._chart_id(snapshot.key.series, snapshot.key.date)  # type: ignore[arg-type]
        if chart_id is None:
            await self.add_charts([(snapshot, digest)])
            return
        title_ids = await self._title_ids(e.title_key for e in snapshot.entries)
        await self.db.execute("DELETE FROM entries WHERE chart_id = $1", chart_id)
        await self.db.execute(
            "UPDATE charts SET source = $1, digest = $2, complete = $3, ingested_at = $4 WHERE id = $5",
            snapshot.key.source,
            digest,
            snapshot.complete,
            self.now,
            chart_id,
        )
        await self._insert_entries(_entry_rows(chart_id, snapshot, title_ids))

    # --- running stats ----------------------------------------------------------------------------

    async def load_stats(
        self, wanted: Mapping[SeriesKey, Collection[str]]
    ) -> dict[SeriesKey, dict[str, TitleStats]]:
        title_ids = await self._title_ids(t for titles in wanted.values() for t in titles)
        by_id = {await self._series_id(key): key for key in wanted}
        pairs = [
            (title_ids[t], series_id)
            for series_id, key in by_id.items()
            for t in wanted[key]
            if t in title_ids
        ]
        found: dict[SeriesKey, dict[str, TitleStats]] = defaultdict(dict)
        if pairs:
            rows = await self.db.fetch(
                f"SELECT series_id, title_id, {STATS_FIELDS} FROM unnest($1::int[], $2::int[]) "
                "AS w (title_id, series_id) JOIN title_stats USING (title_id, series_id)",
                *columns(pairs, 2),
            )
            keys = self.ids.title_keys
            for row in rows:
                found[by_id[row[0]]][keys[row[1]]] = stats_from_row(row[2:])
        return dict(found)

    async def save_stats(self, rows: Sequence[tuple[SeriesKey, str, TitleStats]]) -> None:
        if not rows:
            return
        series_ids = await self._series_ids(key for key, _, _ in rows)
        title_ids = await self._title_ids(t for _, t, _ in rows)
        # one row a (title, series), the last one given (as rows written one after another would leave)
        latest = {(series_ids[key], title_ids[t]): stats for key, t, stats in rows}
        values = [(series_id, title_id, *stats_to_row(s)) for (series_id, title_id), s in latest.items()]
        await self.db.execute(UPSERT_STATS, *columns(values, 2 + len(STATS_FIELD_NAMES)))

    async def drop_stats(self, series: SeriesKey, titles: Collection[str]) -> None:
        series_id = await self._series_id(series)
        title_ids = list((await self._title_ids(titles)).values())
        if title_ids:
            await self.db.execute(
                "DELETE FROM title_stats WHERE series_id = $1 AND title_id = ANY($2::int[])",
                series_id,
                title_ids,
            )

    async def appearances(
        self, series: SeriesKey, titles: Collection[str], until: date | None
    ) -> dict[str, list[tuple[date, int]]]:
        series_id = await self._series_id(series)
        title_ids = await self._title_ids(titles)
        seen: dict[int, dict[date, int]] = defaultdict(dict)
        if title_ids:
            rows = await self.db.fetch(
                "SELECT e.title_id, c.date, e.rank FROM entries e JOIN charts c ON c.id = e.chart_id "
                "WHERE c.series_id = $1 AND c.date < $2 AND e.title_id = ANY($3::int[])",
                series_id,
                until or END_OF_TIME,
                sorted(title_ids.values()),
            )
            for title_id, day, rank in rows:
                dates = seen[title_id]
                dates[day] = min(rank, dates.get(day, rank))
        keys = self.ids.title_keys
        return {keys[t]: sorted(dates.items()) for t, dates in seen.items()}

    async def no1_history(self, series: SeriesKey, before: date) -> list[tuple[date, str]]:
        rows = await self.db.fetch(
            "SELECT c.date, e.title_id FROM entries e JOIN charts c ON c.id = e.chart_id "
            "WHERE c.series_id = $1 AND c.date < $2 AND e.rank = 1 ORDER BY c.date",
            await self._series_id(series),
            before,
        )
        keys = await self._keys_of(t for _, t in rows)
        return [(d, keys[t]) for d, t in rows]

    async def run_record(self, series: SeriesKey) -> RunRecord | None:
        row = await self.db.fetchrow(
            "SELECT ts.longest_no1_run, t.title_key, t.title, ts.longest_no1_end FROM title_stats ts "
            "JOIN titles t ON t.id = ts.title_id WHERE ts.series_id = $1 AND ts.longest_no1_run > 0 "
            "ORDER BY ts.longest_no1_run DESC, ts.longest_no1_end ASC NULLS FIRST LIMIT 1",
            await self._series_id(series),
        )
        return RunRecord(row[0], row[1], row[2], row[3]) if row else None

    # --- country aggregates -----------------------------------------------------------------------

    async def count_countries(self, periods: Iterable[tuple[GroupKey, date]]) -> None:
        for group, day in periods:
            await self._count(group, day)

    async def _count(self, group: GroupKey, day: date) -> None:
        db = self.db
        await db.execute(
            "DELETE FROM country_counts WHERE service = $1 AND category = $2 AND period = $3 AND date = $4",
            *group,
            day,
        )
        charts = (
            "SELECT c.id FROM charts c JOIN series s ON s.id = c.series_id WHERE c.date = $4 "
            "AND s.service = $1 AND s.category = $2 AND s.period = $3 AND s.region != $5"
        )
        await db.execute(
            "INSERT INTO country_counts (service, category, period, date, title_id, no1, top10) "
            "SELECT $1, $2, $3, $4, e.title_id, count(*) FILTER (WHERE e.rank = 1), count(DISTINCT e.chart_id) "
            f"FROM entries e WHERE e.chart_id IN ({charts}) GROUP BY e.title_id",
            *group,
            day,
            WORLD,
        )
        await db.execute(
            "INSERT INTO country_periods (service, category, period, date, reporting) "
            f"SELECT $1, $2, $3, $4, count(*) FROM ({charts}) AS counted "
            "ON CONFLICT (service, category, period, date) DO UPDATE SET reporting = excluded.reporting",
            *group,
            day,
            WORLD,
        )

    async def add_country_counts(self, tallies: Mapping[tuple[GroupKey, date], CountryTally]) -> None:
        counts, periods = tally_rows(tallies)
        title_ids = await self._title_ids({row[4] for row in counts})
        if counts:
            rows = [(s, c, p, d, title_ids[t], no1, top10) for s, c, p, d, t, no1, top10 in counts]
            await self.db.execute(ADD_COUNTRY_COUNTS, *columns(rows, 7))
        if periods:
            await self.db.execute(ADD_COUNTRY_PERIODS, *columns(periods, 5))

    async def country_inputs(self, group: GroupKey, day: date, floor: int) -> CountryInputs:
        db = self.db
        where = "service = $1 AND category = $2 AND period = $3"
        previous_day = day - PERIODS[group[2]]
        # one look at the group's periods: the newest, and how many reported at P and at P-1
        newest, reporting, previous_reporting = await db.fetchrow(
            f"SELECT (SELECT max(date) FROM country_periods WHERE {where}), "
            f"(SELECT reporting FROM country_periods WHERE {where} AND date = $4), "
            f"(SELECT reporting FROM country_periods WHERE {where} AND date = $5)",
            *group,
            day,
            previous_day,
        )
        if newest != day or reporting is None or previous_reporting is None:
            return CountryInputs(newest, reporting, previous_reporting, {}, {}, {}, None, {})
        counts: dict[int, tuple[int, int]] = {}
        previous: dict[int, tuple[int, int]] = {}
        for when, title_id, no1, top10 in await db.fetch(
            f"SELECT date, title_id, no1, top10 FROM country_counts WHERE {where} AND date IN ($4, $5)",
            *group,
            day,
            previous_day,
        ):
            (counts if when == day else previous)[title_id] = (no1, top10)
        best_before: dict[int, int] = {}
        # only a title at No. 1 in enough countries can be news, so only those need their best so far
        ids = [t for t, (no1, _) in counts.items() if no1 >= floor]
        if ids:
            rows = await db.fetch(
                f"SELECT title_id, max(no1) FROM country_counts WHERE {where} AND date < $4 "
                "AND title_id = ANY($5::int[]) GROUP BY title_id",
                *group,
                day,
                ids,
            )
            best_before.update((title_id, best) for title_id, best in rows)
        record_row = await db.fetchrow(
            f"SELECT no1, title_id, date FROM country_counts WHERE {where} AND date < $4 AND no1 > 0 "
            "ORDER BY no1 DESC, date ASC LIMIT 1",
            *group,
            day,
        )
        keys = await self._keys_of([*counts, *previous, *([record_row[1]] if record_row else [])])
        names = {keys[t]: self.ids.title_names[t] for t in keys}
        record = None
        if record_row:
            holder = keys[record_row[1]]
            record = RunRecord(record_row[0], holder, names[holder], record_row[2])
        return CountryInputs(
            newest=newest,
            reporting=reporting,
            previous_reporting=previous_reporting,
            counts={keys[t]: c for t, c in counts.items()},
            previous={keys[t]: c for t, c in previous.items()},
            best_before={keys[t]: best for t, best in best_before.items()},
            record=record,
            titles=names,
        )

    # --- the outbox -------------------------------------------------------------------------------

    async def _milestone_rows(self, found: Sequence[Milestone], scope: str) -> list[tuple]:
        series_ids = await self._series_ids(m.chart.series for m in found)  # type: ignore[misc]
        title_ids = await self._title_ids(m.title_key for m in found)
        now = self.now
        return [
            (
                title_ids[m.title_key],
                series_ids[m.chart.series],  # type: ignore[index]
                m.chart.date,
                m.kind,
                m.detail,
                scope,
                m.chart.source,
                m.value,
                m.previous,
                context_json(m.context),
                now,
                self.read,
            )
            for m in found
        ]

    async def _insert_news(self, rows: Sequence[tuple]) -> int:
        """Insert milestones (the unique key skips those stored); how many were new. The rows are
        `_milestone_rows`' of one call: one scope, one moment, one read."""
        if not rows:
            return 0
        (titles, series, dates, kinds, details, scopes, sources, values, previous, contexts, _, _) = columns(
            rows, 12
        )
        assert len(set(scopes)) == 1
        return await self.db.execute(
            INSERT_OUTBOX,
            *(titles, series, dates, kinds, details, scopes[0], sources, values, previous, contexts),
            self.now,
            self.read,
        )

    async def add_milestones(
        self, found: Sequence[Milestone], *, scope: str, new_period: bool = False
    ) -> list[Milestone]:
        if not found:
            return []
        self.news = True
        rows = await self._milestone_rows(found, scope)
        # (Not COPY under a savepoint: foreign key checks from a subtransaction leave multixacts on
        # the titles' rows, and every later check of those rows grows dearer, day after day.)
        if new_period and await self._insert_news(rows) == len(rows):
            return list(found)
        # (some were stored already after all:) the careful way tells new from changed from the same
        stored = await self._stored_news(rows)
        written, inserts, updates = [], [], []
        for milestone, row in zip(found, rows, strict=True):
            old = stored.get(row[:5])
            if old is None:
                inserts.append(row)  # a second copy of one in one call: the unique key skips it
                written.append(milestone)
                continue
            outbox_id, value, previous, context, status = old
            if (value, previous, context) != (row[7], row[8], row[9]) or status == "retracted":
                status = "pending" if status in ("pending", "retracted") else status
                updates.append((row[7], row[8], row[9], status, self.now, outbox_id))
                written.append(milestone)
        await self._insert_news(inserts)
        # a revised milestone keeps its read: a watch that missed the news does not get its correction
        await self.db.executemany(
            "UPDATE outbox SET value = $1, previous = $2, context = $3, status = $4, "
            "revision = revision + 1, updated_at = $5 WHERE id = $6",
            updates,
        )
        return written

    async def _stored_news(self, rows: Sequence[tuple]) -> dict[tuple, tuple]:
        """(title, series, date, kind, detail) -> (id, value, previous, context, status) of stored ones."""
        keys = list({row[:5] for row in rows})
        stored = await self.db.fetch(
            "SELECT o.title_id, o.series_id, o.date, o.kind, o.detail, o.id, o.value, o.previous, o.context, "
            "o.status FROM unnest($1::int[], $2::int[], $3::date[], $4::text[], $5::text[]) "
            "AS w (title_id, series_id, date, kind, detail) "
            "JOIN outbox o USING (title_id, series_id, date, kind, detail)",
            *columns(keys, 5),
        )
        return {tuple(r[:5]): tuple(r[5:]) for r in stored}

    async def retract_milestones(
        self, series: SeriesKey, day: date, titles: Collection[str], keep: Sequence[Milestone]
    ) -> int:
        self.news = True
        title_ids = await self._title_ids(titles)
        if not title_ids:
            return 0
        keep_rows = {row[:5] for row in await self._milestone_rows(keep, "chart")} if keep else set()
        series_id = await self._series_id(series)
        rows = await self.db.fetch(
            "SELECT id, title_id, series_id, date, kind, detail FROM outbox WHERE series_id = $1 AND date = $2 "
            "AND scope = 'chart' AND status != 'retracted' AND title_id = ANY($3::int[])",
            series_id,
            day,
            sorted(title_ids.values()),
        )
        stale = [r[0] for r in rows if tuple(r[1:]) not in keep_rows]
        if stale:
            await self.db.execute(
                "UPDATE outbox SET status = 'retracted', updated_at = $1 WHERE id = ANY($2::bigint[])",
                self.now,
                stale,
            )
        return len(stale)

    # --- the poller's bookkeeping -------------------------------------------------------------------

    async def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        await save_validators(self.db, url, etag, last_modified)


async def begin_read(db: Conn, source: str) -> int:
    """A new read's number (an identity: never given out twice, even after a rollback)."""
    return int(
        await db.fetchval(
            "INSERT INTO reads (source, started_at) VALUES ($1, $2) RETURNING id", source, moment()
        )
    )


async def save_validators(db: Conn, url: str, etag: str | None, last_modified: str | None) -> None:
    if etag is None and last_modified is None:
        await db.execute("DELETE FROM http_validators WHERE url = $1", url)
    else:
        await db.execute(
            "INSERT INTO http_validators (url, etag, last_modified, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
            "updated_at = excluded.updated_at",
            url,
            etag,
            last_modified,
            moment(),
        )


def _entry_rows(chart_id: int, snapshot: Snapshot, title_ids: Mapping[str, int]) -> list[tuple]:
    return [
        (
            chart_id,
            e.rank,
            title_ids[e.title_key],
            e.season,
            e.points,
            e.hours,
            e.views,
            e.runtime,
            e.weeks_reported,
            e.window_days,
        )
        for e in snapshot.entries
    ]
