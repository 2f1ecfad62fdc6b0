"""Chart history in SQLite: the only place that speaks SQL.

`Store` is the async face. Each method is one unit of work run on aiosqlite's own thread as a plain
function of the sqlite3 connection: one thread hop per call instead of one per statement (a hop costs
about 0.1 ms, and ingesting a chart takes a dozen statements).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.model import Milestone, Snapshot
from bot.store import queries
from bot.store.ingest import IngestCache, IngestReport, detect_countries, store_charts
from bot.store.queries import ChartView, Series, StoredMilestone, TitleReport
from bot.store.schema import SchemaError, migrate

__all__ = ["ChartView", "IngestReport", "SchemaError", "Series", "Store", "StoredMilestone", "TitleReport"]

T = TypeVar("T")
MEMORY = ":memory:"


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error: nothing is ever half-written."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _configure(conn: sqlite3.Connection, path: str) -> None:
    if path != MEMORY:
        conn.execute("PRAGMA journal_mode = WAL")
        # checkpoint every 40 MB of WAL rather than 4 MB: a day's ingest dirties a few MB (stats, outbox),
        # and the pages rewritten day after day are then copied into the database once, not each time
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
    migrate(conn)


class Store:
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self._cache = IngestCache()  # touched only on the database thread

    @classmethod
    async def open(cls, path: str | Path = MEMORY) -> Store:
        path = str(path)
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, path)
        try:
            await store.run(_configure, path)
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `work(conn, ...)` on the database thread: a whole unit of work in one hop.

        aiosqlite has no public call for this; `_execute` is the queue every public method uses.
        """
        return await self._db._execute(work, self._db._conn, *args, **kwargs)

    # --- writing ---------------------------------------------------------------------------------------

    async def ingest(
        self, snapshots: Sequence[Snapshot], *, news: bool = True, countries: bool = True
    ) -> IngestReport:
        """Store charts in one transaction. `news`: record milestones of new newest periods.

        `countries`: the batch holds complete periods of country charts, so aggregate milestones
        (No. 1 in N countries, records) are detected for them too. The poller, which gathers a
        period's regions chart by chart, passes False and calls `detect_countries` once complete.
        """

        def work(conn: sqlite3.Connection) -> IngestReport:
            try:
                with transaction(conn):
                    report = store_charts(conn, snapshots, news=news, cache=self._cache)
                    if news and countries:
                        for (service, category, period, day), source in sorted(
                            report.country_periods.items()
                        ):
                            found = detect_countries(conn, (service, category, period), day, source)
                            report.milestones.extend(found)
            except BaseException:
                self._cache.clear()  # it may hold ids and states of what was just rolled back
                raise
            return report

        return await self.run(work)

    async def detect_countries(
        self, service: str, category: str, period: str, day: date, source: str
    ) -> list[Milestone]:
        def work(conn: sqlite3.Connection) -> list[Milestone]:
            with transaction(conn):
                return detect_countries(conn, (service, category, period), day, source)

        return await self.run(work)

    # --- reading ---------------------------------------------------------------------------------------

    async def title_report(self, title_key: str, on: date | None = None) -> TitleReport | None:
        return await self.run(queries.title_report, title_key, on)

    async def title_catalog(self) -> list[tuple[str, str, int]]:
        return await self.run(queries.title_catalog)

    async def titles_by_prefix(self, prefix: str, limit: int = 25) -> list[tuple[str, str]]:
        return await self.run(queries.titles_by_prefix, prefix, limit)

    async def find_series(self, **filters: str | None) -> list[Series]:
        return await self.run(queries.find_series, **filters)

    async def chart_view(self, series: Series, on: date | None = None) -> ChartView | None:
        return await self.run(queries.chart_view, series, on)

    async def milestones(self, **filters: Any) -> list[StoredMilestone]:
        return await self.run(queries.milestones, **filters)

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """For tests and maintenance scripts: a read-only query."""

        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(sql, params).fetchall()

        return await self.run(work)
