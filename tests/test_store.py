"""The store on real Netflix data: standings, idempotence, revisions, backfills, atomicity, schema."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from engines import both_engines

from bot import milestones as detector
from bot.ingest import Ingester, ingest
from bot.model import ChartKey, Entry, Snapshot, make_snapshot
from bot.sources.files import read_file
from bot.store import SchemaError, Store, open_store
from bot.store.sqlite.connection import Db
from bot.store.sqlite.guilds import FLAG_EDITS
from bot.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

DATA = Path(__file__).parent / "data" / "netflix"
AOUAD = "all of us are dead"


@pytest.fixture(scope="module")
def countries():
    return read_file(DATA / "all-weeks-countries_cut.tsv")


@pytest.fixture(scope="module")
def world():
    return read_file(DATA / "all-weeks-global_2022-03-02.tsv")


async def assert_aouad_story(store: Store) -> None:
    report = await store.charts.title_report(AOUAD, date(2022, 2, 6))
    assert report is not None
    assert [c.as_json() for c in report.countries] == [
        {
            "service": "netflix",
            "category": "tv",
            "period": "week",
            "date": "2022-02-06",
            "no1": 63,
            "top10": 94,
            "reporting": 94,
        }
    ]
    world = [s for s in report.standings if s.region == "world"]
    assert [(s.category, s.rank, s.hours, s.season) for s in world] == [
        ("tv-non-english", 1, 236_230_000, "Season 1")
    ]
    assert sum(s.rank == 1 for s in report.standings if s.region != "world") == 63
    assert len([s for s in report.standings if s.region != "world"]) == 94


@both_engines
async def test_aouad_on_2022_02_06(countries, world, new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, countries, news=False)
        await ingest(store, world, news=False)
        await assert_aouad_story(store)
        january = await store.charts.title_report(AOUAD, date(2022, 1, 30))
        assert january.countries[0].no1 == 29 and january.countries[0].top10 == 91


@both_engines
async def test_twice_other_order_and_week_by_week_in_reverse(countries, world, new_db):
    async with await open_store(new_db()) as twice:
        for snapshots in (world, countries, world, countries):
            await ingest(twice, snapshots, news=False)
        await assert_aouad_story(twice)
        baseline = await dump_derived(twice)
    async with await open_store(new_db()) as reverse:
        weeks = sorted({s.key.date for s in countries + world}, reverse=True)
        for week in weeks:
            await ingest(reverse, [s for s in countries + world if s.key.date == week], news=False)
        await assert_aouad_story(reverse)
        assert await dump_derived(reverse) == baseline


@both_engines
async def test_country_counts_whatever_the_batches(countries, new_db):
    """Country periods are counted once per batch for all the periods it touched. The same history in
    one import, in chunks that split the weeks, in two halves of the countries (the second half meets
    weeks stored before), and recounted afterwards: the same counts every time."""
    async with await open_store(new_db()) as whole:
        await ingest(whole, countries, news=False)
        counted = await dump_derived(whole)
        await assert_aouad_story_countries(whole)
    async with await open_store(new_db()) as chunked:
        seen: list[int] = []
        async with Ingester(chunked).batch() as batch:
            await batch.add(countries, news=False, chunk=137, progress=seen.append)  # weeks split
        assert await dump_derived(chunked) == counted
        assert seen == [*range(137, len(countries), 137), len(countries)]
    regions = sorted({s.key.region for s in countries})
    async with await open_store(new_db()) as halves:
        await ingest(halves, [s for s in countries if s.key.region in regions[::2]], news=False)
        await ingest(halves, [s for s in countries if s.key.region not in regions[::2]], news=False)
        assert await dump_derived(halves) == counted
        periods = {((s.key.service, s.key.category, s.key.period), s.key.date) for s in countries}
        async with halves.history.write() as tx:
            await tx.count_countries(sorted(periods))  # every period at once, from the rows
        assert await dump_derived(halves) == counted


@both_engines
async def test_country_counts_added_and_recounted_in_one_period(countries, new_db):
    """A country chart stored for the first time adds to its period's counts; a backfill or a
    revision has its period counted again from the charts. One batch that does all three in the same
    two periods leaves the counts (and everything else) of one import of the charts as they end up."""
    tv = [s for s in countries if s.key.category == "tv"]
    weeks = sorted({s.key.date for s in tv})[-2:]
    regions = sorted({s.key.region for s in tv})
    added, backfilled, revised = regions[0], regions[1], regions[2]  # in the second batch
    original = next(s for s in tv if s.key.region == revised and s.key.date == weeks[1])
    first, second = original.entries[:2]
    correction = top_two_swapped(original)
    held_back = [
        s
        for s in tv
        if (s.key.region == added and s.key.date in weeks)
        or (s.key.region == backfilled and s.key.date == weeks[0])
    ]
    kept = [s for s in tv if all(s is not held for held in held_back)]
    async with await open_store(new_db()) as once:
        await ingest(once, [correction if s is original else s for s in tv], news=False)
        expected = await dump_derived(once)
    async with await open_store(new_db()) as twice:
        await ingest(twice, kept, news=False)
        step = await ingest(twice, [*held_back, correction], news=False)
        assert (step.added, step.replaced, step.backfilled) == (3, 1, 2)
        assert await dump_derived(twice) == expected
    counted = {(row[3], row[4]): row[5:] for row in expected["countries"]}
    assert counted[(str(weeks[1]), first.title_key)] != counted.get((str(weeks[1]), second.title_key))


def top_two_swapped(chart: Snapshot) -> Snapshot:
    """A correction of a chart: its No. 1 and No. 2 change places."""
    first, second, *rest = chart.entries
    return Snapshot(chart.key, (replace(second, rank=1), replace(first, rank=2), *rest))


async def assert_aouad_story_countries(store: Store) -> None:
    report = await store.charts.title_report(AOUAD, date(2022, 2, 6))
    assert report is not None
    assert (report.countries[0].no1, report.countries[0].top10, report.countries[0].reporting) == (63, 94, 94)


async def dump_derived(store: Store) -> dict[str, list[tuple]]:
    """Everything the store derives from the charts, keyed by names rather than row ids."""
    return {
        "stats": await store.fetch_all(
            "SELECT s.service, s.region, s.category, s.period, t.title_key, first_date, last_date, last_rank, "
            "prev_rank, peak, peak_date, periods_in_top10, periods_at_no1, no1_run, longest_no1_run, "
            "longest_no1_end, top10_run FROM title_stats ts JOIN series s ON s.id = ts.series_id "
            "JOIN titles t ON t.id = ts.title_id ORDER BY 1, 2, 3, 4, 5"
        ),
        "series": await store.fetch_all(
            "SELECT service, region, category, period, latest_date, record_run, t.title_key, record_end "
            "FROM series LEFT JOIN titles t ON t.id = record_holder ORDER BY 1, 2, 3, 4"
        ),
        "countries": await store.fetch_all(
            "SELECT service, category, period, date, t.title_key, no1, top10 FROM country_counts "
            "JOIN titles t ON t.id = title_id ORDER BY 1, 2, 3, 4, 5"
        ),
        "periods": await store.fetch_all("SELECT * FROM country_periods ORDER BY 1, 2, 3, 4"),
    }


def chart(day: date, titles: list[str], region: str = "us", period: str = "day") -> object:
    key = ChartKey("file", "netflix", region, "tv", period, day)
    return make_snapshot(key, [Entry.make(rank, title) for rank, title in enumerate(titles, start=1)])


TEN = [f"Show {n}" for n in range(1, 11)]


@both_engines
async def test_identical_reingest_changes_nothing(new_db):
    async with await open_store(new_db()) as store:
        first = await ingest(store, [chart(date(2022, 1, 1), TEN)])
        before = await dump_derived(store)
        again = await ingest(store, [chart(date(2022, 1, 1), TEN)])
        assert (first.added, again.added, again.unchanged, again.entries) == (1, 0, 1, 0)
        assert await dump_derived(store) == before
        assert await store.fetch_all("SELECT count(*) FROM entries") == [(10,)]


@both_engines
async def test_revision_replaces_the_chart_and_stats_follow(new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, [chart(date(2022, 1, 1), TEN), chart(date(2022, 1, 2), TEN)])
        revised = ["New Hit", *TEN[:9]]
        report = await ingest(store, [chart(date(2022, 1, 2), revised)])
        assert (report.replaced, report.added) == (1, 0)
        top = await store.charts.title_report("new hit")
        assert top.standings[0].rank == 1 and top.standings[0].periods_in_top10 == 1
        dropped = await store.charts.title_report("show 10")
        assert dropped.standings == [] and dropped.last_seen.date == date(2022, 1, 1)
        show1 = await store.charts.title_report("show 1")
        assert show1.standings[0].rank == 2 and show1.standings[0].periods_at_no1 == 1
        assert await store.fetch_all("SELECT count(*) FROM entries") == [(20,)]


@both_engines
async def test_backfill_is_inserted_in_its_place(new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, [chart(date(2022, 1, 1), TEN), chart(date(2022, 1, 3), TEN)])
        gap = await store.charts.title_report("show 1")
        assert gap.standings[0].no1_streak == 1  # Jan 2 is missing: the streak broke
        report = await ingest(store, [chart(date(2022, 1, 2), TEN)])
        assert report.backfilled == 1 and report.milestones == []
        filled = await store.charts.title_report("show 1")
        assert filled.standings[0].no1_streak == 3
        assert filled.standings[0].periods_in_top10 == 3


@both_engines
async def test_a_failing_ingest_leaves_nothing_behind(monkeypatch, countries, new_db):
    """A failure after the charts, stats and chart news are written (judging the countries) rolls all back."""

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    async with await open_store(new_db()) as store:
        monkeypatch.setattr(detector, "detect_countries", broken)
        with pytest.raises(RuntimeError):
            await ingest(store, countries[:400])
        for table in ("charts", "entries", "title_stats", "titles", "series", "outbox", "country_counts"):
            assert await store.fetch_all(f"SELECT count(*) FROM {table}") == [(0,)], table
        monkeypatch.undo()
        report = await ingest(store, countries[:400])  # the same store works on: nothing stale was kept
        assert report.added == 400


async def test_a_write_left_behind_fails_its_own_transaction_only(tmp_path):
    """A statement left to run in the driver's thread (a chunk's entries) that fails: its error is the
    queuing task's, at its next statement or at its commit; another task reading meanwhile waits for
    the write but is not handed the error; and the transaction rolls back whole."""
    db = await Db.connect(str(tmp_path / "behind.sqlite3"))
    try:
        await db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES (1)")
                await db.write_behind("INSERT INTO t VALUES (1)")
                reader = asyncio.create_task(db.fetch("SELECT count(*) FROM t"))
                assert await asyncio.gather(reader, return_exceptions=True) == [[(1,)]]
                await db.fetch("SELECT 1")
                pytest.fail("the queuing task's next statement raises the error")
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES (2)")
                await db.write_behind("INSERT INTO t VALUES (2)")
        assert await db.fetch("SELECT count(*) FROM t") == [(0,)]
        async with db.transaction():
            await db.write_behind("INSERT INTO t VALUES (3)")
        assert await db.fetch("SELECT n FROM t") == [(3,)]
    finally:
        await db.close()


@pytest.mark.parametrize("chunk", [2_000, 137])
async def test_entries_failing_in_the_drivers_thread_leave_nothing(countries, tmp_path, chunk):
    """The entries of a chunk are written behind while the next is worked out; when SQLite refuses
    them, the import fails and nothing of it is kept (in one step, and in chunks)."""
    async with await open_store(tmp_path / "refused.sqlite3") as store:
        await store.fetch_all(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.rank = 7 AND NEW.chart_id > 300 "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
            async with Ingester(store).batch() as batch:
                await batch.add(countries, news=False, chunk=chunk)
        for table in ("charts", "entries", "title_stats", "titles", "series", "country_counts"):
            assert await store.fetch_all(f"SELECT count(*) FROM {table}") == [(0,)], table
        await store.fetch_all("DROP TRIGGER refuse")
        assert (await ingest(store, countries, news=False)).added == len(countries)


@both_engines
async def test_figures_come_back_exactly(new_db):
    """Every figure is stored bit for bit (SQLite takes a chunk's entries as JSON text)."""
    points = [1 / 3, 0.1 + 0.2, 2.675, 1.8333333333333333, 123456.789, 1e-7, 1e22, 4.35, 0.3, 5e-5]
    entries = [
        Entry.make(rank, f"Show {rank}", points=p, runtime=p * 7, hours=rank * 1_000_003, views=2**53 + rank)
        for rank, p in enumerate(points, start=1)
    ]
    snapshot = make_snapshot(ChartKey("file", "netflix", "us", "tv", "week", date(2022, 1, 2)), entries)
    async with await open_store(new_db()) as store:
        await ingest(store, [snapshot])
        stored = await store.fetch_all("SELECT points, runtime, hours, views FROM entries ORDER BY rank")
    assert stored == [(e.points, e.runtime, e.hours, e.views) for e in entries]


@both_engines
async def test_a_chart_given_twice_in_a_long_batch_is_stored_as_last_given(countries, new_db):
    middle = countries[len(countries) // 2]
    correction = top_two_swapped(middle)
    async with await open_store(new_db()) as once:
        await ingest(once, [correction if s is middle else s for s in countries], news=False)
        expected = await dump_derived(once)
    async with await open_store(new_db()) as twice:
        async with Ingester(twice).batch() as batch:
            step = await batch.add([*countries, correction], news=False, chunk=137)
        assert (step.added, step.replaced) == (len(countries), 0)
        assert await dump_derived(twice) == expected


@both_engines
async def test_a_chart_given_again_in_the_next_step_of_a_batch_revises_the_first(countries, new_db):
    """A step's last chunk waits for the next step to be read before its new charts are handed over;
    a chart given again in that next step is stored after its first copy, as its revision."""
    newest = sorted(countries, key=lambda s: s.key.date)[-1]  # in the last chunk
    correction = top_two_swapped(newest)
    async with await open_store(new_db()) as once:
        await ingest(once, [correction if s is newest else s for s in countries], news=False)
        expected = await dump_derived(once)
    async with await open_store(new_db()) as twice:
        async with Ingester(twice).batch() as batch:
            await batch.add(countries, news=False, chunk=137)
            step = await batch.add([correction], news=False)
        assert (step.added, step.replaced) == (0, 1)
        assert await dump_derived(twice) == expected


async def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path):
    """SQLite's PRAGMAs (PostgreSQL's schema_version: tests/test_postgres.py)."""
    path = tmp_path / "chart.sqlite3"
    async with await open_store(path) as store:
        assert await store.fetch_all("PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert await store.fetch_all("PRAGMA journal_mode") == [("wal",)]
    async with await open_store(path) as store:  # opening again migrates nothing
        assert await store.fetch_all("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaError, match="newer than this chartbot"):
        await open_store(path)


NEWS = (
    "SELECT t.title_key, s.service, s.region, s.category, s.period, o.date, o.kind, o.detail, o.scope, "
    "o.value, o.previous, o.context, o.status, o.revision FROM outbox o JOIN titles t ON t.id = o.title_id "
    "JOIN series s ON s.id = o.series_id ORDER BY o.id"
)


async def test_a_version_3_database_migrates_with_its_news_deliveries_and_watches(countries, tmp_path):
    """SQLite only. Steps 4 and 5: the outbox keyed by its parts (unique in the database), deliveries naming their
    milestones by id, watches starting at a milestone id instead of a timestamp."""
    news = tmp_path / "news.sqlite3"
    async with await open_store(news) as store:
        await ingest(store, countries)
        expected = await store.fetch_all(NEWS)
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"BEGIN IMMEDIATE; {step}; PRAGMA user_version = {number}; COMMIT;")
    conn.execute("ATTACH ? AS news", (str(news),))
    conn.execute("INSERT INTO titles SELECT id, title_key, title FROM news.titles")
    conn.execute("INSERT INTO series SELECT * FROM news.series WHERE latest_date IS NOT NULL")
    # the outbox as version 3 wrote it: its text key, its series spelled out, created_at in updated_at
    conn.execute(
        "INSERT INTO outbox SELECT o.id, o.date || '|' || o.kind || '|' || s.service || '|' || s.region || '|' "
        "|| s.category || '|' || s.period || '|' || t.title_key || CASE WHEN o.detail = '' THEN '' "
        "ELSE '|' || o.detail END, o.kind, o.scope, o.title_id, o.source, s.service, s.region, s.category, "
        "s.period, o.date, o.value, o.previous, o.context, o.status, o.revision, o.created_at, o.created_at "
        "FROM news.outbox o JOIN news.titles t ON t.id = o.title_id JOIN news.series s ON s.id = o.series_id"
    )
    conn.execute("DETACH news")
    delivered_id, delivered_key, created = conn.execute(
        "SELECT id, key, created_at FROM outbox ORDER BY id LIMIT 1 OFFSET 500"
    ).fetchone()
    conn.execute(
        "INSERT INTO deliveries (id, guild_id, channel_id, group_key, nonce, due_at, created_at, updated_at) "
        "VALUES (1, 7, 70, 'g', 'n', 'x', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO delivery_items (channel_id, milestone_key, delivery_id, revision) VALUES (70, ?, 1, 0)",
        (delivered_key,),
    )
    conn.execute(
        "INSERT INTO watches (guild_id, target, title, channel_id, since, created_at) VALUES (7, 'x', 'X', 70, ?, ?)",
        ("9999-01-01T00:00:00.000+00:00", "x"),
    )
    conn.close()

    async with await open_store(path) as store:
        assert await store.fetch_all(NEWS) == expected
        assert await store.fetch_all("SELECT milestone_id FROM delivery_items") == [(delivered_id,)]
        newest = (await store.fetch_all("SELECT max(id) FROM outbox"))[0][0]
        assert await store.fetch_all("SELECT since_id FROM watches") == [(newest,)]  # after every milestone
        indexes = {name for (name,) in await store.fetch_all("SELECT name FROM sqlite_master")}
        assert {"outbox_pending", "outbox_revised", "delivery_items_by_milestone"} <= indexes
        assert "sqlite_autoindex_outbox_1" in indexes  # the milestone key: unique in the database
        assert len(expected) > 1000 and created


async def test_looking_for_posts_to_edit_reads_only_revised_milestones(countries):
    """The announcer runs this every round: it must not walk every delivery item or milestone.
    (SQLite's query plan; PostgreSQL's: tests/test_postgres.py)"""
    async with await open_store() as store:
        await ingest(store, countries[:400])
        plan = await store.fetch_all(f"EXPLAIN QUERY PLAN {FLAG_EDITS}", ("2022-01-01",))
        steps = " / ".join(row[3] for row in plan)
        assert "USING INDEX outbox_revised" in steps, steps
        assert "SCAN" not in steps, steps


@both_engines
async def test_standings_on_a_past_date_fold_history(countries, new_db):
    async with await open_store(new_db()) as store:
        await ingest(store, countries, news=False)
        korea = [
            s
            for s in (await store.charts.title_report("squid game", date(2021, 10, 3))).standings
            if s.region == "kr"
        ]
        assert [(s.rank, s.no1_streak, s.periods_in_top10) for s in korea] == [(1, 3, 3)]
        latest = await store.charts.title_report(AOUAD)
        assert {s.date for s in latest.standings} == {date(2022, 2, 27)}


@both_engines
async def test_a_truncated_title_is_the_stored_title_it_begins(world, new_db):
    us_daily = read_file(Path(__file__).parent / "data" / "netflix_us_daily" / "netflix_daily_top_10.csv")
    async with await open_store(new_db()) as store:
        await ingest(store, world, news=False)  # has "The Woman in the House Across the Street from …"
        await ingest(store, us_daily, news=False)  # says "The Woman in the House Acro…"
        report = await store.charts.title_report(
            "the woman in the house across the street from the girl in the window", date(2022, 1, 30)
        )
        assert {(s.region, s.category) for s in report.standings} == {
            ("world", "tv-english"),
            ("us", "overall"),
        }
        assert await store.fetch_all(
            "SELECT count(*) FROM titles WHERE title_key LIKE 'the woman in the house acro%'"
        ) == [(1,)]


def test_several_processes_creating_one_database_at_once(tmp_path):
    """Each process migrates a brand-new file as it opens it: the first takes each step, the others find
    it done ("table already exists" must never reach anyone)."""
    import subprocess
    import sys
    import time

    path = tmp_path / "new.sqlite3"
    at = time.time() + 1.5  # they all start opening at the same moment
    script = (
        "import asyncio, sys, time\n"
        "from bot.store import open_store\n"
        "async def main():\n"
        f"    time.sleep(max(0.0, {at} - time.time()))\n"
        "    store = await open_store(sys.argv[1])\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE) for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, errors

    async def version() -> int:
        async with await open_store(path) as store:
            return (await store.status()).schema_version

    assert asyncio.run(version()) == SCHEMA_VERSION


@both_engines
async def test_every_table_read_and_written_back_whole(chart_store, new_db):
    """What a copy between engines moves (`read_tables` / `load_tables`), within one engine: every row
    back as it was, the same answers, and ids going on after the highest."""
    from bot.store.catalog import TABLES

    async def rows_of(store):
        async with store.read_tables() as tables:
            return {
                t.name: [r async for batch in tables.rows(t.name, batch=777) for r in batch] for t in TABLES
            }

    original = await rows_of(chart_store)
    assert len(original["entries"]) == 23_020 and len(original["outbox"]) > 1000
    async with await open_store(new_db()) as copy:
        async with chart_store.read_tables() as tables, copy.load_tables() as load:
            await load.clear()
            for t in TABLES:
                async for batch in tables.rows(t.name):
                    await load.write(t.name, batch)
                assert await load.count(t.name) == await tables.count(t.name)
        assert await rows_of(copy) == original
        assert await copy.charts.title_report(
            AOUAD, date(2022, 2, 6)
        ) == await chart_store.charts.title_report(AOUAD, date(2022, 2, 6))
        newest = max(row[0] for row in original["outbox"])
        await ingest(copy, [chart(date(2023, 1, 1), TEN), chart(date(2023, 1, 2), TEN[::-1])])
        assert (await copy.fetch_all("SELECT min(id) FROM outbox WHERE date >= '2023-01-01'"))[0][0] > newest
