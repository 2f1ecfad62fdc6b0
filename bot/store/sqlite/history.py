"""The history write path in SQLite: `HistoryWrite` over one transaction of the writer connection.

Titles and series are named by their keys across the seam and by integer ids here; the two maps are
kept between transactions (ids never change once committed) and dropped when a transaction rolls back.
Reads take whole batches at once (a VALUES list joined to the table), so a day of 190 charts costs a
dozen statements, not a few per chart.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from bot.model import PERIODS, WORLD, ChartKey, Entry, Milestone, Snapshot
from bot.stats import TitleStats
from bot.store.interfaces import CountryInputs, CountryTally, GroupKey, RunRecord, SeriesState, SeriesUpdate
from bot.store.shaping import Identities, tally_rows
from bot.store.sqlite.connection import VARIABLES, Db, chunks, placeholders, rows_placeholders
from bot.views import SeriesKey

TRUNCATED = "…"


@functools.lru_cache(maxsize=65_536)  # a history has a few thousand dates, each written many times
def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def day_of(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


STATS_FIELD_NAMES = tuple(TitleStats.__dataclass_fields__)
STATS_FIELDS = ", ".join(STATS_FIELD_NAMES)
UPSERT_STATS = (
    f"INSERT INTO title_stats (series_id, title_id, {STATS_FIELDS}) "
    f"VALUES (?, ?, {placeholders(len(STATS_FIELD_NAMES))}) "
    "ON CONFLICT (title_id, series_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in STATS_FIELD_NAMES)
)
INSERT_ENTRY = (
    "INSERT INTO entries (chart_id, rank, title_id, season, points, hours, views, runtime, weeks_reported, "
    "window_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ENTRIES_FROM_JSON = (
    "INSERT INTO entries (chart_id, rank, title_id, season, points, hours, views, runtime, weeks_reported, "
    "window_days) SELECT "
    + ", ".join(f"json_extract(value, '$[{column}]')" for column in range(10))
    + " FROM json_each(?)"
)
_ENTRIES_JSON = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (title_id, series_id, date, kind, detail, scope, source, value, previous, context, "
    "created_at, read_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (title_id, series_id, date, kind, detail) DO NOTHING"
)

ADD_COUNTRY_COUNTS = (
    "INSERT INTO country_counts (service, category, period, date, title_id, no1, top10) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, category, period, date, title_id) "
    "DO UPDATE SET no1 = no1 + excluded.no1, top10 = top10 + excluded.top10"
)
ADD_COUNTRY_PERIOD = (
    "INSERT INTO country_periods (service, category, period, date, reporting) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (service, category, period, date) DO UPDATE SET reporting = reporting + excluded.reporting"
)


def stats_to_row(s: TitleStats) -> tuple:
    """In STATS_FIELD_NAMES order; spelled out because it runs once per title and chart."""
    return (
        iso(s.first_date),
        iso(s.last_date),
        s.last_rank,
        s.prev_rank,
        s.peak,
        iso(s.peak_date),
        s.periods_in_top10,
        s.periods_at_no1,
        s.no1_run,
        s.longest_no1_run,
        iso(s.longest_no1_end),
        s.top10_run,
    )


def stats_from_row(row: Sequence) -> TitleStats:
    first, last, last_rank, prev, peak, peak_date, periods, at_no1, run, longest, longest_end, top10 = row
    return TitleStats(
        date.fromisoformat(first),
        date.fromisoformat(last),
        last_rank,
        prev,
        peak,
        date.fromisoformat(peak_date),
        periods,
        at_no1,
        run,
        longest,
        day_of(longest_end),
        top10,
    )


_CONTEXT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # json.dumps would build one a call
_CONTEXTS: dict[str, str] = {}  # repr -> JSON: the same few contexts recur (reentry, periods, runs)


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


class SqliteHistory:
    """`ChartHistory`: one history write at a time (SQLite's write lock holds across processes)."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.ids = Identities()

    @asynccontextmanager
    async def write(self, read: int | None = None) -> AsyncIterator[SqliteHistoryWrite]:
        try:
            async with self.db.transaction():
                if read is None:
                    read = await begin_read(self.db, "file")
                yield SqliteHistoryWrite(self.db, self.ids, read)
        except BaseException:
            self.ids.forget()  # ids given out in the rolled-back transaction no longer exist
            raise


class SqliteHistoryWrite:
    """`HistoryWrite` in SQLite."""

    def __init__(self, db: Db, ids: Identities, read: int) -> None:
        self.db = db
        self.ids = ids
        self.read = read
        self.now = datetime.now(UTC).isoformat(timespec="seconds")

    # --- titles -----------------------------------------------------------------------------------

    async def resolve_titles(self, names: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        ids = self.ids
        await self._load_titles_by_key([k for k in names if k not in ids.title_ids])
        missing = {k: n for k, n in names.items() if k not in ids.title_ids}
        for key, name in missing.items():
            if name.endswith(TRUNCATED):
                await self._join_the_full_title(key)
        new = [(k, n, int(n.endswith(TRUNCATED))) for k, n in missing.items() if k not in ids.title_ids]
        if new:
            await self.db.executemany(
                "INSERT INTO titles (title_key, title, cut_short) VALUES (?, ?, ?) "
                "ON CONFLICT (title_key) DO NOTHING",
                new,
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
            "SELECT id, title_key, title FROM titles WHERE title_key > ? AND title_key < ? LIMIT 2",
            (key + " ", key + "\U0010ffff"),
        )
        if len(rows) == 1:
            title_id, full_key, name = rows[0]
            self.ids.remember_titles([(title_id, full_key, name)])
            self.ids.title_ids[key] = title_id

    async def _complete_cut_short(self, full_keys: Sequence[str]) -> None:
        """A full title arriving after its cut-short form lends it its full display name."""
        if not full_keys:
            return
        cut = await self.db.fetch("SELECT id, title_key FROM titles WHERE cut_short = 1")
        for title_id, cut_key in cut:
            completing = [k for k in full_keys if k.startswith(cut_key) and k != cut_key]
            if len(completing) != 1:
                continue
            full_name = self.ids.title_names[self.ids.title_ids[completing[0]]]
            await self.db.execute(
                "UPDATE titles SET title = ?, cut_short = 0 WHERE id = ?", (full_name, title_id)
            )
            if title_id in self.ids.title_names:
                self.ids.title_names[title_id] = full_name

    async def _load_titles_by_key(self, keys: Sequence[str]) -> None:
        for part in chunks(list(keys), VARIABLES):
            rows = await self.db.fetch(
                f"SELECT id, title_key, title FROM titles WHERE title_key IN ({placeholders(len(part))})",
                part,
            )
            self.ids.remember_titles(rows)

    async def _load_titles_by_id(self, title_ids: Iterable[int]) -> None:
        missing = [i for i in set(title_ids) if i not in self.ids.title_keys]
        for part in chunks(missing, VARIABLES):
            rows = await self.db.fetch(
                f"SELECT id, title_key, title FROM titles WHERE id IN ({placeholders(len(part))})", part
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
        for part in chunks(keys, VARIABLES // 4):
            rows = await self.db.fetch(
                f"WITH wanted (service, region, category, period) AS (VALUES {rows_placeholders(len(part), 4)}) "
                "SELECT s.id, s.service, s.region, s.category, s.period, s.latest_date, s.record_run, "
                "s.record_end, s.version, t.title_key, t.title FROM wanted "
                "JOIN series s USING (service, region, category, period) "
                "LEFT JOIN titles t ON t.id = s.record_holder",
                [value for key in part for value in key],
            )
            for series_id, *key_parts, latest, run, end, version, holder_key, holder_title in rows:
                key = tuple(key_parts)
                self.ids.series_ids[key] = series_id  # type: ignore[index]
                record = RunRecord(run, holder_key, holder_title, day_of(end)) if holder_key else None
                found[key] = SeriesState(key, day_of(latest), record, version, is_new=False)  # type: ignore[index]
        for key in keys:
            if key not in found:
                await self._series_id(key)
                found[key] = SeriesState(key, None, None, 0, is_new=True)
        return found

    async def _series_id(self, key: SeriesKey) -> int:
        """The id of a series, created when missing (country news has a series of its own)."""
        series_id = self.ids.series_ids.get(key)
        if series_id is None:
            row = await self.db.fetchone(
                "INSERT INTO series (service, region, category, period) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (service, region, category, period) DO UPDATE SET version = version "
                "RETURNING id",
                key,
            )
            assert row is not None
            series_id = self.ids.series_ids[key] = row[0]
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
                    iso(u.latest),
                    record.run if record else 0,
                    holders.get(record.holder) if record else None,
                    iso(record.end) if record else None,
                    await self._series_id(u.key),
                )
            )
        await self.db.executemany(
            "UPDATE series SET latest_date = ?, record_run = ?, record_holder = ?, record_end = ?, "
            "version = version + 1 WHERE id = ?",
            rows,
        )

    # --- charts -----------------------------------------------------------------------------------

    async def chart_digests(self, since: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[date, str]]:
        by_id = {await self._series_id(key): key for key in since}
        wanted = [(series_id, iso(since[key])) for series_id, key in by_id.items()]
        found: dict[SeriesKey, dict[date, str]] = defaultdict(dict)
        for part in chunks(wanted, VARIABLES // 2):
            rows = await self.db.fetch(
                f"WITH wanted (series_id, since) AS (VALUES {rows_placeholders(len(part), 2)}) "
                "SELECT c.series_id, c.date, c.digest FROM wanted "
                "JOIN charts c ON c.series_id = wanted.series_id AND c.date >= wanted.since",
                [value for pair in part for value in pair],
            )
            for series_id, day, dig in rows:
                found[by_id[series_id]][date.fromisoformat(day)] = dig
        return dict(found)

    async def ranks_before(self, before: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[str, int]]:
        by_id = {await self._series_id(key): key for key in before}
        wanted = [(series_id, iso(before[key])) for series_id, key in by_id.items()]
        ranks: dict[int, dict[int, int]] = defaultdict(dict)
        for part in chunks(wanted, VARIABLES // 2):
            rows = await self.db.fetch(
                f"WITH wanted (series_id, before) AS (VALUES {rows_placeholders(len(part), 2)}), "
                "last (series_id, chart_id) AS (SELECT w.series_id, (SELECT c.id FROM charts c "
                "  WHERE c.series_id = w.series_id AND c.date < w.before ORDER BY c.date DESC LIMIT 1) FROM wanted w) "
                "SELECT last.series_id, e.title_id, e.rank FROM last JOIN entries e ON e.chart_id = last.chart_id "
                "ORDER BY e.rank DESC",
                [value for pair in part for value in pair],
            )
            for series_id, title_id, rank in rows:  # best rank last: two seasons of one show
                ranks[series_id][title_id] = rank
        keys = await self._keys_of(t for chart in ranks.values() for t in chart)
        return {by_id[s]: {keys[t]: r for t, r in chart.items()} for s, chart in ranks.items()}

    async def _chart_id(self, series: SeriesKey, day: date) -> int | None:
        return await self.db.scalar(
            "SELECT id FROM charts WHERE series_id = ? AND date = ?",
            (await self._series_id(series), iso(day)),
        )

    async def chart_ranks(self, series: SeriesKey, day: date) -> dict[str, int]:
        chart_id = await self._chart_id(series, day)
        if chart_id is None:
            return {}
        rows = await self.db.fetch(
            "SELECT title_id, rank FROM entries WHERE chart_id = ? ORDER BY rank DESC", (chart_id,)
        )
        keys = await self._keys_of(t for t, _ in rows)
        return {keys[t]: r for t, r in rows}

    async def chart_before(self, series: SeriesKey, before: date) -> Snapshot | None:
        row = await self.db.fetchone(
            "SELECT id, date, source FROM charts WHERE series_id = ? AND date < ? ORDER BY date DESC LIMIT 1",
            (await self._series_id(series), iso(before)),
        )
        if row is None:
            return None
        chart_id, day, source = row
        rows = await self.db.fetch(
            "SELECT e.rank, t.title, t.title_key, e.season, e.points, e.hours, e.views, e.runtime, "
            "e.weeks_reported, e.window_days FROM entries e JOIN titles t ON t.id = e.title_id "
            "WHERE e.chart_id = ? ORDER BY e.rank",
            (chart_id,),
        )
        key = ChartKey(source, *series, date.fromisoformat(day))
        return Snapshot(key, tuple(Entry(*r) for r in rows))

    async def add_charts(self, charts: Sequence[tuple[Snapshot, str]]) -> None:
        series_ids = await self._series_ids(s.key.series for s, _ in charts)  # type: ignore[misc]
        title_ids = await self._title_ids(e.title_key for s, _ in charts for e in s.entries)
        rows = [
            (series_ids[s.key.series], iso(s.key.date), s.key.source, dig, s.complete, self.now)  # type: ignore[index]
            for s, dig in charts
        ]
        chart_ids: dict[tuple[int, str], int] = {}
        for part in chunks(rows, VARIABLES // 6):
            returned = await self.db.fetch(
                "INSERT INTO charts (series_id, date, source, digest, complete, ingested_at) "
                f"VALUES {rows_placeholders(len(part), 6)} RETURNING id, series_id, date",
                [value for row in part for value in row],
            )
            chart_ids.update(((series_id, day), chart_id) for chart_id, series_id, day in returned)
        entries = []
        for snapshot, _ in charts:
            chart_id = chart_ids[(series_ids[snapshot.key.series], iso(snapshot.key.date))]  # type: ignore[index]
            entries.extend(_entry_rows(chart_id, snapshot, title_ids))
        # one statement over a JSON array, written behind: the caller's Python runs while SQLite stores
        # a chunk's entries (an executemany would hold the GIL for every row)
        await self.db.write_behind(INSERT_ENTRIES_FROM_JSON, (_ENTRIES_JSON.encode(entries),))

    async def replace_chart(self, snapshot: Snapshot, digest: str) -> None:
        chart_id = await self._chart_id(snapshot.key.series, snapshot.key.date)  # type: ignore[arg-type]
        if chart_id is None:
            await self.add_charts([(snapshot, digest)])
            return
        title_ids = await self._title_ids(e.title_key for e in snapshot.entries)
        await self.db.execute("DELETE FROM entries WHERE chart_id = ?", (chart_id,))
        await self.db.execute(
            "UPDATE charts SET source = ?, digest = ?, complete = ?, ingested_at = ? WHERE id = ?",
            (snapshot.key.source, digest, snapshot.complete, self.now, chart_id),
        )
        await self.db.executemany(INSERT_ENTRY, _entry_rows(chart_id, snapshot, title_ids))

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
        for part in chunks(pairs, VARIABLES // 2):
            rows = await self.db.fetch(
                f"WITH wanted (title_id, series_id) AS (VALUES {rows_placeholders(len(part), 2)}) "
                f"SELECT series_id, title_id, {STATS_FIELDS} FROM wanted JOIN title_stats USING (title_id, series_id)",
                [value for pair in part for value in pair],
            )
            for series_id, title_id, *stats in rows:
                found[by_id[series_id]][self.ids.title_keys[title_id]] = stats_from_row(stats)
        return dict(found)

    async def save_stats(self, rows: Sequence[tuple[SeriesKey, str, TitleStats]]) -> None:
        series_ids = await self._series_ids(key for key, _, _ in rows)
        title_ids = await self._title_ids(t for _, t, _ in rows)
        await self.db.executemany(
            UPSERT_STATS,
            [(series_ids[key], title_ids[t], *stats_to_row(stats)) for key, t, stats in rows],
        )

    async def drop_stats(self, series: SeriesKey, titles: Collection[str]) -> None:
        series_id = await self._series_id(series)
        title_ids = list((await self._title_ids(titles)).values())
        for part in chunks(title_ids, VARIABLES - 1):
            await self.db.execute(
                f"DELETE FROM title_stats WHERE series_id = ? AND title_id IN ({placeholders(len(part))})",
                (series_id, *part),
            )

    async def appearances(
        self, series: SeriesKey, titles: Collection[str], until: date | None
    ) -> dict[str, list[tuple[date, int]]]:
        series_id = await self._series_id(series)
        title_ids = await self._title_ids(titles)
        seen: dict[int, dict[str, int]] = defaultdict(dict)
        bound = iso(until) or "9999-12-31"
        ids = sorted(title_ids.values())
        for part in chunks(ids, VARIABLES - 2):
            rows = await self.db.fetch(
                "SELECT e.title_id, c.date, e.rank FROM entries e JOIN charts c ON c.id = e.chart_id "
                f"WHERE c.series_id = ? AND c.date < ? AND e.title_id IN ({placeholders(len(part))})",
                (series_id, bound, *part),
            )
            for title_id, day, rank in rows:
                dates = seen[title_id]
                dates[day] = min(rank, dates.get(day, rank))
        keys = self.ids.title_keys
        return {
            keys[t]: [(date.fromisoformat(d), r) for d, r in sorted(dates.items())]
            for t, dates in seen.items()
        }

    async def no1_history(self, series: SeriesKey, before: date) -> list[tuple[date, str]]:
        rows = await self.db.fetch(
            "SELECT c.date, e.title_id FROM entries e JOIN charts c ON c.id = e.chart_id "
            "WHERE c.series_id = ? AND c.date < ? AND e.rank = 1 ORDER BY c.date",
            (await self._series_id(series), iso(before)),
        )
        keys = await self._keys_of(t for _, t in rows)
        return [(date.fromisoformat(d), keys[t]) for d, t in rows]

    async def run_record(self, series: SeriesKey) -> RunRecord | None:
        row = await self.db.fetchone(
            "SELECT ts.longest_no1_run, t.title_key, t.title, ts.longest_no1_end FROM title_stats ts "
            "JOIN titles t ON t.id = ts.title_id WHERE ts.series_id = ? AND ts.longest_no1_run > 0 "
            "ORDER BY ts.longest_no1_run DESC, ts.longest_no1_end ASC LIMIT 1",
            (await self._series_id(series),),
        )
        return RunRecord(row[0], row[1], row[2], day_of(row[3])) if row else None

    # --- country aggregates -----------------------------------------------------------------------

    async def count_countries(self, periods: Iterable[tuple[GroupKey, date]]) -> None:
        """Each period's country counts from its stored charts, all periods of a batch in three
        statements (a year's import touches hundreds of them)."""
        wanted = sorted({(*group, iso(day)) for group, day in periods})
        for part in chunks(wanted, VARIABLES // 4):
            await self._count(part)

    async def _count(self, periods: Sequence[tuple[str, str, str, str]]) -> None:
        db = self.db
        values = [value for period in periods for value in period]
        wanted = f"wanted (service, category, period, date) AS (VALUES {rows_placeholders(len(periods), 4)})"
        await db.execute(
            f"WITH {wanted} DELETE FROM country_counts "
            "WHERE (service, category, period, date) IN (SELECT service, category, period, date FROM wanted)",
            values,
        )
        await db.execute(
            f"WITH {wanted} INSERT INTO country_counts (service, category, period, date, title_id, no1, top10) "
            "SELECT w.service, w.category, w.period, w.date, e.title_id, "
            "sum(CASE WHEN e.rank = 1 THEN 1 ELSE 0 END), count(DISTINCT e.chart_id) "
            "FROM wanted w JOIN series s ON s.service = w.service AND s.category = w.category "
            "AND s.period = w.period AND s.region != ? JOIN charts c ON c.series_id = s.id AND c.date = w.date "
            "JOIN entries e ON e.chart_id = c.id "
            "GROUP BY w.service, w.category, w.period, w.date, e.title_id",
            [*values, WORLD],
        )
        await db.execute(
            f"WITH {wanted} INSERT OR REPLACE INTO country_periods (service, category, period, date, reporting) "
            "SELECT w.service, w.category, w.period, w.date, (SELECT count(*) FROM series s "
            "JOIN charts c ON c.series_id = s.id AND c.date = w.date WHERE s.service = w.service "
            "AND s.category = w.category AND s.period = w.period AND s.region != ?) FROM wanted w",
            [*values, WORLD],
        )

    async def add_country_counts(self, tallies: Mapping[tuple[GroupKey, date], CountryTally]) -> None:
        counts, periods = tally_rows(tallies)
        title_ids = await self._title_ids({row[4] for row in counts})
        await self.db.executemany(
            ADD_COUNTRY_COUNTS,
            [(s, c, p, iso(d), title_ids[t], no1, top10) for s, c, p, d, t, no1, top10 in counts],
        )
        await self.db.executemany(ADD_COUNTRY_PERIOD, [(s, c, p, iso(d), n) for s, c, p, d, n in periods])

    async def country_inputs(self, group: GroupKey, day: date, floor: int) -> CountryInputs:
        db = self.db
        where = "service = ? AND category = ? AND period = ?"
        previous_day = iso(day - PERIODS[group[2]])
        # one look at the group's periods: the newest, and how many reported at P and P-1
        rows = await db.fetch(
            f"SELECT date, reporting, (SELECT max(date) FROM country_periods WHERE {where}) "
            f"FROM country_periods WHERE {where} AND date IN (?, ?) "
            f"UNION ALL SELECT NULL, NULL, (SELECT max(date) FROM country_periods WHERE {where})",
            (*group, *group, iso(day), previous_day, *group),
        )
        newest = rows[-1][2]
        reported = {when: count for when, count, _ in rows[:-1]}
        reporting, previous_reporting = reported.get(iso(day)), reported.get(previous_day)
        if newest != iso(day) or reporting is None or previous_reporting is None:
            return CountryInputs(day_of(newest), reporting, previous_reporting, {}, {}, {}, None, {})
        counts: dict[int, tuple[int, int]] = {}
        previous: dict[int, tuple[int, int]] = {}
        for when, title_id, no1, top10 in await db.fetch(
            f"SELECT date, title_id, no1, top10 FROM country_counts WHERE {where} AND date IN (?, ?)",
            (*group, iso(day), previous_day),
        ):
            (counts if when == iso(day) else previous)[title_id] = (no1, top10)
        best_before: dict[int, int] = {}
        # only a title at No. 1 in enough countries can be news, so only those need their best so far
        ids = [t for t, (no1, _) in counts.items() if no1 >= floor]
        for part in chunks(ids, VARIABLES - 4):
            rows = await db.fetch(
                # by title: the group's whole history would be read otherwise, longer every period
                "SELECT title_id, max(no1) FROM country_counts INDEXED BY country_counts_by_title "
                f"WHERE {where} AND date < ? AND title_id IN ({placeholders(len(part))}) GROUP BY title_id",
                (*group, iso(day), *part),
            )
            best_before.update(rows)
        record_row = await db.fetchone(
            f"SELECT no1, title_id, date FROM country_counts WHERE {where} AND date < ? AND no1 > 0 "
            "ORDER BY no1 DESC, date ASC LIMIT 1",
            (*group, iso(day)),
        )
        keys = await self._keys_of([*counts, *previous, *([record_row[1]] if record_row else [])])
        names = {keys[t]: self.ids.title_names[t] for t in keys}
        record = None
        if record_row:
            holder = keys[record_row[1]]
            record = RunRecord(record_row[0], holder, names[holder], date.fromisoformat(record_row[2]))
        return CountryInputs(
            newest=day_of(newest),
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
                iso(m.chart.date),
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

    async def add_milestones(
        self, found: Sequence[Milestone], *, scope: str, new_period: bool = False
    ) -> list[Milestone]:
        if not found:
            return []
        rows = await self._milestone_rows(found, scope)
        # news of a new period is new, unless some was stored already after all: then the careful way
        # below tells new from changed from the same
        if new_period and await self.db.executemany_changed(INSERT_OUTBOX, rows) == len(rows):
            return list(found)
        stored = await self._stored_news(rows)
        written, new, revised = [], [], []
        for milestone, row in zip(found, rows, strict=True):
            old = stored.get(row[:5])
            if old is None:
                new.append(row)
                written.append(milestone)
                continue
            outbox_id, value, previous, context, status = old
            if (value, previous, context) != (row[7], row[8], row[9]) or status == "retracted":
                status = "pending" if status in ("pending", "retracted") else status
                revised.append((row[7], row[8], row[9], status, self.now, outbox_id))
                written.append(milestone)
        await self.db.executemany(INSERT_OUTBOX, new)
        # a revised milestone keeps its read: a watch that missed the news does not get its correction
        await self.db.executemany(
            "UPDATE outbox SET value = ?, previous = ?, context = ?, status = ?, revision = revision + 1, "
            "updated_at = ? WHERE id = ?",
            revised,
        )
        return written

    async def _stored_news(self, rows: Sequence[tuple]) -> dict[tuple, tuple]:
        """(title, series, date, kind, detail) -> (id, value, previous, context, status) of stored ones."""
        keys = list({row[:5] for row in rows})
        found: dict[tuple, tuple] = {}
        for part in chunks(keys, VARIABLES // 5):
            stored = await self.db.fetch(
                f"WITH wanted (title_id, series_id, date, kind, detail) AS (VALUES {rows_placeholders(len(part), 5)}) "
                "SELECT o.title_id, o.series_id, o.date, o.kind, o.detail, o.id, o.value, o.previous, o.context, "
                "o.status FROM wanted JOIN outbox o USING (title_id, series_id, date, kind, detail)",
                [value for key in part for value in key],
            )
            found.update((tuple(r[:5]), tuple(r[5:])) for r in stored)
        return found

    async def retract_milestones(
        self, series: SeriesKey, day: date, titles: Collection[str], keep: Sequence[Milestone]
    ) -> int:
        title_ids = await self._title_ids(titles)
        if not title_ids:
            return 0
        keep_rows = {row[:5] for row in await self._milestone_rows(keep, "chart")} if keep else set()
        series_id = await self._series_id(series)
        ids = sorted(title_ids.values())
        rows = await self.db.fetch(
            "SELECT id, title_id, series_id, date, kind, detail FROM outbox WHERE series_id = ? AND date = ? "
            f"AND scope = 'chart' AND status != 'retracted' AND title_id IN ({placeholders(len(ids))})",
            (series_id, iso(day), *ids),
        )
        stale = [(self.now, r[0]) for r in rows if tuple(r[1:]) not in keep_rows]
        await self.db.executemany(
            "UPDATE outbox SET status = 'retracted', updated_at = ? WHERE id = ?", stale
        )
        return len(stale)

    # --- the poller's bookkeeping -------------------------------------------------------------------

    async def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        await save_validators(self.db, url, etag, last_modified)


async def begin_read(db: Db, source: str) -> int:
    """A new read's number (AUTOINCREMENT: never reused, even after a rollback of the newest)."""
    row = await db.fetchone(
        "INSERT INTO reads (source, started_at) VALUES (?, ?) RETURNING id",
        (source, datetime.now(UTC).isoformat(timespec="seconds")),
    )
    assert row is not None
    return int(row[0])


async def save_validators(db: Db, url: str, etag: str | None, last_modified: str | None) -> None:
    if etag is None and last_modified is None:
        await db.execute("DELETE FROM http_validators WHERE url = ?", (url,))
    else:
        await db.execute(
            "INSERT OR REPLACE INTO http_validators (url, etag, last_modified, updated_at) VALUES (?, ?, ?, ?)",
            (url, etag, last_modified, datetime.now(UTC).isoformat(timespec="seconds")),
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
