"""Discord's failures, as Discord documents them, met by the real client and the announcer on the fake
Discord: a revoked token mid-fan-out, 30 minutes of outage or of Cloudflare ban on a simulated clock,
too many invalid requests, permissions missing (live and after a crash), a role that cannot be pinged.
Nothing is lost, nothing is posted twice, and the requests stay bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
from announce_worker import FAST, make_bot, run_worker
from fake_discord import (
    EMBED_LINKS,
    MANAGE_GUILD,
    MENTION_EVERYONE,
    READ_MESSAGE_HISTORY,
    FakeChannel,
    FakeMember,
    FakeRole,
    ManualClock,
    Overwrite,
)
from fake_discord_ext import DeliveryFake

from bot.cli import status_main
from bot.client import ChartBot
from bot.ingest import Ingester
from bot.model import Snapshot
from bot.settings import Settings
from bot.store import open_store

GUILD = 840_000_000_000_000_001
CHANNEL_BASE = 840_000_000_000_001_000
MODS, FANS, PINGABLE = 840_000_000_000_000_100, 840_000_000_000_000_101, 840_000_000_000_000_102
ALICE = 840_000_000_000_002_000
AOUAD = "all of us are dead"
JAN30, FEB6 = date(2022, 1, 30), date(2022, 2, 6)


def channel_ids(count: int) -> list[int]:
    return [CHANNEL_BASE + n for n in range(count)]


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory, netflix_snapshots: list[Snapshot]) -> Path:
    path = tmp_path_factory.mktemp("failures") / "history.sqlite3"

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


def add_guild(fake: DeliveryFake, channels: list[FakeChannel], **options: object) -> None:
    fake.add_guild(
        GUILD,
        "Chart Fans",
        channels=channels,
        roles=[
            FakeRole(MODS, "Mods", permissions=MANAGE_GUILD),
            FakeRole(FANS, "Fans"),
            FakeRole(PINGABLE, "Pingable", mentionable=True),
        ],
        members=[FakeMember(ALICE, "alice", roles=[MODS])],
        **options,  # type: ignore[arg-type]
    )


async def watch(db: Path, channels: list[int]) -> None:
    async with await open_store(db) as store:
        for channel in channels:
            await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", channel)


async def the_news(db: Path, snapshots: list[Snapshot], bot: ChartBot | None = None) -> None:
    """The week of Feb 6: one post for each channel watching All of Us Are Dead."""
    async with await open_store(db) as store:
        report = await Ingester(store).ingest([s for s in snapshots if s.key.date == FEB6])
    if bot is not None:
        bot.dispatch("milestones", report.milestones)


async def until(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def settled(bot: ChartBot) -> bool:
    store = await bot.get_store()
    return bool(bot.announcer.rounds) and not bot.announcer.busy and await store.deliveries.open_work() == 0


async def states(db: Path) -> dict[str, int]:
    async with await open_store(db) as store:
        return dict(await store.fetch_all("SELECT state, count(*) FROM deliveries GROUP BY state"))


def posts_in(fake: DeliveryFake, channels: list[int]) -> dict[int, int]:
    return {c: len(fake.sent_messages(c)) for c in channels}


def simulated(clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    return sleep


async def status(db: Path) -> str:
    out = io.StringIO()
    await status_main(Settings(db_path=str(db)), out)
    return out.getvalue()


# --- a revoked token ---------------------------------------------------------------------------------


async def test_a_revoked_token_mid_fan_out_stops_posting_at_once_and_a_restart_resumes(
    db: Path, netflix_snapshots: list[Snapshot], caplog: pytest.LogCaptureFixture
) -> None:
    channels = channel_ids(60)
    await watch(db, channels)
    async with DeliveryFake() as fake:
        add_guild(fake, [FakeChannel(c, f"c{n}") for n, c in enumerate(channels)])
        caplog.set_level(logging.INFO, logger="bot.announcer")
        async with fake.run_bot(make_bot(db)) as bot:
            await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]

            async def ten_posted() -> bool:
                return sum(posts_in(fake, channels).values()) >= 10

            await until(ten_posted)
            fake.revoke_token()  # reset in the Developer Portal, mid-fan-out
            announcer = bot.announcer  # type: ignore[attr-defined]

            async def stopped() -> bool:
                return announcer.halt is not None and not announcer.busy

            await until(stopped)
            await asyncio.sleep(0.3)  # a few more rounds: nothing more is tried
            answered = len(fake.requests)
            await asyncio.sleep(0.3)
            assert len(fake.requests) == answered
        posted = sum(posts_in(fake, channels).values())
        assert 10 <= posted < 60
        rejected = [r for r in fake.requests if r.status == 401]
        assert 1 <= len(rejected) <= FAST.workers  # only the calls already under way
        assert fake.invalid_requests <= FAST.workers and fake.global_rate_limited == 0
        assert await states(db) == {"sent": posted, "planned": 60 - posted}  # none failed
        async with await open_store(db) as store:
            assert await store.fetch_all(
                "SELECT DISTINCT attempts FROM deliveries WHERE state = 'planned'"
            ) == [(0,)]  # given back: none of them counts an attempt
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "401" in errors[0].getMessage() and "fake-token" not in caplog.text
        shown = await status(db)
        assert "posting  STOPPED since" in shown and "rejected the bot's token (401" in shown
        assert f"nothing is lost: {60 - posted} waiting" in shown

        async with fake.run_bot(make_bot(db), token="a-new-token") as bot:  # restarted with a good token
            await until(lambda: settled(bot))  # type: ignore[arg-type]
        assert posts_in(fake, channels) == dict.fromkeys(channels, 1)  # every post once
        assert await states(db) == {"sent": 60}
        assert "posting  ok (0 waiting)" in await status(db)


# --- outages and Cloudflare bans on a simulated clock --------------------------------------------------


@pytest.mark.parametrize("kind", ["503", "cloudflare"])
async def test_thirty_minutes_of_outage_lose_nothing_and_cost_few_requests(
    db: Path, netflix_snapshots: list[Snapshot], kind: str
) -> None:
    channels = channel_ids(4)
    await watch(db, channels)
    clock = ManualClock()
    config = dataclasses.replace(FAST, clock=clock, sleep=simulated(clock), pause_base=5.0, pause_cap=300.0)
    async with DeliveryFake(clock=clock) as fake:
        add_guild(fake, [FakeChannel(c, f"c{n}") for n, c in enumerate(channels)])
        bot = make_bot(db, config=config)
        bot.invalid_requests.clock = clock
        async with fake.run_bot(bot):
            if kind == "503":
                fake.start_outage(1800, status=503)
            else:
                fake.start_cloudflare_ban(1800)
            await the_news(db, netflix_snapshots, bot)
            await until(lambda: settled(bot))
        assert clock() >= 1800  # posted after the outage, not given up during it
        assert posts_in(fake, channels) == dict.fromkeys(channels, 1)
        refused = fake.outage_answers + fake.cloudflare_answers
        assert refused <= 40  # a probe now and then, not a request per delivery per retry
        assert bot.announcer.breaker.trips >= 1
        async with await open_store(db) as store:
            rows = await store.fetch_all("SELECT state, attempts FROM deliveries")
        assert rows == [("sent", 1)] * 4  # the outage cost no delivery an attempt


async def test_too_many_invalid_requests_hold_posting_until_the_window_allows(
    db: Path, netflix_snapshots: list[Snapshot], caplog: pytest.LogCaptureFixture
) -> None:
    """Channels Discord refuses (403) are invalid requests: near the budget, posting waits for the window."""
    forbidden, fine = channel_ids(30), channel_ids(34)[30:]
    await watch(db, forbidden + fine)
    clock = ManualClock()
    config = dataclasses.replace(
        FAST, clock=clock, sleep=simulated(clock), invalid_budget=20, invalid_margin=2, workers=4
    )
    async with DeliveryFake(clock=clock) as fake:
        add_guild(fake, [FakeChannel(c, f"c{n}") for n, c in enumerate(forbidden + fine)])
        for channel in forbidden:
            fake.forbid_channel(channel)
        bot = make_bot(db, config=config)
        bot.invalid_requests.clock = clock
        caplog.set_level(logging.WARNING, logger="bot.announcer")
        async with fake.run_bot(bot):
            await the_news(db, netflix_snapshots, bot)
            await until(lambda: settled(bot))
        assert fake.peak_invalid_requests() <= 20 and fake.invalid_requests_total == 30
        assert clock() >= 600  # it waited for the window
        assert "posting held" in caplog.text
        assert posts_in(fake, fine) == dict.fromkeys(fine, 1)
        async with await open_store(db) as store:
            assert len(await store.guilds.broken_channels(GUILD)) == 30


# --- permissions ----------------------------------------------------------------------------------------


async def admin(
    fake: DeliveryFake, command: str, options: dict | None = None, channel: int | None = None
) -> str:
    reply = await (await fake.slash(GUILD, channel or CHANNEL_BASE, ALICE, command, options or {})).response()
    assert reply.ephemeral
    return reply.content


async def test_a_missing_permission_blocks_the_channel_and_posting_resumes_when_it_returns(
    db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    fine, locked = channel_ids(2)
    await watch(db, [fine, locked])
    async with DeliveryFake() as fake:
        no_embeds = Overwrite(fake.bot_user_id, type=1, deny=EMBED_LINKS)
        add_guild(fake, [FakeChannel(fine, "fine"), FakeChannel(locked, "locked", overwrites=[no_embeds])])
        async with fake.run_bot(make_bot(db)) as bot:
            await bot.tree.sync()
            store = await bot.get_store()  # type: ignore[attr-defined]
            await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]
            await fake.wait_for_messages(fine, 1)

            async def blocked() -> bool:
                return await store.guilds.blocked_channels(GUILD) == {locked: "missing Embed Links"}

            await until(blocked)

            async def idle() -> bool:
                return not bot.announcer.busy  # type: ignore[attr-defined]

            await until(idle)
            assert fake.sent_messages(locked) == []  # never posted without its embed
            assert await store.fetch_all(
                "SELECT state, attempts FROM deliveries WHERE channel_id = ?", (locked,)
            ) == [("planned", 0)]  # waiting, not failed
            listing = await admin(fake, "watch list")
            assert f"⚠ cannot post in <#{locked}>: missing Embed Links (posts wait" in listing

            fake.guilds[GUILD].channels[locked].overwrites.clear()  # an admin gives it back
            await fake.send_channel_update(GUILD, locked)
            (post,) = await fake.wait_for_messages(locked, 1, timeout=5)
            assert post.embeds and post.embeds[0]["title"] == "All of Us Are Dead"
            await until(lambda: settled(bot))  # type: ignore[arg-type]
            assert await store.guilds.blocked_channels(GUILD) == {}
        assert posts_in(fake, [fine, locked]) == {fine: 1, locked: 1}
        assert not [r for r in fake.requests if r.status == 403]  # the bot never tried where it could not


async def test_a_role_losing_read_message_history_blocks_every_channel_until_it_is_back(
    db: Path, netflix_snapshots: list[Snapshot]
) -> None:
    channels = channel_ids(3)
    await watch(db, channels)
    async with DeliveryFake() as fake:
        add_guild(fake, [FakeChannel(c, f"c{n}") for n, c in enumerate(channels)])
        role = fake.bot_role(GUILD)
        everyone = fake.guilds[GUILD].everyone
        role.permissions &= ~READ_MESSAGE_HISTORY
        everyone.permissions &= ~READ_MESSAGE_HISTORY
        async with fake.run_bot(make_bot(db)) as bot:
            store = await bot.get_store()  # type: ignore[attr-defined]
            await the_news(db, netflix_snapshots, bot)  # type: ignore[arg-type]

            async def blocked() -> bool:
                found = await store.guilds.blocked_channels(GUILD)
                return found == dict.fromkeys(channels, "missing Read Message History")

            await until(blocked)
            assert posts_in(fake, channels) == dict.fromkeys(channels, 0)
            role.permissions |= READ_MESSAGE_HISTORY
            await fake.send_role_update(GUILD, role.id)
            await until(lambda: settled(bot))  # type: ignore[arg-type]
        assert posts_in(fake, channels) == dict.fromkeys(channels, 1)


@pytest.mark.parametrize(
    ("permission", "name"),
    [(READ_MESSAGE_HISTORY, "Read Message History"), (EMBED_LINKS, "Embed Links")],
    ids=["read-message-history", "embed-links"],
)
async def test_a_permission_lost_after_a_crash_never_makes_a_second_post(
    db: Path, netflix_snapshots: list[Snapshot], permission: int, name: str
) -> None:
    """Killed between a POST and its record; then the bot loses a permission. Without Read Message History
    it could not find its post again (Discord answers an empty history): it waits rather than post twice."""
    channels = channel_ids(4)
    await watch(db, channels)
    await the_news(db, netflix_snapshots)
    async with DeliveryFake() as fake:
        add_guild(fake, [FakeChannel(c, f"c{n}") for n, c in enumerate(channels)])
        fake.nonce_dedupe = False  # Discord's own dedupe would hide a second post
        code, _ = await run_worker(fake, db, "--kill-after-posts", "2")
        assert code == -signal.SIGKILL
        first = posts_in(fake, channels)
        before = await states(db)
        assert before.get("sending", 0) >= 1  # posted, not recorded

        role, everyone = fake.bot_role(GUILD), fake.guilds[GUILD].everyone
        role.permissions &= ~permission
        everyone.permissions &= ~permission
        code, log = await run_worker(fake, db, "--until-blocked")
        assert code == 0
        assert posts_in(fake, channels) == first  # nothing posted, nothing posted again
        async with await open_store(db) as store:
            blocked = await store.guilds.blocked_channels(GUILD)
            rows = await store.fetch_all("SELECT channel_id, state FROM deliveries WHERE state != 'sent'")
        assert set(blocked.values()) == {f"missing {name}"}
        assert {channel for channel, _ in rows} <= set(blocked)
        assert await states(db) == before  # each delivery as it was: 'sending' ones are looked for later

        role.permissions |= permission
        everyone.permissions |= permission
        code, log = await run_worker(fake, db)
        assert code == 0
        assert posts_in(fake, channels) == dict.fromkeys(channels, 1)  # exactly one post each
        assert log.count("was already posted") == sum(first.values()) - before.get("sent", 0)  # found
        assert await states(db) == {"sent": 4}


async def test_settings_test_names_the_missing_permission(db: Path) -> None:
    fine, locked = channel_ids(2)
    async with DeliveryFake() as fake:
        no_embeds = Overwrite(fake.bot_user_id, type=1, deny=EMBED_LINKS)
        add_guild(fake, [FakeChannel(fine, "fine"), FakeChannel(locked, "locked", overwrites=[no_embeds])])
        async with fake.run_bot(make_bot(db)) as bot:
            await bot.tree.sync()
            text = await admin(fake, "settings test", {"channel": locked})
            assert f"⚠ cannot post in <#{locked}>: missing Embed Links" in text
            assert fake.sent_messages(locked) == []
            store = await bot.get_store()  # type: ignore[attr-defined]
            assert await store.guilds.blocked_channels(GUILD) == {locked: "missing Embed Links"}
            assert "Posted a sample" in await admin(fake, "settings test", {"channel": fine})


# --- a role that cannot be pinged ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "bot_can_mention_everyone", "warned"),
    [(FANS, False, True), (PINGABLE, False, False), (FANS, True, False)],
    ids=["not-mentionable", "mentionable", "bot-has-mention-everyone"],
)
async def test_mention_role_warns_when_the_role_cannot_be_pinged(
    db: Path, role: int, bot_can_mention_everyone: bool, warned: bool
) -> None:
    async with DeliveryFake() as fake:
        add_guild(fake, [FakeChannel(CHANNEL_BASE, "charts")])
        if bot_can_mention_everyone:
            fake.bot_role(GUILD).permissions |= MENTION_EVERYONE
        async with fake.run_bot(make_bot(db)) as bot:
            await bot.tree.sync()
            text = await admin(fake, "settings mention-role", {"role": role})
        assert f"Milestone posts ping <@&{role}>" in text
        assert ("cannot be pinged" in text) is warned
        if warned:
            assert "Allow anyone to @mention this role" in text and "Mention Everyone" in text
