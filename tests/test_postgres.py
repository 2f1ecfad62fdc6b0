"""PostgreSQL's own guarantees, on a real server: migrations taken once however many processes open a
new database, the milestone key kept unique by the database, history writes of several processes
taking turns (two `chartbot import`s at once end as one after the other), a watch made during a
history write starting after it, planning rounds one at a time, errors as one line without the
password, and copies between engines row for row.

The store's behaviour as such (ingest, queries, delivery queue, command line) is tested on both
engines by the other modules (`@both_engines`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest
from postgres import PostgresServer

from bot.cli import main
from bot.client import ChartBot
from bot.ingest import Ingester, ingest
from bot.model import ChartKey, Entry, Snapshot, make_snapshot
from bot.settings import Settings
from bot.sources.files import read_file
from bot.store import (
    DatabaseUnavailable,
    SchemaError,
    Store,
    StoreBusy,
    StoreError,
    open_store,
    redact,
)
from bot.store.catalog import TABLES
from bot.store.postgres.connection import HISTORY, LOCK_SPACE, numbered
from bot.store.postgres.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
COUNTRIES = DATA / "netflix" / "all-weeks-countries_cut.tsv"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
AOUAD = "all of us are dead"
GUILD, CHANNEL = 810_000_000_000_000_001, 810_000_000_000_000_010

# Everything the store derives and decides, named by keys rather than row ids (the same on any run).
DERIVED = {
    "stats": "SELECT s.service, s.region, s.category, s.period, t.title_key, first_date, last_date, last_rank, "
    "prev_rank, peak, peak_date, periods_in_top10, periods_at_no1, no1_run, longest_no1_run, longest_no1_end, "
    "top10_run FROM title_stats ts JOIN series s ON s.id = ts.series_id JOIN titles t ON t.id = ts.title_id "
    "ORDER BY 1, 2, 3, 4, 5",
    "series": "SELECT service, region, category, period, latest_date, record_run, t.title_key, record_end, "
    "version > 0 FROM series LEFT JOIN titles t ON t.id = record_holder ORDER BY 1, 2, 3, 4",
    "countries": "SELECT service, category, period, date, t.title_key, no1, top10 FROM country_counts "
    "JOIN titles t ON t.id = title_id ORDER BY 1, 2, 3, 4, 5",
    "periods": "SELECT * FROM country_periods ORDER BY 1, 2, 3, 4",
    "entries": "SELECT s.region, s.category, c.date, e.rank, t.title_key, e.hours FROM entries e "
    "JOIN charts c ON c.id = e.chart_id JOIN series s ON s.id = c.series_id JOIN titles t ON t.id = e.title_id "
    "ORDER BY 1, 2, 3, 4",
    "outbox": "SELECT t.title_key, s.service, s.region, s.category, s.period, o.date, o.kind, o.detail, o.scope, "
    "o.value, o.previous, o.context, o.status, o.revision FROM outbox o JOIN titles t ON t.id = o.title_id "
    "JOIN series s ON s.id = o.series_id ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
}


async def derived(target: str) -> dict[str, list[tuple]]:
    async with await open_store(target) as store:
        return {name: await store.fetch_all(sql) for name, sql in DERIVED.items()}


async def start_cli(*argv: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTBOT_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *argv,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def waiting_for_history(url: str) -> int:
    """How many sessions wait for the HISTORY advisory lock right now."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = $1 AND objid = $2 AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            LOCK_SPACE,
            HISTORY,
        )
    finally:
        await conn.close()


async def until(condition, what: str, within: float = 60.0) -> None:
    """Wait for a condition the test cannot be told about (another process reaching a lock)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.02)


def chart(day: date, titles: list[str], region: str = "us") -> Snapshot:
    key = ChartKey("file", "netflix", region, "tv", "day", day)
    return make_snapshot(key, [Entry.make(rank, title) for rank, title in enumerate(titles, start=1)])


TEN = [f"Show {n}" for n in range(1, 11)]


@pytest.fixture
def engine(postgres: PostgresServer) -> str:
    """Every database fixture of this module is a PostgreSQL one."""
    return "postgresql"


# --- the schema ---------------------------------------------------------------------------------------


async def test_a_new_database_is_migrated_once_however_many_open_it_at_once(
    postgres: PostgresServer,
) -> None:
    url = postgres.database_url(postgres.create("bare"))  # from template0: no schema at all
    stores = await asyncio.gather(*(open_store(url) for _ in range(6)))
    try:
        for store in stores:
            assert (await store.status()).schema_version == SCHEMA_VERSION
        assert await stores[0].fetch_all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        for store in stores:
            await store.close()
    async with await open_store(url) as again:  # opening again migrates nothing
        assert await again.fetch_all("SELECT count(*) FROM schema_version") == [(1,)]


async def test_a_newer_or_foreign_database_is_refused(postgres: PostgresServer, db_target: str) -> None:
    conn = await asyncpg.connect(db_target)
    await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    await conn.close()
    with pytest.raises(SchemaError, match="newer than this chartbot"):
        await open_store(db_target)
    foreign = postgres.database_url(postgres.create("foreign"))
    conn = await asyncpg.connect(foreign)
    await conn.execute("CREATE TABLE titles (id int)")
    await conn.close()
    with pytest.raises(SchemaError, match=r"not chartbot's \(titles\)"):
        await open_store(foreign)


async def test_proper_types_and_the_unique_milestone_key(db_target: str, netflix_snapshots) -> None:
    async with await open_store(db_target) as store:
        await ingest(store, [s for s in netflix_snapshots if s.key.date <= date(2021, 7, 11)])
        types = dict(
            await store.fetch_all(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        )
    assert types["charts.date"] == types["outbox.date"] == "date"
    assert types["outbox.created_at"] == types["deliveries.due_at"] == "timestamp with time zone"
    for column in ("guild_id", "channel_id", "mention_role_id"):
        assert types[f"guild_settings.{column}"] == "bigint"
    assert types["deliveries.message_id"] == types["watches.guild_id"] == "bigint"
    assert types["charts.complete"] == types["deliveries.edit_needed"] == "boolean"
    conn = await asyncpg.connect(db_target)
    try:
        first = await conn.fetchrow("SELECT * FROM outbox ORDER BY id LIMIT 1")
        columns = [k for k in first.keys() if k != "id"]  # noqa: SIM118 (a Record)
        with pytest.raises(asyncpg.UniqueViolationError):  # the database itself says no
            await conn.execute(
                f"INSERT INTO outbox ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${n}' for n in range(1, len(columns) + 1))})",
                *(first[k] for k in columns),
            )
    finally:
        await conn.close()


# --- several processes ----------------------------------------------------------------------------


async def test_two_imports_at_once_end_as_one_after_the_other(db_target: str, new_db, capsys) -> None:
    """Both `chartbot import` processes reach the history lock while the test holds it, then race."""
    sequential = new_db()
    for path in (COUNTRIES, GLOBAL):
        assert await asyncio.to_thread(main, ["import", str(path), "--db", sequential]) == 0
    async with await open_store(db_target) as store, store.history.write():
        racers = [await start_cli("import", str(path), "--db", db_target) for path in (GLOBAL, COUNTRIES)]

        async def both_wait() -> bool:
            return await waiting_for_history(db_target) == 2

        await until(both_wait, "both imports waiting for the history lock")
    reports = [await finish(p) for p in racers]
    assert "140 new" in reports[0] and "2,162 new" in reports[1]
    assert await derived(db_target) == await derived(sequential)
    capsys.readouterr()
    for argv in (
        ("rank", AOUAD, "--date", "2022-02-06", "--json"),
        ("top", "--region", "kr", "--category", "tv", "--date", "2022-02-06", "--json"),
        ("top", "--json"),
    ):
        answers = []
        for db in (db_target, sequential):
            assert await asyncio.to_thread(main, [*argv, "--db", db]) == 0
            answers.append(capsys.readouterr().out)
        assert answers[0] == answers[1] and answers[0].startswith("{")
        if argv[0] == "rank":
            assert '"no1": 63' in answers[0]


async def test_two_replays_at_once_store_each_milestone_once(db_target: str, new_db, capsys) -> None:
    """Two processes replaying the same history into one database, period by period with news: the
    same history, stats and outbox as one replay alone, and no milestone twice."""
    alone = new_db()
    assert await asyncio.to_thread(main, ["replay", str(COUNTRIES), str(GLOBAL), "--db", alone]) == 0
    async with await open_store(db_target) as store, store.history.write():
        racers = [await start_cli("replay", str(COUNTRIES), str(GLOBAL), "--db", db_target) for _ in range(2)]

        async def both_wait() -> bool:
            return await waiting_for_history(db_target) == 2

        await until(both_wait, "both replays waiting for the history lock")
    printed = [await finish(p) for p in racers]
    ours, theirs = await derived(db_target), await derived(alone)
    assert ours == theirs and len(ours["outbox"]) > 1000
    lines = [line for out in printed for line in out.splitlines()]
    assert len(lines) == len(set(lines)) == len(theirs["outbox"])  # each milestone printed once, by one


async def test_a_write_that_doubles_the_history_leaves_fresh_planner_statistics(db_target: str) -> None:
    """Autovacuum would analyze the new rows a minute later at best; until then the country news
    were planned as if the tables were empty (the whole group's history read by the wrong index
    every period). A write that doubles the history, from 10,000 entries on, analyzes it at once."""
    countries = read_file(COUNTRIES)

    async def estimated_entries(store: Store) -> float:
        rows = await store.fetch_all(
            "SELECT reltuples FROM pg_class WHERE relname = 'entries' AND relnamespace = current_schema()::regnamespace"
        )
        return rows[0][0]

    async with await open_store(db_target) as store:
        await ingest(store, countries[:10], news=False)
        assert await estimated_entries(store) != 100  # 100 entries: not analyzed for so few
        await ingest(store, countries[10:], news=False)
        stored = (await store.fetch_all("SELECT count(*) FROM entries"))[0][0]
        assert stored > 20_000 and await estimated_entries(store) == stored


async def test_statistics_that_cannot_be_taken_do_not_fail_the_write(
    db_target: str, monkeypatch, caplog
) -> None:
    """The write has committed when its tables are analyzed: a refused ANALYZE is logged, no more."""
    from bot.store.postgres.history import PostgresHistory

    monkeypatch.setattr(PostgresHistory, "HISTORY_TABLES", ("no_such_table",))
    async with await open_store(db_target) as store:
        with caplog.at_level(logging.WARNING):
            report = await ingest(store, read_file(COUNTRIES), news=False)
        assert report.added == 2_162
        assert await store.fetch_all("SELECT count(*) FROM charts") == [(2_162,)]
    assert "could not analyze the history tables" in caplog.text


async def test_a_killed_import_leaves_nothing_of_its_file(db_target: str) -> None:
    """SIGKILL in the middle of an import's transaction (held there by a lock the test takes on the
    table it writes last): nothing of the file is kept, and the next import stores it whole."""
    import signal

    async with await open_store(db_target) as store:
        assert await store.fetch_all("SELECT count(*) FROM charts") == [(0,)]
    blocker = await asyncpg.connect(db_target)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("LOCK TABLE country_periods IN EXCLUSIVE MODE")
        importer = await start_cli("import", str(COUNTRIES), "--db", db_target)

        async def import_waits_for_the_last_table() -> bool:
            return bool(
                await blocker.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'country_periods' AND NOT l.granted"
                )
            )

        await until(import_waits_for_the_last_table, "the import blocked inside its transaction")
        importer.send_signal(signal.SIGKILL)
        await importer.wait()
        await blocking.rollback()
    finally:
        await blocker.close()
    async with await open_store(db_target) as store:
        for table in ("charts", "entries", "title_stats", "country_counts", "country_periods"):
            assert await store.fetch_all(f"SELECT count(*) FROM {table}") == [(0,)], table
    assert "2,162 new" in await finish(await start_cli("import", str(COUNTRIES), "--db", db_target))


async def test_a_watch_made_during_a_history_write_starts_after_it(db_target: str, netflix_snapshots) -> None:
    weeks = sorted({s.key.date for s in netflix_snapshots})
    async with await open_store(db_target) as store, await open_store(db_target) as admin:
        await ingest(store, [s for s in netflix_snapshots if s.key.date < weeks[-1]])
        before = (await store.fetch_all("SELECT max(id) FROM outbox"))[0][0]
        async with Ingester(store).batch() as batch:  # the newest week's news, not committed yet
            await batch.add([s for s in netflix_snapshots if s.key.date == weeks[-1]], news=True)
            assert batch.report.milestones
            watch = asyncio.create_task(admin.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHANNEL))

            async def watch_waits() -> bool:
                return await waiting_for_history(db_target) == 1

            await until(watch_waits, "the watch waiting for the history write")
            assert not watch.done()
        made, created = await watch
        newest = (await store.fetch_all("SELECT max(id) FROM outbox"))[0][0]
        assert created and newest > before and made.since_id == newest  # the week in flight counts as old


async def test_a_watch_waits_only_so_long_for_a_history_write(db_target: str) -> None:
    async with await open_store(db_target) as store, await open_store(db_target, lock_timeout=0.2) as admin:
        async with store.history.write():
            with pytest.raises(StoreBusy, match="busy"):
                await admin.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHANNEL)
        made, created = await admin.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHANNEL)
        assert created and made.since_id == 0


async def test_a_history_write_waits_for_the_one_in_flight_however_long(db_target: str) -> None:
    """Longer than any lock or statement timeout: an import waits for another, it is never refused."""
    quick = {"lock_timeout": 0.1, "statement_timeout": 0.1}
    async with await open_store(db_target) as first, await open_store(db_target, **quick) as second:
        async with first.history.write():
            waiting = asyncio.create_task(ingest(second, [chart(date(2022, 1, 1), TEN)]))

            async def second_waits() -> bool:
                return await waiting_for_history(db_target) == 1

            await until(second_waits, "the second history write waiting")
            await asyncio.sleep(0.5)  # five times either timeout
            assert not waiting.done()
        assert (await waiting).added == 1


async def test_planning_rounds_take_turns_across_processes(db_target: str, netflix_snapshots) -> None:
    async with await open_store(db_target) as one, await open_store(db_target) as other:
        await ingest(one, [s for s in netflix_snapshots if s.key.date < date(2022, 1, 30)], news=False)
        await one.guilds.add_watch(GUILD, "*", "All titles", CHANNEL)
        await one.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHANNEL + 1)
        await ingest(one, [s for s in netflix_snapshots if s.key.date == date(2022, 1, 30)])
        reports = await asyncio.gather(*(store.deliveries.plan() for store in (one, other, one, other)))
        assert sum(r.deliveries for r in reports) > 5
        assert sorted(r.planned > 0 for r in reports) == [False, False, False, True]  # one round did it all
        items = await one.fetch_all(
            "SELECT channel_id, milestone_id, count(*) FROM delivery_items GROUP BY 1, 2 HAVING count(*) > 1"
        )
        groups = await one.fetch_all(
            "SELECT channel_id, group_key, count(*) FROM deliveries GROUP BY 1, 2 HAVING count(*) > 1"
        )
        assert items == groups == []
        ids = [row[0] for row in await one.fetch_all("SELECT id FROM deliveries ORDER BY id")]
        claims = await asyncio.gather(one.deliveries.begin_sending(ids), other.deliveries.begin_sending(ids))
        states = await one.fetch_all("SELECT state, min(attempts), max(attempts) FROM deliveries GROUP BY 1")
        # each claim counted once, none lost (one of the same unnamed process may skip a row the other
        # is claiming at that moment: see tests/test_cluster_store.py for claims by two processes)
        claimed = len(claims[0]) + len(claims[1])
        assert states[0][0] == "sending" and len(states) == 1 and states[0][1] >= 1 and states[0][2] <= 2
        total = (await one.fetch_all("SELECT sum(attempts) FROM deliveries"))[0][0]
        assert total == claimed and set(claims[0]) | set(claims[1]) == set(ids)


# --- errors and secrets ---------------------------------------------------------------------------------


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    return f"postgresql://chartbot:hunter2-secret@127.0.0.1:{port}/charts"


async def test_a_server_that_cannot_be_reached_is_one_line_without_the_password(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = refused_url()
    with pytest.raises(DatabaseUnavailable) as raised:
        await open_store(url)
    message = str(raised.value)
    assert (
        message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
        and "/charts: connection refused" in message
    )
    assert "\n" not in message and "hunter2" not in message
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


def test_the_command_line_says_so_in_one_line_and_exits_2(capsys) -> None:
    url = refused_url()
    for argv in (["rank", AOUAD], ["import", str(GLOBAL)], ["status"], ["replay", str(GLOBAL)]):
        assert main([*argv, "--db", url]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err
        assert "cannot connect to PostgreSQL at 127.0.0.1:" in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://chartbot:hunter2@[::1/charts", "Invalid IPv6 URL"),
        ("postgresql://chartbot:hunter2@localhost:port/charts", "invalid literal for int()"),
        ("postgres://chartbot:hunter2@127.0.0.1:1/charts?sslmode=sometimes", "sslmode"),
    ],
)
def test_a_malformed_url_is_one_line_without_the_password(url: str, why: str, capsys) -> None:
    assert main(["top", "--db", url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and why in err and "hunter2" not in err


def test_a_url_loses_its_password_in_every_line() -> None:
    assert (
        redact("postgresql://chartbot:hunter2@db:5432/charts") == "postgresql://chartbot:***@db:5432/charts"
    )
    assert redact("postgresql://chartbot:hun@ter2@db/charts") == "postgresql://chartbot:***@db/charts"
    assert redact("postgresql://chartbot:hunter2@[::1/charts") == "postgresql://chartbot:***@[::1/charts"
    assert redact("postgresql://chartbot@db/charts") == "postgresql://chartbot@db/charts"
    assert redact("charts.sqlite3") == "charts.sqlite3"


def test_a_database_that_does_not_exist_is_one_line(postgres: PostgresServer, capsys) -> None:
    missing = postgres.database_url("chartbot_no_such_database")
    assert main(["top", "--db", missing]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and 'database "chartbot_no_such_database" does not exist' in err


async def test_the_password_never_reaches_status_or_the_log(
    postgres: PostgresServer, db_target: str, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = await asyncpg.connect(postgres.url)
    await conn.execute("DROP ROLE IF EXISTS chartbot_pw")
    await conn.execute("CREATE ROLE chartbot_pw LOGIN SUPERUSER PASSWORD 'hunter2-secret'")
    await conn.close()
    url = db_target.replace("postgresql://postgres@", "postgresql://chartbot_pw:hunter2-secret@")
    assert "hunter2" in url
    async with await open_store(url) as store:
        status = await store.status()
        await ingest(store, [chart(date(2022, 1, 1), TEN)])
    assert status.engine == "postgresql" and status.location == redact(url) and "***" in status.location
    assert "hunter2" not in repr(status) and status.counts["entries"] == 0
    bot = ChartBot(Settings(db_path=url), guild_ready_timeout=0.05)
    await (await bot.get_store()).close()  # the bot, opening its database, logs where
    logged = [r.getMessage() for r in caplog.records]
    assert any(redact(url) in line for line in logged)  # "opened the chart database …"
    assert all("hunter2" not in line for line in logged)


async def test_a_slow_statement_is_busy_and_a_closed_store_unavailable(db_target: str) -> None:
    store = await open_store(db_target, statement_timeout=0.1)
    with pytest.raises(StoreBusy):
        await store.fetch_all("SELECT pg_sleep(1)")
    with pytest.raises(DatabaseUnavailable, match="cannot be used"):
        await store.fetch_all("SELECT * FROM no_such_table")
    await store.close()
    with pytest.raises(DatabaseUnavailable):
        await store.charts.title_catalog()
    with pytest.raises(DatabaseUnavailable):
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead")


async def test_a_refused_write_is_the_stores_error_and_nothing_is_kept(db_target: str) -> None:
    async with await open_store(db_target) as store:
        with pytest.raises(StoreError, match="refused a write") as raised:
            async with store.history.write() as tx:
                snapshot = chart(date(2022, 1, 1), TEN)
                await tx.resolve_titles({e.title_key: e.title for e in snapshot.entries})
                await tx.add_charts([(snapshot, "x")])
                await tx.add_charts([(snapshot, "x")])  # the same chart twice
        assert not isinstance(raised.value, asyncpg.PostgresError)
        for table in ("titles", "charts", "entries"):
            assert await store.fetch_all(f"SELECT count(*) FROM {table}") == [(0,)]
        await ingest(store, [chart(date(2022, 1, 1), TEN)])  # the store works on
        assert await store.fetch_all("SELECT count(*) FROM entries") == [(10,)]


def test_question_marks_become_numbered_outside_strings() -> None:
    assert numbered("SELECT ? , '?', \"a?\" -- ?\n, ?") == "SELECT $1 , '?', \"a?\" -- ?\n, $2"
    assert numbered("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"


# --- plans that keep the announcer cheap -------------------------------------------------------------------


async def test_looking_for_posts_to_edit_reads_only_revised_milestones(chart_store: Store) -> None:
    """The announcer runs this every round: it must not walk every delivery item or milestone."""
    from bot.store.postgres.guilds import FLAG_EDITS

    await chart_store.fetch_all("ANALYZE")
    plan = "\n".join(row[0] for row in await chart_store.fetch_all(f"EXPLAIN {FLAG_EDITS}", ("2022-01-01",)))
    assert "outbox_revised" in plan, plan
    assert "Seq Scan on outbox" not in plan, plan


# --- copies between engines --------------------------------------------------------------------------------


async def rows_of(store: Store) -> dict[str, list[tuple]]:
    async with store.read_tables() as tables:
        return {
            t.name: [row async for batch in tables.rows(t.name, batch=997) for row in batch] for t in TABLES
        }


async def copy(source: Store, target: Store) -> None:
    async with source.read_tables() as rows, target.load_tables() as load:
        await load.clear()
        for t in TABLES:
            async for batch in rows.rows(t.name):
                await load.write(t.name, batch)
            assert await load.count(t.name) == await rows.count(t.name)


@pytest.fixture
async def busy_history(tmp_path: Path, netflix_snapshots) -> AsyncIterator[Store]:
    """A SQLite history with news, a server's settings, watches, a broken channel and deliveries."""
    async with await open_store(tmp_path / "source.sqlite3") as store:
        await ingest(store, [s for s in netflix_snapshots if s.key.date < date(2022, 1, 30)], news=False)
        await store.guilds.update_settings(GUILD, channel_id=CHANNEL, regions=None, digest="period")
        await store.guilds.add_watch(GUILD, "*", "All titles")
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHANNEL + 1)
        await store.guilds.mark_broken(GUILD, CHANNEL + 2, "missing access")
        await ingest(store, [s for s in netflix_snapshots if s.key.date == date(2022, 1, 30)])
        await store.deliveries.plan(hold=60)
        ids = [row[0] for row in await store.fetch_all("SELECT id FROM deliveries ORDER BY id LIMIT 3")]
        await store.deliveries.begin_sending(ids)
        await store.sources.record_cycle(
            "netflix", datetime.now(UTC), healthy=True, note=None, success=True, rows=94
        )
        await store.sources.set_validators("https://example.invalid/a.tsv", '"etag"', None)
        yield store


async def test_a_history_copied_to_postgresql_and_back_is_the_same_row_for_row(
    busy_history: Store, db_target: str, tmp_path: Path
) -> None:
    async with await open_store(db_target) as pg, await open_store(tmp_path / "back.sqlite3") as back:
        await copy(busy_history, pg)
        await copy(pg, back)
        original, there, again = await rows_of(busy_history), await rows_of(pg), await rows_of(back)
        assert original == there == again
        assert all(
            original[t] for t in ("outbox", "watches", "deliveries", "delivery_items", "channel_health")
        )
        assert [m.milestone.key for m in await pg.charts.milestones()] == [
            m.milestone.key for m in await busy_history.charts.milestones()
        ]
        # ids go on after the highest copied, in both engines
        newest = max(row[0] for row in original["outbox"])
        for store in (pg, back):
            await ingest(store, [chart(date(2023, 1, 1), TEN), chart(date(2023, 1, 2), TEN[::-1])])
            assert (await store.fetch_all("SELECT min(id) FROM outbox WHERE date >= '2023-01-01'"))[0][
                0
            ] > newest


async def test_a_copy_that_fails_leaves_the_target_as_it_was(busy_history: Store, db_target: str) -> None:
    async with await open_store(db_target) as pg:
        await ingest(pg, [chart(date(2023, 1, 1), TEN)])
        before = await rows_of(pg)
        with pytest.raises(StoreError):
            async with busy_history.read_tables() as rows, pg.load_tables() as load:
                await load.clear()
                async for batch in rows.rows("titles"):
                    await load.write("titles", batch)
                await load.write("titles", [(1, "duplicate id", "Duplicate", False)])
        assert await rows_of(pg) == before


# --- the command line on PostgreSQL ---------------------------------------------------------------------


async def test_the_readme_on_postgresql(db_target: str, new_db, capsys) -> None:
    """`chartbot import`, `rank`, `top`, `replay --db`, `milestones` and `status` through `main`."""

    async def chartbot(*argv: str) -> str:
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    await chartbot("import", str(COUNTRIES), str(GLOBAL), "--db", db_target)
    out = await chartbot("rank", AOUAD, "--date", "2022-02-06", "--db", db_target)
    assert "No. 1 in 63 of 94 countries · in the top 10 of 94" in out
    replayed = new_db()
    replay = await chartbot("replay", str(COUNTRIES), str(GLOBAL), "--json", "--db", replayed)
    printed = [json.loads(line) for line in replay.splitlines()]
    stored = [
        json.loads(line) for line in (await chartbot("milestones", "--json", "--db", replayed)).splitlines()
    ]
    assert len(stored) == len(printed) > 1000
    assert sorted(m["key"] for m in stored) == sorted(m["key"] for m in printed)
    assert (await chartbot("status", "--db", replayed)).splitlines()[0].split()[:2] == ["SOURCE", "STATE"]
    assert "U.S. Top 10 · TV — week of Feb 27, 2022" in await chartbot(
        "top", "--region", "us", "--category", "tv", "--db", replayed
    )
