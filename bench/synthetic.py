"""A synthetic daily history shaped like FlixPatrol's: regions × categories × days of Top 10s.

Titles persist for days and drift through the ranks, as real charts do, so stats and milestones
get realistic work. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

from bot.model import ChartKey, Entry, Snapshot, title_key

REGION_COUNT = 95
CATEGORIES = ("tv", "movies")
START = date(2021, 1, 1)


def regions(count: int = REGION_COUNT) -> list[str]:
    from bot.regions import COUNTRY_CODES

    return ["world", *sorted(COUNTRY_CODES)[: count - 1]]


def history(days: int, region_count: int = REGION_COUNT, seed: int = 1) -> Iterator[list[Snapshot]]:
    """Yields one list of snapshots per day (every region and category of that day)."""
    rng = random.Random(seed)
    pool = {c: [f"{c.title()} Title {n}" for n in range(days * 3 + 200)] for c in CATEGORIES}
    keys = {t: title_key(t) for c in CATEGORIES for t in pool[c]}
    cursor = dict.fromkeys(CATEGORIES, 0)
    current: dict[tuple[str, str], list[str]] = {}
    names = regions(region_count)
    for offset in range(days):
        day = START + timedelta(days=offset)
        # each day a few new releases join the pool every region draws from
        fresh = {c: pool[c][cursor[c] : cursor[c] + 3] for c in CATEGORIES}
        for c in CATEGORIES:
            cursor[c] += 3
        charts = []
        for region in names:
            for category in CATEGORIES:
                chart = current.get((region, category))
                if chart is None:
                    chart = rng.sample(pool[category][:40], 10)
                else:
                    chart = chart[:]
                    for _ in range(rng.randint(1, 3)):
                        chart.pop(rng.randrange(len(chart)))
                    newcomers = [
                        t
                        for t in fresh[category] + rng.sample(pool[category][: cursor[category] + 40], 6)
                        if t not in chart
                    ]
                    chart.extend(newcomers[: 10 - len(chart)])
                    for _ in range(3):  # drift
                        i = rng.randrange(9)
                        chart[i], chart[i + 1] = chart[i + 1], chart[i]
                current[(region, category)] = chart
                key = ChartKey("flixpatrol", "netflix", region, category, "day", day)
                entries = tuple(
                    Entry(rank=r, title=t, title_key=keys[t], points=float(11 - r))
                    for r, t in enumerate(chart, start=1)
                )
                charts.append(Snapshot(key, entries))
        yield charts
