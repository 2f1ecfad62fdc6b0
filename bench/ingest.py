"""Ingest speed: a synthetic daily history (95 regions × 2 categories × 365 days) into a fresh database.

Three figures, all in one run on files in a temporary folder:
- floor: a plain `executemany` of the same entry rows into the same `entries` table (same schema and
  indexes, title ids given), no stats, no checks: what storing the rows costs at all;
- import: `Store.ingest` of the whole history in one call, as `chartbot import` stores a file;
- per day: one `Store.ingest` (one transaction) per day's 190 charts, as the poller stores them.

    python bench/ingest.py [--days 365]
Target: import ≥ 100,000 entries/s and ≤ 3× the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bot.store.schema import migrate
from synthetic import history

from bot.ingest import ingest
from bot.store import open_store


def floor(days: list, path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    migrate(conn)
    ids: dict[str, int] = {}
    rows = []
    chart_id = 0
    for charts in days:
        for snapshot in charts:
            chart_id += 1
            for e in snapshot.entries:
                title_id = ids.setdefault(e.title_key, len(ids) + 1)
                rows.append(
                    (chart_id, e.rank, title_id, e.season, e.points, e.hours, e.views, e.runtime, None)
                )
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def import_all(days: list, path: Path) -> float:
    charts = [snapshot for day in days for snapshot in day]
    async with await open_store(path) as store:
        start = time.perf_counter()
        await ingest(store, charts, news=False)
        return time.perf_counter() - start


async def day_by_day(days: list, path: Path) -> float:
    async with await open_store(path) as store:
        start = time.perf_counter()
        for charts in days:
            await ingest(store, charts, news=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    built = time.perf_counter()
    days = list(history(args.days))
    entries = sum(len(s.entries) for charts in days for s in charts)
    charts = sum(len(c) for c in days)
    print(f"history: {charts:,} charts, {entries:,} entries (built in {time.perf_counter() - built:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        base = floor(days, Path(tmp) / "floor.sqlite3")
        whole = asyncio.run(import_all(days, Path(tmp) / "import.sqlite3"))
        daily = asyncio.run(day_by_day(days, Path(tmp) / "daily.sqlite3"))
    print(f"floor (executemany, same table): {base:6.2f} s  {entries / base:>10,.0f} entries/s")
    print(
        f"import (one call):               {whole:6.2f} s  {entries / whole:>10,.0f} entries/s  ratio {whole / base:.2f}"
    )
    print(
        f"per day (one transaction a day): {daily:6.2f} s  {entries / daily:>10,.0f} entries/s  ratio {daily / base:.2f}"
    )
    print("targets: import ≥ 100,000 entries/s, ratio ≤ 3")


if __name__ == "__main__":
    main()
