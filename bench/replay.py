"""Replay speed: the synthetic daily history (95 regions × 2 categories × 365 days) ingested day by
day with milestone detection on (chart and country milestones into the outbox), next to the same
day-by-day ingest without detection.

    python bench/replay.py [--days 365]
Target: ≥ 50,000 entries/s with detection, and detection costing ≤ 1.5× ingest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import history

from bot.store import Store


async def run(days: list, path: Path, *, news: bool) -> tuple[float, int]:
    milestones = 0
    async with await Store.open(path) as store:
        start = time.perf_counter()
        for charts in days:
            report = await store.ingest(charts, news=news)
            milestones += len(report.milestones)
        return time.perf_counter() - start, milestones


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    days = list(history(args.days))
    entries = sum(len(s.entries) for charts in days for s in charts)
    print(f"history: {sum(len(c) for c in days):,} charts, {entries:,} entries")
    with tempfile.TemporaryDirectory() as tmp:
        plain, _ = asyncio.run(run(days, Path(tmp) / "plain.sqlite3", news=False))
        detecting, found = asyncio.run(run(days, Path(tmp) / "replay.sqlite3", news=True))
    print(f"ingest alone:          {plain:6.2f} s  {entries / plain:>9,.0f} entries/s")
    print(
        f"ingest with detection: {detecting:6.2f} s  {entries / detecting:>9,.0f} entries/s  ({found:,} milestones)"
    )
    print(f"detection ratio: {detecting / plain:.2f}  (targets: ≥ 50,000 entries/s, ratio ≤ 1.5)")


if __name__ == "__main__":
    main()
