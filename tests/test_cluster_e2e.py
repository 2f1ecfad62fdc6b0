"""A cluster as an operator runs it: three `chartbot run` processes on one PostgreSQL database, splitting
six shards, polling a local copy of Netflix's files and posting to the fake Discord, with servers on
every shard.

- a new week reaches every watching channel exactly once;
- a process SIGKILLed in the middle of its fan-out and started again: still exactly one post a channel;
- the process that polls SIGKILLed: another one polls within the poll interval;
- the database stopped for 10 s and started again: the processes keep running, a week published
  meanwhile is posted once everywhere;
- a bot in more servers than one shard may hold connects with enough shards, without a 4011.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from fake_discord import FakeChannel
from fake_discord_ext import DeliveryFake
from local_servers import base
from postgres import Cluster, NoPostgres, PostgresServer, required, server_binaries
from test_sources_fetch import COUNTRIES_TSV, GLOBAL_TSV, netflix_app, tsv_weeks

from bot.store import PLAN, POLL, MemberStatus, open_store

OLD_WEEKS = {"2022-01-30", "2022-02-06", "2022-02-13"}
NEW_WEEK = "2022-02-20"
AOUAD, AOUAD_TITLE = "all of us are dead", "All of Us Are Dead"
ROOT = Path(__file__).resolve().parent.parent
SHARDS = 6
SPLIT = {"a": "0-1", "b": "2-3", "c": "4-5"}
POLL_INTERVAL = 4.0
PER_SHARD = 2  # servers on each shard


def guild_on(shard: int, n: int) -> int:
    """A server id that Discord routes to `shard` of SHARDS."""
    return ((3_000_000 + n * SHARDS + shard) << 22) | 0x2A


GUILDS = [guild_on(shard, n) for shard in range(SHARDS) for n in range(PER_SHARD)]


def channel_of(guild_id: int) -> int:
    return guild_id + 7


def shards_of(name: str) -> set[int]:
    low, high = SPLIT[name].split("-")
    return set(range(int(low), int(high) + 1))


def owner_of(guild_id: int) -> str:
    return next(name for name in SPLIT if (guild_id >> 22) % SHARDS in shards_of(name))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def until_async(condition: Callable[[], object], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


class Netflix:
    """Netflix's two files on a local server; `publish()` adds the new week."""

    def __init__(self) -> None:
        self.files = {
            "all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, OLD_WEEKS),
            "all-weeks-global.tsv": tsv_weeks(GLOBAL_TSV, OLD_WEEKS),
        }
        self.seen: list[tuple[str, str | None]] = []
        self.server = TestServer(netflix_app(self.files, self.seen), host="127.0.0.1")

    def publish(self) -> None:
        self.files["all-weeks-countries.tsv"] = tsv_weeks(COUNTRIES_TSV, {*OLD_WEEKS, NEW_WEEK})
        self.files["all-weeks-global.tsv"] = tsv_weeks(GLOBAL_TSV, {*OLD_WEEKS, NEW_WEEK})


class Bots:
    """`chartbot run` processes, each with its log (appended to across restarts)."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    def log(self, name: str) -> Path:
        return self.folder / f"bot-{name}.log"

    async def start(self, name: str, *argv: str) -> asyncio.subprocess.Process:
        with self.log(name).open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", *argv, cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        self.processes[name] = process
        return process

    async def start_cluster(self) -> None:
        for name, shards in SPLIT.items():
            await self.start(name, "--shards", shards)

    async def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        await asyncio.wait_for(process.wait(), 30)

    def alive(self) -> bool:
        return all(p.returncode is None for p in self.processes.values())

    def name_of(self, pid: int) -> str:
        return next(name for name, p in self.processes.items() if p.pid == pid)

    async def stop(self) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                codes[name] = None
        return codes

    def logs(self, tail: int = 4000) -> str:
        """Every process's log (the last `tail` characters of each; 0: all of it)."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-tail:]}" for p in sorted(self.folder.glob("bot-*.log"))
        )


@contextlib.asynccontextmanager
async def cluster_of_bots(
    url: str, folder: Path, **extra_env: str
) -> AsyncIterator[tuple[DeliveryFake, Netflix, Bots]]:
    """The fake Discord with a server on every shard, Netflix's files, and the processes' settings."""
    netflix = Netflix()
    await netflix.server.start_server()
    try:
        async with DeliveryFake() as fake:
            fake.max_concurrency = SHARDS  # every shard may IDENTIFY at once
            for guild in GUILDS:
                fake.add_guild(guild, f"Server {guild}", channels=[FakeChannel(channel_of(guild), "charts")])
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("CHARTBOT_", "DISCORD_"))},
                **fake.settings_env(),
                "DISCORD_TOKEN": "cluster-test-token",
                "CHARTBOT_DB": url,
                "CHARTBOT_SHARD_COUNT": str(SHARDS),
                "NETFLIX_TOP10_URL": base(netflix.server) + "top10/data/",
                "CHARTBOT_SOURCES": "netflix",
                "CHARTBOT_POLL_INTERVAL": str(POLL_INTERVAL),
                "CHARTBOT_ANNOUNCE_HOLD": "3",  # a week's two files arrive a moment apart: one post
                "CHARTBOT_LOG_LEVEL": "INFO",
                **extra_env,
            }
            bots = Bots(env, folder)
            try:
                yield fake, netflix, bots
            finally:
                codes = await bots.stop()
                assert all(code == 0 for code in codes.values()), (codes, bots.logs())
                assert "cluster-test-token" not in bots.logs(tail=0)
    finally:
        await netflix.server.close()


async def claimers(url: str) -> dict[int, set[int]]:
    """Server -> the cluster members that claimed its deliveries (the ids of `cluster_members`)."""
    async with await open_store(url) as store:
        rows = await store.fetch_all("SELECT guild_id, claimed_by FROM deliveries WHERE state = 'sent'")
    found: dict[int, set[int]] = {}
    for guild, member in rows:
        found.setdefault(guild, set()).add(member)
    return found


async def shards_of_members(url: str) -> dict[int, set[int]]:
    async with await open_store(url) as store:
        rows = await store.fetch_all("SELECT id, shard_ids FROM cluster_members")
    return {member: set(shards) for member, shards in rows}


async def members(url: str) -> list[MemberStatus]:
    async with await open_store(url) as store:
        return await store.cluster.members()


async def ready_with_history(url: str, fake: DeliveryFake) -> None:
    """Every shard connected, the old weeks stored, then a watch of the title in every server's channel
    (a watch starts at what is stored and read by then: the old weeks are never posted to it)."""
    await until(lambda: len(fake.connected_shards()) == SHARDS, 60, "every shard to connect")

    async def stored() -> bool:
        async with await open_store(url) as store:
            health = await store.sources.health("netflix")
            charts = (await store.fetch_all("SELECT count(*) FROM charts"))[0][0]
        return charts > 0 and any(row.last_success for row in health)

    await until_async(stored, 60, "the old weeks to be stored")
    async with await open_store(url) as store:
        for guild in GUILDS:
            await store.guilds.add_watch(guild, AOUAD, AOUAD_TITLE, channel_of(guild))


def posts(fake: DeliveryFake) -> dict[int, int]:
    return {guild: len(fake.posts(channel_of(guild))) for guild in GUILDS}


async def exactly_one_post_everywhere(fake: DeliveryFake, timeout: float = 90) -> None:  # noqa: ASYNC109
    await until(lambda: all(posts(fake).values()), timeout, "a post in every channel")
    await asyncio.sleep(POLL_INTERVAL + 4)  # more polls and announcer rounds: nothing else may come
    assert posts(fake) == {guild: 1 for guild in GUILDS}
    for guild in GUILDS:
        (post,) = fake.posts(channel_of(guild))
        (embed,) = post.embeds
        assert embed["title"] == AOUAD_TITLE
        assert embed["footer"]["text"] == "Netflix Top 10 · week ending Feb 20, 2022"


@pytest.fixture
def cluster_db(postgres: PostgresServer) -> str:
    return postgres.create_url("cluster_e2e")


async def test_three_processes_post_a_new_week_once_in_every_channel(cluster_db: str, tmp_path: Path) -> None:
    async with cluster_of_bots(cluster_db, tmp_path) as (fake, netflix, bots):
        await bots.start_cluster()
        await ready_with_history(cluster_db, fake)
        live = await members(cluster_db)
        assert sorted(tuple(sorted(m.shard_ids)) for m in live) == [(0, 1), (2, 3), (4, 5)]
        assert sorted(job for m in live for job in m.jobs) == sorted([PLAN, POLL])  # each held once
        netflix.publish()
        await exactly_one_post_everywhere(fake)
        shards = {m.id: set(m.shard_ids) for m in live}
        for guild, claimed in (await claimers(cluster_db)).items():  # each by the process of its shard
            (member,) = claimed
            assert (guild >> 22) % SHARDS in shards[member]
        logs = bots.logs(tail=0)
        assert logs.count("this process now polls the sources") == 1
        assert logs.count("this process now plans deliveries") == 1


async def test_a_process_killed_mid_fan_out_and_restarted_leaves_one_post_per_channel(
    cluster_db: str, tmp_path: Path
) -> None:
    async with cluster_of_bots(cluster_db, tmp_path) as (fake, netflix, bots):
        victim = "b"
        mine = [guild for guild in GUILDS if owner_of(guild) == victim]
        slow = mine[len(mine) // 2 :]
        for guild in slow:
            fake.channel_delay[channel_of(guild)] = 2.0  # still in flight when the process dies
        fake.nonce_dedupe = False  # the restarted process must find its posts itself
        await bots.start_cluster()
        await ready_with_history(cluster_db, fake)
        netflix.publish()
        await until(lambda: any(posts(fake)[g] for g in mine if g not in slow), 90, "the fan-out to begin")
        assert not all(posts(fake)[g] for g in slow)
        await bots.kill(victim)
        await asyncio.sleep(3.0)  # the posts in flight land (or not) meanwhile
        others = {g for g in GUILDS if owner_of(g) != victim}
        await until(lambda: all(posts(fake)[g] for g in others), 60, "the other processes' posts")
        left = {m.id for m in await members(cluster_db)}
        await bots.start(victim, "--shards", SPLIT[victim])
        await exactly_one_post_everywhere(fake)
        # what the process killed had claimed and not recorded, its successor took over
        successor = {m.id for m in await members(cluster_db)} - left
        claimed = await claimers(cluster_db)
        assert successor and any(claimed[g] == successor for g in slow)
        assert "cluster-test-token" not in bots.logs(tail=0)


async def test_when_the_polling_process_dies_another_polls_within_the_interval(
    cluster_db: str, tmp_path: Path
) -> None:
    async with cluster_of_bots(cluster_db, tmp_path) as (fake, netflix, bots):
        await bots.start_cluster()
        await ready_with_history(cluster_db, fake)
        (poller,) = [m for m in await members(cluster_db) if POLL in m.jobs]
        victim = bots.name_of(int(poller.name.rsplit(":", 1)[1]))
        await bots.kill(victim)
        killed_at = time.monotonic()
        taken: list[float] = []

        async def another_polls() -> bool:
            holders = [m for m in await members(cluster_db) if POLL in m.jobs]
            if holders and not taken:
                taken.append(time.monotonic() - killed_at)
            return bool(holders)

        await until_async(another_polls, 60, "another process to poll")
        assert taken[0] <= POLL_INTERVAL, f"the polling was taken over after {taken[0]:.1f} s"
        netflix.publish()  # and it does poll: the new week reaches the servers of the two left
        left = [g for g in GUILDS if owner_of(g) != victim]
        await until(lambda: all(posts(fake)[g] for g in left), 90, "the new week's posts")
        assert all(posts(fake)[g] == 1 for g in left)


@pytest.fixture
def own_server() -> Iterator[tuple[Cluster, str]]:
    """A throwaway PostgreSQL server of this test's own, to stop and start again."""
    bindir = server_binaries()
    if bindir is None:
        if required():
            pytest.fail(
                "PostgreSQL is required (CHARTBOT_REQUIRE_POSTGRES=1) but there are no server binaries"
            )
        pytest.skip("no PostgreSQL server binaries here (initdb, pg_ctl)")
    server = Cluster(bindir)
    try:
        url = server.start()
    except NoPostgres as reason:
        server.stop()
        if required():
            pytest.fail(f"PostgreSQL is required but {reason}")
        pytest.skip(str(reason))
    try:
        yield server, url
    finally:
        server.stop()


async def test_the_database_stopped_for_ten_seconds_loses_nothing(
    own_server: tuple[Cluster, str], tmp_path: Path
) -> None:
    server, url = own_server
    async with cluster_of_bots(url, tmp_path) as (fake, netflix, bots):
        await bots.start_cluster()
        await ready_with_history(url, fake)
        await asyncio.to_thread(server.pause)
        netflix.publish()  # published while the database is down
        await asyncio.sleep(10)
        assert bots.alive(), bots.logs()
        await asyncio.to_thread(server.resume)
        await exactly_one_post_everywhere(fake, timeout=120)
        assert bots.alive()
        live = await members(url)
        assert len(live) == 3 and sorted(job for m in live for job in m.jobs) == sorted([PLAN, POLL])
        whole = bots.logs(tail=0)
        assert whole.count("the cluster cannot be reached") == 3  # each process said so, once
        assert whole.count("this process no longer polls the sources") == 1


async def test_a_bot_in_more_servers_than_a_shard_holds_connects_with_enough_shards(
    cluster_db: str, tmp_path: Path
) -> None:
    async with cluster_of_bots(cluster_db, tmp_path, CHARTBOT_SHARD_COUNT="", CHARTBOT_POLL="off") as (
        fake,
        _,
        bots,
    ):
        fake.max_guilds_per_shard = fake.guilds_per_recommended_shard = 4  # 12 servers: 3 shards at least
        await bots.start("all")
        await until(lambda: len(fake.connected_shards()) == 3, 60, "three shards to connect")
        assert fake.connected_shards() == [(0, 3), (1, 3), (2, 3)]
        assert fake.shard_close_codes == []
        await until_async(lambda: _one_member_of(cluster_db, 3), 30, "the process in the cluster")


async def _one_member_of(url: str, shard_count: int) -> bool:
    live = await members(url)
    return len(live) == 1 and live[0].shard_count == shard_count and live[0].shard_ids == (0, 1, 2)
