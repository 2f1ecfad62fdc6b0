"""Ingest speed: a synthetic daily history (95 regions × 2 categories × 365 days) into a fresh database.

Three figures, all in one run, each into a database of its own:
- floor: the same entry rows written straight into the same `entries` table (same schema, indexes and
  constraints; title and chart ids given), no stats, no checks: what storing the rows costs at all.
  SQLite: one `executemany`; PostgreSQL: one `COPY` (its charts and titles written first, untimed);
- import: one ingest of the whole history in one call, as `chartbot import` stores a file;
- per day: one ingest (one transaction) per day's 190 charts, as the poller stores them.

    python bench/ingest.py [--days 365] [--db postgresql://user:password@host/dbname] [--no-catch-up]

Without `--db`, SQLite files in a temporary folder. With a PostgreSQL URL, each run gets a schema of
its own in that database (`chartbot_bench_*`, dropped at the end; nothing else is touched).
Targets: import ≥ 100,000 entries/s and ≤ 3× the floor.

Then, on SQLite, the catch-up figure (`bench/catchup.py`, one run): a first poll of Netflix's real
2022-11-13 country file from a local server beside `chartbot import` of the same file. Target ≤ 1.5×.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import history

from bot.ingest import Ingester, ingest
from bot.model import Snapshot
from bot.store import is_postgres_url, open_store, redact

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
INSERT_ENTRY = (
    "INSERT INTO entries (chart_id, rank, title_id, season, points, hours, views, runtime, weeks_reported, "
    "window_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# --- fresh databases ------------------------------------------------------------------------------


class Scratch:
    """Fresh databases for a bench run: SQLite files in a temporary folder, or PostgreSQL schemas in
    the database `--db` names (each `name` a schema of its own, dropped when the run ends)."""

    def __init__(self, db: str | None) -> None:
        self.db = db
        self.made: list[str] = []
        self.folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def postgres(self) -> bool:
        return self.db is not None and is_postgres_url(self.db)

    def target(self, name: str) -> str:
        """A fresh database called `name`: a SQLite path, or the URL of a new PostgreSQL schema."""
        if not self.postgres:
            if self.folder is None:
                self.folder = tempfile.TemporaryDirectory()
            return str(Path(self.folder.name) / f"{name}.sqlite3")
        schema = f"chartbot_bench_{name}"
        asyncio.run(self._sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        self.made.append(schema)
        parts = urlsplit(self.db)
        query = "&".join(p for p in (parts.query, f"search_path={schema}") if p)
        return urlunsplit(parts._replace(query=query))

    async def _sql(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.db)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def settle(self) -> None:
        """Before a timed run on PostgreSQL: a CHECKPOINT, so that no run pays for writing out the
        pages the run before it left dirty (needs a superuser or the pg_checkpoint role)."""
        if not self.postgres:
            return
        try:
            asyncio.run(self._sql("CHECKPOINT"))
        except Exception as exc:  # the bench goes on, unsettled, and says so
            print(f"(no CHECKPOINT between runs: {exc})")

    def close(self) -> None:
        if self.made:
            asyncio.run(self._sql("; ".join(f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in self.made)))
        if self.folder is not None:
            self.folder.cleanup()

    def where(self) -> str:
        return f"PostgreSQL ({redact(self.db)})" if self.postgres else "SQLite (files in a temporary folder)"


@contextlib.contextmanager
def scratch(db: str | None) -> Iterator[Scratch]:
    made = Scratch(db)
    try:
        yield made
    finally:
        made.close()


# --- the floor ---------------------------------------------------------------------------------------


def entry_rows(days: list[list[Snapshot]]) -> tuple[list[tuple], dict[str, int], int]:
    """Every entry as an `entries` row (chart ids in order, title ids by first appearance)."""
    ids: dict[str, int] = {}
    rows = []
    chart_id = 0
    for charts in days:
        for snapshot in charts:
            chart_id += 1
            for e in snapshot.entries:
                title_id = ids.setdefault(e.title_key, len(ids) + 1)
                figures = (e.season, e.points, e.hours, e.views, e.runtime, e.weeks_reported, e.window_days)
                rows.append((chart_id, e.rank, title_id, *figures))
    return rows, ids, chart_id


def sqlite_floor(days: list[list[Snapshot]], path: str) -> float:
    asyncio.run(_migrated(path))
    rows, _, _ = entry_rows(days)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(INSERT_ENTRY, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def _migrated(target: str) -> None:
    async with await open_store(target):
        pass


async def postgres_floor(days: list[list[Snapshot]], url: str) -> float:
    """COPY the entries into `entries` (its charts and titles, which its foreign keys need, first)."""
    import asyncpg

    await _migrated(url)
    rows, ids, charts = entry_rows(days)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO series (id, service, region, category, period) VALUES (1, 'b', 'b', 'b', 'day')"
        )
        await conn.executemany(
            "INSERT INTO titles (id, title_key, title) VALUES ($1, $2, $2)", [(i, k) for k, i in ids.items()]
        )
        await conn.execute(
            "INSERT INTO charts (id, series_id, date, source, digest, complete, ingested_at) "
            "SELECT n, 1, DATE '2000-01-01' + n, 'b', 'b', true, now() FROM generate_series(1, $1) AS n",
            charts,
        )
        await conn.execute("ANALYZE")
        start = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("entries", records=rows, columns=ENTRY_COLUMNS)
        return time.perf_counter() - start
    finally:
        await conn.close()


# --- ingest ----------------------------------------------------------------------------------------------


async def import_all(days: list[list[Snapshot]], target: str) -> float:
    charts = [snapshot for day in days for snapshot in day]
    async with await open_store(target) as store:
        start = time.perf_counter()
        await ingest(store, charts, news=False)
        return time.perf_counter() - start


async def day_by_day(days: list[list[Snapshot]], target: str) -> float:
    async with await open_store(target) as store:
        ingester = Ingester(store)  # as the poller: one ingester keeps each series' state between days
        start = time.perf_counter()
        for charts in days:
            await ingester.ingest(charts, news=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--db", help="a PostgreSQL URL (a scratch schema per run); default: SQLite files")
    parser.add_argument(
        "--no-catch-up", dest="catch_up", action="store_false", help="skip the catch-up figure"
    )
    args = parser.parse_args()
    built = time.perf_counter()
    days = list(history(args.days))
    entries = sum(len(s.entries) for charts in days for s in charts)
    charts = sum(len(c) for c in days)
    print(f"history: {charts:,} charts, {entries:,} entries (built in {time.perf_counter() - built:.1f} s)")
    with scratch(args.db) as db:
        print(f"engine: {db.where()}")
        if db.postgres:
            base, floor = asyncio.run(postgres_floor(days, db.target("floor"))), "COPY"
        else:
            base, floor = sqlite_floor(days, db.target("floor")), "executemany"
        db.settle()
        whole = asyncio.run(import_all(days, db.target("import")))
        db.settle()
        daily = asyncio.run(day_by_day(days, db.target("daily")))
    print(
        f"floor ({floor}, same table):{' ' * (16 - len(floor))}{base:6.2f} s  {entries / base:>10,.0f} entries/s"
    )
    print(
        f"import (one call):               {whole:6.2f} s  {entries / whole:>10,.0f} entries/s  ratio {whole / base:.2f}"
    )
    print(
        f"per day (one transaction a day): {daily:6.2f} s  {entries / daily:>10,.0f} entries/s  ratio {daily / base:.2f}"
    )
    print("targets: import ≥ 100,000 entries/s, ratio ≤ 3")
    if args.catch_up and not args.db:
        catch_up()


def catch_up() -> None:
    """A first poll of the real country file beside `chartbot import` of it (see bench/catchup.py)."""
    import catchup

    if not catchup.DEFAULT.is_file():
        print(f"catch-up: skipped (no file at {catchup.DEFAULT})")
        return
    with tempfile.TemporaryDirectory() as folder:
        imported = catchup.import_once(catchup.DEFAULT, Path(folder))
    with tempfile.TemporaryDirectory() as folder:
        polled, entries = asyncio.run(catchup.poll_once(catchup.DEFAULT.read_bytes(), Path(folder)))
    print(f"catch-up: {catchup.DEFAULT.name}, {entries:,} entries")
    print(f"  chartbot import: {imported:6.2f} s")
    print(f"  first poll:      {polled:6.2f} s  ratio {polled / imported:.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
