"""Query speed on a 5-year daily history (95 regions × 2 categories × 1,825 days, 3.5 M entries):
p50/p99 of `rank` lookups (a title's standings and country counts, as `chartbot rank` asks) and of
title search by prefix (the title index in SQLite).

    python bench/query.py [--days 1825] [--db PATH]   (--db keeps the built history for reruns)
Targets: rank p99 ≤ 10 ms, prefix search p99 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import history

from bot.ingest import ingest
from bot.store import Store, open_store


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


async def build(store: Store, days: int) -> None:
    started = time.perf_counter()
    chunk: list = []
    for charts in history(days):
        chunk.extend(charts)
        if len(chunk) >= 190 * 90:  # a quarter at a time, as an import of quarterly files would
            await ingest(store, chunk, news=False)
            chunk = []
    if chunk:
        await ingest(store, chunk, news=False)
    print(f"built {days} days in {time.perf_counter() - started:.0f} s")


async def measure(store: Store, runs: int) -> None:
    rng = random.Random(5)
    catalog = await store.charts.title_catalog()
    charted = [key for key, _, weight in catalog if weight > 0]
    lookups = []
    for key in rng.sample(charted, min(runs, len(charted))):
        start = time.perf_counter()
        report = await store.charts.title_report(key)
        lookups.append((time.perf_counter() - start) * 1000)
        assert report is not None
    searches = []
    for _ in range(runs):
        key = rng.choice(charted)
        prefix = key[: rng.randint(2, 8)]
        start = time.perf_counter()
        await store.charts.titles_by_prefix(prefix)
        searches.append((time.perf_counter() - start) * 1000)
    entries = (await store.fetch_all("SELECT count(*) FROM entries"))[0][0]
    print(f"history: {entries:,} entries, {len(catalog):,} titles")
    for name, samples, target in (("rank lookup", lookups, 10), ("prefix search", searches, 5)):
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        print(
            f"{name:>13}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (target p99 ≤ {target} ms: {p99 / target:.2f} of it)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=1825)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--db", type=Path, help="keep the history here (built when missing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "history.sqlite3"
        fresh = not path.exists()
        async with await open_store(path) as store:
            if fresh:
                await build(store, args.days)
            await measure(store, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
