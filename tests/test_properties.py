"""Property tests: incremental stats equal a recomputation, whatever the order; the detector's invariants."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta

from engines import both_engines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ingest import ingest
from bot.model import ChartKey, Entry, make_snapshot
from bot.stats import fold
from bot.store import open_store

POOL = [f"Title {n:02d}" for n in range(14)]
D0 = date(2023, 3, 1)
REGIONS = ("us", "kr", "world")
# each example is a fresh database: a PostgreSQL one costs a CREATE DATABASE, so fewer of them there
EXAMPLES = {"sqlite": 40, "postgresql": 20}


def slow(engine: str) -> settings:
    return settings(
        max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


def snapshot(region: str, day: int, titles: list[str]):
    key = ChartKey("file", "netflix", region, "tv", "day", D0 + timedelta(days=day))
    return make_snapshot(key, [Entry.make(rank, t) for rank, t in enumerate(titles, start=1)])


charts = st.lists(st.sampled_from(POOL), min_size=7, max_size=10, unique=True)
# an event: (region, day, titles); later events for the same (region, day) are revisions
events = st.lists(st.tuples(st.sampled_from(REGIONS), st.integers(0, 9), charts), min_size=1, max_size=25)


@both_engines
def test_incremental_stats_equal_a_recomputation(engine, new_db):
    @slow(engine)
    @given(events=events)
    def check(events):
        asyncio.run(check_stats(events, new_db()))

    check()


async def check_stats(events, db: str):
    truth: dict[tuple[str, int], list[str]] = {}
    async with await open_store(db) as store:
        for region, day, titles in events:
            await ingest(store, [snapshot(region, day, titles)])
            truth[(region, day)] = titles
        stored = {
            (region, key): row
            for region, key, *row in await store.fetch_all(
                "SELECT s.region, t.title_key, first_date, last_date, last_rank, prev_rank, peak, peak_date, "
                "periods_in_top10, periods_at_no1, no1_run, longest_no1_run, longest_no1_end, top10_run "
                "FROM title_stats ts JOIN series s ON s.id = ts.series_id JOIN titles t ON t.id = ts.title_id"
            )
        }
        records = {
            region: (run, holder)
            for region, run, holder in await store.fetch_all(
                "SELECT region, record_run, t.title_key FROM series LEFT JOIN titles t ON t.id = record_holder"
            )
        }
        counts = await store.fetch_all(
            "SELECT date, t.title_key, no1, top10 FROM country_counts JOIN titles t ON t.id = title_id"
        )
    appearances: dict[tuple[str, str], list[tuple[date, int]]] = defaultdict(list)
    for (region, day), titles in sorted(truth.items(), key=lambda item: item[0][1]):
        for rank, title in enumerate(titles, start=1):
            appearances[(region, title.lower())].append((D0 + timedelta(days=day), rank))
    expected = {}
    for key, seen in appearances.items():
        stats = fold(seen, timedelta(days=1))
        expected[key] = [
            v.isoformat() if isinstance(v, date) else v
            for v in (
                stats.first_date,
                stats.last_date,
                stats.last_rank,
                stats.prev_rank,
                stats.peak,
                stats.peak_date,
                stats.periods_in_top10,
                stats.periods_at_no1,
                stats.no1_run,
                stats.longest_no1_run,
                stats.longest_no1_end,
                stats.top10_run,
            )
        ]
    assert stored == expected
    for region in {r for r, _ in truth}:
        best = max(
            ((s[9], s[10], key) for (r, key), s in expected.items() if r == region and s[9] > 0),
            key=lambda item: (item[0], [-ord(c) for c in item[1]]),
            default=None,
        )
        if best is None:
            assert records[region][0] == 0
        else:
            assert records[region][0] == best[0]
            holders = {
                k for (r, k), s in expected.items() if r == region and s[9] == best[0] and s[10] == best[1]
            }
            assert records[region][1] in holders
    expected_counts = defaultdict(lambda: [0, 0])
    for (region, day), titles in truth.items():
        if region == "world":
            continue
        for rank, title in enumerate(titles, start=1):
            entry = expected_counts[((D0 + timedelta(days=day)).isoformat(), title.lower())]
            entry[0] += rank == 1
            entry[1] += 1
    assert sorted(counts) == sorted((d, k, n1, n10) for (d, k), (n1, n10) in expected_counts.items())


# chronological sequences with gaps: a day index increases by 1 or (sometimes) 2
sequences = st.lists(st.tuples(st.booleans(), charts), min_size=2, max_size=30)


@both_engines
def test_detector_invariants(engine, new_db):
    @slow(engine)
    @given(sequence=sequences)
    def check(sequence):
        asyncio.run(check_detector(sequence, new_db()))

    check()


async def check_detector(sequence, db: str):
    found = []
    day = 0
    async with await open_store(db) as store:
        for skip, titles in sequence:
            day += 2 if skip else 1
            report = await ingest(store, [snapshot("us", day, titles)])
            found.extend(report.milestones)
    keys = [m.key for m in found]
    assert len(keys) == len(set(keys))
    by_title = defaultdict(list)
    for m in found:
        by_title[m.title_key].append(m)
    for events in by_title.values():
        lost_since_reached = 0
        last_no1: tuple[date, int] | None = None  # (day, run) of the title's last No. 1 news
        for m in events:
            if m.kind == "reached_no1":
                lost_since_reached = 0
                last_no1 = (m.chart.date, 1)
            elif m.kind == "lost_no1":
                lost_since_reached += 1
                assert lost_since_reached <= 1
            elif m.kind == "no1_streak":
                assert m.value == m.previous + 1 >= 2
                if last_no1 and last_no1[0] + timedelta(days=1) == m.chart.date:
                    assert m.value == last_no1[1] + 1
                last_no1 = (m.chart.date, m.value)
