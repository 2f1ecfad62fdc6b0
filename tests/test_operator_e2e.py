"""As an operator would run it: `chartbot run` as a process of its own, on an empty database, polling a
local copy of Netflix's files and posting to the fake Discord.

An admin adds a watch 5 s after start, while the first read of the files may still be under way; when
Netflix publishes a new week, exactly one post for the title reaches the channel, and nothing of the
weeks the bot read before (or while) the watch was made.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from fake_discord import MANAGE_GUILD, FakeChannel, FakeMember, FakeRole
from fake_discord_ext import DeliveryFake
from local_servers import base
from test_sources_fetch import COUNTRIES_TSV, GLOBAL_TSV, netflix_app, tsv_weeks

GUILD, CHARTS = 830_000_000_000_000_001, 830_000_000_000_000_010
MODS, ADMIN = 830_000_000_000_000_100, 830_000_000_000_001_000
OLD_WEEKS = {"2022-01-30", "2022-02-06", "2022-02-13"}
NEW_WEEK = "2022-02-20"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def netflix() -> AsyncIterator[tuple[TestServer, dict[str, bytes]]]:
    files = {
        "all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, OLD_WEEKS),
        "all-weeks-global.tsv": tsv_weeks(GLOBAL_TSV, OLD_WEEKS),
    }
    server = TestServer(netflix_app(files, []), host="127.0.0.1")
    await server.start_server()
    try:
        yield server, files
    finally:
        await server.close()


async def until(condition, timeout: float, what: str) -> None:  # noqa: ASYNC109 -- a test helper
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_watch_added_after_start_gets_the_next_week_and_nothing_older(
    netflix: tuple[TestServer, dict[str, bytes]], tmp_path: Path
) -> None:
    server, files = netflix
    async with DeliveryFake() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[FakeChannel(CHARTS, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ADMIN, "admin", roles=[MODS])],
        )
        env = {
            **os.environ,
            **fake.settings_env(),
            "DISCORD_TOKEN": "operator-test-token",
            "DISCORD_DEV_GUILD": str(GUILD),  # the commands are synced to the server on start
            "CHARTBOT_DB": str(tmp_path / "empty.sqlite3"),
            "NETFLIX_TOP10_URL": base(server) + "top10/data/",
            "CHARTBOT_SOURCES": "netflix",
            "CHARTBOT_POLL_INTERVAL": "1",
            "CHARTBOT_ANNOUNCE_HOLD": "3",  # a week's two files arrive a moment apart: one post
            "CHARTBOT_LOG_LEVEL": "INFO",
        }
        log = tmp_path / "bot.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=ROOT, env=env, stdout=out, stderr=out
            )
        started = time.monotonic()
        try:
            await until(lambda: fake.synced_commands(GUILD), 30, "the commands to be synced")
            await asyncio.sleep(max(0.0, 5 - (time.monotonic() - started)))
            reply = await (
                await fake.slash(GUILD, CHARTS, ADMIN, "watch add", {"title": "All of Us Are Dead"})
            ).response(timeout=30)
            assert "Watching **All of Us Are Dead**" in reply.content, reply.content
            await asyncio.sleep(3)  # several polls: the files have not changed, nothing to post
            assert fake.sent_messages(CHARTS) == []
            files["all-weeks-countries.tsv"] = tsv_weeks(COUNTRIES_TSV, {*OLD_WEEKS, NEW_WEEK})
            files["all-weeks-global.tsv"] = tsv_weeks(GLOBAL_TSV, {*OLD_WEEKS, NEW_WEEK})
            await until(lambda: fake.sent_messages(CHARTS), 60, "the new week's post")
            await asyncio.sleep(4)  # a few more polls and announcer rounds: nothing else may come
            posts = fake.sent_messages(CHARTS)
            assert len(posts) == 1, [p.embeds for p in posts]
            (embed,) = posts[0].embeds
            assert embed["title"] == "All of Us Are Dead"
            assert embed["footer"]["text"] == "Netflix Top 10 · week ending Feb 20, 2022"
            assert embed["description"]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                raise
        assert process.returncode == 0, log.read_text()[-3000:]
        assert "operator-test-token" not in log.read_text()
