"""Publishing posts in announcement channels (`/settings publish on`): each post is crossposted to the
servers that Follow the channel; beyond Discord's limit (about 10 an hour per channel) posts wait their
turn, across a restart and a crash; none is lost, none is published twice; text channels and servers
that did not ask are never published. The fake Discord's crosspost endpoint is checked first."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from announce_worker import FAST, make_bot, run_worker
from fake_discord import (
    MANAGE_GUILD,
    FakeChannel,
    FakeMember,
    FakeRole,
    ManualClock,
    RouteLimit,
)
from fake_discord_ext import DeliveryFake

from bot.announcer.engine import AnnouncerConfig
from bot.client import ChartBot
from bot.ingest import Ingester
from bot.model import Snapshot
from bot.store import open_store

GUILD = 850_000_000_000_000_001
NEWS, TEXT = 850_000_000_000_000_010, 850_000_000_000_000_011
MODS, ALICE = 850_000_000_000_000_100, 850_000_000_000_001_000
JAN30, FEB6 = date(2022, 1, 30), date(2022, 2, 6)
FEB6_HEADLINES = 4  # `/watch all`: four titles No. 1 worldwide (or in 10+ countries) that week


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory, netflix_snapshots: list[Snapshot]) -> Path:
    path = tmp_path_factory.mktemp("publish") / "history.sqlite3"

    async def build() -> None:
        async with await open_store(path) as store:
            await Ingester(store).ingest([s for s in netflix_snapshots if s.key.date <= JAN30], news=False)

    asyncio.run(build())
    return path


@pytest.fixture
def db(tmp_path: Path, history_template: Path) -> Path:
    path = tmp_path / "chartbot.sqlite3"
    shutil.copyfile(history_template, path)
    return path


def add_guild(fake: DeliveryFake) -> None:
    fake.add_guild(
        GUILD,
        "Chart Fans",
        channels=[FakeChannel(NEWS, "chart-news", type=5), FakeChannel(TEXT, "charts")],
        roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
        members=[FakeMember(ALICE, "alice", roles=[MODS])],
    )


async def follow(db: Path, *, publish: bool, text: bool = True) -> None:
    """Every title's headlines in the announcement channel, one title in the text channel."""
    async with await open_store(db) as store:
        await store.guilds.update_settings(GUILD, publish=publish)
        await store.guilds.add_watch(GUILD, "*", "All titles", NEWS)
        if text:
            await store.guilds.add_watch(GUILD, "all of us are dead", "All of Us Are Dead", TEXT)


async def the_news(db: Path, snapshots: list[Snapshot], bot: ChartBot | None = None) -> None:
    async with await open_store(db) as store:
        report = await Ingester(store).ingest([s for s in snapshots if s.key.date == FEB6])
    if bot is not None:
        bot.dispatch("milestones", report.milestones)


async def until(condition: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


def quiet(bot: ChartBot) -> Callable[[], Awaitable[bool]]:
    """Nothing in flight and nothing due: what is left waits for later (publishing not allowed yet)."""

    async def check() -> bool:
        store = await bot.get_store()
        due = await store.deliveries.due_jobs(limit=10, at=bot.announcer.config.now())
        return bool(bot.announcer.rounds) and not bot.announcer.busy and not due

    return check


def on(clock: ManualClock) -> AnnouncerConfig:
    """FAST, with due times that move with the simulated clock (it only ever runs ahead of real time)."""
    return dataclasses.replace(FAST, now=lambda: datetime.now(UTC) + timedelta(seconds=clock()))


async def publishing(db: Path) -> list[tuple[int, str | None]]:
    async with await open_store(db) as store:
        return await store.fetch_all("SELECT channel_id, publish FROM deliveries ORDER BY id")


# --- the fake's crosspost endpoint ----------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[DeliveryFake]:
    async with DeliveryFake(clock=ManualClock()) as fake:
        add_guild(fake)
        yield fake


async def test_the_fake_publishes_announcement_posts_within_a_limit_per_channel(fake: DeliveryFake) -> None:
    fake.crosspost_limit = RouteLimit(2, 3600.0)
    headers = {"Authorization": "Bot fake-token"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(channel: int) -> int:
            async with session.post(
                f"{fake.api_base}/channels/{channel}/messages", json={"content": "x"}
            ) as r:
                return int((await r.json())["id"])

        async def publish(channel: int, message: int) -> tuple[int, dict, dict]:
            url = f"{fake.api_base}/channels/{channel}/messages/{message}/crosspost"
            async with session.post(url) as r:
                return r.status, await r.json(), dict(r.headers)

        text = await post(TEXT)
        assert (await publish(TEXT, text))[0] == 400  # only announcement channels publish
        first, second, third = [await post(NEWS) for _ in range(3)]
        status, body, _ = await publish(NEWS, first)
        assert status == 200 and body["flags"] & 1  # CROSSPOSTED
        status, body, _ = await publish(NEWS, first)
        assert (status, body["code"]) == (400, 40033)  # already published
        assert (await publish(NEWS, 1))[0] == 404
        assert (await publish(NEWS, second))[0] == 200
        fake.clock.advance(600)  # type: ignore[attr-defined]
        status, body, answer = await publish(NEWS, third)  # the third within the hour
        assert status == 429 and body["retry_after"] == pytest.approx(3000) and answer.get("Via")
        fake.clock.advance(3000)  # type: ignore[attr-defined]
        assert (await publish(NEWS, third))[0] == 200
    assert [m.id for m in fake.crossposted(NEWS)] == [first, second, third]
    assert fake.crosspost_refusals == 1


# --- the announcer ------------------------------------------------------------------------------------------


async def test_posts_in_an_announcement_channel_are_published_and_wait_their_turn(
    fake: DeliveryFake, db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    clock: ManualClock = fake.clock  # type: ignore[assignment]
    fake.crosspost_limit = RouteLimit(2, 3600.0)
    await follow(db, publish=False)
    async with fake.run_bot(make_bot(db, config=on(clock))) as bot:
        await bot.tree.sync()
        reply = await (await fake.slash(GUILD, TEXT, ALICE, "settings publish", {"mode": "on"})).response()
        assert reply.ephemeral and "published" in reply.content
        store = await bot.get_store()  # type: ignore[attr-defined]
        assert (await store.guilds.policy(GUILD)).publish
        await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]
        await fake.wait_for_messages(NEWS, FEB6_HEADLINES)
        await until(quiet(bot))  # type: ignore[arg-type]
        posts = fake.sent_messages(NEWS)
        assert fake.crossposted(NEWS) == posts[:2]  # Discord's allowance for the hour
        assert fake.crosspost_refusals == 1  # one 429 told when; the others waited without asking
        assert sorted(p for c, p in await publishing(db) if c == NEWS) == [
            "pending",
            "pending",
            "published",
            "published",
        ]
        assert fake.sent_messages(TEXT) and fake.crossposted(TEXT) == []  # a text channel: never

        clock.advance(3600)  # the hour is over
        bot.announcer.wake()  # type: ignore[attr-defined]

        async def all_published() -> bool:
            return len(fake.crossposts) == FEB6_HEADLINES

        await until(all_published)
        assert fake.crossposted(NEWS) == posts  # each published once, in order
    assert [p for c, p in await publishing(db) if c == NEWS] == ["published"] * FEB6_HEADLINES
    assert fake.crosspost_refusals == 1 and len(fake.sent_messages(NEWS)) == FEB6_HEADLINES


async def test_a_post_waiting_to_be_published_is_published_after_a_restart(
    fake: DeliveryFake, db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    clock: ManualClock = fake.clock  # type: ignore[assignment]
    fake.crosspost_limit = RouteLimit(1, 3600.0)
    await follow(db, publish=True)
    async with fake.run_bot(make_bot(db, config=on(clock))) as bot:
        await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]
        await fake.wait_for_messages(NEWS, FEB6_HEADLINES)
        await until(quiet(bot))  # type: ignore[arg-type]
    assert len(fake.crossposts) == 1
    clock.advance(3 * 3600)  # the bot was down for three hours: Discord allows three more now
    fake.crosspost_limit = RouteLimit(3, 3600.0)
    async with fake.run_bot(make_bot(db, config=on(clock))) as bot:

        async def all_published() -> bool:
            return len(fake.crossposts) == FEB6_HEADLINES

        await until(all_published)
    assert fake.crossposted(NEWS) == fake.sent_messages(NEWS)  # each once; none posted again
    assert len(fake.sent_messages(NEWS)) == FEB6_HEADLINES


async def test_publish_off_posts_without_publishing(
    fake: DeliveryFake, db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    await follow(db, publish=False)
    async with fake.run_bot(make_bot(db)) as bot:
        await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]
        await fake.wait_for_messages(NEWS, FEB6_HEADLINES)
        await until(quiet(bot))  # type: ignore[arg-type]
    assert fake.crossposts == [] and not [r for r in fake.requests if r.path.endswith("/crosspost")]
    assert {p for _, p in await publishing(db)} == {None}


async def test_turning_publish_off_skips_the_posts_still_waiting(
    fake: DeliveryFake, db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    clock: ManualClock = fake.clock  # type: ignore[assignment]
    fake.crosspost_limit = RouteLimit(1, 3600.0)
    await follow(db, publish=True)
    async with fake.run_bot(make_bot(db, config=on(clock))) as bot:
        await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]
        await fake.wait_for_messages(NEWS, FEB6_HEADLINES)
        await until(quiet(bot))  # type: ignore[arg-type]
        store = await bot.get_store()  # type: ignore[attr-defined]
        await store.guilds.update_settings(GUILD, publish=False)
        clock.advance(3600)
        bot.announcer.wake()  # type: ignore[attr-defined]

        async def settled() -> bool:
            return await store.deliveries.open_work() == 0

        await until(settled)
    assert len(fake.crossposts) == 1
    assert sorted(p for c, p in await publishing(db) if c == NEWS) == [
        "published",
        "skipped",
        "skipped",
        "skipped",
    ]


async def test_a_post_made_just_before_a_crash_is_published_after_it(
    db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    await follow(db, publish=True, text=False)
    await the_news(db, netflix_snapshots)
    async with DeliveryFake() as fake:
        add_guild(fake)
        fake.nonce_dedupe = False
        code, _ = await run_worker(fake, db, "--kill-after-posts", "1")  # posted, killed before publishing
        assert code == -signal.SIGKILL and fake.crossposts == []
        code, log = await run_worker(fake, db)
        assert code == 0 and "was already posted" in log
    assert len(fake.sent_messages(NEWS)) == FEB6_HEADLINES
    assert fake.crossposted(NEWS) == fake.sent_messages(NEWS)  # every post published, once
