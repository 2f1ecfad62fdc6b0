"""The detector on real history (U.S. daily, 94 countries weekly) and its rules, one test each."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from engines import both_engines

from bot.cli import replay_into
from bot.ingest import Ingester, ingest
from bot.model import ChartKey, Entry, Milestone, make_snapshot
from bot.sources.files import read_file
from bot.store import open_store

DATA = Path(__file__).parent / "data"
AOUAD = "all of us are dead"


pytestmark = both_engines  # every test here stores history: each runs on both engines


@pytest.fixture
def replay(new_db):
    """Replay charts into a fresh database of the test's engine; every milestone detected."""

    async def run(*snapshot_lists) -> list[Milestone]:
        found: list[Milestone] = []
        async with await open_store(new_db()) as store:
            await replay_into(store, list(snapshot_lists), found.append)
        return found

    return run


@pytest.fixture(scope="module")
def us_daily():
    return read_file(DATA / "netflix_us_daily" / "netflix_daily_top_10.csv")


@pytest.fixture(scope="module")
def countries():
    return read_file(DATA / "netflix" / "all-weeks-countries_cut.tsv")


async def test_us_daily_all_of_us_are_dead(us_daily, replay):
    found = [m for m in await replay(us_daily) if m.title_key == AOUAD]
    by_kind = {(m.kind, m.chart.date.isoformat()): m for m in found}
    entered = by_kind[("entered_top10", "2022-01-29")]
    assert (entered.value, entered.previous, entered.chart.region, entered.chart.category) == (
        3,
        None,
        "us",
        "overall",
    )
    assert by_kind[("reached_no1", "2022-02-04")].value == 1
    lost = by_kind[("lost_no1", "2022-02-05")]
    assert (lost.value, lost.previous, lost.context["run"]) == (2, 1, 1)
    assert [m.kind for m in found if m.kind in ("reached_no1", "lost_no1")] == ["reached_no1", "lost_no1"]


async def test_countries_all_of_us_are_dead_and_the_squid_game_record(countries, replay):
    found = await replay(countries)
    no1 = [
        (m.chart.date.isoformat(), m.value, m.previous)
        for m in found
        if m.kind == "no1_countries" and m.title_key == AOUAD
    ]
    assert no1[:2] == [("2022-01-30", 29, None), ("2022-02-06", 63, 29)]
    records = [m for m in found if m.kind == "record" and m.context.get("record") == "no1_countries"]
    squid = [m for m in records if m.title_key == "squid game"]
    assert [(m.chart.date.isoformat(), m.value) for m in squid][-1] == ("2021-10-03", 93)
    assert all(m.chart.region == "world" and m.context["reporting"] == 94 for m in squid)
    assert len({m.key for m in found}) == len(found)


def chart(day: date, titles: list[str], region: str = "us", period: str = "day", source: str = "file"):
    key = ChartKey(source, "netflix", region, "tv", period, day)
    return make_snapshot(key, [Entry.make(rank, t) for rank, t in enumerate(titles, start=1)])


D0 = date(2022, 1, 1)
TEN = [f"Show {n}" for n in range(1, 11)]


def rotated(n: int) -> list[str]:
    return TEN[n % 10 :] + TEN[: n % 10]


async def test_first_period_is_a_silent_baseline(replay):
    assert await replay([chart(D0, TEN)]) == []


async def test_a_backfill_emits_nothing_and_stats_match_every_order(new_db):
    days = [D0 + timedelta(days=i) for i in range(12)]
    charts = [chart(d, rotated(i // 3)) for i, d in enumerate(days)]

    async def final_state(order: list[int]):
        async with await open_store(new_db()) as store:
            emitted = []
            for index in order:
                report = await ingest(store, [charts[index]])
                emitted.append((index, report.milestones))
            stats = await store.fetch_all(
                "SELECT t.title_key, ts.* FROM title_stats ts JOIN titles t ON t.id = ts.title_id ORDER BY 1"
            )
            stats = [(row[0], *row[3:]) for row in stats]  # row ids depend on arrival order
            return stats, emitted

    chronological, _ = await final_state(list(range(12)))
    reversed_then_last, emitted = await final_state([*range(10, -1, -1), 11])
    assert reversed_then_last == chronological
    assert all(not found for index, found in emitted[1:-1])  # every one after the first is a backfill
    shuffled = list(range(12))
    random.Random(7).shuffle(shuffled)
    shuffled_state, emitted = await final_state(shuffled)
    assert shuffled_state == chronological
    newest_so_far = -1
    for index, found in emitted:
        if index < newest_so_far:
            assert found == [], f"backfill of day {index} emitted {found}"
        newest_so_far = max(newest_so_far, index)


async def test_reingest_and_revision_never_repeat_a_key(new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, [chart(D0, TEN)])
        first = await ingest(store, [chart(D0 + timedelta(days=1), rotated(1))])
        assert {m.kind for m in first.milestones} >= {"reached_no1", "lost_no1"}
        again = await ingest(store, [chart(D0 + timedelta(days=1), rotated(1))])
        assert again.milestones == [] and again.unchanged == 1
        revised = rotated(1)
        revised[5], revised[6] = revised[6], revised[5]  # a tie settled the other way
        after_revision = await ingest(store, [chart(D0 + timedelta(days=1), revised)])
        assert [m.kind for m in after_revision.milestones if m.kind in ("entered_top10", "left_top10")] == []
        stored = await store.charts.milestones(statuses=("pending", "sent", "skipped", "retracted"))
        keys = [item.milestone.key for item in stored]
        assert len(keys) == len(set(keys)) == len(first.milestones)  # one row a key, revised or withdrawn
        statuses = dict(await store.fetch_all("SELECT status, count(*) FROM outbox GROUP BY status"))
        # Show 7's new peak (No. 6) is gone after the swap; Show 8's is now No. 6 instead of No. 7
        assert statuses == {"pending": len(first.milestones) - 1, "retracted": 1}
        peaks = [
            (i.milestone.value, i.revision)
            for i in stored
            if i.milestone.kind == "new_peak" and i.milestone.title_key == "show 8"
        ]
        assert peaks == [(6, 1)]


async def test_country_news_detected_again_is_not_written_twice(countries, new_db):
    """The poller may judge a complete period again (after a restart): the outbox keeps one row a key."""
    async with await open_store(new_db()) as store:
        await ingest(store, countries)
        rows = await store.fetch_all("SELECT id, value FROM outbox WHERE scope = 'countries' ORDER BY id")
        assert len(rows) > 10
        periods = await store.fetch_all(
            "SELECT service, category, period, max(date) FROM country_periods GROUP BY service, category, period"
        )
        for service, category, period, day in periods:
            again = await Ingester(store).detect_countries(
                service, category, period, date.fromisoformat(day), "netflix"
            )
            assert again == []
        assert (
            await store.fetch_all("SELECT id, value FROM outbox WHERE scope = 'countries' ORDER BY id")
            == rows
        )


async def test_revision_that_changes_the_news_retracts_the_old_milestone(new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, [chart(D0, TEN)])
        await ingest(store, [chart(D0 + timedelta(days=1), rotated(1))])
        await ingest(store, [chart(D0 + timedelta(days=1), TEN)])  # corrected: nothing changed after all
        rows = dict(await store.fetch_all("SELECT kind, status FROM outbox WHERE kind = 'reached_no1'"))
        assert rows == {"reached_no1": "retracted"}


async def test_a_gap_breaks_streaks(replay):
    days = [D0, D0 + timedelta(days=1), D0 + timedelta(days=3), D0 + timedelta(days=4)]
    found = await replay([chart(day, TEN) for day in days])
    # Show 1 is No. 1 throughout, but Jan 3 is missing: the run is 2, then starts again at 1
    assert [(m.chart.date.day, m.value) for m in found if m.kind == "no1_streak"] == [(2, 2), (5, 2)]
    assert [m for m in found if m.kind in ("entered_top10", "left_top10", "reached_no1", "lost_no1")] == []


async def test_no_left_top10_from_an_incomplete_chart(replay):
    short = chart(D0 + timedelta(days=1), ["Newcomer", *TEN[:6]])
    found = await replay([chart(D0, TEN), short])
    assert not short.complete
    assert [m for m in found if m.kind == "left_top10"] == []
    assert [m.title for m in found if m.kind == "entered_top10"] == ["Newcomer"]


async def test_a_respelled_title_is_not_a_new_entry(replay):
    curly = ["Don’t Look Up" if t == "Show 3" else t for t in TEN]
    straight = ["DON'T LOOK UP" if t == "Show 3" else t for t in TEN]
    found = await replay([chart(D0, curly), chart(D0 + timedelta(days=1), straight)])
    assert [m for m in found if m.kind in ("entered_top10", "left_top10")] == []


async def test_every_kind_of_chart_milestone_on_a_scripted_history(replay):
    days = [D0 + timedelta(days=i) for i in range(8)]
    history = [TEN, rotated(1), rotated(1), ["Show 1", *TEN[2:], "Newcomer"], TEN, TEN, TEN, TEN]
    found = await replay([chart(d, h) for d, h in zip(days, history, strict=True)])
    kinds = {m.kind for m in found}
    assert kinds >= {
        "entered_top10",
        "reached_no1",
        "no1_streak",
        "lost_no1",
        "left_top10",
        "new_peak",
        "top10_run",
    }
    assert [m.value for m in found if m.kind == "top10_run" and m.title_key == "show 1"] == [7]
    streaks = [m.value for m in found if m.kind == "no1_streak" and m.title_key == "show 1"]
    assert streaks == [2, 3, 4, 5]
