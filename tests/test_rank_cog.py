"""cogs.rank without Discord: the option parsing and chart choice, and the cog over spec'd mocks."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from unittest.mock import MagicMock, call, create_autospec

import discord
import pytest
from discord import app_commands

from bot.charts import pick_series
from bot.client import DB_UNAVAILABLE, UNEXPECTED, ChartBot, explain, send_error
from bot.model import WORLD, InputError, title_key
from bot.store import ChartQueries, DatabaseUnavailable, SchemaError, Store, StoreBusy
from bot.titles import TitleIndex
from bot.views import RankHistory, Series
from cogs.rank import (
    MILESTONES_READ,
    Rank,
    not_found_message,
    parse_category,
    parse_day,
    parse_region,
    parse_service,
    region_choices,
    resolve_title,
    select_report,
    title_choices,
)

AOUAD = "All of Us Are Dead"
DAY = date(2022, 2, 27)
INDEX = TitleIndex(
    [
        ("all of us are dead", AOUAD, 452),
        ("all the light we cannot see", "All the Light We Cannot See", 12),
        ("squid game", "Squid Game", 419),
        ("x" * 150, "X" * 150, 1),
    ]
)


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("us", "us"),
        ("United States", "us"),
        ("south korea", "kr"),
        ("🇰🇷", "kr"),
        ("World", WORLD),
        ("", None),
    ],
)
def test_parse_region(typed: str, code: str | None) -> None:
    assert parse_region(typed) == code


def test_parse_other_options() -> None:
    assert parse_region(None) is None
    with pytest.raises(InputError, match="unknown region"):
        parse_region("Atlantis")
    assert parse_category("Films") == "movies" and parse_category("tv-non-english") == "tv-non-english"
    assert parse_category(None) is None
    with pytest.raises(InputError, match="unknown category"):
        parse_category("podcasts")
    assert parse_service("Disney+") == "disney" and parse_service("HBO Max") == "hbo-max"
    assert parse_day("2022-02-06") == date(2022, 2, 6) and parse_day("") is None
    with pytest.raises(InputError, match="is not a date"):
        parse_day("last week")


def test_resolve_title_and_suggestions() -> None:
    assert resolve_title(INDEX, "all\u200b of us are dead") == ("all of us are dead", AOUAD)
    with pytest.raises(InputError, match="Type a title"):
        resolve_title(INDEX, "\u200b ")
    with pytest.raises(InputError) as raised:
        resolve_title(INDEX, "Sqiud Gme @everyone")
    message = str(raised.value)
    assert "**Squid Game**" in message and "@\u200beveryone" in message
    assert not_found_message("x" * 500, []).startswith("No title in the charts matches “" + "x" * 79 + "…”")
    assert "\\*\\*" in not_found_message("**", ["A"])


def test_title_choices() -> None:
    choices = title_choices(INDEX, "all")
    assert [c.value for c in choices] == [AOUAD, "All the Light We Cannot See"]
    (long,) = title_choices(INDEX, "xxxxxxxx")
    assert len(long.name) == 100 and long.name.endswith("…") and long.value == "X" * 100
    assert len(title_choices(INDEX, "")) <= 25
    assert title_choices(TitleIndex([]), "all") == []


def test_region_choices() -> None:
    assert region_choices("us")[0].value == "us"
    assert region_choices("korea")[0].value == "kr"
    assert len(region_choices("")) == 25


# --- choosing what to show ----------------------------------------------------------------------


def series(
    region: str, category: str, period: str = "week", service: str = "netflix", day: date = DAY
) -> Series:
    return Series(service, region, category, period, day)


def test_pick_series() -> None:
    world = [
        series(WORLD, c) for c in ("movies-english", "tv-english", "tv-non-english", "movies-non-english")
    ]
    assert [s.category for s in pick_series(world, region=WORLD, category=None, service=None)] == [
        "tv-english",
        "tv-non-english",
    ]
    assert [s.category for s in pick_series(world, region=WORLD, category="movies", service=None)] == [
        "movies-english",
        "movies-non-english",
    ]
    us = [
        series("us", "tv"),
        series("us", "movies"),
        series("us", "tv", "day", "netflix", date(2022, 2, 26)),
        series("us", "tv", "day", "disney", date(2022, 2, 28)),
    ]
    (weekly,) = pick_series(us, region="us", category="tv", service=None)  # the freshest Netflix period
    assert (weekly.service, weekly.period) == ("netflix", "week")
    (disney,) = pick_series(us, region="us", category=None, service="disney")
    assert disney.service == "disney" and disney.period == "day"
    with pytest.raises(InputError, match=r"No HBO Max chart in the 🇺🇸 U.S\. is stored"):
        pick_series(us, region="us", category=None, service="hbo-max")
    with pytest.raises(InputError, match=r"^No overall chart in the 🇺🇸 U\.S\.; available: TV, film\.$"):
        pick_series(us, region="us", category="overall", service=None)
    with pytest.raises(InputError, match="No chart in 🇰🇷 South Korea is stored yet"):
        pick_series([], region="kr", category=None, service=None)
    (films,) = pick_series([series("kr", "movies")], region="kr", category=None, service=None)
    assert films.category == "movies"


async def test_select_report(chart_store: Store) -> None:
    report = await chart_store.charts.title_report(title_key(AOUAD), date(2022, 2, 6))
    assert report is not None
    us = select_report(report, "us", None)
    assert [s.region for s in us.standings] == ["us"] and us.countries == []
    world_tv = select_report(report, WORLD, "tv")
    assert [s.category for s in world_tv.standings] == ["tv-non-english"] and world_tv.countries
    films = select_report(report, None, "movies")
    assert films.standings == [] and films.countries == []


# --- the cog over spec'd mocks ------------------------------------------------------------------


def make_interaction() -> MagicMock:
    """An Interaction whose response knows whether it was used, like the real one."""
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.response = create_autospec(discord.InteractionResponse, instance=True)
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    done = {"value": False, "type": None}

    async def answer(*args: object, **kwargs: object) -> MagicMock:
        done["value"] = True
        return MagicMock(message_id=1)  # the callback's answer names the message it made

    async def defer(*args: object, **kwargs: object) -> None:
        done["value"] = True
        done["type"] = discord.InteractionResponseType.deferred_channel_message

    interaction.response.send_message.side_effect = answer
    interaction.response.defer.side_effect = defer
    interaction.response.is_done.side_effect = lambda: done["value"]
    type(interaction.response).type = property(lambda _: done["type"])
    interaction.command = None
    return interaction


@pytest.fixture
def store() -> MagicMock:
    """A store whose chart queries are mocks that check their signatures."""
    store = MagicMock(spec=["charts"])
    store.charts = create_autospec(ChartQueries, instance=True)
    return store


@pytest.fixture
def cog(store: MagicMock) -> Rank:
    bot = create_autospec(ChartBot, instance=True)
    bot.titles = INDEX
    bot.defer_after = 2.0
    bot.get_store.return_value = store
    return Rank(bot)


async def test_rank_defers_renders_and_edits_the_original(
    cog: Rank, store: MagicMock, chart_store: Store
) -> None:
    store.charts.title_report.return_value = await chart_store.charts.title_report(title_key(AOUAD))
    store.charts.rank_history.return_value = [
        RankHistory("netflix", WORLD, "tv-non-english", "week", [(DAY, 1)])
    ]
    interaction = make_interaction()
    await Rank.rank.callback(cog, interaction, "ALL OF US ARE DEAD")
    interaction.response.defer.assert_awaited_once_with(thinking=True)
    store.charts.title_report.assert_awaited_once_with("all of us are dead", None)
    sent = interaction.edit_original_response.await_args
    assert sent is not None
    interaction.followup.send.assert_not_awaited()
    embed, (picture,) = sent.kwargs["embed"], sent.kwargs["attachments"]
    assert embed.title == "All of Us Are Dead: Season 1" and picture.filename == "rank-history.png"
    assert picture.fp.read(8) == b"\x89PNG\r\n\x1a\n"


async def test_rank_unknown_title_raises_before_deferring(cog: Rank, store: MagicMock) -> None:
    interaction = make_interaction()
    with pytest.raises(InputError, match="Did you mean"):
        await Rank.rank.callback(cog, interaction, "Sqiud Gme")
    interaction.response.defer.assert_not_awaited()
    store.charts.title_report.assert_not_awaited()


async def test_top_defers_when_the_store_is_slow(cog: Rank, store: MagicMock, chart_store: Store) -> None:
    (us_tv,) = await chart_store.charts.find_series(region="us", category="tv")
    view = await chart_store.charts.chart_view(us_tv)

    async def slow_find(**filters: str | None) -> list[Series]:
        await asyncio.sleep(0.05)
        return [us_tv]

    store.charts.find_series.side_effect = slow_find
    store.charts.chart_view.return_value = view
    store.charts.chart_dates.side_effect = chart_store.charts.chart_dates
    cog.bot.defer_after = 0.01
    interaction = make_interaction()
    await Rank.top.callback(cog, interaction, "us", "tv")
    interaction.response.defer.assert_awaited_once_with(thinking=True)
    interaction.response.send_message.assert_not_awaited()
    interaction.followup.send.assert_not_awaited()
    (embed,) = interaction.edit_original_response.await_args.kwargs["embeds"]
    assert embed.title == "🇺🇸 U.S. Top 10 · TV"


async def test_top_answers_at_once_when_fast(cog: Rank, store: MagicMock, chart_store: Store) -> None:
    store.charts.find_series.return_value = await chart_store.charts.find_series(region="world")
    store.charts.chart_view.side_effect = chart_store.charts.chart_view
    store.charts.chart_dates.side_effect = chart_store.charts.chart_dates
    interaction = make_interaction()
    await Rank.top.callback(cog, interaction)
    interaction.response.defer.assert_not_awaited()
    assert store.charts.find_series.await_args_list == [
        call(service=None, region=WORLD),  # the chart to show (bot.charts)
        call(service="netflix", region=WORLD),  # the kinds of chart its buttons switch to
    ]
    embeds = interaction.response.send_message.await_args.kwargs["embeds"]
    assert [e.title for e in embeds] == [
        "🌍 Netflix global Top 10 · TV (English)",
        "🌍 Netflix global Top 10 · TV (Non-English)",
    ]


async def test_milestones_for_a_title(cog: Rank, store: MagicMock, chart_store: Store) -> None:
    store.charts.milestones.return_value = await chart_store.charts.milestones(
        title_key="all of us are dead", limit=50
    )
    interaction = make_interaction()
    await Rank.milestones.callback(cog, interaction, "all of us")
    store.charts.milestones.assert_awaited_once_with(
        title_key="all of us are dead", newest_first=True, limit=MILESTONES_READ
    )
    (embed,) = interaction.response.send_message.await_args.kwargs["embeds"]
    assert embed.title == "Milestones · All of Us Are Dead"


async def test_autocomplete_is_fast_and_from_memory(cog: Rank, store: MagicMock) -> None:
    interaction = make_interaction()
    choices = await Rank._rank_title(cog, interaction, "all of")
    assert choices[0].value == AOUAD
    assert not store.method_calls  # no database read per keystroke


# --- the error handler --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message", "unexpected"),
    [
        (InputError("unknown region 'xx'"), "unknown region 'xx'", False),
        (StoreBusy("the database is busy: database is locked"), DB_UNAVAILABLE, False),
        (DatabaseUnavailable("unable to open database file"), DB_UNAVAILABLE, False),
        (SchemaError("newer than this chartbot"), DB_UNAVAILABLE, False),
        (
            sqlite3.IntegrityError("UNIQUE constraint failed"),
            UNEXPECTED,
            True,
        ),  # a driver error escaping: a bug
        (ValueError("a bug"), UNEXPECTED, True),
        (RuntimeError("boom"), UNEXPECTED, True),
    ],
)
def test_explain(error: Exception, message: str, unexpected: bool) -> None:
    command = create_autospec(app_commands.Command, instance=True)
    command.name = "rank"
    wrapped = app_commands.CommandInvokeError(command, error)
    assert explain(wrapped) == (message, unexpected)


def test_explain_check_failure() -> None:
    assert explain(app_commands.CheckFailure("You need Manage Server.")) == ("You need Manage Server.", False)


async def test_send_error_after_a_public_defer_replaces_it_privately() -> None:
    interaction = make_interaction()
    await interaction.response.defer(thinking=True)
    interaction.original_response.return_value.flags = discord.MessageFlags(loading=True)
    await send_error(interaction, "No @everyone here")
    interaction.delete_original_response.assert_awaited_once()
    interaction.followup.send.assert_awaited_once_with("No @\u200beveryone here", ephemeral=True)
    interaction.edit_original_response.assert_not_awaited()  # that would show the error to everyone


async def test_send_error_after_a_private_defer_edits_the_original() -> None:
    interaction = make_interaction()
    await interaction.response.defer(ephemeral=True, thinking=True)
    interaction.original_response.return_value.flags = discord.MessageFlags(loading=True, ephemeral=True)
    await send_error(interaction, "The database is busy")
    interaction.edit_original_response.assert_awaited_once_with(content="The database is busy")
    interaction.followup.send.assert_not_awaited()
    interaction.delete_original_response.assert_not_awaited()


async def test_send_error_after_an_answer_adds_a_private_line() -> None:
    interaction = make_interaction()
    await interaction.response.defer(thinking=True)
    interaction.original_response.return_value.flags = discord.MessageFlags()  # edited: no longer loading
    await send_error(interaction, "Part of it failed")
    interaction.followup.send.assert_awaited_once_with("Part of it failed", ephemeral=True)
    interaction.delete_original_response.assert_not_awaited()
    interaction.edit_original_response.assert_not_awaited()


async def test_send_error_when_the_original_cannot_be_read() -> None:
    interaction = make_interaction()
    await interaction.response.defer(thinking=True)
    interaction.original_response.side_effect = discord.ClientException("no channel")
    await send_error(interaction, "Oops")
    interaction.delete_original_response.assert_awaited_once()  # as a public placeholder: removed
    interaction.followup.send.assert_awaited_once_with("Oops", ephemeral=True)


async def test_send_error_fresh_interaction() -> None:
    interaction = make_interaction()
    await send_error(interaction, "x" * 3000)
    (text,), kwargs = interaction.response.send_message.await_args
    assert len(text) == 2000 and kwargs == {"ephemeral": True}
