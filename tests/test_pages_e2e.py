"""Pages on the fake Discord with the real ChartBot and the real Netflix files: /top through real weeks
and kinds of chart, /milestones and /watch list page by page; whose presses count, what happens after
the timeout, after a restart, with a button from an older chartbot, and when the store fails mid-press."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from fake_discord import (
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    MANAGE_GUILD,
    FakeChannel,
    FakeDiscord,
    FakeMember,
    FakeRole,
    Reply,
    SentMessage,
)
from test_render import assert_within_limits

from bot.client import DB_UNAVAILABLE, ChartBot
from bot.model import title_key
from bot.pages import (
    MILESTONES,
    NEXT,
    PREVIOUS,
    TOP,
    WATCH_LIST,
    ChartPage,
    chart_button,
    expired,
    milestones_button,
    not_yours,
    page_count,
    whole_dates,
)
from bot.render import milestone_lines
from bot.settings import Settings
from bot.store import DatabaseUnavailable, StoreBusy

GUILD = 830_000_000_000_000_001
CHANNEL = 830_000_000_000_000_010
MODS = 830_000_000_000_000_100
FAN = 830_000_000_000_001_000
OTHER = 830_000_000_000_002_000  # another member, who did not run the command
ADMIN = 830_000_000_000_003_000
AOUAD = "All of Us Are Dead"
PREVIOUS_LABEL, NEXT_LABEL = "◀ Previous", "Next ▶"
US_TV_WEEKS = [
    date(2021, 8, 29),
    date(2021, 9, 5),
    date(2021, 9, 12),
    date(2021, 9, 19),
    date(2021, 9, 26),
    date(2021, 10, 3),
    date(2021, 10, 10),
    date(2022, 1, 9),  # the cut of the countries file has no weeks between (see tests/data/SOURCE.md)
    date(2022, 1, 16),
    date(2022, 1, 23),
    date(2022, 1, 30),
    date(2022, 2, 6),
    date(2022, 2, 13),
    date(2022, 2, 20),
    date(2022, 2, 27),
]


def settings(fake: FakeDiscord, db: Path) -> Settings:
    return Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(db),
            "DISCORD_DEV_GUILD": str(GUILD),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
        }
    )


def make_bot(fake: FakeDiscord, db: Path) -> ChartBot:
    return ChartBot(settings(fake, db), guild_ready_timeout=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[FakeChannel(CHANNEL, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[
                FakeMember(FAN, "fan"),
                FakeMember(OTHER, "other"),
                FakeMember(ADMIN, "admin", roles=[MODS]),
            ],
        )
        yield fake


@pytest.fixture
async def bot(fake: FakeDiscord, chart_db: Path) -> AsyncIterator[ChartBot]:
    async with fake.run_bot(make_bot(fake, chart_db)) as running:
        yield running  # type: ignore[misc]


# --- helpers ---------------------------------------------------------------------------------------------


async def run(
    fake: FakeDiscord, command: str, options: dict[str, Any] | None = None, user: int = FAN
) -> Reply:
    return await (await fake.slash(GUILD, CHANNEL, user, command, options or {})).response(timeout=5)


async def press(fake: FakeDiscord, page: SentMessage, label: str, user: int = FAN, **kwargs: Any) -> Reply:
    """Press the button with this label, as the page shows it now."""
    custom_id = page.button_labelled(label)["custom_id"]
    return await (await fake.press(page, custom_id, user, **kwargs)).response(timeout=5)


def footer(message: SentMessage, index: int = 0) -> str:
    return message.embeds[index]["footer"]["text"]


def labels(message: SentMessage) -> list[str]:
    return [b["label"] for b in message.buttons]


def enabled(message: SentMessage) -> dict[str, bool]:
    return {b["label"]: not b.get("disabled", False) for b in message.buttons}


def check_limits(message: SentMessage) -> None:
    """Every embed within Discord's limits, 6000 characters in all, titles escaped (no raw markdown)."""
    embeds = [discord.Embed.from_dict(e) for e in message.embeds]
    for embed in embeds:
        assert_within_limits(embed)
    assert sum(len(e) for e in embeds) <= 6000
    assert len(message.content) <= 2000


async def until(predicate: Callable[[], bool], seconds: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


# --- /top ---------------------------------------------------------------------------------------------------


async def test_top_pages_back_and_forth_through_the_real_weeks(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await run(fake, "top", {"region": "us"})
    page = reply.message
    assert page is not None and reply.embed is not None and reply.embed["title"] == "🇺🇸 U.S. Top 10 · TV"
    assert footer(page) == "week ending Feb 27, 2022 · Page 15 of 15"
    assert labels(page) == [PREVIOUS_LABEL, NEXT_LABEL, "TV", "Films"]
    assert enabled(page) == {PREVIOUS_LABEL: True, NEXT_LABEL: False, "TV": False, "Films": True}
    newest = page.embeds[0]["description"]
    for n, week in reversed(list(enumerate(US_TV_WEEKS[:-1], start=1))):
        pressed = await press(fake, page, PREVIOUS_LABEL)
        assert pressed.type == CALLBACK_UPDATE_MESSAGE and pressed.message is page and not pressed.ephemeral
        assert footer(page).startswith(f"week ending {week:%b} {week.day}, {week.year}")
        assert footer(page).endswith(f"Page {n} of 15")
        check_limits(page)
        if week == date(2021, 10, 3):
            assert "` 1.` = **Squid Game**" in page.embeds[0]["description"]
        if week == date(2022, 1, 9):  # after the gap: no movement
            assert "no chart for the period before: no movement shown" in footer(page)
    assert enabled(page)[PREVIOUS_LABEL] is False and enabled(page)[NEXT_LABEL] is True
    for _ in US_TV_WEEKS[1:]:
        await press(fake, page, NEXT_LABEL)
    assert footer(page) == "week ending Feb 27, 2022 · Page 15 of 15"
    assert page.embeds[0]["description"] == newest
    assert fake.sent_messages(CHANNEL, include_interactions=True) == [page]  # one message, edited 28 times
    assert len(page.history) == 29


async def test_a_chart_without_a_previous_period_says_so(fake: FakeDiscord, bot: ChartBot) -> None:
    page = (await run(fake, "top", {"region": "us", "date": "2021-08-29"})).message
    assert page is not None and footer(page).endswith("Page 1 of 15")
    assert enabled(page)[PREVIOUS_LABEL] is False
    before = len(page.history)
    stale = await press(fake, page, PREVIOUS_LABEL, force=True)  # a client showing an older message
    assert stale.type == CALLBACK_MESSAGE and stale.ephemeral
    assert stale.content == "This is the oldest 🇺🇸 U.S. Top 10 · TV chart stored: there is none before it."
    assert len(page.history) == before
    newest = (await run(fake, "top", {"region": "us"})).message
    assert newest is not None
    last = await press(fake, newest, NEXT_LABEL, force=True)
    assert last.ephemeral and last.content.startswith("This is the newest 🇺🇸 U.S. Top 10 · TV chart")


async def test_top_switches_chart_kind_and_keeps_the_week(fake: FakeDiscord, bot: ChartBot) -> None:
    page = (await run(fake, "top")).message  # the world: both TV lists
    assert page is not None
    assert [e["title"] for e in page.embeds] == [
        "🌍 Netflix global Top 10 · TV (English)",
        "🌍 Netflix global Top 10 · TV (Non-English)",
    ]
    assert labels(page) == [PREVIOUS_LABEL, NEXT_LABEL, "TV", "Films"]
    assert footer(page, 1) == "week ending Feb 27, 2022 · Page 35 of 35"
    await press(fake, page, "Films")
    assert [e["title"] for e in page.embeds] == [
        "🌍 Netflix global Top 10 · film (English)",
        "🌍 Netflix global Top 10 · film (Non-English)",
    ]
    assert enabled(page) == {PREVIOUS_LABEL: True, NEXT_LABEL: False, "TV": True, "Films": False}
    await press(fake, page, PREVIOUS_LABEL)
    assert footer(page) == "week ending Feb 20, 2022 · Page 34 of 35"
    await press(fake, page, "TV")
    assert page.embeds[0]["title"] == "🌍 Netflix global Top 10 · TV (English)"
    assert footer(page) == footer(page, 1) == "week ending Feb 20, 2022 · Page 34 of 35"
    check_limits(page)


async def test_a_kind_without_a_chart_that_week_opens_on_its_nearest(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    page = (await run(fake, "top", {"region": "us", "date": "2021-09-05"})).message
    assert page is not None and footer(page).startswith("week ending Sep 5, 2021")
    await press(fake, page, "Films")  # the films cut starts in January 2022
    assert page.embeds[0]["title"] == "🇺🇸 U.S. Top 10 · film"
    assert (
        footer(page)
        == "week ending Jan 9, 2022 · no chart for the period before: no movement shown · Page 1 of 8"
    )


async def test_only_the_one_who_ran_the_command_can_turn_its_pages(fake: FakeDiscord, bot: ChartBot) -> None:
    page = (await run(fake, "top", {"region": "us"})).message
    assert page is not None
    before = len(page.history)
    refused = await press(fake, page, PREVIOUS_LABEL, user=OTHER)
    assert refused.type == CALLBACK_MESSAGE and refused.ephemeral
    assert refused.content == f"Only <@{FAN}> can use these buttons; run `/top` yourself."
    assert refused.content == not_yours(FAN, TOP) and refused.allowed_mentions == {"parse": []}
    assert len(page.history) == before and footer(page).endswith("Page 15 of 15")
    assert (await press(fake, page, PREVIOUS_LABEL)).message is page  # the owner still can


async def test_the_buttons_go_away_after_the_timeout(fake: FakeDiscord, bot: ChartBot) -> None:
    rank = bot.get_cog("Rank")
    rank.pages.timeout = 0.3  # type: ignore[union-attr]
    page = (await run(fake, "top", {"region": "us"})).message
    assert page is not None
    await press(fake, page, PREVIOUS_LABEL)  # a press starts the timeout again
    await until(lambda: page.buttons == [])
    assert footer(page).startswith("week ending Feb 20, 2022")  # the page stays, without its buttons
    (edit,) = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]
    assert (
        edit.json["components"] == [] and fake.interactions[-1].token in edit.path
    )  # the last press's token
    assert rank.pages.live == {}  # type: ignore[union-attr]


async def test_a_press_on_buttons_left_after_the_timeout_says_they_expired(
    fake: FakeDiscord, bot: ChartBot
) -> None:
    """When the edit that takes the buttons away fails (the token too old, Discord down), a later press
    gets the clear answer, and the buttons go."""
    rank = bot.get_cog("Rank")
    rank.pages.timeout = 0.3  # type: ignore[union-attr]
    failure = fake.fail_next(
        "PATCH", r"/messages/@original$", status=401, code=50027, message="Invalid Webhook Token"
    )
    page = (await run(fake, "top", {"region": "us"})).message
    assert page is not None
    await until(lambda: failure.hits == 1 and not rank.pages.live)  # type: ignore[union-attr]
    assert labels(page) == [PREVIOUS_LABEL, NEXT_LABEL, "TV", "Films"]  # still there
    late = await (await fake.press(page, page.button_labelled(PREVIOUS_LABEL)["custom_id"], FAN)).response(
        timeout=5, followups=1
    )
    assert late.type == CALLBACK_UPDATE_MESSAGE and page.components == []
    (note,) = late.followups
    assert note.ephemeral and note.content == expired(TOP)
    assert note.content == "These buttons have expired; run `/top` again to see the list."
    assert footer(page).endswith("Page 15 of 15")  # the page itself unchanged


async def test_a_page_that_times_out_leaves_the_other_pages_working(fake: FakeDiscord, bot: ChartBot) -> None:
    """One page's timeout ends that page only: the button classes stay registered for the others."""
    rank = bot.get_cog("Rank")
    rank.pages.timeout = 0.3  # type: ignore[union-attr]
    short = (await run(fake, "top", {"region": "us"})).message
    rank.pages.timeout = 600  # type: ignore[union-attr]
    long = (await run(fake, "top", {"region": "gb"})).message
    assert short is not None and long is not None
    await until(lambda: short.buttons == [])
    pressed = await press(fake, long, PREVIOUS_LABEL)
    assert pressed.type == CALLBACK_UPDATE_MESSAGE and footer(long).endswith("Page 14 of 15")


async def test_a_press_after_a_restart_still_works(fake: FakeDiscord, chart_db: Path) -> None:
    async with fake.run_bot(make_bot(fake, chart_db)):
        page = (await run(fake, "top", {"region": "us"})).message
        assert page is not None
    async with fake.run_bot(make_bot(fake, chart_db)) as second:
        second.get_cog("Rank").pages.timeout = 0.3  # type: ignore[union-attr]
        pressed = await press(fake, page, PREVIOUS_LABEL)
        assert pressed.type == CALLBACK_UPDATE_MESSAGE and footer(page).endswith("Page 14 of 15")
        await press(fake, page, "Films")
        assert page.embeds[0]["title"] == "🇺🇸 U.S. Top 10 · film"
        await until(lambda: page.buttons == [])  # the new process took the page over, timeout included
    assert fake.gateway_connects == 2


async def test_a_button_this_chartbot_cannot_read_has_expired(fake: FakeDiscord, bot: ChartBot) -> None:
    """A button of an older chartbot whose id says less than this one needs: told to run /top again."""
    old = f"cb:t:{FAN}:n:netflix:us:tv:2022-02-27"
    message = await post_with_buttons(
        fake, [old, chart_button(FAN, NEXT, ChartPage("netflix", "us", "tv", "week", date(2022, 2, 20)))]
    )
    answer = await (await fake.press(message, old, FAN)).response(timeout=5, followups=1)
    assert answer.type == CALLBACK_UPDATE_MESSAGE and message.buttons == []
    assert answer.followups[0].content == expired(TOP) and answer.followups[0].ephemeral
    assert not message.embeds  # nothing else changed


async def post_with_buttons(fake: FakeDiscord, custom_ids: list[str]) -> SentMessage:
    """A message in the channel with these buttons, as the bot could have posted it in an earlier run."""
    components = [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": f"b{i}", "custom_id": c} for i, c in enumerate(custom_ids)
            ],
        }
    ]
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bot fake-token"}) as session,
        session.post(
            f"{fake.api_base}/channels/{CHANNEL}/messages", json={"content": "old", "components": components}
        ) as resp,
    ):
        assert resp.status == 200
        return fake.messages[int((await resp.json())["id"])]


@pytest.mark.parametrize(
    "error", [DatabaseUnavailable("the server went away"), StoreBusy("database is locked")]
)
async def test_a_store_error_during_a_press_is_one_private_line(
    fake: FakeDiscord, bot: ChartBot, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    page = (await run(fake, "top", {"region": "us"})).message
    assert page is not None
    store = await bot.get_store()

    async def broken(*args: object, **kwargs: object) -> list[date]:
        raise error

    monkeypatch.setattr(store.charts, "chart_dates", broken)
    before = len(page.history)
    failed = await press(fake, page, PREVIOUS_LABEL)
    assert failed.type == CALLBACK_MESSAGE and failed.ephemeral and failed.content == DB_UNAVAILABLE
    assert len(page.history) == before and page.buttons  # the page and its buttons stay
    monkeypatch.undo()
    healed = await press(fake, page, PREVIOUS_LABEL)  # a new press works (the store reopened if it had to)
    assert healed.type == CALLBACK_UPDATE_MESSAGE and footer(page).endswith("Page 14 of 15")


async def test_a_slow_store_defers_the_press_then_edits(
    fake: FakeDiscord, bot: ChartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (await run(fake, "top", {"region": "us"})).message
    assert page is not None
    store = await bot.get_store()
    original = store.charts.chart_dates

    async def slow(*args: Any, **kwargs: Any) -> list[date]:
        await asyncio.sleep(0.1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(store.charts, "chart_dates", slow)
    bot.defer_after = 0.01
    rec = await fake.press(page, page.button_labelled(PREVIOUS_LABEL)["custom_id"], FAN)
    pressed = await rec.response(timeout=5)
    assert pressed.type == CALLBACK_DEFERRED_UPDATE and pressed.message is page
    assert footer(page).endswith("Page 14 of 15") and len(rec.edits) == 1
    assert [
        r.path.rsplit("/", 1)[-1] for r in fake.requests if r.method == "PATCH" and rec.token in r.path
    ] == ["@original"]


async def test_a_deferred_first_page_has_working_buttons(fake: FakeDiscord, bot: ChartBot) -> None:
    bot.defer_after = 0.0  # every command that may be slow defers: the page is an edit of "thinking…"
    rec = await fake.slash(GUILD, CHANNEL, FAN, "top", {"region": "us"})
    reply = await rec.response(timeout=5)
    page = reply.message
    assert reply.deferred and page is rec.original and page is not None and page.buttons
    assert page.id in bot.get_cog("Rank").pages.live  # type: ignore[union-attr]
    await press(fake, page, PREVIOUS_LABEL)
    assert footer(page).endswith("Page 14 of 15")


# --- /milestones ---------------------------------------------------------------------------------------------


async def test_milestones_page_ten_at_a_time(fake: FakeDiscord, bot: ChartBot) -> None:
    store = await bot.get_store()
    expected = milestone_lines(await store.charts.milestones(title_key=title_key(AOUAD), newest_first=True))
    pages = page_count(len(expected))
    assert len(expected) == 31 and pages == 4
    page = (await run(fake, "milestones", {"title": AOUAD})).message
    assert page is not None and page.embeds[0]["title"] == "Milestones · All of Us Are Dead"
    seen: list[str] = []
    for n in range(1, pages + 1):
        assert footer(page) == f"Page {n} of {pages}"
        check_limits(page)
        lines = page.embeds[0]["description"].split("\n")
        assert len(lines) == (10 if n < pages else 1)
        seen += lines
        assert enabled(page) == {PREVIOUS_LABEL: n > 1, NEXT_LABEL: n < pages}
        if n < pages:
            await press(fake, page, NEXT_LABEL)
    assert seen == expected  # every line once, in order
    stale = await press(fake, page, NEXT_LABEL, force=True)
    assert stale.ephemeral and stale.content == "This is the last page."
    await press(fake, page, PREVIOUS_LABEL)
    assert footer(page) == "Page 3 of 4"


async def test_milestone_pages_past_the_end_or_of_a_title_gone(fake: FakeDiscord, bot: ChartBot) -> None:
    """Buttons made when the list was longer (page 1000 of it), or for a title no longer stored."""
    key = title_key(AOUAD)
    beyond_previous, beyond_next = (
        milestones_button(FAN, PREVIOUS, 999, key),
        milestones_button(FAN, NEXT, 999, key),
    )
    gone = milestones_button(FAN, NEXT, 0, "a title no longer stored")
    message = await post_with_buttons(fake, [beyond_previous, beyond_next, gone])
    back = await (await fake.press(message, beyond_previous, FAN)).response(timeout=5)
    assert back.type == CALLBACK_UPDATE_MESSAGE and footer(message) == "Page 3 of 4"  # from the last page
    assert message.embeds[0]["title"] == "Milestones · All of Us Are Dead"
    message = await post_with_buttons(fake, [beyond_previous, beyond_next, gone])
    last = await (await fake.press(message, beyond_next, FAN)).response(timeout=5)
    assert last.ephemeral and last.content == "This is the last page."
    expired_title = await (await fake.press(message, gone, FAN)).response(timeout=5, followups=1)
    assert expired_title.followups[0].content == expired(MILESTONES) and message.buttons == []


async def test_the_latest_milestones_page_through_whole_weeks(fake: FakeDiscord, bot: ChartBot) -> None:
    store = await bot.get_store()
    from cogs.rank import MILESTONES_READ

    read = await store.charts.milestones(newest_first=True, limit=MILESTONES_READ)
    expected = milestone_lines(whole_dates(read, MILESTONES_READ, lambda m: m.milestone.chart.date))
    page = (await run(fake, "milestones")).message
    assert page is not None and page.embeds[0]["title"] == "Latest milestones"
    assert footer(page) == f"Page 1 of {page_count(len(expected))}"
    assert page.embeds[0]["description"].split("\n") == expected[:10]
    await press(fake, page, NEXT_LABEL)
    assert page.embeds[0]["description"].split("\n") == expected[10:20]
    assert all(line.startswith("`Feb 27`") for line in expected)  # one whole week: the newest
    check_limits(page)
    refused = await press(fake, page, NEXT_LABEL, user=OTHER)
    assert refused.content == not_yours(FAN, MILESTONES)


# --- /watch list ---------------------------------------------------------------------------------------------


async def test_a_long_watch_list_pages(fake: FakeDiscord, bot: ChartBot) -> None:
    store = await bot.get_store()
    titles = sorted(t.title for t in bot.titles.titles if len(t.title) > 12)[:23]
    for title in titles:
        await store.guilds.add_watch(GUILD, title_key(title), title, CHANNEL)
    reply = await run(fake, "watch list", user=ADMIN)
    page = reply.message
    assert reply.ephemeral and page is not None
    assert page.content.startswith("**Watched in this server (23)**") and page.content.endswith("Page 1 of 3")
    assert page.content.count("\n• ") == 10 and "**Channel:**" in page.content
    shown = []
    for n in (1, 2, 3):
        assert page.content.endswith(f"Page {n} of 3") and len(page.content) <= 2000
        shown += [line for line in page.content.split("\n") if line.startswith("• ")]
        if n < 3:
            pressed = await press(fake, page, NEXT_LABEL, user=ADMIN)
            assert pressed.type == CALLBACK_UPDATE_MESSAGE and pressed.ephemeral
    assert len(shown) == 23 and len(set(shown)) == 23
    assert enabled(page) == {PREVIOUS_LABEL: True, NEXT_LABEL: False}
    fake.guilds[GUILD].members[ADMIN].roles = []  # no longer an admin
    refused = await press(fake, page, PREVIOUS_LABEL, user=ADMIN)
    assert refused.ephemeral and refused.content == "You need Manage Server to use these buttons."
    assert page.content.endswith("Page 3 of 3")


async def test_a_short_watch_list_has_no_buttons(fake: FakeDiscord, bot: ChartBot) -> None:
    store = await bot.get_store()
    await store.guilds.add_watch(GUILD, title_key(AOUAD), AOUAD, CHANNEL)
    reply = await run(fake, "watch list", user=ADMIN)
    assert reply.ephemeral and reply.buttons == [] and "Page" not in reply.content
    assert f"• **{AOUAD}** → <#{CHANNEL}>" in reply.content
    assert expired(WATCH_LIST).endswith("run `/watch list` again to see the list.")
