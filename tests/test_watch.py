"""/watch and /settings on the fake Discord with the real client: admins only, each server on its own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from announce_worker import make_bot
from engines import both_engines
from fake_discord import (
    CALLBACK_DEFERRED_MESSAGE,
    EPHEMERAL,
    MANAGE_GUILD,
    SEND_MESSAGES,
    FakeChannel,
    FakeMember,
    FakeRole,
    Overwrite,
)
from fake_discord_ext import DeliveryFake

from bot.announcer.policy import ALL, DEFAULT_EVENTS, Policy
from bot.client import DB_UNAVAILABLE, ChartBot
from bot.store import StoreBusy, open_store

GUILD, OTHER = 820_000_000_000_000_001, 820_000_000_000_000_002
CHARTS, NEWS, LOCKED = 820_000_000_000_000_010, 820_000_000_000_000_011, 820_000_000_000_000_012
OTHER_CHANNEL = 820_000_000_000_000_020
MODS, FANS, OTHER_MODS = 820_000_000_000_000_100, 820_000_000_000_000_101, 820_000_000_000_000_102
ALICE, BOB, CAROL = 820_000_000_000_001_000, 820_000_000_000_002_000, 820_000_000_000_003_000
AOUAD = "all of us are dead"
pytestmark = both_engines  # the servers' settings, watches and channels live in the store: both engines


@pytest.fixture
async def fake() -> AsyncIterator[DeliveryFake]:
    async with DeliveryFake() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[
                FakeChannel(CHARTS, "charts"),
                FakeChannel(NEWS, "news"),
                FakeChannel(LOCKED, "locked", overwrites=[Overwrite(GUILD, deny=SEND_MESSAGES)]),
            ],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD), FakeRole(FANS, "Fans")],
            members=[FakeMember(ALICE, "alice", roles=[MODS]), FakeMember(BOB, "bob", roles=[FANS])],
        )
        fake.add_guild(
            OTHER,
            "Other Server",
            channels=[FakeChannel(OTHER_CHANNEL, "general")],
            roles=[FakeRole(OTHER_MODS, "Admins", permissions=MANAGE_GUILD)],
            members=[FakeMember(CAROL, "carol", roles=[OTHER_MODS])],
        )
        yield fake


@pytest.fixture
async def bot(fake: DeliveryFake, chart_db: Path) -> AsyncIterator[ChartBot]:
    async with fake.run_bot(make_bot(chart_db)) as running:
        await running.tree.sync()  # global: the fake then knows the option types in both servers
        yield running  # type: ignore[misc]


async def ask(fake: DeliveryFake, user: int, command: str, options: dict | None = None, guild: int = GUILD):
    channel = CHARTS if guild == GUILD else OTHER_CHANNEL
    return await (await fake.slash(guild, channel, user, command, options or {})).response()


async def test_admin_groups_are_guild_only_and_need_manage_server(fake: DeliveryFake, bot: ChartBot) -> None:
    synced = {c["name"]: c for c in fake.synced_commands()}
    for name in ("watch", "settings"):
        assert synced[name]["default_member_permissions"] == MANAGE_GUILD
        assert synced[name]["contexts"] == [0]  # in servers only: not in DMs or group DMs
        assert synced[name]["integration_types"] == [0]  # installed to the server, never to a user
        assert synced[name]["dm_permission"] is False
    assert {o["name"] for o in synced["watch"]["options"]} == {"add", "remove", "list", "all"}
    assert {o["name"] for o in synced["settings"]["options"]} == {
        "show",
        "channel",
        "regions",
        "events",
        "digest",
        "mention-role",
        "language",
        "publish",
        "test",
    }


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("watch add", {"title": "All of Us Are Dead"}),
        ("watch all", {}),
        ("watch remove", {"title": "All of Us Are Dead"}),
        ("watch list", {}),
        ("settings channel", {"channel": NEWS}),
        ("settings regions", {"regions": "all"}),
        ("settings events", {"events": "all"}),
        ("settings digest", {"mode": "period"}),
        ("settings mention-role", {"role": FANS}),
        ("settings test", {}),
        ("settings show", {}),
        ("settings language", {"language": "ko"}),
    ],
)
async def test_a_member_without_manage_server_is_refused(
    fake: DeliveryFake, bot: ChartBot, command: str, options: dict
) -> None:
    reply = await ask(fake, BOB, command, options)
    assert reply.ephemeral and "Manage Server" in reply.content
    store = await bot.get_store()
    assert await store.guilds.watches(GUILD) == []
    assert await store.guilds.policy(GUILD) == Policy(GUILD)  # nothing stored
    assert fake.sent_messages(CHARTS) == []


async def test_watch_add_list_remove(fake: DeliveryFake, bot: ChartBot) -> None:
    choices = await fake.autocomplete(GUILD, CHARTS, ALICE, "watch add", focused="title", value="all of us")
    assert choices[0]["name"] == "All of Us Are Dead"
    reply = await ask(fake, ALICE, "watch add", {"title": choices[0]["value"]})
    assert reply.ephemeral
    assert reply.content.startswith(f"Watching **All of Us Are Dead** in <#{CHARTS}>")  # no default yet: here
    again = await ask(fake, ALICE, "watch add", {"title": "all of us are dead"})
    assert "already watched" in again.content
    await ask(fake, ALICE, "watch all", {"channel": NEWS})
    listing = await ask(fake, ALICE, "watch list")
    assert listing.ephemeral
    assert f"**All of Us Are Dead** → <#{CHARTS}>" in listing.content
    assert f"**All titles: No. 1 worldwide, records, No. 1 in many countries** → <#{NEWS}>" in listing.content
    assert "⚠" not in listing.content
    choices = await fake.autocomplete(GUILD, CHARTS, ALICE, "watch remove", focused="title", value="")
    assert {c["value"] for c in choices} == {AOUAD, ALL}
    assert (await ask(fake, ALICE, "watch remove", {"title": AOUAD})).content == (
        "Stopped watching **All of Us Are Dead**."
    )
    store = await bot.get_store()
    assert [w.target for w in await store.guilds.watches(GUILD)] == [ALL]


async def test_a_title_not_charted_yet_can_be_watched(fake: DeliveryFake, bot: ChartBot) -> None:
    reply = await ask(fake, ALICE, "watch add", {"title": "Wednesday: Season 1"})  # charts in Nov 2022
    assert "“Wednesday” is not in any chart yet" in reply.content
    store = await bot.get_store()
    (watch,) = await store.guilds.watches(GUILD)
    assert (watch.target, watch.title) == ("wednesday", "Wednesday")  # the show, as a title key
    seasoned = await ask(fake, ALICE, "watch add", {"title": "Squid Game: Season 9"})
    assert seasoned.content.startswith("Watching **Squid Game**")  # a charted show, whatever the season


async def test_watch_list_shows_channels_the_bot_cannot_post_in(fake: DeliveryFake, bot: ChartBot) -> None:
    reply = await ask(fake, ALICE, "watch add", {"title": "All of Us Are Dead", "channel": LOCKED})
    assert f"⚠ cannot post in <#{LOCKED}>: missing Send Messages" in reply.content
    store = await bot.get_store()
    await store.guilds.mark_broken(GUILD, NEWS, "missing access")
    await ask(fake, ALICE, "watch all", {"channel": NEWS})  # re-choosing a channel clears its failure
    await store.guilds.mark_broken(GUILD, NEWS, "missing access")  # …and it fails again
    listing = await ask(fake, ALICE, "watch list")
    assert f"⚠ cannot post in <#{LOCKED}>: missing Send Messages" in listing.content
    assert f"⚠ cannot post in <#{NEWS}>: missing access" in listing.content


async def test_settings(fake: DeliveryFake, bot: ChartBot) -> None:
    reply = await ask(fake, ALICE, "settings channel", {"channel": NEWS})
    assert reply.ephemeral and f"<#{NEWS}>" in reply.content
    reply = await ask(fake, ALICE, "settings regions", {"regions": "world, us, South Korea, 🇫🇷"})
    assert "France (`fr`)" in reply.content
    assert "unknown region" in (await ask(fake, ALICE, "settings regions", {"regions": "Atlantis"})).content
    await ask(fake, ALICE, "settings events", {"events": "+new_peak -entered_top10"})
    await ask(fake, ALICE, "settings digest", {"mode": "period"})
    assert (
        "never ping the whole server"
        in (await ask(fake, ALICE, "settings mention-role", {"role": GUILD})).content
    )
    await ask(fake, ALICE, "settings mention-role", {"role": FANS})
    store = await bot.get_store()
    policy = await store.guilds.policy(GUILD)
    assert policy == Policy(
        GUILD,
        channel_id=NEWS,
        regions=frozenset({"world", "us", "kr", "fr"}),
        events=(DEFAULT_EVENTS | {"new_peak"}) - {"entered_top10"},
        digest="period",
        mention_role_id=FANS,
    )
    shown = await ask(fake, ALICE, "settings show")
    assert f"**Mention:** <@&{FANS}>" in shown.content and "one post per period" in shown.content
    reply = await ask(fake, ALICE, "watch add", {"title": "All of Us Are Dead"})
    assert f"in <#{NEWS}>" in reply.content  # the server's channel, followed if it changes
    (watch,) = await store.guilds.watches(GUILD)
    assert watch.channel_id == 0
    await ask(fake, ALICE, "settings mention-role")  # empty: nobody
    assert (await store.guilds.policy(GUILD)).mention_role_id is None


async def test_settings_test_posts_a_sample_that_pings_nobody(fake: DeliveryFake, bot: ChartBot) -> None:
    await ask(fake, ALICE, "settings mention-role", {"role": FANS})
    rec = await fake.slash(GUILD, CHARTS, ALICE, "settings test", {"channel": NEWS})
    reply = await rec.response()
    assert reply.ephemeral and f"Posted a sample in <#{NEWS}>" in reply.content
    assert reply.message is rec.original and rec.followups == [] and not rec.followup_edited_original
    (post,) = fake.sent_messages(NEWS)
    assert post.content == f"<@&{FANS}>" and post.allowed_mentions == {"parse": []}
    assert post.embeds[0]["title"] == "All of Us Are Dead"
    reply = await ask(fake, ALICE, "settings test", {"channel": LOCKED})
    assert f"⚠ cannot post in <#{LOCKED}>: missing Send Messages (posts wait" in reply.content
    assert fake.sent_messages(LOCKED) == []  # checked before trying: no 403 drawn
    store = await bot.get_store()
    assert await store.guilds.blocked_channels(GUILD) == {LOCKED: "missing Send Messages"}
    assert await store.guilds.broken_channels(GUILD) == {}


async def test_settings_test_answers_a_database_error_in_its_private_placeholder(
    fake: DeliveryFake, bot: ChartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await bot.get_store()

    async def locked_after_posting(
        *args: object,
    ) -> bool:  # clearing the channel: after the sample was posted
        raise StoreBusy("the database is busy: database is locked")

    monkeypatch.setattr(store.guilds, "clear_broken", locked_after_posting)
    rec = await fake.slash(GUILD, CHARTS, ALICE, "settings test", {"channel": NEWS})
    reply = await rec.response()
    assert reply.deferred and reply.ephemeral and reply.content == DB_UNAVAILABLE
    assert reply.message is rec.original and rec.followups == [] and not rec.followup_edited_original
    assert len(fake.sent_messages(NEWS)) == 1


async def test_one_server_never_sees_or_changes_another(fake: DeliveryFake, bot: ChartBot) -> None:
    await ask(fake, ALICE, "watch add", {"title": "All of Us Are Dead"})
    await ask(fake, ALICE, "settings regions", {"regions": "all"})
    assert "watches nothing" in (await ask(fake, CAROL, "watch list", guild=OTHER)).content
    removed = await ask(fake, CAROL, "watch remove", {"title": "All of Us Are Dead"}, guild=OTHER)
    assert "does not watch" in removed.content
    choices = await fake.autocomplete(OTHER, OTHER_CHANNEL, CAROL, "watch remove", focused="title", value="")
    assert choices == []
    await ask(fake, CAROL, "settings events", {"events": "record"}, guild=OTHER)
    store = await bot.get_store()
    assert [w.target for w in await store.guilds.watches(GUILD)] == [AOUAD]
    mine, theirs = await store.guilds.policy(GUILD), await store.guilds.policy(OTHER)
    assert mine.regions is None and mine.events == DEFAULT_EVENTS
    assert theirs.regions != mine.regions and theirs.events == {"record"}
    assert f"<#{CHARTS}>" not in (await ask(fake, CAROL, "settings show", guild=OTHER)).content


async def test_store_functions_are_keyed_by_server(db_target: str) -> None:
    async with await open_store(db_target) as store:
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHARTS)
        await store.guilds.update_settings(GUILD, regions=None)
        await store.guilds.mark_broken(GUILD, CHARTS, "missing access")
        assert await store.guilds.watches(OTHER) == []
        assert await store.guilds.watched_titles(OTHER) == []
        assert await store.guilds.broken_channels(OTHER) == {}
        assert await store.guilds.remove_watches(OTHER, AOUAD) == 0
        assert await store.guilds.clear_broken(OTHER, CHARTS) is False
        assert (await store.guilds.policy(OTHER)).regions == frozenset({"world", "us", "gb", "kr"})
        assert len(await store.guilds.watches(GUILD)) == 1
        assert await store.guilds.broken_channels(GUILD) == {CHARTS: "missing access"}


async def test_a_watch_made_while_a_read_is_under_way_never_gets_its_news(
    db_target: str, netflix_snapshots: list
) -> None:
    """A catch-up that began before the watch (downloading or storing) is old news to it, however long
    it takes; the next read's news is posted."""
    from datetime import date

    from bot.ingest import Ingester

    def week(day: str) -> list:
        return [s for s in netflix_snapshots if s.key.date == date.fromisoformat(day)]

    async with await open_store(db_target) as store:
        ingester = Ingester(store)
        await ingester.ingest(week("2022-01-30"))
        catching_up = await store.sources.begin_read("netflix")  # the poller starts downloading
        await store.guilds.update_settings(GUILD, channel_id=NEWS)
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead")  # an admin, meanwhile
        async with ingester.batch(catching_up) as batch:  # the download is in: stored with its news
            report = await batch.add(week("2022-02-06"), news=True)
        assert any(m.title_key == AOUAD for m in report.milestones)
        planned = await store.deliveries.plan()
        assert (planned.deliveries, planned.planned) == (0, 0)  # old news to that watch
        report = await ingester.ingest(week("2022-02-13"))  # the next read
        regions = {"world", "us", "gb", "kr"}  # the server's (the defaults)
        wanted = [m for m in report.milestones if m.title_key == AOUAD and m.kind in DEFAULT_EVENTS]
        wanted = [m for m in wanted if m.chart.region in regions and (m.kind != "no1_streak" or m.value)]
        planned = await store.deliveries.plan()
        assert planned.deliveries == 1  # one post for the title and week
        assert planned.planned == len(wanted) > 0


# --- the database busy behind another writer -----------------------------------------------------------


@contextlib.asynccontextmanager
async def history_write_held(target: str | Path) -> AsyncIterator[None]:
    """Another process holding the history's write lock, as a long `chartbot import` does: SQLite's one
    write transaction, PostgreSQL's HISTORY advisory lock."""
    if isinstance(target, Path):
        conn = sqlite3.connect(target, isolation_level=None, timeout=30, check_same_thread=False)
        # in a thread: waiting here for the bot's own writes must not stop the event loop they run on
        await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import asyncpg

    from bot.store.postgres.connection import HISTORY, LOCK_SPACE

    pg = await asyncpg.connect(target)
    try:
        await pg.execute("SELECT pg_advisory_lock($1, $2)", LOCK_SPACE, HISTORY)
        yield
    finally:
        await pg.close()


async def test_watch_add_behind_a_held_write_lock_is_deferred_then_answered(
    fake: DeliveryFake, bot: ChartBot, chart_db: str | Path
) -> None:
    async with history_write_held(chart_db):
        asked = await fake.slash(GUILD, CHARTS, ALICE, "watch add", {"title": "All of Us Are Dead"})
        await asyncio.sleep(bot.defer_after + 1.0)  # past Discord's 3 s: an answer must be on its way
        assert asked.callback_type == CALLBACK_DEFERRED_MESSAGE  # "thinking…", privately
        assert asked.callback["data"]["flags"] & EPHEMERAL
        assert asked.answered_after is not None and asked.answered_after < 3.0
        async with await open_store(chart_db) as store:
            assert await store.guilds.watches(GUILD) == []  # still waiting for the lock
    reply = await asked.response(timeout=20)
    assert "All of Us Are Dead" in reply.content and f"<#{CHARTS}>" in reply.content
    assert reply.ephemeral and not reply.followups  # the "thinking…" message became the answer
    async with await open_store(chart_db) as store:
        assert [w.target for w in await store.guilds.watches(GUILD)] == [AOUAD]


async def test_a_quick_admin_command_is_answered_at_once_without_a_deferral(
    fake: DeliveryFake, bot: ChartBot
) -> None:
    asked = await fake.slash(GUILD, CHARTS, ALICE, "settings show", {})
    reply = await asked.response()
    assert asked.callback_type == 4 and reply.ephemeral  # a private message at once: nothing to wait for
