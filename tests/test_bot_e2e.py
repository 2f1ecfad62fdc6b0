"""The real ChartBot, unchanged, against the fake Discord: only the settings differ from production.

The store is a copy of the database built from the real Netflix files in tests/data (see conftest).
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fake_discord import CALLBACK_AUTOCOMPLETE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_MESSAGE, FakeDiscord

from bot.cli import main
from bot.client import DB_UNAVAILABLE, ChartBot, TokenRedactor, install_token_redaction, serve, sync
from bot.model import InputError
from bot.settings import Settings
from bot.store import StoreBusy

GUILD = 820_000_000_000_000_001
CHANNEL = 820_000_000_000_000_010
FAN = 820_000_000_000_001_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AOUAD = "All of Us Are Dead"


def bot_settings(fake: FakeDiscord, db: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(db),
            "DISCORD_DEV_GUILD": str(GUILD),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
            **env,
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "Chart Fans", channels=[CHANNEL], members=[FAN])
        yield fake


@pytest.fixture
async def bot(fake: FakeDiscord, chart_db: Path) -> AsyncIterator[ChartBot]:
    chartbot = ChartBot(bot_settings(fake, chart_db), guild_ready_timeout=0.05)
    async with fake.run_bot(chartbot):
        yield chartbot


async def test_commands_are_synced_to_the_dev_guild_only(fake: FakeDiscord, bot: ChartBot) -> None:
    assert [call.guild_id for call in fake.sync_calls] == [GUILD]
    commands = {c["name"]: c for c in fake.synced_commands(GUILD)}
    assert set(commands) >= {"rank", "top", "milestones"}  # and whatever other cogs add
    options = {o["name"]: o for o in commands["rank"]["options"]}
    assert list(options) == ["title", "region", "category", "date"]
    assert options["title"]["required"] and options["title"]["autocomplete"]
    assert options["region"]["autocomplete"] and not options["region"].get("required")
    assert {c["value"] for c in options["category"]["choices"]} >= {"tv", "movies", "tv-non-english"}
    top = [o["name"] for o in commands["top"]["options"]]
    assert top == ["region", "category", "service", "date", "period"]
    assert len(bot.titles) > 1000


async def test_rank_card_with_picture(fake: FakeDiscord, bot: ChartBot) -> None:
    rec = await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD, "date": "2022-02-06"})
    reply = await rec.response(timeout=5)
    assert reply.type == CALLBACK_DEFERRED_MESSAGE and not reply.ephemeral
    embed = reply.embed
    assert embed is not None and embed["title"] == "All of Us Are Dead: Season 1"
    assert "**No. 1** on Netflix's global TV (Non-English) list" in embed["description"]
    assert "No. 1 in 63 of 94 countries" in embed["description"]
    assert embed["image"]["url"] == "attachment://rank-history.png"
    (picture,) = reply.files
    assert picture.filename == "rank-history.png" and picture.data.startswith(PNG_MAGIC)
    assert reply.allowed_mentions == {"parse": []}


async def test_deferred_answers_edit_the_thinking_message(fake: FakeDiscord, bot: ChartBot) -> None:
    """Not a first followup: Discord turns that into an edit of the original only as deprecated behaviour."""
    bot.defer_after = 0.0  # every command that may be slow defers
    for command, options in (("rank", {"title": AOUAD}), ("top", {"region": "kr"}), ("milestones", {})):
        rec = await fake.slash(GUILD, CHANNEL, FAN, command, options)
        reply = await rec.response(timeout=5)
        assert reply.deferred and reply.embeds and not reply.ephemeral, command
        assert reply.message is rec.original and rec.original.edited, command
        assert rec.followups == [] and not rec.followup_edited_original, command
        edits = [r for r in fake.requests if r.method == "PATCH" and rec.token in r.path]
        assert [r.path.rsplit("/", 1)[-1] for r in edits] == ["@original"], command


async def test_rank_latest_in_one_region(fake: FakeDiscord, bot: ChartBot) -> None:
    rec = await fake.slash(
        GUILD, CHANNEL, FAN, "rank", {"title": "all of us are dead", "region": "United States"}
    )
    reply = await rec.response(timeout=5)
    embed = reply.embed
    assert embed is not None
    assert [f["name"] for f in embed["fields"]] == ["🇺🇸 United States · TV"]
    assert embed["fields"][0]["value"].startswith("**No. 8** ▼3")
    assert "No. 1 in" not in embed["description"]  # country counts belong to the world view
    assert reply.files[0].data.startswith(PNG_MAGIC)
    rec = await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD, "region": "aq"})
    assert (
        (await rec.response(timeout=5)).embed["description"].startswith("Not in the Top 10 in 🇦🇶 Antarctica")
    )


async def test_title_autocomplete(fake: FakeDiscord, bot: ChartBot) -> None:
    choices = await fake.autocomplete(GUILD, CHANNEL, FAN, "rank", focused="title", value="all of")
    assert choices[0] == {"name": AOUAD, "value": AOUAD}
    assert len(choices) <= 25
    rec = fake.interactions[-1]
    assert rec.callback_type == CALLBACK_AUTOCOMPLETE
    assert rec.answered_after is not None  # how fast: bench/commands.py measures it
    regions = await fake.autocomplete(GUILD, CHANNEL, FAN, "top", focused="region", value="south k")
    assert regions[0] == {"name": "South Korea (kr)", "value": "kr"}


async def test_top_us_tv(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await (
        await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us", "category": "tv"})
    ).response()
    assert reply.type == CALLBACK_MESSAGE and not reply.ephemeral
    (embed,) = reply.embeds
    assert embed["title"] == "🇺🇸 U.S. Top 10 · TV"
    lines = embed["description"].splitlines()
    assert len(lines) == 10 and "**Inventing Anna**" in lines[0]
    assert lines[7] == "` 8.` ▼3 **All of Us Are Dead** · Season 1"
    world = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"category": "tv"})).response()
    assert [e["title"] for e in world.embeds] == [
        "🌍 Netflix global Top 10 · TV (English)",
        "🌍 Netflix global Top 10 · TV (Non-English)",
    ]
    past = await (
        await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "South Korea", "date": "2021-10-03"})
    ).response()
    assert (
        past.embeds[0]["title"] == "🇰🇷 South Korea Top 10 · TV"
        and "Squid Game" in past.embeds[0]["description"]
    )


async def test_unknown_title_and_bad_options(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": "Sqiud Gme"})).response()
    assert reply.type == CALLBACK_MESSAGE and reply.ephemeral
    assert (
        reply.content.startswith("No ")
        and "Did you mean" in reply.content
        and "**Squid Game**" in reply.content
    )
    region = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "Atlantis"})).response()
    assert region.ephemeral and region.content.startswith("unknown region 'Atlantis'")
    day = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"date": "yesterday"})).response()
    assert day.ephemeral and "is not a date" in day.content
    early = await (
        await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us", "date": "2020-01-05"})
    ).response()
    assert early.ephemeral and early.content.startswith("No 🇺🇸 U.S. Top 10 · TV chart for Jan 5, 2020")


async def test_dates_out_of_range_answer_privately(fake: FakeDiscord, bot: ChartBot) -> None:
    """Year 1 once overflowed the date arithmetic behind /rank; 2202 is no chart's date either."""
    rank = await (
        await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD, "date": "0001-01-01"})
    ).response()
    assert rank.ephemeral and rank.content == "0001-01-01 is before 2000-01-01: no chart is that old"
    top = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"date": "2202-01-01"})).response()
    assert top.ephemeral and top.content.startswith("2202-01-01 is more than 7 days in the future (today is ")


async def test_hostile_title_argument(fake: FakeDiscord, bot: ChartBot) -> None:
    hostile = ("@everyone **free** `nitro` <@&123456789012345678> \u200b\u200d" * 40)[:2000]
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": hostile})).response()
    assert reply.ephemeral and len(reply.content) <= 2000
    assert reply.allowed_mentions == {"parse": []} and reply.message is not None
    assert not reply.message.mentions_everyone
    assert "@everyone" not in reply.content and "\\*\\*free\\*\\*" in reply.content
    assert "\u200d" not in reply.content
    hidden = await (
        await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": "All\u200b of Us\u2060 Are Dead"})
    ).response()
    assert hidden.embed is not None and hidden.embed["title"].startswith(AOUAD)
    choices = await fake.autocomplete(GUILD, CHANNEL, FAN, "rank", focused="title", value=hostile)
    assert all(len(c["value"]) <= 100 for c in choices)


async def test_429_on_the_reply_is_retried(fake: FakeDiscord, bot: ChartBot) -> None:
    failure = fake.fail_next("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$", retry_after=0.05)
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD})).response(timeout=5)
    assert failure.hits == 1
    assert reply.embed is not None and reply.files[0].data.startswith(PNG_MAGIC)
    callback = fake.fail_next("POST", r"/interactions/\d+/[^/]+/callback", retry_after=0.05)
    top = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "kr"})).response()
    assert callback.hits == 1 and top.embeds[0]["title"] == "🇰🇷 South Korea Top 10 · TV"


async def test_closed_database_heals(fake: FakeDiscord, bot: ChartBot) -> None:
    assert bot.store is not None
    await bot.store.close()  # as if the connection died under the bot
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us"})).response()
    assert reply.ephemeral and reply.content == DB_UNAVAILABLE
    assert bot.store is None  # forgotten: the next command opens the database again
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us"})).response()
    assert not reply.ephemeral and reply.embeds[0]["title"] == "🇺🇸 U.S. Top 10 · TV"


async def test_closed_database_after_defer_answers_privately(fake: FakeDiscord, bot: ChartBot) -> None:
    assert bot.store is not None
    store = bot.store
    real = store.charts.title_report

    async def close_then_read(*args: object) -> object:
        await store.close()
        return await real(*args)  # type: ignore[arg-type]

    store.charts.title_report = close_then_read  # type: ignore[method-assign]
    rec = await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD})
    reply = await rec.response(timeout=5)
    assert reply.deferred and reply.ephemeral and reply.content == DB_UNAVAILABLE
    assert rec.original is not None and rec.original.deleted  # the public "thinking…" is gone
    assert not rec.followup_edited_original  # the private error is a message of its own
    again = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD})).response(timeout=5)
    assert again.embed is not None and not again.ephemeral


async def test_locked_database(fake: FakeDiscord, bot: ChartBot, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock held by another process: the error sqlite raises once busy_timeout runs out."""
    assert bot.store is not None

    async def locked(*args: object, **kwargs: object) -> None:
        raise StoreBusy("the database is busy: database is locked")

    monkeypatch.setattr(bot.store.charts, "find_series", locked)
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us"})).response()
    assert reply.ephemeral and reply.content == DB_UNAVAILABLE
    assert bot.store is not None  # a lock is transient: the connection is kept
    monkeypatch.undo()
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us"})).response()
    assert reply.embeds[0]["title"] == "🇺🇸 U.S. Top 10 · TV"


async def test_missing_database_then_restored(fake: FakeDiscord, chart_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "charts.sqlite3"
    chartbot = ChartBot(bot_settings(fake, path), guild_ready_timeout=0.05)
    async with fake.run_bot(chartbot):
        assert chartbot.store is None and len(chartbot.titles) == 0
        reply = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD})).response()
        assert reply.ephemeral and reply.content == DB_UNAVAILABLE
        choices = await fake.autocomplete(GUILD, CHANNEL, FAN, "rank", focused="title", value="all")
        assert choices == []
        path.parent.mkdir()
        shutil.copyfile(chart_db, path)
        reply = await (await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": AOUAD})).response(timeout=5)
        assert reply.embed is not None and not reply.ephemeral
        assert len(chartbot.titles) > 1000


async def test_milestones(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await (await fake.slash(GUILD, CHANNEL, FAN, "milestones", {"title": AOUAD})).response()
    embed = reply.embed
    assert embed is not None and embed["title"] == "Milestones · All of Us Are Dead"
    assert embed["description"].splitlines()[0].startswith("`Feb 27` All of Us Are Dead has been No. 1")
    latest = await (await fake.slash(GUILD, CHANNEL, FAN, "milestones")).response()
    assert latest.embed is not None and latest.embed["title"] == "Latest milestones"


async def test_endpoints_restored_and_resources_closed(fake: FakeDiscord, chart_db: Path) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    chartbot = ChartBot(bot_settings(fake, chart_db), guild_ready_timeout=0.05)
    async with fake.run_bot(chartbot):
        assert fake.api_base == Route.BASE and chartbot.http_session is not None
    assert chartbot.store is None and chartbot.http_session is None
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


async def test_serve_stops_cleanly_on_sigterm(fake: FakeDiscord, chart_db: Path) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    chartbot = ChartBot(bot_settings(fake, chart_db), guild_ready_timeout=0.05)
    task = asyncio.create_task(serve(chartbot.settings, bot=chartbot))
    for _ in range(500):
        if chartbot.is_ready():
            break
        await asyncio.sleep(0.01)
    assert chartbot.is_ready()
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)  # the loop has it
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert chartbot.is_closed() and chartbot.store is None and chartbot.http_session is None
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_rejected_token_is_one_clear_line(chart_db: Path) -> None:
    async with FakeDiscord(expected_token="the-real-token") as fake:
        with pytest.raises(InputError, match=r"^Discord rejected DISCORD_TOKEN \(401"):
            await serve(bot_settings(fake, chart_db, DISCORD_TOKEN="a-wrong-token"))


def test_missing_token_is_one_clear_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert main(["run", "--db", str(tmp_path / "x.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chartbot run: DISCORD_TOKEN is not set: ") and err.count("\n") == 1


async def test_global_sync_on_request(fake: FakeDiscord, chart_db: Path) -> None:
    synced = await sync(bot_settings(fake, chart_db))
    assert {c.name for c in synced} >= {"milestones", "rank", "top"}
    assert [call.guild_id for call in fake.sync_calls] == [None]


def test_token_never_logged() -> None:
    token = "MTAxNTAw.secret-token.value"
    stream = io.StringIO()
    logger = logging.getLogger("test.token")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        redactor = install_token_redaction(token, logger)
        assert isinstance(redactor, TokenRedactor) and redactor in handler.filters
        logger.warning("logging in with %s", token)
        logger.warning(f"header Authorization: Bot {token}")
        try:
            raise RuntimeError(f"401 for token {token}")
        except RuntimeError:
            logger.exception("login failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert token not in text
    assert text.count("[redacted token]") == 3 and "RuntimeError: 401 for token [redacted token]" in text
