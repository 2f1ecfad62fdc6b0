"""The fake Discord proved with the real discord.py client: login, sync, slash commands, autocomplete,
defer + followup, attachments, rate limits (per route and global), permission checks, revoked tokens,
Cloudflare bans, outages and error answers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
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
    ATTACH_FILES,
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    CONTEXT_PRIVATE_CHANNEL,
    DEFAULT_ROUTE_LIMITS,
    EMBED_LINKS,
    INSTALL_USER,
    MANAGE_GUILD,
    READ_MESSAGE_HISTORY,
    USER_APP_PERMISSIONS,
    FakeChannel,
    FakeDiscord,
    FakeDiscordRefusal,
    FakeDiscordTimeout,
    FakeMember,
    FakeRole,
    ManualClock,
    Overwrite,
    RouteLimit,
    route_key,
)

GUILD = 810_000_000_000_000_001
CHANNEL = 810_000_000_000_000_010
LOCKED = 810_000_000_000_000_011  # the bot may not post here (overwrite)
SECOND = 810_000_000_000_000_012
NO_HISTORY = 810_000_000_000_000_013  # the bot lacks Read Message History here
NO_EMBEDS = 810_000_000_000_000_014  # ... Embed Links
NO_FILES = 810_000_000_000_000_015  # ... Attach Files
MODS = 810_000_000_000_000_100
ALICE = 810_000_000_000_001_000  # has Manage Server through the Mods role
BOB = 810_000_000_000_002_000  # a fan

TITLES = ["All of Us Are Dead", "All the Light We Cannot See", "Squid Game", "Wednesday"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))  # a PNG signature and some bytes that must round-trip
AUTH = {"Authorization": "Bot fake-token"}
UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}


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

        @tree.command(description="Answer by editing the original, then follow up")
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content="first")
            await interaction.followup.send("second")

        @tree.command(description="Drop the public placeholder, then answer privately")
        async def oops(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.delete_original_response()
            await interaction.followup.send("only you see this", ephemeral=True)

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


def bot_denied(fake: FakeDiscord, permission: int) -> Overwrite:
    """A channel overwrite that takes one permission from the bot (a member overwrite)."""
    return Overwrite(fake.bot_user_id, type=1, deny=permission)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[
                FakeChannel(CHANNEL, "charts"),
                FakeChannel(LOCKED, "rules", overwrites=[Overwrite(GUILD, deny=0x800)]),
                FakeChannel(SECOND, "more-charts"),
                FakeChannel(NO_HISTORY, "no-history", overwrites=[bot_denied(fake, READ_MESSAGE_HISTORY)]),
                FakeChannel(NO_EMBEDS, "no-embeds", overwrites=[bot_denied(fake, EMBED_LINKS)]),
                FakeChannel(NO_FILES, "no-files", overwrites=[bot_denied(fake, ATTACH_FILES)]),
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
    assert set(commands_by_name) == {"echo", "find", "slow", "twice", "oops", "card", "quiet", "who", "watch"}
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


async def test_first_followup_after_a_deferral_edits_the_original(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "slow")
    reply = await rec.response()
    assert reply.type == CALLBACK_DEFERRED_MESSAGE and reply.deferred
    assert reply.content == "done slowly" and not reply.ephemeral
    assert rec.followup_edited_original  # Discord's deprecated behaviour, recorded so tests can forbid it
    assert reply.followups == [] and reply.message is rec.original
    assert rec.original is not None and rec.original.edited


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
    # Only the global window here: with the channel's bucket (5 per 5 s) discord.py would also wait
    # for it pre-emptively (see test_a_fan_out_to_one_channel_never_draws_a_429).
    fake.route_limits_enabled = False
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
    async with aiohttp.ClientSession(headers=AUTH) as session:
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


# --- rate limits ------------------------------------------------------------------------------------


def test_route_keys_and_major_parameters() -> None:
    assert route_key("POST", f"/channels/{CHANNEL}/messages") == (
        "POST /channels/{channel_id}/messages",
        str(CHANNEL),
    )
    assert route_key("PATCH", f"/channels/{CHANNEL}/messages/42") == (
        "PATCH /channels/{channel_id}/messages/{message_id}",
        str(CHANNEL),
    )
    assert route_key("PATCH", "/webhooks/7/tok-abc/messages/@original") == (
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original",
        "7+tok-abc",
    )
    assert route_key("POST", "/interactions/9/tok/callback") == (
        "POST /interactions/{interaction_id}/{interaction_token}/callback",
        "9+tok",
    )
    assert route_key("PUT", f"/applications/1/guilds/{GUILD}/commands") == (
        "PUT /applications/{application_id}/guilds/{guild_id}/commands",
        str(GUILD),
    )
    assert route_key("GET", "/users/@me") == ("GET /users/@me", "")
    assert DEFAULT_ROUTE_LIMITS["POST /channels/{channel_id}/messages"] == RouteLimit(5, 5.0)


async def test_every_answer_carries_its_bucket_and_a_full_bucket_answers_429(fake: FakeDiscord) -> None:
    clock = fake.rate_clock = ManualClock()
    posts = f"{fake.api_base}/channels/{CHANNEL}/messages"
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 200
            assert resp.headers["X-RateLimit-Limit"] == "50" and resp.headers["X-RateLimit-Remaining"] == "49"
            me_bucket = resp.headers["X-RateLimit-Bucket"]
        remaining, buckets = [], set()
        for i in range(5):
            async with session.post(posts, json={"content": f"post {i}"}) as resp:
                assert resp.status == 200 and resp.headers["X-RateLimit-Limit"] == "5"
                assert float(resp.headers["X-RateLimit-Reset-After"]) == 5.0
                assert abs(float(resp.headers["X-RateLimit-Reset"]) - (time.time() + 5)) < 2
                remaining.append(resp.headers["X-RateLimit-Remaining"])
                buckets.add(resp.headers["X-RateLimit-Bucket"])
        assert remaining == ["4", "3", "2", "1", "0"] and len(buckets) == 1 and me_bucket not in buckets
        clock.advance(2.0)
        async with session.post(posts, json={"content": "a sixth within 5 s"}) as resp:
            assert resp.status == 429 and resp.headers["Via"]
            assert resp.headers["X-RateLimit-Scope"] == "user" and "X-RateLimit-Global" not in resp.headers
            assert (
                resp.headers["X-RateLimit-Bucket"] in buckets and resp.headers["X-RateLimit-Remaining"] == "0"
            )
            assert (
                resp.headers["Retry-After"] == "3" and float(resp.headers["X-RateLimit-Reset-After"]) == 3.0
            )
            assert await resp.json() == {
                "message": "You are being rate limited.",
                "retry_after": 3.0,
                "global": False,
            }
        async with session.post(f"{fake.api_base}/channels/{SECOND}/messages", json={"content": "x"}) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "4"  # a bucket per channel
            assert resp.headers["X-RateLimit-Bucket"] in buckets  # ... of the same route
        async with session.get(f"{fake.api_base}/channels/{CHANNEL}/messages/1") as resp:  # an error answer
            assert resp.status == 404 and resp.headers["X-RateLimit-Limit"] == "5"
        clock.advance(3.0)
        async with session.post(posts, json={"content": "the next window"}) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == "4"
    assert fake.route_rate_limited == 1 and len(fake.sent_messages(CHANNEL)) == 6


async def test_route_limits_can_be_turned_off(fake: FakeDiscord) -> None:
    fake.route_limits_enabled = False
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for i in range(7):
            async with session.post(
                f"{fake.api_base}/channels/{CHANNEL}/messages", json={"content": f"{i}"}
            ) as r:
                assert r.status == 200 and "X-RateLimit-Bucket" not in r.headers
    assert fake.route_rate_limited == 0


async def test_a_fan_out_to_one_channel_never_draws_a_429(fake: FakeDiscord, bot: discord.Client) -> None:
    """discord.py reads X-RateLimit-Remaining and waits for the reset before it would overrun a bucket."""
    fake.route_limits["POST /channels/{channel_id}/messages"] = RouteLimit(2, 0.2)  # 5 per 5 s, faster
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    await asyncio.gather(*(channel.send(f"post {i}") for i in range(8)))
    assert sorted(m.content for m in fake.sent_messages(CHANNEL)) == [f"post {i}" for i in range(8)]
    statuses = [r.status for r in fake.requests if r.path == f"/channels/{CHANNEL}/messages"]
    assert statuses == [200] * 8 and fake.route_rate_limited == 0 and fake.global_rate_limited == 0


async def test_the_global_limit_is_a_sliding_window_per_token(fake: FakeDiscord) -> None:
    assert (fake.global_limit, fake.global_window, fake.rate_limit_per_second) == (50, 1.0, 50.0)
    clock = fake.rate_clock = ManualClock()
    fake.global_limit = 3

    async def get(session: aiohttp.ClientSession, token: str = "fake-token") -> aiohttp.ClientResponse:
        async with session.get(f"{fake.api_base}/users/@me", headers={"Authorization": f"Bot {token}"}) as r:
            await r.read()
            return r

    async with aiohttp.ClientSession() as session:
        for step in (0.0, 0.4, 0.4):  # at 0, 0.4 and 0.8 s
            clock.advance(step)
            assert (await get(session)).status == 200
        clock.advance(0.1)
        limited = await get(session)
        assert limited.status == 429 and limited.headers["Via"]
        assert (
            limited.headers["X-RateLimit-Global"] == "true"
            and limited.headers["X-RateLimit-Scope"] == "global"
        )
        assert (await get(session, "another-bot")).status == 200  # per token
        clock.advance(0.1)  # at 1.0 s the request made at 0 leaves the window: one more fits
        assert (await get(session)).status == 200
        again = await get(session)  # a fixed window would have opened three more slots at 1.0 s
        assert again.status == 429
    assert fake.global_rate_limited == 2


async def test_rate_limit_per_second_sets_the_global_window(fake: FakeDiscord) -> None:
    fake.rate_limit_per_second = 40
    assert (fake.global_limit, fake.global_window) == (40, 1.0)
    fake.rate_limit_burst = 2
    assert (fake.global_limit, fake.global_window, fake.rate_limit_per_second) == (2, 0.05, 40.0)
    fake.rate_limit_per_second = None
    assert fake.global_limit is None and fake.rate_limit_per_second is None


async def test_interaction_answers_do_not_count_against_the_global_limit(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    fake.global_limit, fake.global_window = 1, 60.0
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for _ in range(2):
            async with session.get(f"{fake.api_base}/users/@me") as resp:
                last = resp.status
    assert last == 429  # the bot's token has no request left for a minute
    limited = fake.global_rate_limited
    assert (await (await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "hi"})).response()).content == "hi"
    assert (await (await fake.slash(GUILD, CHANNEL, BOB, "twice")).response(followups=1)).content == "first"
    exempt = [r for r in fake.requests if r.path.startswith(("/interactions/", "/webhooks/"))]
    assert len(exempt) == 4 and all(r.status < 300 for r in exempt)  # 2 callbacks, an edit, a followup
    assert fake.global_rate_limited == limited


# --- failures that are not one request's fault --------------------------------------------------------


async def test_a_cloudflare_ban_answers_429_without_via_for_a_while(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    clock = fake.clock = ManualClock()
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.start_cloudflare_ban(60)
    with pytest.raises(discord.HTTPException) as banned:
        await channel.send("during the ban")
    assert banned.value.status == 429 and "Error 1015" in banned.value.text  # discord.py does not retry it
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(f"{fake.api_base}/users/@me") as resp,
    ):
        assert resp.status == 429 and "Via" not in resp.headers
        assert resp.content_type == "text/html" and resp.headers["Retry-After"] == "60"
    clock.advance(59.9)
    assert fake.cloudflare_banned
    clock.advance(0.1)
    assert not fake.cloudflare_banned
    await channel.send("after the ban")
    assert [m.content for m in fake.sent_messages(CHANNEL)] == ["after the ban"]
    assert fake.cloudflare_answers == 2 and fake.invalid_requests == 0  # Cloudflare's, not the API's


async def test_an_outage_answers_5xx_for_a_while(fake: FakeDiscord, bot: discord.Client) -> None:
    clock = fake.clock = ManualClock()
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.start_outage(30)
    assert fake.outage_status == 503
    with pytest.raises(discord.DiscordServerError) as down:
        await channel.send("during the outage")
    assert down.value.status == 503
    clock.advance(30)
    await channel.send("after the outage")
    fake.start_outage(status=502)  # until ended: discord.py would retry a 502 for 25 s, so raw here
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 502 and resp.content_type == "text/html"
        fake.end_outages()
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 200
    assert [m.content for m in fake.sent_messages(CHANNEL)] == ["after the outage"]
    assert fake.outage_answers == 2 and fake.outage_status is None


async def test_invalid_requests_are_counted_over_ten_minutes(fake: FakeDiscord) -> None:
    clock = fake.clock = ManualClock()
    fake.expected_token = "fake-token"  # by default the fake takes any token it has not revoked
    fake.forbid_channel(CHANNEL)
    api = fake.api_base
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def status(method: str, path: str, **kwargs: object) -> int:
            async with session.request(method, f"{api}{path}", **kwargs) as resp:  # type: ignore[arg-type]
                return resp.status

        assert await status("GET", "/users/@me", headers={"Authorization": "Bot wrong"}) == 401
        assert await status("POST", f"/channels/{CHANNEL}/messages", json={"content": "x"}) == 403
        fake.fail_next("GET", r"^/users/@me$", retry_after=0.01, scope="shared")
        assert await status("GET", "/users/@me") == 429  # shared: not the bot's fault, not counted
        fake.fail_next("GET", r"^/users/@me$", retry_after=0.01)
        assert await status("GET", "/users/@me") == 429
        assert await status("GET", "/channels/1") == 404  # not an invalid request
        assert fake.invalid_requests == 3
        clock.advance(599)
        assert await status("GET", "/users/@me", headers={"Authorization": "Bot wrong"}) == 401
        assert fake.invalid_requests == 4
        clock.advance(2)  # the first three are now older than 10 minutes
        assert fake.invalid_requests == 1 and fake.invalid_requests_total == 4
        assert fake.peak_invalid_requests() == 4
        fake.cloudflare_ban_threshold = 3  # Discord: 10,000 in 10 minutes
        for _ in range(2):
            assert await status("GET", "/users/@me", headers={"Authorization": "Bot wrong"}) == 401
        assert fake.cloudflare_banned
        async with session.get(f"{api}/users/@me") as resp:
            assert resp.status == 429 and "Via" not in resp.headers


async def test_a_revoked_token_answers_401_on_every_route(fake: FakeDiscord, bot: discord.Client) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("before")
    assert fake.revoke_token() == "fake-token"
    with pytest.raises(discord.HTTPException) as revoked:
        await channel.send("after")
    assert revoked.value.status == 401 and revoked.value.code == 0
    routes = [
        ("GET", "/users/@me"),
        ("GET", "/gateway/bot"),
        ("GET", f"/channels/{CHANNEL}"),
        ("GET", f"/channels/{CHANNEL}/messages"),
        ("PUT", f"/applications/{fake.application_id}/commands"),
        ("GET", "/no/such/route"),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path in routes:
            for headers in (AUTH, {}):  # the revoked token, and none at all
                async with session.request(method, f"{fake.api_base}{path}", headers=headers) as resp:
                    assert resp.status == 401 and await resp.json() == UNAUTHORIZED, (method, path)
    # Interaction callbacks and webhooks carry no bot token: the interaction is still answered.
    assert (
        await (await fake.slash(GUILD, CHANNEL, BOB, "echo", {"text": "still"})).response()
    ).content == "still"
    assert [m.content for m in fake.sent_messages(CHANNEL)] == ["before"]


async def test_a_revoked_token_cannot_resume_the_gateway(fake: FakeDiscord) -> None:
    with pytest.raises(discord.ConnectionClosed) as closed:
        async with fake.run_bot(SampleBot()) as bot:
            fake.revoke_token()
            await fake.close_gateway(4000)  # discord.py RESUMEs: refused with 4004
            for _ in range(300):
                if bot.is_closed():
                    break
                await asyncio.sleep(0.01)
    assert closed.value.code == 4004 and fake.resumes == 0


# --- permissions -------------------------------------------------------------------------------------------


async def test_without_read_message_history_the_history_is_empty(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    for channel_id in (CHANNEL, NO_HISTORY):
        channel = bot.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("posted")
        found = [m.id async for m in channel.history(limit=10)]
        if channel_id == CHANNEL:
            assert found == [sent.id] and (await channel.fetch_message(sent.id)).content == "posted"
        else:
            assert found == []  # what Discord answers: no error, no messages
            with pytest.raises(discord.Forbidden):
                await channel.fetch_message(sent.id)


async def test_without_embed_links_the_embeds_are_dropped(fake: FakeDiscord, bot: discord.Client) -> None:
    channel = bot.get_channel(NO_EMBEDS)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("No. 1 again", embed=discord.Embed(title="All of Us Are Dead"))
    assert message.embeds == []
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send(embed=discord.Embed(title="All of Us Are Dead"))
    assert empty.value.status == 400 and empty.value.code == 50006
    await message.edit(content="edited", embed=discord.Embed(title="still not shown"))
    (post,) = fake.sent_messages(NO_EMBEDS)
    assert post.content == "edited" and post.embeds == []
    shown = await bot.get_channel(CHANNEL).send(embed=discord.Embed(title="shown"))  # type: ignore[union-attr]
    assert [e.title for e in shown.embeds] == ["shown"]


async def test_without_attach_files_a_file_is_refused(fake: FakeDiscord, bot: discord.Client) -> None:
    channel = bot.get_channel(NO_FILES)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("card", file=discord.File(io.BytesIO(PNG), "card.png"))
    assert refused.value.code == 50013 and fake.sent_messages(NO_FILES) == []
    await channel.send("text is fine")
    assert [m.content for m in fake.sent_messages(NO_FILES)] == ["text is fine"]


# --- deferred answers -----------------------------------------------------------------------------------


async def test_an_edit_of_the_original_then_a_followup_is_a_new_message(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "twice")
    reply = await rec.response(followups=1)
    assert reply.content == "first" and [m.content for m in reply.followups] == ["second"]
    assert not rec.followup_edited_original


async def test_a_followup_after_the_original_was_deleted_is_a_new_message(
    fake: FakeDiscord, bot: discord.Client
) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "oops")
    reply = await rec.response()
    assert reply.content == "only you see this" and reply.ephemeral
    assert rec.original is not None and rec.original.deleted and not rec.followup_edited_original


# --- components, presses and commands anywhere -------------------------------------------------------

FOREIGN = (
    810_000_000_000_000_500  # a server where a fan installed the app for themselves; the bot is not in it
)
FOREIGN_CHANNEL = 810_000_000_000_000_510
CAROL = 810_000_000_000_003_000  # a member of FOREIGN only


class Pager(discord.ui.View):
    """Buttons answered in every way a page can be: an update, a deferred update, a private line."""

    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Next", custom_id="pager:next")
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        assert interaction.message is not None and interaction.message.interaction_metadata is not None
        ran_by = interaction.message.interaction_metadata.user.id
        await interaction.response.edit_message(content=f"page 2 for {interaction.user.id} (ran by {ran_by})")

    @discord.ui.button(label="Slow", custom_id="pager:slow")
    async def slow(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()  # DEFERRED_UPDATE_MESSAGE for a press
        await interaction.edit_original_response(content="page 3")

    @discord.ui.button(label="Whisper", custom_id="pager:whisper")
    async def whisper(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("only you", ephemeral=True)

    @discord.ui.button(label="Off", custom_id="pager:off", disabled=True)
    async def off(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="pressed a disabled button")

    @discord.ui.button(label="Done", custom_id="pager:done", row=1)
    async def done(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(view=None)


class AnywhereBot(commands.Bot):
    """Commands synced globally: one a user may install and run anywhere, one for servers only."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            guild_ready_timeout=0.05,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.release = asyncio.Event()

    async def setup_hook(self) -> None:
        @self.tree.command(description="Where am I?")
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def hello(interaction: discord.Interaction, private: bool = False) -> None:
            cached = interaction.guild_id is not None and self.get_guild(interaction.guild_id) is not None
            text = (
                f"context {interaction.context.value if hasattr(interaction.context, 'value') else ''}"
                f"guild={interaction.guild_id} cached={cached} user_install={interaction.is_user_integration()}"
            )
            await interaction.response.send_message(text, view=Pager(), ephemeral=private)

        @self.tree.command(description="Servers that installed the bot only")
        @app_commands.allowed_installs(guilds=True, users=False)
        @app_commands.allowed_contexts(guilds=True)
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("admin")

        @self.tree.command(description="Answer when the test says so")
        async def hold(interaction: discord.Interaction) -> None:
            await asyncio.wait_for(self.release.wait(), 2)
            await interaction.response.send_message("released")

        await self.tree.sync()


@pytest.fixture
async def anywhere(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    fake.add_guild(
        FOREIGN,
        "Someone else's server",
        channels=[FOREIGN_CHANNEL],
        members=[FakeMember(CAROL, "carol"), FakeMember(BOB, "bob")],
        bot_member=False,
    )
    async with fake.run_bot(AnywhereBot()) as bot:
        yield bot


async def post_raw(fake: FakeDiscord, body: dict) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.post(f"{fake.api_base}/channels/{CHANNEL}/messages", json=body) as resp,
    ):
        return resp.status, await resp.json()


def row(*buttons: dict) -> dict:
    return {"type": 1, "components": list(buttons)}


def button(custom_id: str | None, label: str = "Next", **extra: object) -> dict:
    data: dict = {"type": 2, "style": 1, "label": label, **extra}
    if custom_id is not None:
        data["custom_id"] = custom_id
    return data


@pytest.mark.parametrize(
    ("components", "problem"),
    [
        ([row(button(f"b{i}")) for i in range(6)], "6 rows > 5"),
        ([row(*(button(f"b{i}") for i in range(6)))], "6 items, must be 1 to 5"),
        ([row()], "0 items"),
        ([row(button("x" * 101))], "custom_id: must be 1 to 100"),
        ([row(button(None))], "custom_id: must be 1 to 100"),
        ([row(button("a", label="y" * 81))], "label: 81 characters > 80"),
        ([row(button("a"), button("a"))], "COMPONENT_CUSTOM_ID_DUPLICATED"),
        ([row(button("a")), row(button("a"))], "COMPONENT_CUSTOM_ID_DUPLICATED"),
        ([button("a")], "must be an action row"),
        ([row(button("a", style=5))], "a link button needs a url"),
        ([row(button("a", label=""))], "needs a label or an emoji"),
        ([row({"type": 3, "custom_id": "menu", "options": []}, button("a"))], "a select menu must be alone"),
    ],
)
async def test_components_are_validated_like_discord(
    fake: FakeDiscord, components: list, problem: str
) -> None:
    status, body = await post_raw(fake, {"content": "page", "components": components})
    assert status == 400 and body["code"] == 50035
    assert any(problem in p for p in body["errors"]["_errors"]), body
    assert fake.sent_messages(CHANNEL) == []


async def test_the_largest_valid_components_are_accepted(fake: FakeDiscord) -> None:
    components = [row(*(button(f"{r}-{i}-" + "x" * 95, label="y" * 80) for i in range(5))) for r in range(5)]
    status, body = await post_raw(fake, {"components": components})  # components alone are a message
    assert status == 200 and len(body["components"]) == 5
    (post,) = fake.sent_messages(CHANNEL)
    assert len(post.buttons) == 25 and post.button("4-4-" + "x" * 95) is not None
    assert post.button_labelled("y" * 80)["custom_id"] == "0-0-" + "x" * 95
    with pytest.raises(AssertionError, match="no button 'Back'"):
        post.button_labelled("Back")


async def test_a_press_updates_the_message_it_was_on(fake: FakeDiscord, anywhere: discord.Client) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "hello")).response()
    assert [b["label"] for b in reply.buttons] == ["Next", "Slow", "Whisper", "Off", "Done"]
    assert len(reply.components) == 2 and reply.message is not None
    page = reply.message
    rec = await fake.press(page, "pager:next", ALICE)
    pressed = await rec.response()
    assert pressed.type == CALLBACK_UPDATE_MESSAGE and rec.message is page and pressed.message is page
    assert page.content == f"page 2 for {ALICE} (ran by {BOB})" and page.edited
    assert rec.type == 3 and rec.payload["data"] == {"custom_id": "pager:next", "component_type": 2}
    assert rec.payload["message"]["id"] == str(page.id) and rec.edits == [rec.callback["data"]]
    assert pressed.buttons == reply.buttons  # an update without components keeps them


async def test_a_deferred_update_then_an_edit_of_the_original(
    fake: FakeDiscord, anywhere: discord.Client
) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "hello")).response()
    rec = await fake.press(reply.message, "pager:slow", BOB)
    pressed = await rec.response()
    assert pressed.type == CALLBACK_DEFERRED_UPDATE and pressed.deferred
    assert pressed.message is reply.message and pressed.content == "page 3"
    assert len(rec.edits) == 1 and rec.followups == []
    whisper = await (await fake.press(reply.message, "pager:whisper", BOB)).response()
    assert whisper.type == CALLBACK_MESSAGE and whisper.ephemeral and whisper.content == "only you"
    assert whisper.message is not reply.message and reply.message.content == "page 3"
    done = await (await fake.press(reply.message, "pager:done", BOB)).response()
    assert done.components == [] and reply.message.buttons == []


async def test_presses_a_client_could_not_make_are_refused(
    fake: FakeDiscord, anywhere: discord.Client
) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, BOB, "hello")).response()
    with pytest.raises(FakeDiscordRefusal, match="'pager:nope' is not on"):
        await fake.press(reply.message, "pager:nope", BOB)
    with pytest.raises(FakeDiscordRefusal, match="'pager:off' is disabled"):
        await fake.press(reply.message, "pager:off", BOB)
    stale = await (await fake.press(reply.message, "pager:off", BOB, force=True)).response()
    assert stale.content == "pressed a disabled button"  # a stale client: the bot must cope
    private = await (await fake.slash(GUILD, CHANNEL, BOB, "hello", {"private": True})).response()
    assert private.ephemeral
    with pytest.raises(FakeDiscordRefusal, match="ephemeral"):
        await fake.press(private.message, "pager:next", ALICE)
    assert (await (await fake.press(private.message, "pager:next", BOB)).response()).ephemeral


async def test_update_callbacks_answer_presses_only(fake: FakeDiscord, anywhere: AnywhereBot) -> None:
    rec = await fake.slash(GUILD, CHANNEL, BOB, "hold")
    for kind in (CALLBACK_UPDATE_MESSAGE, CALLBACK_DEFERRED_UPDATE):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{fake.api_base}/interactions/{rec.id}/{rec.token}/callback",
                json={"type": kind, "data": {"content": "x"}},
            ) as resp,
        ):
            assert resp.status == 400 and (await resp.json())["code"] == 50035
    assert rec.callbacks == []
    anywhere.release.set()
    assert (await rec.response()).content == "released"


async def test_the_sync_payload_says_where_commands_run(fake: FakeDiscord, anywhere: discord.Client) -> None:
    synced = {c["name"]: c for c in fake.synced_commands()}
    assert synced["hello"]["integration_types"] == [0, 1] and synced["hello"]["contexts"] == [0, 1, 2]
    assert synced["admin"]["integration_types"] == [0] and synced["admin"]["contexts"] == [0]


async def test_a_user_install_runs_in_a_server_without_the_bot(
    fake: FakeDiscord, anywhere: discord.Client
) -> None:
    assert anywhere.get_guild(FOREIGN) is None and [g.id for g in anywhere.guilds] == [GUILD]
    rec = await fake.slash(FOREIGN, FOREIGN_CHANNEL, CAROL, "hello")
    reply = await rec.response()
    assert f"guild={FOREIGN} cached=False user_install=True" in reply.content
    payload = rec.payload
    assert payload["authorizing_integration_owners"] == {"1": str(CAROL)} and payload["context"] == 0
    assert payload["member"]["user"]["id"] == str(CAROL) and "user" not in payload
    assert int(payload["app_permissions"]) == USER_APP_PERMISSIONS
    assert rec.install == INSTALL_USER and rec.context == CONTEXT_GUILD
    pressed = await (await fake.press(reply.message, "pager:next", BOB)).response()  # another member
    assert pressed.content == f"page 2 for {BOB} (ran by {CAROL})"
    assert fake.interactions[-1].payload["authorizing_integration_owners"] == {"1": str(CAROL)}
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for path in (
            f"/channels/{FOREIGN_CHANNEL}",
            f"/channels/{FOREIGN_CHANNEL}/messages",
            f"/guilds/{FOREIGN}",
        ):
            async with session.get(fake.api_base + path) as resp:
                assert resp.status == 403 and (await resp.json())["code"] == 50001, path
    with pytest.raises(FakeDiscordRefusal, match="not in guild"):
        await fake.slash(FOREIGN, FOREIGN_CHANNEL, CAROL, "hello", install="guild")
    with pytest.raises(FakeDiscordRefusal, match="integration_types"):
        await fake.slash(FOREIGN, FOREIGN_CHANNEL, CAROL, "admin")


async def test_dms_and_group_dms(fake: FakeDiscord, anywhere: discord.Client) -> None:
    dm = fake.add_dm(BOB)
    rec = await fake.slash(None, dm.id, BOB, "hello")
    reply = await rec.response()
    assert "guild=None cached=False user_install=False" in reply.content
    payload = rec.payload
    assert "guild_id" not in payload and "member" not in payload and payload["user"]["id"] == str(BOB)
    assert payload["channel"]["type"] == 1 and payload["context"] == CONTEXT_BOT_DM
    assert payload["authorizing_integration_owners"] == {"0": "0"}  # the server install, answering in its DM
    assert [u["id"] for u in payload["channel"]["recipients"]] == [str(BOB)]
    mine = await fake.slash(None, dm.id, BOB, "hello", install="user")
    assert mine.payload["authorizing_integration_owners"] == {"1": str(BOB)}
    assert "user_install=True" in (await mine.response()).content
    pressed = await (await fake.press(reply.message, "pager:next", BOB)).response()
    assert pressed.content == f"page 2 for {BOB} (ran by {BOB})"
    assert "guild_id" not in fake.interactions[-1].payload and fake.interactions[-1].context == CONTEXT_BOT_DM
    group = fake.add_group_dm([BOB, CAROL], name="chart chat")
    in_group = await fake.slash(None, group.id, CAROL, "hello")
    assert in_group.context == CONTEXT_PRIVATE_CHANNEL and in_group.payload["channel"]["type"] == 3
    assert in_group.payload["authorizing_integration_owners"] == {"1": str(CAROL)}
    assert "user_install=True" in (await in_group.response()).content
    with pytest.raises(FakeDiscordRefusal, match="group DM"):
        await fake.slash(None, group.id, CAROL, "hello", install="guild")
    with pytest.raises(FakeDiscordRefusal, match="not offered in context 1"):
        await fake.slash(None, dm.id, BOB, "admin")
    with pytest.raises(FakeDiscordRefusal, match="not in the private channel"):
        await fake.slash(None, group.id, ALICE, "hello")
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(f"{fake.api_base}/channels/{group.id}") as resp,
    ):
        assert resp.status == 403


async def test_six_thousand_characters_count_across_every_embed(fake: FakeDiscord) -> None:
    half = {"title": "Top 10", "description": "x" * 3100}
    status, body = await post_raw(fake, {"embeds": [half, half]})
    assert status == 400 and any("in all > 6000" in p for p in body["errors"]["_errors"])
    status, _ = await post_raw(fake, {"embeds": [half, {"description": "x" * 2800}]})
    assert status == 200


# --- shards ------------------------------------------------------------------------------------------------


def guild_on(shard_id: int, shard_count: int, n: int = 0) -> int:
    """A server id that Discord routes to `shard_id` of `shard_count` (the n-th such id)."""
    return ((1_000_000 + n * shard_count + shard_id) << 22) | 0x2A


class ShardBot(commands.AutoShardedBot):
    """A bot running some shards of a bot, with one command that says which shard served it."""

    def __init__(self, shard_ids: list[int] | None = None, shard_count: int | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            guild_ready_timeout=0.05,
            help_command=None,
            shard_ids=shard_ids,
            shard_count=shard_count,
        )
        self.served: list[int] = []  # guild ids of the interactions this bot got

        @self.tree.command(description="Which shard am I on?")
        async def where(interaction: discord.Interaction) -> None:
            assert interaction.guild is not None
            self.served.append(interaction.guild.id)
            await interaction.response.send_message(f"shard {interaction.guild.shard_id}")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s sleep between shards: the tests give each key its own window (max_concurrency)."""


async def gateway_json(fake: FakeDiscord, path: str, token: str = "fake-token") -> dict:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bot {token}"}) as session,
        session.get(f"{fake.api_base}{path}") as resp,
    ):
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        return await resp.json()


async def test_gateway_bot_recommends_one_shard_per_thousand_servers() -> None:
    async with FakeDiscord() as fake:
        assert (await gateway_json(fake, "/gateway/bot"))["shards"] == 1  # at least one, with no server
        for n in range(1001):
            fake.add_guild(guild_on(0, 1, n))
        answer = await gateway_json(fake, "/gateway/bot")
        assert answer == {
            "url": fake.gateway_url,
            "shards": 2,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
        }
        fake.recommended_shards, fake.max_concurrency = 16, 4
        answer = await gateway_json(fake, "/gateway/bot")
        assert answer["shards"] == 16 and answer["session_start_limit"]["max_concurrency"] == 4
        assert await gateway_json(fake, "/gateway") == {"url": fake.gateway_url}


class RawGateway:
    """A bare websocket client of the fake's gateway: IDENTIFY exactly as a test wants it."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, fake: FakeDiscord) -> AsyncIterator[RawGateway]:
        async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url) as ws:
            hello = await ws.receive_json(timeout=2)
            assert hello["op"] == 10
            yield cls(session, ws)

    async def identify(self, shard: object, token: str = "fake-token") -> tuple[str, object]:
        """Send IDENTIFY; return ("dispatch", READY's data), ("op", 9) or ("close", code)."""
        await self.ws.send_json({"op": 2, "d": {"token": token, "intents": 1, "shard": shard}})
        msg = await self.ws.receive(timeout=2)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return "close", self.ws.close_code
        data = json.loads(msg.data)
        if data["op"] == 0:
            assert data["t"] == "READY"
            return "dispatch", data["d"]
        return "op", data["op"]


@pytest.mark.parametrize("shard", [[2, 2], [-1, 1], [0, 0], [1], "0,1", [0.0, 1], [True, 2]])
async def test_a_bad_shard_is_closed_with_4010(shard: object) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild(guild_on(0, 1))
        async with RawGateway.open(fake) as gateway:
            assert await gateway.identify(shard) == ("close", 4010)
        assert fake.shard_close_codes == [4010] and fake.identifies[0].outcome == "invalid-shard"


async def test_a_shard_with_too_many_servers_is_closed_with_4011() -> None:
    async with FakeDiscord() as fake:
        assert fake.max_guilds_per_shard == 2500
        fake.max_guilds_per_shard = 2
        for n in range(3):
            fake.add_guild(guild_on(0, 2, n))  # three servers on shard 0 of 2, none on shard 1
        async with RawGateway.open(fake) as gateway:
            assert await gateway.identify([0, 1]) == ("close", 4011)
        async with RawGateway.open(fake) as gateway:
            assert await gateway.identify([0, 2]) == ("close", 4011)
        async with RawGateway.open(fake) as gateway:
            kind, ready = await gateway.identify([1, 2])
            assert kind == "dispatch" and ready["guilds"] == [] and ready["shard"] == [1, 2]
        fake.max_guilds_per_shard = 3
        async with RawGateway.open(fake) as gateway:
            kind, ready = await gateway.identify([0, 2], token="another")
            assert kind == "dispatch" and len(ready["guilds"]) == 3
        assert fake.shard_close_codes == [4011, 4011]
        # discord.py sees the refusal as a ConnectionClosed it does not retry
        fake.max_guilds_per_shard, fake.identify_window = 2, 0.0
        with pytest.raises(FakeDiscordTimeout, match="ConnectionClosed") as caught:
            async with fake.run_bot(ShardBot([0], 1)):
                pass
        assert isinstance(caught.value.__cause__, discord.ConnectionClosed)
        assert caught.value.__cause__.code == 4011


async def test_identifies_of_one_rate_limit_key_are_paced_by_max_concurrency() -> None:
    async with FakeDiscord() as fake:
        fake.add_guild(guild_on(0, 4))
        clock = fake.rate_clock = ManualClock()
        fake.max_concurrency, fake.identify_window = 2, 5.0  # as on Discord
        results = []
        for shard_id in (0, 1, 2, 3):  # keys 0, 1, 0, 1: shards 2 and 3 come too soon
            async with RawGateway.open(fake) as gateway:
                results.append((await gateway.identify([shard_id, 4]))[0])
        assert results == ["dispatch", "dispatch", "op", "op"]
        clock.advance(4.9)
        async with RawGateway.open(fake) as gateway:
            assert await gateway.identify([2, 4]) == ("op", 9)  # INVALID_SESSION: identify again later
        async with RawGateway.open(fake) as gateway:  # another bot's keys are its own
            assert (await gateway.identify([2, 4], token="another-bot"))[0] == "dispatch"
        clock.advance(0.1)
        async with RawGateway.open(fake) as gateway:
            assert (await gateway.identify([2, 4]))[0] == "dispatch"
        assert [(r.shard_id, r.outcome) for r in fake.identifies] == [
            (0, "ready"),
            (1, "ready"),
            (2, "too-soon"),
            (3, "too-soon"),
            (2, "too-soon"),
            (2, "ready"),
            (2, "ready"),
        ]
        assert [r.since_last for r in fake.identify_violations] == [0.0, 0.0, 4.9]
        limit = (await gateway_json(fake, "/gateway/bot"))["session_start_limit"]
        assert limit["remaining"] == 997 and limit["reset_after"] > 0  # three sessions started


async def test_each_client_gets_its_own_shards_servers_and_interactions() -> None:
    """Two processes of one bot (here two clients), each with one of two shards."""
    async with FakeDiscord() as fake:
        first = [guild_on(0, 2, n) for n in range(3)]
        second = [guild_on(1, 2, n) for n in range(2)]
        for guild_id in first + second:
            fake.add_guild(guild_id, channels=[guild_id + 1], members=[BOB])
        late = guild_on(1, 2, 9)
        fake.max_concurrency = 2  # the two shards are of two rate-limit keys: they may identify together
        async with fake.run_bot(ShardBot([0], 2)) as zero, fake.run_bot(ShardBot([1], 2)) as one:
            assert isinstance(zero, ShardBot) and isinstance(one, ShardBot)
            assert sorted(g.id for g in zero.guilds) == sorted(first)
            assert sorted(g.id for g in one.guilds) == sorted(second)
            assert fake.connected_shards() == [(0, 2), (1, 2)]
            assert [p["shard"] for p in fake.identify_payloads] == [[0, 2], [1, 2]]
            for guild_id in (second[0], first[1], second[1]):
                reply = await (await fake.slash(guild_id, guild_id + 1, BOB, "where")).response()
                assert reply.content == f"shard {(guild_id >> 22) % 2}"
            assert zero.served == [first[1]] and one.served == [second[0], second[1]]
            fake.add_guild(late, channels=[late + 1])
            await fake.send_guild_create(late)  # the bot joins a server: its shard's connection hears it
            for _ in range(200):
                if one.get_guild(late) is not None:
                    break
                await asyncio.sleep(0.01)
            assert one.get_guild(late) is not None and zero.get_guild(late) is None
        with pytest.raises(
            RuntimeError, match=r"no gateway connection serves guild \d+ \(connected shards: \[\]"
        ):
            await fake.slash(first[0], first[0] + 1, BOB, "where")


async def test_the_global_limit_is_one_budget_for_every_process_of_a_bot(fake: FakeDiscord) -> None:
    """Discord's 50 requests per second are per bot token, whichever connection or process sends them."""
    fake.rate_clock = ManualClock()
    fake.global_limit = 4
    statuses = []
    async with aiohttp.ClientSession(headers=AUTH) as one, aiohttp.ClientSession(headers=AUTH) as two:
        for session in (one, two, one, two, two, one):
            async with session.get(f"{fake.api_base}/users/@me") as resp:
                statuses.append(resp.status)
    assert statuses == [200, 200, 200, 200, 429, 429] and fake.global_rate_limited == 2
