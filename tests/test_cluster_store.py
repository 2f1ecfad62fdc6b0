"""The cluster in the store: jobs held by one process at a time (advisory locks on a connection of each
process's own), deliveries by shard and claimed by one process only, notices (LISTEN/NOTIFY), the live
processes as `chartbot status` lists them. Real PostgreSQL; SQLite's single process holds everything."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import date

import asyncpg
import pytest
from engines import both_engines
from postgres import PostgresServer

from bot.cli import main
from bot.ingest import ingest
from bot.model import Snapshot
from bot.store import (
    DELIVERIES_PLANNED,
    HISTORY_CHANGED,
    PLAN,
    POLL,
    RECONNECTED,
    SETTINGS_CHANGED,
    ClusterLink,
    DatabaseUnavailable,
    MemberReport,
    ShardScope,
    Store,
    join_cluster,
    open_store,
)
from bot.store.sqlite.cluster import SoleProcess

AOUAD = "all of us are dead"
SHARDS = 4
# one server on each of four shards: (guild_id >> 22) % 4 == n
GUILDS = [(810_000_000 + n) << 22 for n in range(SHARDS)]
assert [(g >> 22) % SHARDS for g in GUILDS] == [0, 1, 2, 3]


def report(name: str, shards: tuple[int, ...] = (), count: int = SHARDS) -> MemberReport:
    return MemberReport(name=name, shard_ids=shards, shard_count=count)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 -- another process's doing: nothing to wait on here
            await asyncio.sleep(0.02)
    del what


@contextlib.asynccontextmanager
async def links(url: str, count: int) -> AsyncIterator[list[ClusterLink]]:
    made = [join_cluster(url) for _ in range(count)]
    try:
        yield made
    finally:
        for link in made:
            await link.close()


async def kill_connection(url: str, link: ClusterLink) -> None:
    """End a link's session from the server's side, as when its process dies or the server restarts it."""
    conn = await asyncpg.connect(url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'chartbot cluster' AND datname = current_database() "
            "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND classid = $2)",
            link.member_id,
            0x43_48_42_54 + 1,
        )
    finally:
        await conn.close()
    assert killed == 1


@pytest.fixture
async def pg_target(postgres: PostgresServer) -> str:
    """A new, migrated PostgreSQL database."""
    url = postgres.create_url("cluster")
    await (await open_store(url)).close()
    return url


async def test_one_process_holds_each_job_and_another_takes_it_when_the_holder_is_gone(
    pg_target: str,
) -> None:
    async with links(pg_target, 3) as (one, two, three):
        for link, name in ((one, "a"), (two, "b"), (three, "c")):
            await link.heartbeat(report(name))
        assert await one.hold(POLL) and await two.hold(PLAN)
        assert not await two.hold(POLL) and not await three.hold(POLL) and not await one.hold(PLAN)
        assert await one.hold(POLL)  # kept: asked again, still held (not taken twice)
        assert one.held() == {POLL} and two.held() == {PLAN} and three.held() == frozenset()
        lost: list[str] = []
        one.on_lost(lambda: lost.append("one"))
        await kill_connection(pg_target, one)  # the holder dies: its session and its lock go
        await until(lambda: bool(lost), "the link to notice")
        assert one.held() == frozenset()
        assert await three.hold(POLL)  # taken over at the next try
        assert not await one.hold(POLL)  # back, reconnected: but the job is another's now
        assert one.member_id is not None
        await three.release(POLL)
        assert await one.hold(POLL)


async def test_the_status_lists_live_processes_their_shards_jobs_and_queues(
    pg_target: str, netflix_snapshots
) -> None:
    async with await open_store(pg_target) as store, links(pg_target, 2) as (one, two):
        await one.heartbeat(report("host:1", (0, 1)))
        await two.heartbeat(report("host:2", (2, 3)))
        await one.hold(POLL)
        await two.hold(PLAN)
        await _deliveries(store, netflix_snapshots)
        members = await store.cluster.members()
        assert [(m.name, m.shard_ids, m.jobs) for m in members] == [
            ("host:1", (0, 1), (POLL,)),
            ("host:2", (2, 3), (PLAN,)),
        ]
        queues = {m.name: m.queue for m in members}
        assert queues["host:1"] > 0 and queues["host:2"] > 0
        assert sum(queues.values()) == (await store.fetch_all("SELECT count(*) FROM deliveries"))[0][0]
        assert all(m.last_post is None for m in members)
        await two.close()  # left: no longer listed
        assert [m.name for m in await store.cluster.members()] == ["host:1"]
        await kill_connection(pg_target, one)  # dead: not listed, though its row is still there
        assert await store.cluster.members() == []


async def _deliveries(store: Store, snapshots: list[Snapshot]) -> list[int]:
    """A week of news planned for a headline watch in a server on each shard: deliveries on every shard."""
    await ingest(store, [s for s in snapshots if s.key.date < date(2022, 1, 30)], news=False)
    for guild in GUILDS:
        await store.guilds.add_watch(guild, "*", "All titles", guild + 10)
    await ingest(store, [s for s in snapshots if s.key.date == date(2022, 1, 30)])
    report = await store.deliveries.plan()
    assert report.deliveries >= SHARDS
    return [row[0] for row in await store.fetch_all("SELECT id FROM deliveries ORDER BY id")]


@both_engines
async def test_each_process_is_given_the_deliveries_of_its_own_shards(
    db_target: str, netflix_snapshots
) -> None:
    async with await open_store(db_target) as store:
        await _deliveries(store, netflix_snapshots)
        every = await store.deliveries.due_jobs(limit=10_000)
        assert {(job.guild_id >> 22) % SHARDS for job in every} == {0, 1, 2, 3}
        halves = [ShardScope(frozenset({0, 3}), SHARDS), ShardScope(frozenset({1, 2}), SHARDS)]
        mine = [await store.deliveries.due_jobs(limit=10_000, shards=scope) for scope in halves]
        for scope, jobs in zip(halves, mine, strict=True):
            assert jobs and all(scope.owns(job.guild_id) for job in jobs)
        assert sorted(job.id for jobs in mine for job in jobs) == sorted(job.id for job in every)
        ids = [job.id for job in mine[0]]
        assert await store.deliveries.begin_sending(ids) == sorted(ids)


async def test_a_delivery_is_claimed_by_one_process_and_taken_again_when_it_dies(
    pg_target: str, netflix_snapshots
) -> None:
    async with await open_store(pg_target) as store, links(pg_target, 2) as (one, two):
        await one.heartbeat(report("host:1"))
        await two.heartbeat(report("host:2"))
        ids = await _deliveries(store, netflix_snapshots)
        claims = await asyncio.gather(
            store.deliveries.begin_sending(ids, member=one.member_id),
            store.deliveries.begin_sending(ids, member=two.member_id),
        )
        assert sorted(claims[0] + claims[1]) == ids  # each delivery claimed once, by one of them
        first, mine = (one, claims[0]) if claims[0] else (two, claims[1])
        other = two if first is one else one
        # claimed by a live process: not due elsewhere, and not claimed again
        due = await store.deliveries.due_jobs(limit=10_000, member=other.member_id)
        assert not {job.id for job in due} & set(mine)
        assert await store.deliveries.begin_sending(mine, member=other.member_id) == []
        assert {
            job.id for job in await store.deliveries.due_jobs(limit=10_000, member=first.member_id)
        } >= set(mine)
        await kill_connection(pg_target, first)  # it dies mid fan-out: its claims are due elsewhere
        due = await store.deliveries.due_jobs(limit=10_000, member=other.member_id)
        assert {job.id for job in due if job.state == "sending"} == set(mine)
        assert await store.deliveries.begin_sending(mine, member=other.member_id) == sorted(mine)
        rows = await store.fetch_all("SELECT DISTINCT claimed_by, attempts FROM deliveries")
        assert rows == [(other.member_id, 2)]


async def test_notices_are_heard_by_every_process_once_committed(pg_target: str, netflix_snapshots) -> None:
    async with await open_store(pg_target) as store, links(pg_target, 2) as (one, two):
        heard: list[list[tuple[str, str]]] = [[], []]
        for link, log in zip((one, two), heard, strict=True):
            link.subscribe(lambda topic, detail, log=log: log.append((topic, detail)))
            await link.heartbeat(report("host"))  # connected, listening
        planned_at = time.time()
        await _deliveries(store, netflix_snapshots)
        guild = GUILDS[0]
        await store.guilds.update_settings(guild, digest="period")
        await store.guilds.mark_broken(guild, guild + 10, "missing access")
        await store.guilds.clear_broken(guild, guild + 10)
        await until(
            lambda: all((SETTINGS_CHANGED, f"{guild} {guild + 10}") in log for log in heard), "notices"
        )
        for log in heard:
            assert (HISTORY_CHANGED, "") in log  # the history before the watches: no news in it
            assert (HISTORY_CHANGED, "milestones") in log
            (due,) = [float(detail) for topic, detail in log if topic == DELIVERIES_PLANNED]
            assert abs(due - planned_at) < 5  # due at once (hold 0): when the first delivery is due
            assert (SETTINGS_CHANGED, str(guild)) in log
        # a transaction rolled back tells nobody anything
        before = len(heard[0])
        with pytest.raises(RuntimeError):
            async with store.history.write():
                raise RuntimeError("no")
        await store.guilds.update_settings(guild, digest="instant")
        await until(lambda: len(heard[0]) > before, "the next notice")
        assert heard[0][before:] == [(SETTINGS_CHANGED, str(guild))]


async def test_a_link_comes_back_after_the_database_did_and_says_so(pg_target: str) -> None:
    async with links(pg_target, 1) as (link,):
        heard: list[str] = []
        link.subscribe(lambda topic, detail: heard.append(topic))
        await link.heartbeat(report("host"))
        assert await link.hold(PLAN)
        member = link.member_id
        await kill_connection(pg_target, link)
        await until(lambda: not link.held(), "the loss")
        assert await link.hold(PLAN)  # reconnected on demand, the job taken again (nobody else had it)
        assert heard == [RECONNECTED] and link.member_id == member
        async with await open_store(pg_target) as store:
            assert [m.id for m in await store.cluster.members()] == [member]


async def test_an_unreachable_database_holds_no_job() -> None:
    link = join_cluster("postgresql://chartbot:secret@127.0.0.1:9/charts")
    with pytest.raises(DatabaseUnavailable, match="cannot connect") as caught:
        await link.hold(POLL)
    assert "secret" not in str(caught.value)
    assert link.held() == frozenset()
    await link.close()


async def test_on_sqlite_the_one_process_holds_every_job(tmp_path) -> None:
    link = join_cluster(tmp_path / "bot.sqlite3")
    assert isinstance(link, SoleProcess)
    assert await link.hold(POLL) and await link.hold(PLAN)
    assert link.held() == {POLL, PLAN}
    with pytest.raises(ValueError, match="unknown job"):
        await link.hold("dance")
    async with await open_store(tmp_path / "bot.sqlite3") as store:
        assert await store.cluster.members() == []
    await link.close()
    assert link.held() == frozenset()


async def test_chartbot_status_shows_the_cluster(pg_target: str, netflix_snapshots, capsys) -> None:
    async with await open_store(pg_target) as store, links(pg_target, 2) as (one, two):
        await one.heartbeat(report("host:1", (0, 1)))
        await two.heartbeat(MemberReport("host:2", (2, 3), SHARDS, "warning: delivery 7 failed", None))
        await one.hold(POLL)
        await _deliveries(store, netflix_snapshots)
        assert await asyncio.to_thread(main, ["status", "--db", pg_target]) == 0
        out = capsys.readouterr().out
        assert "cluster: 2 live processes" in out
        lines = {line.split()[1]: line for line in out.splitlines() if line[:1].isdigit()}
        assert "shards 0-1 of 4" in lines["host:1"] and "polls" in lines["host:1"]
        assert "shards 2-3 of 4" in lines["host:2"] and "warning: delivery 7 failed" in lines["host:2"]
        assert "no process plans right now" in out
    async with await open_store(pg_target) as store:
        assert await store.cluster.members() == []
    assert await asyncio.to_thread(main, ["status", "--db", pg_target]) == 0
    assert "cluster" not in capsys.readouterr().out  # nobody running: the sources' health only
