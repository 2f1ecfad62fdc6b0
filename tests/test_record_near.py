"""`record_near`: a No. 1 run one period short of tying a chart's longest, once per run.

Driven without the store: each chart's stats are folded from the parsed snapshots with bot.stats and
the run record is kept as the store keeps it (the first to reach a length holds it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.milestones import MIN_RECORD_RUN, ChartChange, Record, detect_chart
from bot.model import ChartKey, Entry, Milestone, Snapshot, make_snapshot
from bot.render import milestone_text
from bot.sources.files import read_file
from bot.stats import TitleStats, advance

DATA = Path(__file__).parent / "data"


def detect_series(
    snapshots: list[Snapshot],
) -> Iterator[tuple[Snapshot, dict[str, TitleStats], list[Milestone]]]:
    """Each chart of one series in date order: (chart, stats after it, what the detector emitted).

    Titles are their keys (the detector's title references are opaque)."""
    stats: dict[str, TitleStats] = {}
    names: dict[str, str] = {}
    previous: dict[str, int] | None = None
    record: Record | None = None
    for snapshot in snapshots:
        ranks = snapshot.best_ranks()
        for entry in snapshot.entries:
            names.setdefault(entry.title_key, entry.title)
        after = {t: advance(stats.get(t), snapshot.key.date, r, snapshot.key.step) for t, r in ranks.items()}
        found: list[Milestone] = []
        if previous is not None:
            change = ChartChange(
                snapshot.key, ranks, previous, dict(stats), after, names, snapshot.complete, record
            )
            found = detect_chart(change)
        stats.update(after)
        for title, title_stats in after.items():
            if title_stats.longest_no1_run > (record.value if record else 0):
                record = Record(title_stats.longest_no1_run, title, names[title], title_stats.longest_no1_end)
        previous = ranks
        yield snapshot, after, found


@pytest.fixture(scope="module")
def us_daily() -> list[tuple[Snapshot, dict[str, TitleStats], list[Milestone]]]:
    return list(detect_series(read_file(DATA / "netflix_us_daily" / "netflix_daily_top_10.csv")))


def test_the_us_daily_file(us_daily) -> None:
    near = [(s, after, m) for s, after, found in us_daily for m in found if m.kind == "record_near"]
    assert [(m.chart.date.isoformat(), m.title) for _, _, m in near] == [
        ("2021-03-12", "Ginny & Georgia"),
        ("2021-10-15", "Squid Game"),
        ("2021-10-30", "You"),
    ]
    for snapshot, after, m in near:
        # Tiger King's 16 days from the file's first day (2020-04-01) stand all along
        assert (m.value, m.previous, m.context["holder"], m.context["run"]) == (
            1,
            16,
            "Tiger King: Murder, Mayhem …",
            15,
        )
        assert after[m.title_key].no1_run == 15 and snapshot.best_ranks()[m.title_key] == 1
        assert m.key == f"{m.chart.date.isoformat()}|record_near|netflix|us|overall|day|{m.title_key}|no1_run"
    squid = near[1][2]
    assert milestone_text(squid) == (
        "Squid Game is 1 day from tying Tiger King: Murder, Mayhem …'s 16-day No. 1 run in the 🇺🇸 U.S. daily Top 10"
    )


def test_once_per_run_on_the_us_daily_file(us_daily) -> None:
    """Every run that came within a day of the record was announced once, on the day it did (the file
    starts on 2020-04-01 with Tiger King at No. 1 for 16 days: the record all along)."""
    runs_near: list[tuple[str, date]] = []  # (title, first day of the run) of runs reaching 15 days
    for snapshot, after, _ in us_daily:
        for title, stats in after.items():
            if stats.no1_run == 15:
                runs_near.append((title, snapshot.key.date - timedelta(days=14)))
    announced = [
        (m.title_key, m.chart.date - timedelta(days=14))
        for _, _, found in us_daily
        for m in found
        if m.kind == "record_near"
    ]
    # the record's own run was never "near" itself: it was the record as it grew, from the first day
    holder_run = ("tiger king murder mayhem", date(2020, 4, 1))
    assert runs_near == [holder_run, *announced] and len(set(announced)) == 3
    longest = max(stats.longest_no1_run for _, after, _ in us_daily for stats in after.values())
    assert longest == 16  # nobody tied or beat it: no `record` either
    assert not [m for _, _, found in us_daily for m in found if m.kind == "record"]


D0 = date(2022, 1, 1)


def charts(no1s: list[str], period: str = "day") -> list[Snapshot]:
    """One chart per period: the given No. 1, then fillers."""
    step = timedelta(days=1 if period == "day" else 7)
    out = []
    for n, top in enumerate(no1s):
        titles = [top, *[f"Filler {i}" for i in range(1, 10)]]
        key = ChartKey("file", "netflix", "us", "tv", period, D0 + n * step)
        out.append(make_snapshot(key, [Entry.make(rank, t) for rank, t in enumerate(titles, start=1)]))
    return out


def near_of(snapshots: list[Snapshot]) -> list[tuple[int, str, int | None, str]]:
    """(period index, title, record, holder) of every record_near."""
    return [
        (n, m.title, m.previous, m.context["holder"])
        for n, (_, _, found) in enumerate(detect_series(snapshots))
        for m in found
        if m.kind == "record_near"
    ]


def test_once_per_run_then_the_record() -> None:
    history = ["A"] * 8 + ["X"] + ["B"] * 10  # A sets 8 days; B nears it on its 7th day, ties, beats
    found = [
        m for _, _, ms in detect_series(charts(history)) for m in ms if m.kind in ("record_near", "record")
    ]
    assert [(m.kind, m.title, m.chart.date - D0) for m in found] == [
        ("record_near", "B", timedelta(days=15)),  # B's 7th day: one from tying A's 8
        ("record", "B", timedelta(days=17)),  # B's 9th day: beyond
    ]
    assert milestone_text(found[0]) == "B is 1 day from tying A's 8-day No. 1 run in the 🇺🇸 U.S. daily Top 10"


def test_the_holder_extending_its_record_is_not_near_it() -> None:
    assert near_of(charts(["A"] * 20)) == []


def test_the_holder_nearing_its_own_old_record() -> None:
    history = ["A"] * 8 + ["X"] + ["A"] * 7
    assert near_of(charts(history)) == [(15, "A", 8, "A")]
    (m,) = [m for _, _, ms in detect_series(charts(history)) for m in ms if m.kind == "record_near"]
    assert milestone_text(m) == "A is 1 day from tying its own 8-day No. 1 run in the 🇺🇸 U.S. daily Top 10"


def test_short_records_are_no_records() -> None:
    shortest = MIN_RECORD_RUN["day"]
    assert near_of(charts(["A"] * (shortest - 1) + ["X"] + ["B"] * shortest)) == []
    assert near_of(charts(["A"] * shortest + ["X"] + ["B"] * shortest)) == [
        (shortest + shortest - 1, "B", shortest, "A")
    ]
    weeks = MIN_RECORD_RUN["week"]
    weekly = near_of(charts(["A"] * weeks + ["X"] + ["B"] * weeks, period="week"))
    assert weekly == [(weeks + weeks - 1, "B", weeks, "A")]
    (m,) = [
        m
        for _, _, ms in detect_series(charts(["A"] * 3 + ["X", "B", "B"], period="week"))
        for m in ms
        if m.kind == "record_near"
    ]
    assert milestone_text(m) == "B is 1 week from tying A's 3-week No. 1 run in the 🇺🇸 U.S. weekly Top 10"


def test_a_gap_starts_the_run_again() -> None:
    """A run broken by a missing period counts from 1 again: near the record only when it is."""
    snapshots = charts(["A"] * 8 + ["X"] + ["B"] * 12)
    del snapshots[12]  # B's 4th day is missing: its run starts again on the 5th, 7 days long on the 11th
    assert [(n, title) for n, title, _, _ in near_of(snapshots)] == [(18, "B")]
