"""The fake Discord proved with the real discord.py client: login, sync, slash commands, autocomplete,
defer + followup, attachments, rate limits, permission checks and error answers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fake_discord import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_MESSAGE,
    MANAGE_GUILD,
    FakeChannel,
    FakeDiscord,
    FakeMember,
    FakeRole,
    Overwrite,
)

GUILD = 810_000_000_000_000_001
CHANNEL = 810_000_000_000_000_010
LOCKED = 810_000_000_000_000_011  # the bot may not post here (overwrite)
MODS = 810_000_000_000_000_100
ALICE = 810_000_000_000_001_000  # has Manage Server through the Mods role
BOB = 810_000_000_000_002_000  # a fan

TITLES = ["All of Us Are Dead", "All the Light We Cannot See", "Squid Game", "Wednesday"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))  # a PNG signature and some bytes that must round-trip


class SampleBot(commands.Bot):
    """A small bot exercising what chartbot's cogs do."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True, members=True),  # members: so the cache can be checked
            guild_ready_timeout=0.05,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )

    async def setup_hook(self) -> None:
        tree = self.tree

        @tree.command(description="Say it back")
        async def echo(interaction: discord.Interaction, text: str) -> None:
            await interaction.response.send_message(text)

        async def title_choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            hits = [t for t in TITLES if t.casefold().startswith(current.casefold())]
            return [app_commands.Choice(name=t, value=t) for t in hits][:25]

        @tree.command(description="Find a title")
        @app_commands.autocomplete(title=title_choices)
        async def find(interaction: discord.Interaction, title: str) -> None:
            await interaction.response.send_message(f"found {title}")

        @tree.command(description="Think, then answer")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send("done slowly")

        @tree.command(description="Post a rank card in this channel")
        async def card(interaction: discord.Interaction) -> None:
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send(
                "@everyone rank card", file=discord.File(io.BytesIO(PNG), "card.png")
            )
            await interaction.response.send_message("posted", ephemeral=True)

        @tree.command(description="Answer privately after thinking, with a file")
        async def quiet(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(
                embed=discord.Embed(title="Your watchlist"),
                attachments=[discord.File(io.BytesIO(PNG), "list.png")],
            )

        @tree.command(description="Options the fake must resolve")
        async def who(
            interaction: discord.Interaction, user: discord.Member, where: discord.TextChannel, top: int
        ) -> None:
            await interaction.response.send_message(f"{user.name} in #{where.name}, top {top}")

        # default_permissions belongs on the group: on a subcommand discord.py silently drops it.
        watch = app_commands.Group(
            name="watch",
            description="Configure announcements",
            guild_only=True,
            default_permissions=discord.Permissions(manage_guild=True),
        )

        @watch.command(name="add", description="Announce a region's milestones here")
        @app_commands.checks.has_permissions(manage_guild=True)  # the real check: the above is a UI hint
        async def watch_add(interaction: discord.Interaction, region: str) -> None:
            await interaction.response.send_message(f"watching {region}")

        tree.add_command(watch)

        @tree.error
        async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            if isinstance(error, app_commands.MissingPermissions):
                await interaction.response.send_message("You need Manage Server.", ephemeral=True)
            else:
                raise error

        tree.copy_global_to(guild=discord.Object(GUILD))
        await tree.sync(guild=discord.Object(GUILD))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[
                FakeChannel(CHANNEL, "charts"),
                FakeChannel(LOCKED, "rules", overwrites=[Overwrite(GUILD, deny=0x800)]),
            ],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ALICE, "alice", roles=[MODS]), FakeMember(BOB, "bob")],
        )
        yield fake


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    async with fake.run_bot(SampleBot()) as bot:
        yield bot


async def test_login_gateway_and_guild_cache(fake: FakeDiscord, bot: discord.Client) -> None:
    assert bot.user is not None and bot.user.id == fake.bot_user_id
    assert bot.application_id == fake.application_id
    guild = bot.get_guild(GUILD)
    assert guild is not None and guild.name == "Chart Fans"
    assert guild.me is not None and guild.get_channel(CHANNEL) is not None
    alice, bob = guild.get_member(ALICE), guild.get_member(BOB)
    assert alice is not None and alice.guild_permissions.manage_guild
    assert bob is not None and not bob.guild_permissions.manage_guild
    locked = guild.get_channel(LOCKED)
    assert isinstance(locked, discord.TextChannel) and not locked.permissions_for(guild.me).send_messages
    assert fake.api_base == Route.BASE
    assert fake.gateway_connects == 1 and fake.identify_payloads[0]["token"] == "fake-token"


async def test_command_sync_payload(fake: FakeDiscord, bot: discord.Client) -> None:
    assert [call.guild_id for call in fake.sync_calls] == [GUILD]
    assert fake.synced_commands() == []
    commands_by_name = {c["name"]: c for c in fake.synced_commands(GUILD)}
    assert set(commands_by_name) == {"echo", "find", "slow", "card", "quiet", "who", "watch"}
    (title,) = commands_by_name["find"]["options"]
    assert title["name"] == "title" and title["type"] == 3 and title["autocomplete"] is True
    (add,) = commands_by_name["watch"]["options"]
    assert add["name"] == "add" and add["type"] == 1
    assert [(o["name"], o["type"], o["required"]) for o in add["options"]] == [("region", 3, True)]
    assert commands_by_name["watch"]["default_member_permissions"] == MANAGE_GUILD  # discord.py sends an int


async def test_echo_reply(fake: FakeDiscord, bot: discord.Client) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "hello charts"})
    reply = await rec.response()
    assert reply.type == CALLBACK_MESSAGE
    assert reply.content == "hello charts" and not reply.ephemeral
    assert rec.payload["data"]["guild_id"] == str(GUILD)  # synced as a guild command
    assert rec.answered_after is not None and rec.answered_after < 1.0


async def test_allowed_mentions_none(fake: FakeDiscord, bot: discord.Client) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "@everyone No. 1 again!"})
    reply = await rec.response()
    assert reply.content == "@everyone No. 1 again!"
    assert reply.allowed_mentions == {"parse": []}
    assert reply.message is not None and not reply.message.mentions_everyone


async def test_autocomplete_choices(fake: FakeDiscord, bot: discord.Client) -> None:
    choices = await fake.autocomplete(GUILD, CHANNEL, BOB, "find", focused="title", value="all of")
    assert choices == [{"name": "All of Us Are Dead", "value": "All of Us Are Dead"}]
    choices = await fake.autocomplete(GUILD, CHANNEL, BOB, "find", focused="title", value="ALL")
    assert [c["value"] for c in choices] == TITLES[:2]
    rec = fake.interactions[-1]
    assert rec.type == 4 and rec.choices == choices
    assert rec.answered_after is not None and rec.answered_after < 0.5


async def test_deferred_reply_then_followup(fake: FakeDiscord, bot: discord.Client) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "slow")
    reply = await rec.response()
    assert reply.type == CALLBACK_DEFERRED_MESSAGE and reply.deferred
    assert reply.content == "done slowly" and not reply.ephemeral
    assert [m.content for m in reply.followups] == ["done slowly"]


async def test_channel_message_with_png_attachment(fake: FakeDiscord, bot: discord.Client) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "card")).response()
    assert reply.content == "posted" and reply.ephemeral and reply.flags & 64
    (post,) = fake.sent_messages(CHANNEL)
    assert post.content == "@everyone rank card"
    assert post.allowed_mentions == {"parse": []} and not post.mentions_everyone
    (png,) = post.files
    assert png.filename == "card.png" and png.data == PNG


async def test_ephemeral_defer_then_edit_with_file(fake: FakeDiscord, bot: discord.Client) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "quiet")
    reply = await rec.response()
    assert reply.deferred and reply.ephemeral and reply.followups == []
    assert reply.embed is not None and reply.embed["title"] == "Your watchlist"
    assert [(f.filename, f.data) for f in reply.files] == [("list.png", PNG)]
    assert rec.callback == {"type": CALLBACK_DEFERRED_MESSAGE, "data": {"flags": 64}}


async def test_user_and_channel_options_are_resolved(fake: FakeDiscord, bot: discord.Client) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "who", {"user": ALICE, "where": CHANNEL, "top": 3})
    assert (await rec.response()).content == "alice in #charts, top 3"
    assert [o["type"] for o in rec.payload["data"]["options"]] == [6, 7, 4]  # from the synced schema


async def test_gateway_resume(fake: FakeDiscord, bot: discord.Client) -> None:
    await fake.close_gateway(4000)  # discord.py reconnects and RESUMEs
    for _ in range(200):
        if fake.resumes:
            break
        await asyncio.sleep(0.01)
    assert fake.resumes == 1 and fake.gateway_connects == 2
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "back"})).response()
    assert reply.content == "back"


async def test_429_on_interaction_callback_is_retried(fake: FakeDiscord, bot: discord.Client) -> None:
    failure = fake.fail_next("POST", r"/interactions/\d+/[^/]+/callback", retry_after=0.05)
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "still here"})).response()
    assert reply.content == "still here"
    assert failure.hits == 1
    assert [r.status for r in fake.requests if r.path.endswith("/callback")] == [429, 200]


async def test_429_on_followup_is_retried(fake: FakeDiscord, bot: discord.Client) -> None:
    failure = fake.fail_next("POST", r"^/webhooks/\d+/[^/]+$", retry_after=0.05)
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "slow")).response()
    assert reply.content == "done slowly" and failure.hits == 1


async def test_manage_server_check(fake: FakeDiscord, bot: discord.Client) -> None:
    refused = await (await fake.slash(GUILD, CHANNEL, BOB, "watch add", {"region": "kr"})).response()
    assert refused.content == "You need Manage Server." and refused.ephemeral
    rec = await fake.slash(GUILD, CHANNEL, ALICE, "watch", {"region": "kr"}, subcommand="add")
    served = await rec.response()
    assert served.content == "watching kr" and not served.ephemeral
    assert int(rec.payload["member"]["permissions"]) & MANAGE_GUILD
    assert rec.payload["data"]["options"] == [
        {"name": "add", "type": 1, "options": [{"name": "region", "type": 3, "value": "kr"}]}
    ]


async def test_channel_errors(fake: FakeDiscord, bot: discord.Client) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.forbid_channel(CHANNEL)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("nope")
    assert forbidden.value.code == 50013
    fake.remove_channel(CHANNEL)
    with pytest.raises(discord.NotFound) as missing:
        await channel.send("nope")
    assert missing.value.code == 10003
    fake.restore_channel(CHANNEL)
    message = await channel.send("back")
    await message.edit(content="back again")
    (post,) = fake.sent_messages(CHANNEL)
    assert post.content == "back again" and post.edited
    locked = bot.get_channel(LOCKED)
    assert isinstance(locked, discord.TextChannel)
    with pytest.raises(discord.Forbidden):  # the overwrite denies Send Messages to @everyone
        await locked.send("nope")


async def test_global_rate_limit_is_waited_out(fake: FakeDiscord, bot: discord.Client) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.rate_limit_per_second = 40
    fake.rate_limit_burst = 2
    started = time.monotonic()
    await asyncio.gather(*(channel.send(f"post {i}") for i in range(5)))
    assert len(fake.sent_messages(CHANNEL)) == 5
    assert fake.global_rate_limited >= 1
    assert time.monotonic() - started < 1.5


async def test_raw_rest_headers_and_settings(fake: FakeDiscord) -> None:
    env = fake.settings_env()
    assert env["DISCORD_API_BASE"] == fake.api_base and fake.api_base.endswith("/api/v10")
    assert env["DISCORD_GATEWAY_URL"].startswith("ws://127.0.0.1:")
    fake.fail_next("GET", r"^/users/@me$", retry_after=0.25)
    fake.rate_limit_per_second = 1
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 429
            assert resp.headers["Via"] and resp.headers["Retry-After"] == "1"
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["retry_after"] == 0.25
        async with session.get(f"{fake.api_base}/users/@me") as resp:  # uses the one token of the bucket
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 429 and resp.headers["X-RateLimit-Global"] == "true"
            assert (await resp.json())["global"] is True


async def test_patch_is_restored() -> None:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with fake.patch_discord():
            assert fake.api_base == Route.BASE
            assert str(DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert (base, gateway) == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
