"""The write path: charts in, running stats and country counts updated, milestones to the outbox.

Everything here runs on the database thread inside one transaction (see `Store.ingest`). A batch is
worked series by series: charts newer than the series' newest are appended incrementally (stats
advanced in memory, written once); older or revised charts are written first and the stats of the
titles they touch are recomputed from history, so the result never depends on arrival order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bot import milestones as detector
from bot.model import PERIODS, WORLD, ChartKey, Milestone, Snapshot
from bot.stats import TitleStats, advance, fold

SeriesKey = tuple[str, str, str, str]
GroupKey = tuple[str, str, str]  # service, category, period: the country charts of one kind
_CHUNK = 500  # parameters per IN (...) list, well under SQLite's limit
TRUNCATED = "…"


@dataclass
class IngestReport:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    backfilled: int = 0  # added or replaced below a series' newest period: history only, no news
    entries: int = 0
    milestones: list[Milestone] = field(default_factory=list)
    # country periods counted in this batch: (service, category, period, date) -> a source of them
    country_periods: dict[tuple[str, str, str, date], str] = field(default_factory=dict)


def digest(snapshot: Snapshot) -> str:
    rows = [
        (e.rank, e.title_key, e.title, e.season, e.points, e.hours, e.views, e.runtime, e.weeks_reported)
        for e in snapshot.entries
    ]
    return hashlib.blake2b(repr(rows).encode(), digest_size=16).hexdigest()


def chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    return ",".join("?" * count)


def _rows(count: int, width: int) -> str:
    """Placeholders for `count` rows of VALUES, `width` columns each."""
    row = f"({marks(width)})"
    return ", ".join([row] * count)


@dataclass
class SeriesState:
    """What the next period of a series starts from: its newest chart and those titles' stats."""

    version: int
    last_ranks: dict[int, int]
    stats: dict[int, TitleStats]


@dataclass
class IngestCache:
    """State kept between ingests so the poller's small batches skip most reads.

    Title ids never change once committed. A series' state is trusted only while the series row's
    `version` is the one it was cached at, so another process writing the same file is noticed.
    The owner clears the whole cache when a transaction rolls back.
    """

    title_ids: dict[str, int] = field(default_factory=dict)
    title_keys: dict[int, str] = field(default_factory=dict)
    title_names: dict[int, str] = field(default_factory=dict)
    series: dict[int, SeriesState] = field(default_factory=dict)

    def clear(self) -> None:
        for table in (self.title_ids, self.title_keys, self.title_names, self.series):
            table.clear()


class Batch:
    """One ingest call: the shared lookups and the rows waiting to be written."""

    def __init__(self, conn: sqlite3.Connection, news: bool, cache: IngestCache | None = None) -> None:
        self.conn = conn
        self.news = news
        self.now = datetime.now(UTC).isoformat(timespec="seconds")
        self.report = IngestReport()
        self.cache = cache if cache is not None else IngestCache()
        self.title_ids = self.cache.title_ids
        self.title_keys = self.cache.title_keys
        self.title_names = self.cache.title_names
        self.next_chart_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM charts").fetchone()[0]
        self.touched_groups: set[tuple[GroupKey, str]] = set()
        # rows of new charts, written together in flush(): one executemany each per batch
        self.chart_rows: list[tuple] = []
        self.entry_rows: list[tuple] = []
        self.stats_rows: list[tuple] = []
        self.outbox_rows: list[tuple] = []
        self.series_rows: list[tuple] = []

    def flush(self) -> None:
        conn = self.conn
        conn.executemany(
            "INSERT INTO charts (id, series_id, date, source, digest, complete, ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.chart_rows,
        )
        conn.executemany(
            "INSERT INTO entries (chart_id, rank, title_id, season, points, hours, views, runtime, "
            "weeks_reported) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.entry_rows,
        )
        conn.executemany(UPSERT_STATS, self.stats_rows)
        conn.executemany(INSERT_OUTBOX, self.outbox_rows)
        conn.executemany(
            "UPDATE series SET latest_date = ?, record_run = ?, record_holder = ?, record_end = ?, "
            "version = version + 1 WHERE id = ?",
            self.series_rows,
        )
        self.chart_rows, self.entry_rows, self.stats_rows, self.outbox_rows = [], [], [], []
        self.series_rows = []

    def load_series(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, tuple]:
        """(id, latest_date, record_run, record_holder, record_end, version) of the stored ones."""
        found: dict[SeriesKey, tuple] = {}
        for part in chunks(keys, _CHUNK // 4):
            rows = self.conn.execute(
                f"WITH wanted (service, region, category, period) AS (VALUES {_rows(len(part), 4)}) "
                "SELECT service, region, category, period, id, latest_date, record_run, record_holder, "
                "record_end, version FROM wanted JOIN series USING (service, region, category, period)",
                [value for key in part for value in key],
            )
            found.update((row[:4], row[4:]) for row in rows)
        return found

    def prefetch_stats(self, work: list[tuple[SeriesIngest, list[Snapshot]]]) -> None:
        """The stats of the titles each series charts now, read for the whole batch at once.

        One read per batch instead of one per series; `_load_stats` reads what is still missing.
        """
        ids = self.title_ids
        wanted = [
            (title_id, series.series_id)
            for series, charts in work
            if not series.is_new
            for title_id in {ids[e.title_key] for snapshot in charts for e in snapshot.entries}
            if title_id not in series.stats
        ]
        by_id = {series.series_id: series for series, _ in work}
        for part in chunks(wanted, _CHUNK // 2):
            rows = self.conn.execute(
                f"WITH wanted (title_id, series_id) AS (VALUES {_rows(len(part), 2)}) "
                f"SELECT series_id, {STATS_COLUMNS} FROM wanted JOIN title_stats USING (title_id, series_id)",
                [value for pair in part for value in pair],
            )
            for row in rows:
                by_id[row[0]].stats[row[1]] = stats_from_row(row[2:])
        for title_id, series_id in wanted:
            by_id[series_id].looked_up.add(title_id)

    def resolve_titles(self, snapshots: Iterable[Snapshot]) -> None:
        names: dict[str, str] = {}
        known = self.title_ids
        for snapshot in snapshots:
            for entry in snapshot.entries:
                if entry.title_key not in known:
                    names.setdefault(entry.title_key, entry.title)
        if not names:
            return
        self.load_titles_by_key(list(names))
        for key, name in names.items():
            if key not in known and name.endswith(TRUNCATED):
                self._complete_truncated(key)
        new = [(key, name) for key, name in names.items() if key not in known]
        self.conn.executemany(
            "INSERT INTO titles (title_key, title) VALUES (?, ?) ON CONFLICT (title_key) DO NOTHING", new
        )
        self.load_titles_by_key([key for key, _ in new])

    def _complete_truncated(self, key: str) -> None:
        """A title cut short with "…" (the U.S. daily file does that) is the one stored title it begins."""
        rows = self.conn.execute(
            "SELECT id, title_key, title FROM titles WHERE title_key > ? AND title_key < ? LIMIT 2",
            (key + " ", key + "\U0010ffff"),
        ).fetchall()
        if len(rows) == 1:
            title_id, full_key, name = rows[0]
            self._remember([(title_id, full_key, name)])
            self.title_ids[key] = title_id

    def load_titles_by_key(self, keys: Sequence[str]) -> None:
        for part in chunks(keys):
            sql = f"SELECT id, title_key, title FROM titles WHERE title_key IN ({marks(len(part))})"
            self._remember(self.conn.execute(sql, part))

    def load_titles_by_id(self, ids: Iterable[int]) -> None:
        missing = [i for i in set(ids) if i not in self.title_keys]
        for part in chunks(missing):
            sql = f"SELECT id, title_key, title FROM titles WHERE id IN ({marks(len(part))})"
            self._remember(self.conn.execute(sql, part))

    def _remember(self, rows: Iterable[tuple[int, str, str]]) -> None:
        for title_id, key, name in rows:
            self.title_ids[key] = title_id
            self.title_keys[title_id] = key
            self.title_names[title_id] = name


def store_charts(
    conn: sqlite3.Connection, snapshots: Sequence[Snapshot], *, news: bool, cache: IngestCache | None = None
) -> IngestReport:
    """Store the charts; with `news`, detect milestones of new newest periods into the outbox.

    The caller holds the transaction. Country aggregates are counted here but detected separately
    (`detect_countries`), because only the caller knows when a period's regions are complete.
    """
    batch = Batch(conn, news, cache)
    latest: dict[SeriesKey, Snapshot] = {}
    for snapshot in snapshots:  # the last copy of a chart in a batch wins
        latest[(*snapshot.key.series, snapshot.key.date.isoformat())] = snapshot  # type: ignore[index]
    by_series: dict[SeriesKey, list[Snapshot]] = defaultdict(list)
    for snapshot in latest.values():
        by_series[snapshot.key.series].append(snapshot)
    batch.resolve_titles(latest.values())
    stored = batch.load_series(list(by_series))
    work = [(SeriesIngest(batch, series, stored.get(series)), charts) for series, charts in by_series.items()]
    batch.prefetch_stats(work)
    for series_ingest, charts in work:
        charts.sort(key=lambda s: s.key.date)
        series_ingest.run(charts)
    batch.flush()
    for group, day in sorted(batch.touched_groups):
        count_countries(conn, group, day)
    return batch.report


class SeriesIngest:
    """The charts of one series in one batch."""

    def __init__(self, batch: Batch, series: SeriesKey, row: tuple | None) -> None:
        """`row`: the stored series (Batch.load_series), None for a new one."""
        self.batch = batch
        self.conn = batch.conn
        self.series = series
        self.step = PERIODS[series[3]]
        self.is_new = row is None  # then no stats are stored but the ones written in this batch
        if row is None:
            cursor = self.conn.execute(
                "INSERT INTO series (service, region, category, period) VALUES (?, ?, ?, ?)", series
            )
            row = (cursor.lastrowid, None, 0, None, None, 0)
        self.series_id: int = row[0]
        self.latest: date | None = date.fromisoformat(row[1]) if row[1] else None
        self.record = (row[2], row[3], date.fromisoformat(row[4]) if row[4] else None)
        self.version: int = row[5]
        self.stats: dict[int, TitleStats] = {}
        self.looked_up: set[int] = set()  # titles whose stored stats were read (some have none)
        self.dirty: set[int] = set()
        cached = batch.cache.series.pop(self.series_id, None)  # back in _save() if still true
        self.cached = cached if cached is not None and cached.version == self.version else None
        if self.cached:
            self.stats.update(self.cached.stats)

    def run(self, charts: list[Snapshot]) -> None:
        all_new = self.latest is None or charts[0].key.date > self.latest
        existing = {} if all_new else self._existing_charts(charts[0].key.date)
        fresh, late = [], []
        for snapshot in charts:
            known = existing.get(snapshot.key.date)
            if known and known[1] == digest(snapshot):
                self.batch.report.unchanged += 1
            elif self.latest is None or snapshot.key.date > self.latest:
                fresh.append(snapshot)
            else:
                late.append((snapshot, known[0] if known else None))
        if late:
            self.cached = None
            self._write_late(late)
        if fresh:
            self._append(fresh)
        self._save()

    def _existing_charts(self, since: date) -> dict[date, tuple[int, str]]:
        rows = self.conn.execute(
            "SELECT date, id, digest FROM charts WHERE series_id = ? AND date >= ?",
            (self.series_id, since.isoformat()),
        )
        return {date.fromisoformat(day): (chart_id, dig) for day, chart_id, dig in rows}

    # --- late charts: backfills and revisions --------------------------------------------------

    def _write_late(self, late: list[tuple[Snapshot, int | None]]) -> None:
        affected: set[int] = set()
        revised_latest: list[tuple[Snapshot, dict[int, int]]] = []
        for snapshot, chart_id in late:
            old_ranks: dict[int, int] = {}
            if chart_id is not None:
                old_ranks = self._chart_ranks(chart_id)
                affected.update(old_ranks)
                self.conn.execute("DELETE FROM entries WHERE chart_id = ?", (chart_id,))
                self.conn.execute(
                    "UPDATE charts SET source = ?, digest = ?, complete = ?, ingested_at = ? WHERE id = ?",
                    (snapshot.key.source, digest(snapshot), snapshot.complete, self.batch.now, chart_id),
                )
                self.batch.report.replaced += 1
            else:
                chart_id = self._insert_chart(snapshot)
                self.batch.report.added += 1
            self._insert_entries(chart_id, snapshot)
            affected.update(self._ranks_of(snapshot))
            if snapshot.key.date == self.latest and self.batch.news:
                revised_latest.append((snapshot, old_ranks))
            else:
                self.batch.report.backfilled += 1
            self._touch_group(snapshot.key)
        self.batch.flush()  # what follows reads these charts back
        for snapshot, old_ranks in revised_latest:
            self._detect_revision(snapshot, old_ranks)
        self._recompute(affected)

    def _detect_revision(self, snapshot: Snapshot, old_ranks: dict[int, int]) -> None:
        """A corrected newest chart: detect again against history; stale news is retracted."""
        ranks = self._ranks_of(snapshot)
        previous = self._previous_ranks(snapshot.key.date)
        titles = set(ranks) | set(previous or {})
        before = self._fold(titles, until=snapshot.key.date)
        after = {t: advance(before.get(t), snapshot.key.date, r, self.step) for t, r in ranks.items()}
        record = self._record_before(snapshot.key.date)
        self.batch.load_titles_by_id([*titles, *([record[1]] if record[1] else [])])
        found = self._detect(snapshot, ranks, previous, before, after, record, first_time=False)
        keep = {m.key for m in found}
        involved = sorted(titles | set(old_ranks))  # whoever the old news could have been about
        self.conn.execute(
            "UPDATE outbox SET status = 'retracted', updated_at = ? WHERE scope = 'chart' "
            f"AND title_id IN ({marks(len(involved))}) AND date = ? AND service = ? AND region = ? "
            f"AND category = ? AND period = ? AND status != 'retracted' AND key NOT IN ({marks(len(keep))})",
            (self.batch.now, *involved, snapshot.key.date.isoformat(), *self.series, *keep),
        )

    def _recompute(self, titles: set[int]) -> None:
        folded = self._fold(titles, until=None)
        for title_id in titles:
            if title_id in folded:
                self.stats[title_id] = folded[title_id]
            else:
                self.stats.pop(title_id, None)
                self.conn.execute(
                    "DELETE FROM title_stats WHERE series_id = ? AND title_id = ?", (self.series_id, title_id)
                )
        self.dirty.update(t for t in titles if t in folded)
        self._save_stats()
        self.batch.flush()
        self.record = self._record_from_stats()

    def _fold(self, titles: Iterable[int], until: date | None) -> dict[int, TitleStats]:
        """Stats from the stored history of these titles in this series (before `until`)."""
        appearances: dict[int, dict[date, int]] = defaultdict(dict)
        bound = until.isoformat() if until else "9999-12-31"
        for part in chunks(sorted(titles)):
            rows = self.conn.execute(
                "SELECT e.title_id, c.date, e.rank FROM entries e JOIN charts c ON c.id = e.chart_id "
                f"WHERE c.series_id = ? AND c.date < ? AND e.title_id IN ({marks(len(part))})",
                (self.series_id, bound, *part),
            )
            for title_id, day, rank in rows:
                seen = appearances[title_id]
                when = date.fromisoformat(day)
                seen[when] = min(rank, seen.get(when, rank))
        result = {}
        for title_id, seen in appearances.items():
            stats = fold(sorted(seen.items()), self.step)
            if stats is not None:
                result[title_id] = stats
        return result

    def _record_from_stats(self) -> tuple[int, int | None, date | None]:
        row = self.conn.execute(
            "SELECT longest_no1_run, title_id, longest_no1_end FROM title_stats WHERE series_id = ? "
            "AND longest_no1_run > 0 ORDER BY longest_no1_run DESC, longest_no1_end ASC LIMIT 1",
            (self.series_id,),
        ).fetchone()
        if row is None:
            return (0, None, None)
        return (row[0], row[1], date.fromisoformat(row[2]))

    def _record_before(self, day: date) -> tuple[int, int | None, date | None]:
        """The run record as it stood before `day`: runs ending earlier, cut at `day`."""
        rows = self.conn.execute(
            "SELECT e.title_id, c.date FROM entries e JOIN charts c ON c.id = e.chart_id "
            "WHERE c.series_id = ? AND c.date < ? AND e.rank = 1 ORDER BY c.date",
            (self.series_id, day.isoformat()),
        )
        best: tuple[int, int | None, date | None] = (0, None, None)
        holder, run, last = None, 0, None
        for title_id, text in rows:
            when = date.fromisoformat(text)
            run = run + 1 if holder == title_id and last is not None and last + self.step == when else 1
            holder, last = title_id, when
            if run > best[0]:
                best = (run, title_id, when)
        return best

    # --- fresh charts: the newest periods, appended in order ------------------------------------

    def _append(self, fresh: list[Snapshot]) -> None:
        """The hot path of every ingest: keep it lean (one pass, stats advanced in memory)."""
        ranked = [(snapshot, self._ranks_of(snapshot)) for snapshot in fresh]
        if self.cached:
            previous: dict[int, int] | None = self.cached.last_ranks
        else:
            previous = self._previous_ranks(fresh[0].key.date) if self.latest else None
        charted: set[int] = set().union(*(ranks for _, ranks in ranked))
        self._load_stats(charted | set(previous or ()))
        stats, step, news = self.stats, self.step, self.batch.news
        if news:  # the titles charted now are known already (resolve_titles); these may not be
            self.batch.load_titles_by_id([*(previous or ()), *([self.record[1]] if self.record[1] else [])])
        for snapshot, ranks in ranked:
            day = snapshot.key.date
            after = {t: advance(stats.get(t), day, r, step) for t, r in ranks.items()}
            if news and previous is not None:  # `stats` is still as it was before this chart
                self._detect(snapshot, ranks, previous, stats, after, self.record, first_time=True)
            stats.update(after)
            for title_id, title_stats in after.items():
                if title_stats.longest_no1_run > self.record[0]:
                    self.record = (title_stats.longest_no1_run, title_id, title_stats.longest_no1_end)
            self._insert_entries(self._insert_chart(snapshot), snapshot)
            self._touch_group(snapshot.key)
            previous = ranks
        self.dirty.update(charted)
        self.latest = fresh[-1].key.date
        self.cached = SeriesState(self.version + 1, previous or {}, {t: stats[t] for t in previous or ()})
        self.batch.report.added += len(fresh)

    def _load_stats(self, titles: set[int]) -> None:
        if self.is_new:
            return
        missing = sorted(t for t in titles if t not in self.stats and t not in self.looked_up)
        for part in chunks(missing):
            rows = self.conn.execute(
                f"SELECT {STATS_COLUMNS} FROM title_stats WHERE series_id = ? "
                f"AND title_id IN ({marks(len(part))})",
                (self.series_id, *part),
            )
            for row in rows:
                self.stats[row[0]] = stats_from_row(row[1:])

    # --- shared pieces ----------------------------------------------------------------------------

    def _detect(
        self,
        snapshot: Snapshot,
        ranks: dict[int, int],
        previous: dict[int, int] | None,
        before: Mapping[int, TitleStats],
        after: dict[int, TitleStats],
        record: tuple[int, int | None, date | None],
        *,
        first_time: bool,
    ) -> list[Milestone]:
        """The caller has loaded the names of the titles in `previous` and of the record holder."""
        batch = self.batch
        run_record = None
        if record[1] is not None:
            run_record = detector.Record(record[0], record[1], batch.title_names[record[1]], record[2])
        change = detector.ChartChange(
            chart=snapshot.key,
            ranks=ranks,
            previous_ranks=previous,
            before=before,
            after=after,
            title_keys=batch.title_keys,
            titles=batch.title_names,
            complete=snapshot.complete,
            run_record=run_record,
        )
        found = detector.detect_chart(change)
        record_milestones(batch, found, scope="chart", first_time=first_time)
        return found

    def _previous_ranks(self, day: date) -> dict[int, int] | None:
        """The last chart stored before `day` (P-1, or older across a gap)."""
        row = self.conn.execute(
            "SELECT id FROM charts WHERE series_id = ? AND date < ? ORDER BY date DESC LIMIT 1",
            (self.series_id, day.isoformat()),
        ).fetchone()
        return self._chart_ranks(row[0]) if row else None

    def _chart_ranks(self, chart_id: int) -> dict[int, int]:
        ranks: dict[int, int] = {}
        for title_id, rank in self.conn.execute(
            "SELECT title_id, rank FROM entries WHERE chart_id = ? ORDER BY rank DESC", (chart_id,)
        ):
            ranks[title_id] = rank
        return ranks

    def _ranks_of(self, snapshot: Snapshot) -> dict[int, int]:
        ids = self.batch.title_ids
        return {ids[key]: rank for key, rank in snapshot.best_ranks().items()}

    def _insert_chart(self, snapshot: Snapshot) -> int:
        chart_id = self.batch.next_chart_id
        self.batch.next_chart_id += 1
        self.batch.chart_rows.append(
            (
                chart_id,
                self.series_id,
                snapshot.key.date.isoformat(),
                snapshot.key.source,
                digest(snapshot),
                snapshot.complete,
                self.batch.now,
            )
        )
        return chart_id

    def _insert_entries(self, chart_id: int, snapshot: Snapshot) -> None:
        ids = self.batch.title_ids
        self.batch.entry_rows.extend(
            (
                chart_id,
                e.rank,
                ids[e.title_key],
                e.season,
                e.points,
                e.hours,
                e.views,
                e.runtime,
                e.weeks_reported,
            )
            for e in snapshot.entries
        )
        self.batch.report.entries += len(snapshot.entries)

    def _touch_group(self, key: ChartKey) -> None:
        if key.region != WORLD:
            self.batch.touched_groups.add(((key.service, key.category, key.period), key.date.isoformat()))
            self.batch.report.country_periods[(key.service, key.category, key.period, key.date)] = key.source

    def _save(self) -> None:
        self._save_stats()
        run, holder, end = self.record
        self.batch.series_rows.append((_iso(self.latest), run, holder, _iso(end), self.series_id))
        if self.cached is not None:
            self.batch.cache.series[self.series_id] = self.cached

    def _save_stats(self) -> None:
        self.batch.stats_rows.extend((self.series_id, t, *stats_to_row(self.stats[t])) for t in self.dirty)
        self.dirty.clear()


STATS_FIELD_NAMES = tuple(TitleStats.__dataclass_fields__)
STATS_FIELDS = ", ".join(STATS_FIELD_NAMES)
STATS_COLUMNS = "title_id, " + STATS_FIELDS
UPSERT_STATS = (
    f"INSERT INTO title_stats (series_id, title_id, {STATS_FIELDS}) VALUES (?, ?, {marks(len(STATS_FIELD_NAMES))}) "
    "ON CONFLICT (title_id, series_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in STATS_FIELD_NAMES)
)


@functools.lru_cache(maxsize=65_536)  # a history has a few thousand dates, each written many times
def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def stats_to_row(s: TitleStats) -> tuple:
    """In STATS_FIELD_NAMES order; spelled out because it runs once per title and chart (as do the
    four dates, hence `_iso`'s cache)."""
    iso = _iso
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
        _day(longest_end),
        top10,
    )


# --- country aggregates ---------------------------------------------------------------------------


def count_countries(conn: sqlite3.Connection, group: GroupKey, day: str) -> None:
    """Recount, for one period of a group, the countries where each title is No. 1 / in the top 10."""
    conn.execute(
        "DELETE FROM country_counts WHERE service = ? AND category = ? AND period = ? AND date = ?",
        (*group, day),
    )
    charts = (
        "SELECT c.id FROM charts c JOIN series s ON s.id = c.series_id WHERE c.date = ? "
        "AND s.service = ? AND s.category = ? AND s.period = ? AND s.region != ?"
    )
    conn.execute(
        "INSERT INTO country_counts (service, category, period, date, title_id, no1, top10) "
        "SELECT ?, ?, ?, ?, e.title_id, sum(CASE WHEN e.rank = 1 THEN 1 ELSE 0 END), "
        f"count(DISTINCT e.chart_id) FROM entries e WHERE e.chart_id IN ({charts}) GROUP BY e.title_id",
        (*group, day, day, *group, WORLD),
    )
    reporting = conn.execute(f"SELECT count(*) FROM ({charts})", (day, *group, WORLD)).fetchone()[0]
    conn.execute(
        "INSERT OR REPLACE INTO country_periods (service, category, period, date, reporting) "
        "VALUES (?, ?, ?, ?, ?)",
        (*group, day, reporting),
    )


def detect_countries(conn: sqlite3.Connection, group: GroupKey, day: date, source: str) -> list[Milestone]:
    """Aggregate milestones for one complete period of a group; nothing for a backfill or a baseline."""
    where = "service = ? AND category = ? AND period = ?"
    newest = conn.execute(f"SELECT max(date) FROM country_periods WHERE {where}", group).fetchone()[0]
    previous_day = (day - PERIODS[group[2]]).isoformat()
    reporting = _reporting(conn, group, day.isoformat())
    previous_reporting = _reporting(conn, group, previous_day)
    if newest != day.isoformat() or reporting is None or previous_reporting is None:
        return []
    counts = _counts(conn, group, day.isoformat())
    previous = _counts(conn, group, previous_day)
    best_before: dict[int, int] = {}
    # only a title at No. 1 in enough countries can be news, so only those need their best so far
    ids = [t for t, (no1, _) in counts.items() if no1 >= detector.NO1_COUNTRIES_FLOOR]
    for part in chunks(ids):
        rows = conn.execute(
            # by title: the group's whole history would be read otherwise, longer every period
            "SELECT title_id, max(no1) FROM country_counts INDEXED BY country_counts_by_title "
            f"WHERE {where} AND date < ? "
            f"AND title_id IN ({marks(len(part))}) GROUP BY title_id",
            (*group, day.isoformat(), *part),
        )
        best_before.update(rows)
    record_row = conn.execute(
        f"SELECT no1, title_id, date FROM country_counts WHERE {where} AND date < ? AND no1 > 0 "
        "ORDER BY no1 DESC, date ASC LIMIT 1",
        (*group, day.isoformat()),
    ).fetchone()
    batch = Batch(conn, news=True)
    batch.load_titles_by_id([*counts, *previous, *([record_row[1]] if record_row else [])])
    record = None
    if record_row:
        record = detector.Record(
            record_row[0], record_row[1], batch.title_names[record_row[1]], date.fromisoformat(record_row[2])
        )
    service, category, period = group
    change = detector.CountryChange(
        chart=ChartKey(source, service, WORLD, category, period, day),
        counts=counts,
        previous=previous,
        best_before=best_before,
        reporting=reporting,
        previous_reporting=previous_reporting,
        title_keys=batch.title_keys,
        titles=batch.title_names,
        record=record,
    )
    record_milestones(batch, detector.detect_countries(change), scope="countries")
    return batch.report.milestones


def _reporting(conn: sqlite3.Connection, group: GroupKey, day: str) -> int | None:
    row = conn.execute(
        "SELECT reporting FROM country_periods WHERE service = ? AND category = ? AND period = ? AND date = ?",
        (*group, day),
    ).fetchone()
    return row[0] if row else None


def _counts(conn: sqlite3.Connection, group: GroupKey, day: str) -> dict[int, tuple[int, int]]:
    rows = conn.execute(
        "SELECT title_id, no1, top10 FROM country_counts "
        "WHERE service = ? AND category = ? AND period = ? AND date = ?",
        (*group, day),
    )
    return {title_id: (no1, top10) for title_id, no1, top10 in rows}


# --- the outbox -------------------------------------------------------------------------------------


INSERT_OUTBOX = (
    "INSERT INTO outbox (key, kind, scope, title_id, source, service, region, category, period, date, value, "
    "previous, context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_CONTEXT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # json.dumps would build one a call


_CONTEXTS: dict[str, str] = {}  # repr -> JSON: the same few contexts recur (reentry, periods, runs)


def _context_json(context: Mapping[str, Any]) -> str:
    if not context:
        return "{}"
    text = repr(context)  # tells True from 1, unlike the dict itself as a key
    encoded = _CONTEXTS.get(text)
    if encoded is None:
        if len(_CONTEXTS) >= 4096:
            _CONTEXTS.clear()
        encoded = _CONTEXTS[text] = _CONTEXT_JSON.encode(dict(context))
    return encoded


def _outbox_rows(batch: Batch, found: list[Milestone], scope: str) -> list[tuple]:
    """Rows for INSERT_OUTBOX of the milestones of one chart, whose columns are worked out once."""
    ids, now, chart = batch.title_ids, batch.now, found[0].chart
    source, day = chart.source, chart.date.isoformat()
    service, region, category, period = chart.series
    return [
        (
            m.key,
            m.kind,
            scope,
            ids[m.title_key],
            source,
            service,
            region,
            category,
            period,
            day,
            m.value,
            m.previous,
            _context_json(m.context),
            now,
        )
        for m in found
    ]


def record_milestones(batch: Batch, found: list[Milestone], *, scope: str, first_time: bool = False) -> None:
    """Write the milestones of one chart to the outbox once per key; a changed value updates the pending row.

    No index keeps keys unique (see schema step 4): this does. `first_time`: a period never detected
    before (a new newest chart), so no key can exist yet and the rows wait in the batch to be written
    together. Otherwise the milestones the chart's titles already have on its date are read first.
    """
    if not found:
        return
    batch.report.milestones.extend(found)
    if first_time:
        batch.outbox_rows.extend(_outbox_rows(batch, found, scope))
        return
    conn, ids, chart = batch.conn, batch.title_ids, found[0].chart
    titles = sorted({ids[m.title_key] for m in found})
    known = {
        key: (outbox_id, value, previous, context, status)
        for outbox_id, key, value, previous, context, status in conn.execute(
            "SELECT id, key, value, previous, context, status FROM outbox INDEXED BY outbox_by_title "
            f"WHERE title_id IN ({marks(len(titles))}) AND date = ? "
            "AND service = ? AND region = ? AND category = ? AND period = ?",
            (*titles, chart.date.isoformat(), *chart.series),
        )
    }
    for milestone in found:
        old = known.get(milestone.key)
        if old is None:
            conn.executemany(INSERT_OUTBOX, _outbox_rows(batch, [milestone], scope))
            continue
        outbox_id, *was, status = old
        context = _context_json(milestone.context)
        if was != [milestone.value, milestone.previous, context] or status == "retracted":
            status = "pending" if status in ("pending", "retracted") else status
            conn.execute(
                "UPDATE outbox SET value = ?, previous = ?, context = ?, status = ?, revision = revision + 1, "
                "updated_at = ? WHERE id = ?",
                (milestone.value, milestone.previous, context, status, batch.now, outbox_id),
            )
        else:
            batch.report.milestones.remove(milestone)  # the same news, already recorded
