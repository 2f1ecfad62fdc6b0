"""Replay speed: the synthetic daily history (95 regions × 2 categories × 365 days) ingested day by
day with milestone detection on (chart and country milestones into the outbox), next to the same
day-by-day ingest without detection.

The detecting run goes through `chartbot replay`'s own loop (`bot.cli.replay_into`). How much news a
history holds drives the cost, so the bench also replays the real U.S. daily file (Netflix's Top 10,
710 days) and prints milestones per entry for both: the synthetic history is calibrated to it.

    python bench/replay.py [--days 365] [--db postgresql://user:password@host/dbname]

Without `--db`, SQLite files in a temporary folder (the real file: in memory). With a PostgreSQL URL,
each run gets a schema of its own in that database, dropped at the end (see bench/ingest.py).
Target: ≥ 50,000 entries/s with detection, and detection costing ≤ 1.5× ingest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import scratch
from synthetic import history

from bot.cli import periods_in_order, replay_into
from bot.ingest import Ingester
from bot.model import Milestone, Snapshot
from bot.sources import files
from bot.store import open_store

REAL_DAILY = Path(__file__).parent.parent / "tests" / "data" / "netflix_us_daily" / "netflix_daily_top_10.csv"


async def ingest_alone(days: list[list[Snapshot]], path: Path | str) -> float:
    async with await open_store(path) as store:
        ingester = Ingester(store)  # as replay_into: one ingester keeps each series' state between days
        start = time.perf_counter()
        for charts in periods_in_order(days):
            await ingester.ingest(charts, news=False)
        return time.perf_counter() - start


async def replay(days: list[list[Snapshot]], path: Path | str, kinds: Counter[str]) -> float:
    def count(milestone: Milestone) -> None:
        kinds[milestone.kind] += 1

    async with await open_store(path) as store:
        start = time.perf_counter()
        await replay_into(store, days, count)
        return time.perf_counter() - start


def density(kinds: Counter[str], charts: int, entries: int) -> str:
    per_chart = ", ".join(f"{kind} {n / charts:.2f}" for kind, n in kinds.most_common(7))
    return f"{kinds.total() / entries:.2f} milestones per entry; per chart: {per_chart}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--db", help="a PostgreSQL URL (a scratch schema per run); default: SQLite files")
    args = parser.parse_args()
    days = list(history(args.days))
    charts = sum(len(c) for c in days)
    entries = sum(len(s.entries) for charts in days for s in charts)
    print(f"history: {charts:,} charts, {entries:,} entries")
    kinds: Counter[str] = Counter()
    real_kinds: Counter[str] = Counter()
    real = files.read_file(REAL_DAILY, None) if REAL_DAILY.is_file() else []
    with scratch(args.db) as db:
        print(f"engine: {db.where()}")
        db.settle()
        plain = asyncio.run(ingest_alone(days, db.target("plain")))
        db.settle()
        detecting = asyncio.run(replay(days, db.target("replay"), kinds))
        if real:
            asyncio.run(replay([real], db.target("real") if db.postgres else ":memory:", real_kinds))
    print(f"ingest alone:          {plain:6.2f} s  {entries / plain:>9,.0f} entries/s")
    print(
        f"ingest with detection: {detecting:6.2f} s  {entries / detecting:>9,.0f} entries/s  "
        f"({kinds.total():,} milestones)"
    )
    print(f"detection ratio: {detecting / plain:.2f}  (targets: ≥ 50,000 entries/s, ratio ≤ 1.5)")
    print(f"news in this history:  {density(kinds, charts, entries)}")
    if real:
        real_entries = sum(len(s.entries) for s in real)
        print(f"news in the real file: {density(real_kinds, len(real), real_entries)}  ({REAL_DAILY.name})")


if __name__ == "__main__":
    main()
