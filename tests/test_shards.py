"""Shards: ChartBot is an AutoShardedBot that runs the shard count Discord recommends (or
CHARTBOT_SHARD_COUNT), all shards or those CHARTBOT_SHARDS / `run --shards` name, identified no faster
than max_concurrency allows; and a SQLite file serves one bot process (a second `chartbot run` on it,
or `--shards` on SQLite, is refused with one line naming PostgreSQL).

Against the fake Discord with short IDENTIFY windows (the fake's window is half the bot's: a shard that
the bot lets through late by the event loop's scheduling is not taken for a violation).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import discord
import pytest
from fake_discord import FakeDiscord, shard_of

from bot import cli
from bot.client import Backoff, ChartBot, serve
from bot.model import InputError
from bot.settings import Settings, shard_selection
from bot.shards import IdentifyPacer, describe_shards, parse_shard_ranges
from bot.store import DatabaseUnavailable, StoreInUse, claim_process
from bot.store.sqlite.process import lock_path

FAN = 850_000_000_000_001_000
PREFIXES = ("CHARTBOT_", "DISCORD_", "NETFLIX_", "FLIXPATROL_", "FLARESOLVERR_")
BOT_WINDOW, FAKE_WINDOW = 0.2, 0.1


def guild_on(shard_id: int, shard_count: int, n: int = 0) -> int:
    """A server id that Discord routes to `shard_id` of `shard_count` (the n-th such id)."""
    return ((2_000_000 + n * shard_count + shard_id) << 22) | 0x15


def channel_of(guild_id: int) -> int:
    return guild_id + 1


def add_servers(fake: FakeDiscord, guild_ids: list[int]) -> None:
    for guild_id in guild_ids:
        fake.add_guild(guild_id, f"Server {guild_id}", channels=[channel_of(guild_id)], members=[FAN])


def settings_for(fake: FakeDiscord, db: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(db),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
            **env,
        }
    )


def chartbot(settings: Settings) -> ChartBot:
    return ChartBot(settings, guild_ready_timeout=0.05, identify_window=BOT_WINDOW)


@pytest.fixture
async def fake() -> FakeDiscord:  # type: ignore[misc]
    async with FakeDiscord() as fake:
        fake.identify_window = FAKE_WINDOW
        yield fake


# --- choosing shards ---------------------------------------------------------------------------------


def test_shard_ranges_and_their_description() -> None:
    assert parse_shard_ranges("0-3") == [(0, 3)]
    assert parse_shard_ranges(" 0, 2 ,4") == [(0, 0), (2, 2), (4, 4)]
    assert parse_shard_ranges("4 - 7,9") == [(4, 7), (9, 9)]
    for bad in ("", "0-", "-3", "3-1", "a", "0,,1", "0-3-5", "1.5", "٣"):
        with pytest.raises(ValueError):
            parse_shard_ranges(bad)
    assert describe_shards(range(4), 6) == "shards 0-3 of 6"
    assert describe_shards([4, 0, 2], 6) == "shards 0, 2, 4 of 6"
    assert describe_shards([0, 1, 4, 5, 6], 8) == "shards 0-1, 4-6 of 8"
    assert describe_shards([0], 1) == "shard 0 of 1"
    assert shard_of(guild_on(3, 4), 4) == 3 and shard_of(guild_on(1, 4, 7), 4) == 1


def test_shard_settings() -> None:
    assert Settings.from_env({}).shard_count is None and Settings.from_env({}).shards is None
    chosen = Settings.from_env({"CHARTBOT_SHARD_COUNT": "8", "CHARTBOT_SHARDS": "4-7"})
    assert (chosen.shard_count, chosen.shards) == (8, (4, 5, 6, 7))
    assert Settings.from_env({"CHARTBOT_SHARD_COUNT": "6", "CHARTBOT_SHARDS": "4,0,2"}).shards == (0, 2, 4)
    assert Settings.from_env({"CHARTBOT_SHARD_COUNT": "3"}).shards is None  # every shard of the three


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CHARTBOT_SHARD_COUNT": "0"},
            "CHARTBOT_SHARD_COUNT must be a whole number of at least 1, not '0'",
        ),
        (
            {"CHARTBOT_SHARD_COUNT": "four"},
            "CHARTBOT_SHARD_COUNT must be a whole number of at least 1, not 'four'",
        ),
        (
            {"CHARTBOT_SHARD_COUNT": "4", "CHARTBOT_SHARDS": "0-3,"},
            "CHARTBOT_SHARDS must be shard numbers or ranges like 0-3 or 0,2,4 (numbered from 0), not '0-3,'",
        ),
        (
            {"CHARTBOT_SHARD_COUNT": "4", "CHARTBOT_SHARDS": "3-1"},
            "CHARTBOT_SHARDS must be shard numbers or ranges like 0-3 or 0,2,4 (numbered from 0), not '3-1'",
        ),
        (
            {"CHARTBOT_SHARDS": "0-3"},
            "CHARTBOT_SHARDS 0-3 needs CHARTBOT_SHARD_COUNT, the bot's total number of shards, the same in "
            "every process (e.g. CHARTBOT_SHARD_COUNT=8, then shards 0-3 in one process and 4-7 in another)",
        ),
        (
            {"CHARTBOT_SHARD_COUNT": "6", "CHARTBOT_SHARDS": "4-7"},
            "CHARTBOT_SHARDS names shard 7, but CHARTBOT_SHARD_COUNT=6 numbers them 0 to 5",
        ),
        (
            {"CHARTBOT_SHARD_COUNT": "6", "CHARTBOT_SHARDS": "0-2,2"},
            "CHARTBOT_SHARDS names shard 2 twice: '0-2,2'",
        ),
    ],
)
def test_bad_shard_settings_are_one_line_naming_them(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message


def test_a_huge_range_is_checked_before_it_is_spelled_out() -> None:
    with pytest.raises(InputError, match="names shard 999999999999, but CHARTBOT_SHARD_COUNT=4"):
        shard_selection("0-999999999999", 4, "CHARTBOT_SHARDS")


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A private copy of the environment without chartbot's settings; the current folder is tmp_path."""
    copy = {name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)}
    monkeypatch.setattr(os, "environ", copy)
    monkeypatch.chdir(tmp_path)
    return copy


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err
    return code, err.rstrip("\n")


def test_run_shards_needs_the_shard_count(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    environ["DISCORD_TOKEN"] = "never-used"
    code, err = run_cli(capsys, "run", "--db", "charts.sqlite3", "--shards", "0-3")
    assert code == 2
    assert err.startswith("chartbot run: --shards 0-3 needs CHARTBOT_SHARD_COUNT, the bot's total number")
    environ["CHARTBOT_SHARD_COUNT"] = "2"
    code, err = run_cli(capsys, "run", "--db", "charts.sqlite3", "--shards", "0-3")
    assert (code, err) == (
        2,
        "chartbot run: --shards names shard 3, but CHARTBOT_SHARD_COUNT=2 numbers them 0 to 1",
    )
    assert not Path("charts.sqlite3").exists() and not Path("charts.sqlite3.lock").exists()


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_shards_on_sqlite_are_refused_naming_postgresql(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str], how: str
) -> None:
    environ.update(DISCORD_TOKEN="never-used", CHARTBOT_SHARD_COUNT="2")
    if how == "flag":
        code, err = run_cli(capsys, "run", "--db", "charts.sqlite3", "--shards", "0")
    else:
        environ["CHARTBOT_SHARDS"] = "0-1"
        code, err = run_cli(capsys, "run", "--db", "charts.sqlite3")
    assert code == 2
    assert err == (
        "chartbot run: charts.sqlite3 is a SQLite database, which one bot process serves with every shard: "
        "to split the shards (--shards, CHARTBOT_SHARDS), use PostgreSQL (CHARTBOT_DB=postgresql://…) "
        "to run several bot processes"
    )
    assert not Path("charts.sqlite3").exists()  # refused before anything started


# --- pacing IDENTIFYs -------------------------------------------------------------------------------------


class StepClock:
    """A clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_the_pacer_lets_one_identify_per_key_and_window() -> None:
    clock = StepClock()
    pacer = IdentifyPacer(max_concurrency=2, window=5.0, clock=clock, sleep=clock.sleep)
    started: list[tuple[int, float]] = []
    for shard_id in range(6):
        await pacer.wait(shard_id)
        started.append((shard_id, clock.now - 100.0))
    # keys 0 and 1 go together; each key's next shard waits for its window
    assert started == [(0, 0.0), (1, 0.0), (2, 5.0), (3, 5.0), (4, 10.0), (5, 10.0)]
    clock.now += 60
    assert await pacer.wait(3) == 0.0  # a reconnect long after: no wait
    one = IdentifyPacer(max_concurrency=1, window=5.0, clock=clock, sleep=clock.sleep)
    assert [await one.wait(shard_id) for shard_id in range(3)] == [0.0, 5.0, 5.0]


async def test_a_six_shard_start_honours_max_concurrency(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.client")
    fake.max_concurrency = 2
    servers = [guild_on(shard, 6) for shard in range(6)]
    add_servers(fake, servers)
    bot = chartbot(settings_for(fake, tmp_path / "c.sqlite3", CHARTBOT_SHARD_COUNT="6"))
    async with fake.run_bot(bot, timeout=10):
        assert sorted(g.id for g in bot.guilds) == sorted(servers)
        assert bot.identify_pacer.max_concurrency == 2  # from GET /gateway/bot
    assert [(r.shard_id, r.outcome) for r in fake.identifies] == [(n, "ready") for n in range(6)]
    assert fake.identify_violations == []
    by_key: dict[int, list[float]] = {}
    for record in fake.identifies:
        by_key.setdefault(record.shard_id % 2, []).append(record.at)
    assert all(b - a >= FAKE_WINDOW for times in by_key.values() for a, b in itertools.pairwise(times))
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.client"]
    assert "running shards 0-5 of 6 (Discord recommends 1; IDENTIFY concurrency 2 per 0.2 s)" in lines
    assert any(line.endswith("in 6 servers on shards 0-5 of 6") for line in lines)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "bot.client"]


async def test_without_pacing_the_fake_catches_the_burst(fake: FakeDiscord, tmp_path: Path) -> None:
    """The check above can fail: shards of one key identified together are refused (and retried)."""
    fake.max_concurrency, fake.identify_window = 2, 60.0
    add_servers(fake, [guild_on(shard, 4) for shard in range(4)])
    bot = ChartBot(
        settings_for(fake, tmp_path / "c.sqlite3", CHARTBOT_SHARD_COUNT="4"),
        guild_ready_timeout=0.05,
        identify_window=0.0,
    )
    with fake.patch_discord():
        task = asyncio.create_task(bot.start("fake-token"))
        try:
            for _ in range(1000):
                if {r.shard_id for r in fake.identify_violations} == {2, 3} or task.done():
                    break
                await asyncio.sleep(0.01)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)
    assert {r.shard_id for r in fake.identify_violations} == {2, 3}  # keys 0 and 1, again at once
    assert [(r.shard_id, r.outcome) for r in fake.identifies[:2]] == [(0, "ready"), (1, "ready")]


# --- as many shards as Discord requires ---------------------------------------------------------------------


async def test_a_bot_in_more_servers_than_a_shard_holds_connects_with_the_recommended_count(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    fake.max_guilds_per_shard = fake.guilds_per_recommended_shard = 3
    servers = [guild_on(n % 4, 4, n // 4) for n in range(10)]  # 3, 3, 2 and 2 servers on shards 0-3
    add_servers(fake, servers)
    assert fake.recommended_shard_count() == 4
    bot = chartbot(settings_for(fake, tmp_path / "c.sqlite3"))
    async with fake.run_bot(bot, timeout=10):
        assert bot.shard_count == 4 and bot.recommended_shards == 4 and sorted(bot.shards) == [0, 1, 2, 3]
        assert sorted(g.id for g in bot.guilds) == sorted(servers)
        assert fake.connected_shards() == [(0, 4), (1, 4), (2, 4), (3, 4)]
        assert bot.get_guild(servers[5]).shard_id == shard_of(servers[5], 4)  # type: ignore[union-attr]
    assert fake.shard_close_codes == [] and fake.identify_violations == []


async def test_too_few_shards_is_one_clear_line(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.max_guilds_per_shard = fake.guilds_per_recommended_shard = 3
    add_servers(fake, [guild_on(0, 1, n) for n in range(4)])
    settings = settings_for(fake, tmp_path / "c.sqlite3", CHARTBOT_SHARD_COUNT="1")
    with pytest.raises(InputError) as caught:
        await asyncio.wait_for(serve(settings, bot=chartbot(settings)), 20)
    assert str(caught.value) == (
        "Discord refused shard 0 of 1: it would hold more servers than a shard may (close code 4011, "
        "sharding required); raise CHARTBOT_SHARD_COUNT (Discord recommends 2), or leave it empty to use "
        "Discord's recommendation"
    )
    assert fake.shard_close_codes == [4011]
    warned = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.client"
    ]
    assert warned == [
        "CHARTBOT_SHARD_COUNT=1 is below the 2 shards Discord recommends: a shard with more than 2,500 "
        "servers is refused (close code 4011)"
    ]
    (await claim_process(str(tmp_path / "c.sqlite3"))).release()  # serve let go of the database


async def test_an_unanswered_gateway_bot_is_waited_for(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`GET /gateway/bot` comes before the first shard connects: a 5xx there is retried with backoff."""
    add_servers(fake, [guild_on(0, 1)])
    fake.fail_next("GET", r"^/gateway/bot$", status=503, times=2)
    settings = settings_for(fake, tmp_path / "c.sqlite3")
    bot = chartbot(settings)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(first=0.01, cap=0.04)))
    try:
        for _ in range(1000):
            if bot.is_ready() or task.done():
                break
            await asyncio.sleep(0.01)
        assert bot.is_ready() and bot.shard_count == 1
    finally:
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(task, 10)
    retries = [r.getMessage() for r in caplog.records if "is unreachable" in r.getMessage()]
    assert len(retries) == 2 and all(line.startswith("Discord's gateway at ") for line in retries)


# --- two processes of one bot, each with its shards -------------------------------------------------------


async def test_two_bots_split_four_shards_and_each_answers_its_own_servers(
    fake: FakeDiscord, chart_db: Path
) -> None:
    fake.max_concurrency = 4  # a key per shard: two processes pace their own IDENTIFYs only
    servers = {shard: [guild_on(shard, 4, n) for n in range(2)] for shard in range(4)}
    add_servers(fake, [g for ids in servers.values() for g in ids])
    env = {"CHARTBOT_SHARD_COUNT": "4"}
    first = chartbot(settings_for(fake, chart_db, CHARTBOT_SHARDS="0-1", **env))
    second = chartbot(settings_for(fake, chart_db, CHARTBOT_SHARDS="2,3", **env))
    heard: dict[str, list[int]] = {"first": [], "second": []}

    def listen(name: str) -> Callable[[discord.Interaction], object]:
        async def on_interaction(interaction: discord.Interaction) -> None:
            heard[name].append(interaction.guild_id or 0)

        return on_interaction

    first.add_listener(listen("first"), "on_interaction")
    second.add_listener(listen("second"), "on_interaction")
    async with fake.run_bot(first, timeout=10), fake.run_bot(second, timeout=10):
        assert sorted(g.id for g in first.guilds) == sorted(servers[0] + servers[1])
        assert sorted(g.id for g in second.guilds) == sorted(servers[2] + servers[3])
        assert fake.connected_shards() == [(0, 4), (1, 4), (2, 4), (3, 4)]
        asked = [servers[2][1], servers[0][0], servers[3][0]]
        for guild_id in asked:
            rec = await fake.slash(
                guild_id, channel_of(guild_id), FAN, "rank", {"title": "All of Us Are Dead"}
            )
            reply = await rec.response(timeout=10)
            assert reply.embed is not None and reply.embed["title"] == "All of Us Are Dead: Season 1"
    assert heard == {"first": [servers[0][0]], "second": [servers[2][1], servers[3][0]]}
    assert fake.identify_violations == [] and fake.shard_close_codes == []


# --- one bot process per SQLite file ---------------------------------------------------------------------


def lock_holder(db: str | Path) -> int:
    """The pid written in the database's lock file."""
    return int(Path(lock_path(str(db))).read_text())


async def test_a_sqlite_file_is_claimed_by_one_process(tmp_path: Path) -> None:
    db = str(tmp_path / "charts.sqlite3")
    claim = await claim_process(db)
    assert lock_holder(db) == os.getpid()
    with pytest.raises(StoreInUse) as caught:
        await claim_process(db)  # a second claim (flock: even from this process)
    assert str(caught.value) == (
        f"another chartbot run (pid {os.getpid()}) is serving {db}: SQLite serves one bot process at a "
        "time; stop that one, or use PostgreSQL (CHARTBOT_DB=postgresql://…) to run several bot processes"
    )
    await claim_process(str(tmp_path / "other.sqlite3"))  # another file is another claim
    claim.release()
    claim.release()  # idempotent
    again = await claim_process(db)
    again.release()
    (await claim_process(":memory:")).release()  # nobody else can open it: nothing to hold
    (await claim_process("postgresql://chart@db/charts", shard_subset=True)).release()  # any number
    with pytest.raises(StoreInUse, match="use PostgreSQL"):
        await claim_process(":memory:", shard_subset=True)


async def test_a_lock_file_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        DatabaseUnavailable, match=r"missing/charts\.sqlite3\.lock: cannot open the lock file"
    ):
        await claim_process(str(tmp_path / "missing" / "charts.sqlite3"))


async def test_import_and_top_run_beside_the_bot(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str], chart_db: Path
) -> None:
    claim = await claim_process(str(chart_db))  # as `chartbot run` holds it
    try:
        data = Path(__file__).parent / "data" / "netflix"
        code = await asyncio.to_thread(
            cli.main, ["import", "--db", str(chart_db), str(sorted(data.glob("*global*.tsv"))[0])]
        )
        assert code == 0
        assert await asyncio.to_thread(cli.main, ["top", "--db", str(chart_db), "--region", "us"]) == 0
    finally:
        claim.release()
    out, err = capsys.readouterr()
    assert "charts" in out and err == ""


# --- the same with real `chartbot run` processes ------------------------------------------------------------


async def start_run(fake: FakeDiscord, db: Path, *args: str) -> asyncio.subprocess.Process:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        *args,
        cwd=db.parent,
        env={
            **clean,
            **fake.settings_env(),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_DB": str(db),
            "CHARTBOT_POLL": "off",
            "CHARTBOT_LOG_LEVEL": "INFO",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_ready(process: asyncio.subprocess.Process) -> list[str]:
    """Read the process's log until the bot is ready; return the lines read."""
    assert process.stderr is not None
    seen: list[str] = []
    while not any(" ready as " in line for line in seen):
        line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
        assert line, f"chartbot run ended before it was ready: {seen}"
        seen.append(line)
    return seen


async def stop(process: asyncio.subprocess.Process) -> tuple[int | None, bytes]:
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, err


async def test_a_second_chartbot_run_on_one_sqlite_file_is_refused(fake: FakeDiscord, tmp_path: Path) -> None:
    add_servers(fake, [guild_on(0, 1)])
    db = tmp_path / "charts.sqlite3"
    first = await start_run(fake, db)
    try:
        log = await wait_ready(first)
        assert any("running shard 0 of 1" in line for line in log)
        second = await start_run(fake, db)
        out, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 2 and out == b""
        assert err.decode() == (
            f"chartbot run: another chartbot run (pid {first.pid}) is serving {db}: SQLite serves one bot "
            "process at a time; stop that one, or use PostgreSQL (CHARTBOT_DB=postgresql://…) to run several "
            "bot processes\n"
        )
        assert first.returncode is None and fake.connected_shards() == [(0, 1)]  # the first runs on
        assert len(fake.identifies) == 1  # the second never reached Discord's gateway
    finally:
        code, err = await stop(first)
    assert code == 0 and b"Traceback" not in err


async def test_the_claim_goes_with_a_killed_process(fake: FakeDiscord, tmp_path: Path) -> None:
    add_servers(fake, [guild_on(0, 1)])
    db = tmp_path / "charts.sqlite3"
    fake.identify_window = 0.0  # the next process identifies at once
    killed = await start_run(fake, db)
    await wait_ready(killed)
    killed.kill()  # SIGKILL: no clean-up at all
    await asyncio.wait_for(killed.wait(), 30)
    assert lock_holder(db) == killed.pid  # the file stays; the lock went with the process
    successor = await start_run(fake, db)
    try:
        await wait_ready(successor)
        assert lock_holder(db) == successor.pid
    finally:
        code, err = await stop(successor)
    assert code == 0 and b"Traceback" not in err
