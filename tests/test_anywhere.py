"""Fans' commands anywhere: installed by a user and run in a server without the bot, in the bot's DM
and in group DMs; admins' commands only in servers that installed the bot. The real ChartBot on the fake
Discord, with the real Netflix history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_discord import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    CONTEXT_PRIVATE_CHANNEL,
    INSTALL_USER,
    FakeChannel,
    FakeDiscord,
    FakeDiscordRefusal,
    FakeMember,
    RecordedRequest,
)

from bot.client import ChartBot
from bot.pages import MILESTONES, TOP, not_yours
from bot.settings import Settings

GUILD = 840_000_000_000_000_001  # installed the bot
CHANNEL = 840_000_000_000_000_010
ELSEWHERE = 840_000_000_000_000_500  # a server without the bot, where fans installed the app themselves
ELSEWHERE_CHANNEL = 840_000_000_000_000_510
FAN = 840_000_000_000_001_000
FRIEND = 840_000_000_000_002_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AOUAD = "All of Us Are Dead"
FANS_COMMANDS = ("rank", "top", "milestones")
ADMIN_COMMANDS = ("watch", "settings")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "Chart Fans", channels=[FakeChannel(CHANNEL, "charts")], members=[FAN, FRIEND])
        fake.add_guild(
            ELSEWHERE,
            "Someone else's server",
            channels=[FakeChannel(ELSEWHERE_CHANNEL, "general")],
            members=[FakeMember(FAN, "fan"), FakeMember(FRIEND, "friend")],
            bot_member=False,
        )
        yield fake


@pytest.fixture
async def bot(fake: FakeDiscord, chart_db: Path) -> AsyncIterator[ChartBot]:
    settings = Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(chart_db),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
        }
    )
    async with fake.run_bot(ChartBot(settings, guild_ready_timeout=0.05)) as running:
        await running.tree.sync()  # global, as `chartbot sync` does: user installs see global commands only
        yield running  # type: ignore[misc]


def outside_interactions(requests: list[RecordedRequest]) -> list[tuple[str, str]]:
    """REST calls that are not answers to an interaction (channel reads, guild lookups, posts)."""
    return [(r.method, r.path) for r in requests if not r.path.startswith(("/interactions/", "/webhooks/"))]


async def test_the_sync_payload_says_who_may_install_and_where_commands_run(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    synced = {c["name"]: c for c in fake.synced_commands()}
    for name in FANS_COMMANDS:
        assert synced[name]["integration_types"] == [0, 1], name  # a server or a user may install it
        assert synced[name]["contexts"] == [0, 1, 2], name  # servers, the bot's DM, group DMs
    for name in ADMIN_COMMANDS:
        assert synced[name]["integration_types"] == [0], name
        assert synced[name]["contexts"] == [0], name


async def test_a_user_installed_rank_answers_in_a_server_without_the_bot(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    assert bot.get_guild(ELSEWHERE) is None
    before = len(fake.requests)
    rec = await fake.slash(ELSEWHERE, ELSEWHERE_CHANNEL, FAN, "rank", {"title": AOUAD, "date": "2022-02-06"})
    reply = await rec.response(timeout=5)
    assert rec.install == INSTALL_USER and rec.context == CONTEXT_GUILD
    assert reply.type == CALLBACK_DEFERRED_MESSAGE and not reply.ephemeral
    assert reply.embed is not None and reply.embed["title"] == "All of Us Are Dead: Season 1"
    assert "No. 1 in 63 of 94 countries" in reply.embed["description"]
    (picture,) = reply.files
    assert picture.data.startswith(PNG_MAGIC)
    assert outside_interactions(fake.requests[before:]) == []  # everything through the interaction


async def test_a_user_installed_top_pages_in_a_server_without_the_bot(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    before = len(fake.requests)
    reply = await (await fake.slash(ELSEWHERE, ELSEWHERE_CHANNEL, FAN, "top", {"region": "kr"})).response(
        timeout=5
    )
    page = reply.message
    assert page is not None and page.embeds[0]["title"] == "🇰🇷 South Korea Top 10 · TV"
    previous = page.button_labelled("◀ Previous")["custom_id"]
    refused = await (await fake.press(page, previous, FRIEND)).response(timeout=5)
    assert refused.ephemeral and refused.content == not_yours(FAN, TOP)
    turned = await (await fake.press(page, previous, FAN)).response(timeout=5)
    assert turned.type == CALLBACK_UPDATE_MESSAGE and page.embeds[0]["footer"]["text"].endswith(
        "Page 14 of 15"
    )
    assert outside_interactions(fake.requests[before:]) == []


async def test_top_in_the_bots_dm_answers_and_its_buttons_work(fake: FakeDiscord, bot: ChartBot) -> None:
    dm = fake.add_dm(FAN)
    for install in ("guild", "user"):  # the server's installation answering in its DM, or the fan's own
        rec = await fake.slash(None, dm.id, FAN, "top", {"region": "us"}, install=install)
        reply = await rec.response(timeout=5)
        assert rec.context == CONTEXT_BOT_DM and rec.guild_id is None
        page = reply.message
        assert page is not None and page.embeds[0]["footer"]["text"].endswith("Page 15 of 15")
        await (await fake.press(page, page.button_labelled("◀ Previous")["custom_id"], FAN)).response(
            timeout=5
        )
        assert page.embeds[0]["footer"]["text"].startswith("week ending Feb 20, 2022")
        await (await fake.press(page, page.button_labelled("Films")["custom_id"], FAN)).response(timeout=5)
        assert page.embeds[0]["title"] == "🇺🇸 U.S. Top 10 · film"


async def test_milestones_page_in_a_group_dm(fake: FakeDiscord, bot: ChartBot) -> None:
    group = fake.add_group_dm([FAN, FRIEND], name="chart chat")
    rec = await fake.slash(None, group.id, FRIEND, "milestones", {"title": AOUAD})
    reply = await rec.response(timeout=5)
    assert rec.context == CONTEXT_PRIVATE_CHANNEL and rec.install == INSTALL_USER
    page = reply.message
    assert page is not None and page.embeds[0]["footer"]["text"] == "Page 1 of 4"
    next_id = page.button_labelled("Next ▶")["custom_id"]
    refused = await (await fake.press(page, next_id, FAN)).response(timeout=5)
    assert refused.type == CALLBACK_MESSAGE and refused.content == not_yours(FRIEND, MILESTONES)
    await (await fake.press(page, next_id, FRIEND)).response(timeout=5)
    assert page.embeds[0]["footer"]["text"] == "Page 2 of 4"


async def test_errors_anywhere_are_one_private_line(fake: FakeDiscord, bot: ChartBot) -> None:
    dm = fake.add_dm(FAN)
    rec = await fake.slash(None, dm.id, FAN, "rank", {"title": "Sqiud Gme"})
    reply = await rec.response(timeout=5)
    assert reply.ephemeral and "Did you mean **Squid Game**" in reply.content
    elsewhere = await fake.slash(ELSEWHERE, ELSEWHERE_CHANNEL, FAN, "top", {"region": "Atlantis"})
    refused = await elsewhere.response(timeout=5)
    assert refused.ephemeral and "unknown region" in refused.content


async def test_admin_commands_are_offered_in_servers_that_installed_the_bot_only(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    dm = fake.add_dm(FAN)
    group = fake.add_group_dm([FAN, FRIEND])
    for name in ("watch list", "settings show"):
        with pytest.raises(FakeDiscordRefusal, match="contexts"):
            await fake.slash(None, dm.id, FAN, name)
        with pytest.raises(FakeDiscordRefusal, match="integration_types"):
            await fake.slash(None, group.id, FAN, name)
        with pytest.raises(FakeDiscordRefusal, match="integration_types"):
            await fake.slash(ELSEWHERE, ELSEWHERE_CHANNEL, FAN, name)
