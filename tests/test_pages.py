"""bot.pages: what a page button carries and which page comes next, on the real charts' dates."""

from __future__ import annotations

from datetime import date
from unittest.mock import AsyncMock, MagicMock, create_autospec

import discord
import pytest
from discord.ext import commands
from test_render import assert_within_limits

from bot.buttons import Pages, PagesView
from bot.model import WORLD, InputError
from bot.pages import (
    KIND,
    MAX_CUSTOM_ID,
    MILESTONES,
    NEXT,
    PREVIOUS,
    TOP,
    WATCH_LIST,
    ChartKind,
    ChartPage,
    PageExpired,
    button_id,
    chart_button,
    chart_kinds,
    clamp_page,
    expired,
    kind_label,
    kind_of,
    list_button,
    merged_dates,
    milestones_button,
    nearest,
    not_yours,
    pack,
    page_count,
    page_series,
    page_slice,
    parse_button_id,
    parse_chart,
    parse_numbered,
    position,
    step,
    title_ref,
    turn,
    whole_dates,
)
from bot.render import chart_embed, milestone_page_embed, page_text
from bot.store import Store
from bot.views import Series

FAN = 820_000_000_000_001_000
LONGEST_USER_ID = 2**64 - 1  # snowflakes are 64-bit: 20 digits at most
DAY = date(2022, 2, 27)
US_TV = "🇺🇸 U.S. Top 10 · TV"


def series(region: str, category: str, period: str = "week", service: str = "netflix") -> Series:
    return Series(service, region, category, period, DAY)


# --- custom ids -------------------------------------------------------------------------------------------


def test_a_button_id_round_trips() -> None:
    page = ChartPage("netflix", "us", "tv", "week", DAY)
    custom_id = chart_button(FAN, PREVIOUS, page)
    assert custom_id == f"cb:t:{FAN}:p:netflix:us:tv:week:20220227"
    press = parse_button_id(custom_id)
    assert (press.book, press.owner, press.action) == (TOP, FAN, PREVIOUS)
    assert parse_chart(press) == page
    numbered = parse_button_id(milestones_button(FAN, NEXT, 3, "all of us are dead"))
    assert numbered.book == MILESTONES and parse_numbered(numbered) == (3, (title_ref("all of us are dead"),))
    assert parse_numbered(parse_button_id(list_button(FAN, PREVIOUS, 0))) == (0, ())
    assert parse_button_id(list_button(FAN, PREVIOUS, 0)).book == WATCH_LIST


def test_the_longest_button_ids_fit_discords_hundred_characters() -> None:
    widest = ChartPage("paramount-plus", WORLD, "movies-non-english", "week", DAY)
    for action in (PREVIOUS, NEXT, KIND):
        assert len(chart_button(LONGEST_USER_ID, action, widest)) <= MAX_CUSTOM_ID
    long_title = "x" * 500  # a title of any length: the id holds a 16-character digest of its key
    assert len(milestones_button(LONGEST_USER_ID, NEXT, 99_999, long_title)) <= MAX_CUSTOM_ID
    assert len(title_ref(long_title)) == 16 and title_ref(None) == ""
    assert title_ref("squid game") != title_ref("squid game 2") and title_ref("a") == title_ref("a")


def test_button_ids_that_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="> 100"):
        button_id(TOP, FAN, NEXT, "x" * 80)
    with pytest.raises(ValueError, match="may not hold ':'"):
        button_id(TOP, FAN, NEXT, "a:b")


@pytest.mark.parametrize(
    "custom_id",
    [
        "",
        "pager:next",  # not chartbot's
        "cb:x:1:n",  # an unknown book
        "cb:t:someone:n:netflix:us:tv:week:20220227",  # no owner id
        "cb:t:1",  # cut short
    ],
)
def test_ids_this_chartbot_cannot_read_have_expired(custom_id: str) -> None:
    with pytest.raises(PageExpired):
        parse_button_id(custom_id)


@pytest.mark.parametrize(
    "custom_id",
    [
        "cb:t:1:n:netflix:us:tv:week:2022-02-27",  # another date format
        "cb:t:1:n:netflix:us:tv:week:20221340",  # no such day
        "cb:t:1:n:netflix:us:tv",  # fields missing
    ],
)
def test_chart_pages_that_cannot_be_read_have_expired(custom_id: str) -> None:
    with pytest.raises(PageExpired):
        parse_chart(parse_button_id(custom_id))


@pytest.mark.parametrize("custom_id", ["cb:m:1:n", "cb:m:1:n:x", "cb:m:1:k:2", "cb:w:1:z:0"])
def test_numbered_pages_that_cannot_be_read_have_expired(custom_id: str) -> None:
    with pytest.raises(PageExpired):
        parse_numbered(parse_button_id(custom_id))


def test_texts_name_the_owner_and_the_command() -> None:
    assert not_yours(FAN, TOP) == f"Only <@{FAN}> can use these buttons; run `/top` yourself."
    assert expired(MILESTONES) == "These buttons have expired; run `/milestones` again to see the list."
    assert expired(WATCH_LIST).endswith("run `/watch list` again to see the list.")
    assert expired("?") == "These buttons have expired; run the command again to see the list."


# --- kinds of chart ---------------------------------------------------------------------------------------


def test_kinds_of_chart_a_region_has() -> None:
    world = [
        series(WORLD, c) for c in ("movies-non-english", "tv-english", "movies-english", "tv-non-english")
    ]
    world.append(series(WORLD, "tv-english", "all-time"))  # not a period the buttons step through
    assert chart_kinds(world, "netflix") == [ChartKind("tv", "week"), ChartKind("movies", "week")]
    us = [
        series("us", "movies"),
        series("us", "tv"),
        series("us", "overall", "day"),
        series("us", "tv", "day"),
        series("us", "tv", "day", service="disney"),
    ]
    kinds = chart_kinds(us, "netflix")
    assert kinds == [
        ChartKind("tv", "week"),
        ChartKind("movies", "week"),
        ChartKind("tv", "day"),
        ChartKind("overall", "day"),
    ]
    assert [kind_label(k, kinds) for k in kinds] == [
        "TV · weekly",
        "Films · weekly",
        "TV · daily",
        "Overall · daily",
    ]
    assert [kind_label(k, kinds[:2]) for k in kinds[:2]] == ["TV", "Films"]
    assert chart_kinds(us, "disney") == [ChartKind("tv", "day")] and chart_kinds(us, "hbo-max") == []
    assert (
        kind_of("tv-non-english") == "tv"
        and kind_of("movies-english") == "movies"
        and kind_of("overall") == "overall"
    )


def test_the_series_of_a_page() -> None:
    world = [series(WORLD, c) for c in ("movies-english", "tv-non-english", "tv-english")]
    both = page_series(world, ChartPage("netflix", WORLD, "tv", "week", DAY))
    assert [s.category for s in both] == ["tv-english", "tv-non-english"]
    one = page_series(world, ChartPage("netflix", WORLD, "tv-non-english", "week", DAY))
    assert [s.category for s in one] == ["tv-non-english"]
    assert page_series(world, ChartPage("netflix", WORLD, "tv", "day", DAY)) == []
    assert page_series(world, ChartPage("disney", WORLD, "tv", "week", DAY)) == []


# --- stepping through real weeks ----------------------------------------------------------------------------


async def real_dates(store: Store, region: str, category: str) -> list[date]:
    found = await store.charts.find_series(region=region, category=category)
    return merged_dates([await store.charts.chart_dates(s) for s in found])


async def test_stepping_through_the_us_weeks_crosses_the_gap(chart_store: Store) -> None:
    dates = await real_dates(chart_store, "us", "tv")
    assert len(dates) == 15 and dates[0] == date(2021, 8, 29) and dates[-1] == DAY
    assert step(dates, date(2022, 1, 9), -1, US_TV) == date(2021, 10, 10)  # the file has no weeks between
    assert step(dates, date(2021, 10, 10), 1, US_TV) == date(2022, 1, 9)
    assert step(dates, date(2021, 12, 1), 1, US_TV) == date(2022, 1, 9)  # from a date not stored
    assert step(dates, date(2021, 12, 1), -1, US_TV) == date(2021, 10, 10)
    with pytest.raises(InputError) as first:
        step(dates, dates[0], -1, US_TV)
    assert str(first.value) == "This is the oldest 🇺🇸 U.S. Top 10 · TV chart stored: there is none before it."
    with pytest.raises(InputError) as last:
        step(dates, DAY, 1, US_TV)
    assert str(last.value) == "This is the newest 🇺🇸 U.S. Top 10 · TV chart: there is none after it yet."
    assert position(dates, DAY) == (15, 15) and position(dates, dates[0]) == (1, 15)


async def test_the_world_lists_share_their_weeks(chart_store: Store) -> None:
    both = await real_dates(chart_store, WORLD, "tv-english") + await real_dates(
        chart_store, WORLD, "tv-non-english"
    )
    assert len(merged_dates([both])) == 35


async def test_switching_kind_keeps_the_date_or_takes_the_nearest(chart_store: Store) -> None:
    films = await real_dates(chart_store, "us", "movies")  # the films cut starts later than TV's
    assert nearest(films, date(2022, 2, 13), "film") == date(2022, 2, 13)
    assert nearest(films, date(2022, 2, 15), "film") == date(2022, 2, 13)  # the chart current then
    assert nearest(films, date(2021, 9, 5), "film") == films[0] == date(2022, 1, 9)  # none yet: the oldest
    with pytest.raises(InputError, match="No film chart is stored any more"):
        nearest([], DAY, "film")


# --- numbered pages -----------------------------------------------------------------------------------------


def test_numbered_pages() -> None:
    assert [page_count(n) for n in (0, 1, 10, 11, 31)] == [1, 1, 1, 2, 4]
    assert clamp_page(7, 4) == 3 and clamp_page(-1, 4) == 0 and clamp_page(2, 4) == 2
    assert turn(0, NEXT, 4) == 1 and turn(3, PREVIOUS, 4) == 2
    with pytest.raises(InputError, match=r"^This is the first page\.$"):
        turn(0, PREVIOUS, 4)
    with pytest.raises(InputError, match=r"^This is the last page\.$"):
        turn(3, NEXT, 4)
    lines = [f"line {i}" for i in range(31)]
    assert page_slice(lines, 3) == ["line 30"] and page_slice(lines, 4) == []


def test_pack_respects_lines_and_characters() -> None:
    assert pack([], 100) == [[]]
    assert pack(["a"] * 25, 1000, 10) == [["a"] * 10, ["a"] * 10, ["a"] * 5]
    pages = pack(["x" * 40] * 5, 100, 10)  # two lines and a newline fit in 100 characters
    assert pages == [["x" * 40] * 2, ["x" * 40] * 2, ["x" * 40]]
    assert all(len("\n".join(p)) <= 100 for p in pages)
    assert pack(["y" * 300, "z"], 100) == [["y" * 300], ["z"]]  # a long line on its own page


def test_whole_dates_leaves_out_a_date_the_read_may_have_cut() -> None:
    days = [date(2022, 2, 27)] * 3 + [date(2022, 2, 20)] * 2
    assert whole_dates(days, 5, lambda d: d) == days[:3]  # 5 read of at most 5: Feb 20 may go on
    assert whole_dates(days, 6, lambda d: d) == days  # fewer than asked: everything was read
    assert whole_dates(days, None, lambda d: d) == days
    assert whole_dates(days[:3], 3, lambda d: d) == days[:3]  # one date only: kept, whatever it lacks
    assert whole_dates([], 3, lambda d: d) == []


# --- page footers ------------------------------------------------------------------------------------------


async def test_a_paged_chart_says_which_page_it_is(chart_store: Store) -> None:
    (us_tv,) = await chart_store.charts.find_series(region="us", category="tv")
    view = await chart_store.charts.chart_view(us_tv, date(2022, 1, 9))
    assert view is not None
    embed = chart_embed(view, page=(8, 15))
    assert_within_limits(embed)
    assert embed.footer.text == (
        "week ending Jan 9, 2022 · no chart for the period before: no movement shown · Page 8 of 15"
    )
    assert chart_embed(view).footer.text is not None and "Page" not in chart_embed(view).footer.text
    assert page_text(1, 1234) == "Page 1 of 1,234"


def test_a_page_of_milestones_escapes_its_title_and_stays_within_limits() -> None:
    lines = [f"`Feb 27` line {i} " + "x" * 600 for i in range(10)]  # lines longer than any real one
    embed = milestone_page_embed(lines, title="Milestones · **Bold** @everyone " + "t" * 300, page=(2, 7))
    assert_within_limits(embed)
    assert embed.title is not None and embed.title.startswith("Milestones · \\*\\*Bold\\*\\* @\u200beveryone")
    assert embed.footer.text == "Page 2 of 7"
    empty = milestone_page_embed([], title="Latest milestones")
    assert empty.description == "No milestones yet." and empty.footer.text is None
    assert isinstance(empty, discord.Embed)


# --- the Discord side, without Discord ----------------------------------------------------------------------


def pressing(user_id: int) -> MagicMock:
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.user = MagicMock(id=user_id)
    interaction.response = create_autospec(discord.InteractionResponse, instance=True)
    return interaction


async def test_the_view_lets_only_the_owner_press() -> None:
    """discord.py asks a dynamic item, not its view (the e2e tests prove the item's check): the view's
    own check is the same rule, for a view dispatched the ordinary way."""
    pages = Pages(MagicMock(spec=commands.Bot), (), AsyncMock())
    view = PagesView(pages, FAN, TOP, pressing(FAN))
    assert await view.interaction_check(pressing(FAN)) is True
    other = pressing(FAN + 1)
    assert await view.interaction_check(other) is False
    other.response.send_message.assert_awaited_once_with(not_yours(FAN, TOP), ephemeral=True)
    assert view.timeout == 600.0  # ten minutes without a press


async def test_a_failed_press_goes_to_the_bots_error_answer(caplog: pytest.LogCaptureFixture) -> None:
    handled = MagicMock(spec=commands.Bot)
    handled.on_app_command_error = AsyncMock()
    interaction, error = pressing(FAN), RuntimeError("boom")
    await Pages(handled, (), AsyncMock())._failed(interaction, error)
    handled.on_app_command_error.assert_awaited_once_with(interaction, error)
    plain = MagicMock(spec=commands.Bot)  # a bot without chartbot's error answer: the log says it
    await Pages(plain, (), AsyncMock())._failed(interaction, error)
    assert "a page press failed" in caplog.text
