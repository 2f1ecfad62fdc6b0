"""Canaries for what bot/compat.py relies on in discord.py's internals, against the real discord.py:
each fails when a release changes it. And the public paths the bot takes (with a warning) when a
shortcut is gone."""

from __future__ import annotations

import asyncio
import inspect
import logging
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import discord.http
import pytest
from discord.gateway import DiscordWebSocket
from fake_discord import FakeChannel, FakeDiscord

from bot import compat
from bot.client import ChartBot
from bot.model import InputError
from bot.settings import Settings

GUILD = 840_000_000_000_000_001
CHANNEL = 840_000_000_000_000_010
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def probe_afresh() -> Iterator[None]:
    """Each test probes discord.py itself; after it (and after monkeypatch has put things back), the
    next user of bot.compat probes again."""
    compat._found = None
    yield
    compat._found = None


def post(role_id: int | None = None) -> tuple[discord.Embed, discord.AllowedMentions]:
    embed = discord.Embed(
        title="All of Us Are Dead", url="https://www.netflix.com/tudum/top10#n1", colour=0xE50914
    )
    embed.description = "No. 1 in 🇰🇷 South Korea for the first time"
    embed.set_footer(text="Netflix Top 10 · week ending Feb 6, 2022")
    if role_id is None:
        return embed, discord.AllowedMentions.none()
    return embed, discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(role_id)], replied_user=False
    )


# --- the installed discord.py -------------------------------------------------------------------------


def test_the_installed_discord_py_is_the_pinned_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "discord.py>=2.5,<3" in project["dependencies"]
    assert discord.version_info[:2] >= (2, 5) and discord.version_info.major < 3


def test_every_shortcut_works_on_the_installed_discord_py(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.compat"):
        found = compat.check_discord_version()
    assert found == compat.Shortcuts(bucket_sweep=True, prepared_send=True, endpoints=True, bot_gateway=True)
    assert caplog.records == []


# --- canaries: what is relied on, on the real HTTPClient ----------------------------------------------


async def test_canary_the_bucket_sweep_is_looked_up_on_the_client_each_time() -> None:
    """amortize_bucket_sweep replaces the sweep on the instance: that works only while get_ratelimit
    calls `self._try_clear_expired_ratelimits()` and the buckets are a dict in `_buckets`."""
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    assert isinstance(http._buckets, dict)
    assert list(inspect.signature(discord.http.HTTPClient._try_clear_expired_ratelimits).parameters) == [
        "self"
    ]
    calls: list[int] = []
    http._try_clear_expired_ratelimits = lambda: calls.append(len(http._buckets))  # type: ignore[method-assign]
    http.get_ratelimit("GET /channels/{channel_id}:1")
    http.get_ratelimit("GET /channels/{channel_id}:1")  # known: no sweep
    assert calls == [1] and list(http._buckets) == ["GET /channels/{channel_id}:1"]


async def test_canary_the_real_sweep_drops_inactive_buckets_from_256_on() -> None:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    for n in range(300):
        http.get_ratelimit(f"POST /channels/{{channel_id}}/messages:{n}")
    for bucket in http._buckets.values():
        bucket._last_request -= 301  # idle for more than 5 minutes
    discord.http.HTTPClient._try_clear_expired_ratelimits(http)
    assert http._buckets == {}


async def test_the_amortized_sweep_on_the_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    sweeps: list[int] = []
    real = discord.http.HTTPClient._try_clear_expired_ratelimits

    def counted(self: discord.http.HTTPClient) -> None:
        sweeps.append(len(self._buckets))
        real(self)

    monkeypatch.setattr(discord.http.HTTPClient, "_try_clear_expired_ratelimits", counted)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    assert compat.amortize_bucket_sweep(http)
    for n in range(5000):
        http.get_ratelimit(f"POST /channels/{{channel_id}}/messages:{n}")
    assert sweeps == [256, 512, 1024, 2048, 4096]  # not 4,745 sweeps of up to 5,000 buckets
    assert len(http._buckets) == 5000  # all active: none dropped


def test_the_sweep_runs_only_when_the_buckets_doubled() -> None:
    class Http:
        def __init__(self) -> None:
            self._buckets: dict[str, object] = {}
            self.sweeps = 0

        def _try_clear_expired_ratelimits(self) -> None:
            self.sweeps += 1

    http = Http()
    assert compat.amortize_bucket_sweep(http)
    for n in range(5000):
        http._buckets[str(n)] = object()
        http._try_clear_expired_ratelimits()
    assert http.sweeps == 5  # at 256, 512, 1024, 2048 and 4096 buckets, not 4745 times
    assert not compat.amortize_bucket_sweep(object())


def test_canary_handle_message_parameters_gives_the_body_we_read() -> None:
    embed, mentions = post(role_id=7)
    with discord.http.handle_message_parameters(
        content="<@&7>", embed=embed, nonce="n1", allowed_mentions=mentions
    ) as params:
        assert isinstance(params, discord.http.MultipartParameters)
        assert not params.files and not params.multipart
        assert params.payload == {
            "embeds": [embed.to_dict()],
            "content": "<@&7>",
            "nonce": "n1",
            "enforce_nonce": True,  # discord.py >= 2.5: Discord drops a repeat of the nonce
            "tts": False,
            "allowed_mentions": {"parse": [], "roles": [7]},
        }
    assert discord.http.MultipartParameters._fields == ("payload", "multipart", "files")
    send = inspect.signature(discord.http.HTTPClient.send_message)
    assert list(send.parameters) == ["self", "channel_id", "params"]
    assert send.parameters["params"].kind is inspect.Parameter.KEYWORD_ONLY


def test_canary_route_base_and_default_gateway() -> None:
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    saved = compat.point_at("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway")
    try:
        route = discord.http.Route("GET", "/channels/{channel_id}", channel_id=1)
        assert route.url == "http://127.0.0.1:9/api/v10/channels/1"  # read from the class when built
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    finally:
        assert saved is not None
        compat.restore_endpoints(saved)
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    assert compat.point_at(None, None) is None


# --- the prepared send against the fake Discord -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "Chart Fans", channels=[FakeChannel(CHANNEL, "charts")])
        yield fake


def plain_client() -> discord.Client:
    return discord.Client(
        intents=discord.Intents(guilds=True),
        guild_ready_timeout=0.05,
        allowed_mentions=discord.AllowedMentions.none(),
    )


async def test_a_prepared_post_is_the_body_messageable_send_sends(fake: FakeDiscord) -> None:
    """The canary for the whole shortcut: the same post made through discord.py's public send and through
    the prepared path reaches Discord as the same JSON."""
    embed, mentions = post(role_id=7)
    async with fake.run_bot(plain_client()) as client:
        channel = client.get_partial_messageable(CHANNEL)
        await channel.send(content="<@&7>", embed=embed, nonce="n1", allowed_mentions=mentions)
        prepared = compat.prepare_message(content="<@&7>", embed=embed, nonce="n1", allowed_mentions=mentions)
        message_id = await compat.send_prepared(client, CHANNEL, prepared)
    public, shortcut = fake.sent_messages(CHANNEL)
    assert shortcut.id == message_id
    # Messageable.send also sends an empty component list; anything else new fails here, on purpose.
    assert shortcut.history[0] == prepared.payload
    assert public.history[0] == {**prepared.payload, "components": []}


def rename_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a release renamed `_try_clear_expired_ratelimits` (and `get_ratelimit` called the new name)."""
    sweep = discord.http.HTTPClient._try_clear_expired_ratelimits
    get_ratelimit = discord.http.HTTPClient.get_ratelimit

    def renamed_get_ratelimit(self: discord.http.HTTPClient, key: str) -> object:
        self._try_clear_expired_ratelimits = self._sweep_buckets  # type: ignore[attr-defined, method-assign]
        try:
            return get_ratelimit(self, key)
        finally:
            del self._try_clear_expired_ratelimits

    monkeypatch.delattr(discord.http.HTTPClient, "_try_clear_expired_ratelimits")
    monkeypatch.setattr(discord.http.HTTPClient, "_sweep_buckets", sweep, raising=False)
    monkeypatch.setattr(discord.http.HTTPClient, "get_ratelimit", renamed_get_ratelimit)


async def test_without_the_private_sweep_the_public_one_stays_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rename_the_sweep(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="bot.compat"):
        found = compat.check_discord_version()
    assert not found.bucket_sweep and found.prepared_send and found.endpoints
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert f"discord.py {discord.__version__}" in warning.getMessage()
    assert "_try_clear_expired_ratelimits" in warning.getMessage()
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    assert not compat.amortize_bucket_sweep(http)
    assert "_try_clear_expired_ratelimits" not in vars(http)  # nothing patched onto the client


async def test_without_prepared_messages_posts_go_through_messageable_send(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    embed, mentions = post(role_id=7)
    with discord.http.handle_message_parameters(
        content="<@&7>", embed=embed, nonce="n2", allowed_mentions=mentions
    ) as params:
        expected = params.payload
    # As if a release moved it: discord.abc keeps its own reference, so Messageable.send still works.
    monkeypatch.delattr(discord.http, "handle_message_parameters")
    public_sends: list[object] = []
    real_send = discord.abc.Messageable.send

    async def counted_send(self: discord.abc.Messageable, *args: object, **kwargs: object) -> discord.Message:
        public_sends.append(kwargs)
        return await real_send(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(discord.abc.Messageable, "send", counted_send)
    with caplog.at_level(logging.WARNING, logger="bot.compat"):
        assert not compat.check_discord_version().prepared_send
    assert "Messageable.send" in caplog.records[0].getMessage()
    prepared = compat.prepare_message(content="<@&7>", embed=embed, nonce="n2", allowed_mentions=mentions)
    assert prepared.payload == expected  # built with the public to_dict()s: the same body
    async with fake.run_bot(plain_client()) as client:
        message_id = await compat.send_prepared(client, CHANNEL, prepared)
    (sent,) = fake.sent_messages(CHANNEL)
    assert sent.id == message_id and len(public_sends) == 1
    assert sent.history[0] == {**expected, "components": []}


def test_allowed_mentions_round_trip() -> None:
    for mentions in (
        discord.AllowedMentions.none(),
        discord.AllowedMentions.all(),
        discord.AllowedMentions(everyone=False, users=False, roles=[discord.Object(7)], replied_user=False),
        discord.AllowedMentions(everyone=False, users=[discord.Object(3)], roles=True),
    ):
        data = mentions.to_dict()
        rebuilt = compat._allowed_mentions(data)
        assert rebuilt is not None and rebuilt.to_dict() == data
    assert compat._allowed_mentions(None) is None


async def test_endpoints_that_cannot_be_applied_are_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(discord.http.Route, "BASE")
    assert not compat.check_discord_version().endpoints
    with pytest.raises(InputError, match=rf"^discord.py {discord.__version__} cannot be pointed at"):
        compat.point_at("http://127.0.0.1:9/api/v10", None)
    assert compat.point_at(None, None) is None  # nothing asked: nothing to refuse


async def test_the_bot_checks_discord_py_when_it_logs_in(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rename_the_sweep(monkeypatch)
    settings = Settings(db_path=str(tmp_path / "charts.sqlite3"), poll_in_bot=False, **_endpoints(fake))
    with caplog.at_level(logging.WARNING, logger="bot.compat"):
        async with fake.run_bot(ChartBot(settings, guild_ready_timeout=0.05, extensions=())):
            pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.compat"]
    assert len(warnings) == 1 and warnings[0].startswith(f"discord.py {discord.__version__}: ")


def _endpoints(fake: FakeDiscord) -> dict[str, str]:
    env = fake.settings_env()
    return {"api_base": env["DISCORD_API_BASE"], "gateway_url": env["DISCORD_GATEWAY_URL"]}


# --- the bot's gateway ----------------------------------------------------------------------------------


async def test_canary_get_bot_gateway_gives_the_count_url_and_limits(fake: FakeDiscord) -> None:
    fake.recommended_shards, fake.max_concurrency = 3, 2
    async with fake.run_bot(plain_client()) as client:
        shards, url, limits = await client.http.get_bot_gateway()
        assert (shards, url, limits["max_concurrency"]) == (3, fake.gateway_url, 2)
        sharded = discord.AutoShardedClient(intents=discord.Intents(guilds=True))
        sharded.http = client.http  # logged in: what ChartBot.connect has before its shards connect
        assert await compat.bot_gateway(sharded) == compat.BotGateway(shards=3, max_concurrency=2)


async def test_without_get_bot_gateway_discord_py_picks_the_count(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(compat, "_bot_gateway_works", lambda: False)
    fake.max_concurrency = 2
    settings = Settings(db_path=str(tmp_path / "charts.sqlite3"), poll_in_bot=False, **_endpoints(fake))
    bot = ChartBot(settings, guild_ready_timeout=0.05, extensions=())
    with caplog.at_level(logging.WARNING, logger="bot.compat"):
        async with fake.run_bot(bot):
            assert bot.shard_count == 1 and bot.recommended_shards is None
            assert bot.identify_pacer.max_concurrency == 2  # from the public fetch_session_start_limits
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "bot.compat"]
    assert "HTTPClient.get_bot_gateway is gone" in warning
