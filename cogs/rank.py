"""Fans' commands: /rank, /top, /milestones. Thin: read the options, ask the store, hand to bot.render.

The plain functions above the cog (parsing options, choosing charts, filtering a report) hold the
decisions and are tested on their own, as do bot.pages' (which page comes next); the cog methods only
sequence them around Discord calls.

Fans may install these commands for themselves and run them anywhere: in any server (with or without
the bot), in DMs with the bot and in group DMs. So they answer through the interaction only: no channel
reads, nothing assumed of `interaction.guild`. /top and /milestones answer with pages whose buttons
(bot.buttons) only the user who ran the command may press.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import TypeVar

import discord
from babel.lists import format_list
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.answers import within
from bot.buttons import Page, PageButton, Pages
from bot.charts import top_charts
from bot.client import ChartBot, collect_garbage
from bot.i18n import ENGLISH, SOURCE, Messages, translator
from bot.i18n import formats as local
from bot.model import (
    ALL_TIME,
    CATEGORIES,
    EARLIEST_DATE,
    MAX_DAYS_AHEAD,
    WORLD,
    InputError,
    parse_date,
    utc_today,
)
from bot.pages import (
    KIND,
    MILESTONES,
    NEXT,
    PAGE_SIZE,
    PREVIOUS,
    TOP,
    ChartKind,
    ChartPage,
    PageExpired,
    Press,
    chart_button,
    chart_kinds,
    clamp_page,
    kind_label,
    kind_of,
    merged_dates,
    milestones_button,
    nearest,
    next_label,
    no_chart,
    page_count,
    page_series,
    page_slice,
    parse_chart,
    parse_numbered,
    position,
    previous_label,
    step,
    title_ref,
    turn,
    whole_dates,
    with_day,
)
from bot.regions import REGIONS, region_name, resolve_region
from bot.render import (
    MAJOR_MARKETS,
    category_word,
    chart_embed,
    chart_name,
    clean_user_text,
    clip,
    in_place,
    milestone_lines,
    milestone_page_embed,
    rank_history_png,
    safe,
    service_name,
    standing_embed,
    when_text,
)
from bot.titles import Title, TitleIndex, TitleNotFound, quoted
from bot.views import ChartView, RankHistory, Series, StoredMilestone, TitleReport

T = TypeVar("T")

PICTURE = "rank-history.png"
MAX_CHOICES = 25
MILESTONES_READ = 3000  # newest milestones read for /milestones (a week of the Netflix files holds ~2,600)
CATEGORY_CHOICES = [
    Choice(name="TV", value="tv"),
    Choice(name="Films", value="movies"),
    Choice(name="Overall", value="overall"),
    Choice(name="TV (English), Netflix global list", value="tv-english"),
    Choice(name="TV (Non-English), Netflix global list", value="tv-non-english"),
    Choice(name="Films (English), Netflix global list", value="movies-english"),
    Choice(name="Films (Non-English), Netflix global list", value="movies-non-english"),
]
# Which charts /top shows: the freshest of daily and weekly (the default), one period, or an all-time list.
LATEST = "latest"
PERIOD_CHOICES = [
    Choice(name="Latest (daily or weekly, whichever is newer)", value=LATEST),
    Choice(name="Daily", value="day"),
    Choice(name="Weekly", value="week"),
    Choice(name="All-time (Netflix's most-watched lists)", value=ALL_TIME),
]
_CATEGORY_ALIASES = {"film": "movies", "films": "movies", "movie": "movies", "shows": "tv", "series": "tv"}
_CATEGORY_ORDER = {c: i for i, c in enumerate(CATEGORIES)}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- options (InputErrors in the user's language: `tr`) ------------------------------------------


def parse_region(text: str | None, tr: Messages = ENGLISH) -> str | None:
    """A region code from a code, a name (in English or the user's language) or a flag ("us",
    "United States", "South Korea", "대한민국", "🇰🇷")."""
    text = clean_user_text(text or "")
    return resolve_region(text, tr) if text else None


def parse_category(text: str | None, tr: Messages = ENGLISH) -> str | None:
    text = clean_user_text(text or "").lower()
    if not text:
        return None
    text = _CATEGORY_ALIASES.get(text, text)
    if text not in CATEGORIES:
        raise InputError(
            tr.gettext("error.category", text=repr(clip(text, 40)), categories=", ".join(CATEGORIES))
        )
    return text


def parse_service(text: str | None) -> str | None:
    text = clean_user_text(text or "").lower().replace(" ", "-").replace("+", "")
    return text or None


def parse_period(value: str | None) -> str | None:
    """The period /top asked for: None for the latest charts (daily or weekly)."""
    return None if value in (None, LATEST) else value


def parse_day(text: str | None, tr: Messages = ENGLISH) -> date | None:
    """A date option (bot.model.parse_date's rule), what is wrong with it said in `tr`'s language."""
    text = clean_user_text(text or "")
    if not text:
        return None
    try:
        return parse_date(text)
    except InputError:
        raise InputError(date_problem(text, tr)) from None


def date_problem(text: str, tr: Messages = ENGLISH) -> str:
    """Why bot.model.parse_date refused `text`: not a date, or out of the range charts can have."""
    try:
        day = date.fromisoformat(text) if _ISO_DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        return tr.gettext("error.date.format", text=repr(text))
    if day < EARLIEST_DATE:
        return tr.gettext("error.date.early", date=day.isoformat(), earliest=EARLIEST_DATE.isoformat())
    return tr.gettext(
        "error.date.future", date=day.isoformat(), days=MAX_DAYS_AHEAD, today=utc_today().isoformat()
    )


def resolve_title(index: TitleIndex, query: str, tr: Messages = ENGLISH) -> tuple[str, str]:
    """(title_key, title) for what the user typed, or InputError naming the closest titles."""
    query = clean_user_text(query)
    if not query:
        raise InputError(tr.gettext("error.no_title"))
    try:
        return index.resolve(query)
    except TitleNotFound as exc:
        raise InputError(not_found_message(query, exc.candidates, tr)) from None


def not_found_message(query: str, candidates: Sequence[str], tr: Messages = ENGLISH) -> str:
    shown = quoted(safe(query, 80), tr)
    if not candidates:
        return tr.gettext("error.title_not_found", title=shown)
    names = [f"**{safe(c, 100)}**" for c in candidates[:5]]
    listed = ", ".join(names) if tr.locale == SOURCE else format_list(names, style="or", locale=tr.babel)
    return tr.gettext("error.title_ambiguous", title=shown, titles=listed)


def title_choices(index: TitleIndex, current: str, limit: int = MAX_CHOICES) -> list[Choice[str]]:
    """Autocomplete from memory; values are titles (≤ 100 characters) that the command re-resolves."""
    query = clean_user_text(current)[:100]
    choices = []
    for _key, title in index.complete(query, limit=min(limit, MAX_CHOICES)):
        name = clip(title, 100)
        if name:
            choices.append(Choice(name=name, value=title[:100]))
    return choices


def region_choices(current: str, limit: int = MAX_CHOICES, tr: Messages = ENGLISH) -> list[Choice[str]]:
    """Regions named in the user's language, the major markets first; what was typed is looked for in
    those names and in the English ones ("kor" finds 대한민국)."""
    query = clean_user_text(current).casefold()
    options = _region_options(tr.locale)
    exact = [o for o in options if o[1] == query]
    starts = [o for o in options if o not in exact and any(n.startswith(query) for n in o[2])]
    within = [o for o in options if o not in exact and o not in starts and any(query in n for n in o[2])]
    return [
        Choice(name=f"{name} ({code})", value=code) for name, code, _ in (exact + starts + within)[:limit]
    ]


@functools.cache
def _region_options(locale: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name shown, code, names matched) of every region in a language, in the order offered."""
    tr = translator(locale)

    def name(code: str) -> str:
        return region_name(code) if locale == SOURCE else local.region_name(code, tr)

    ordered = sorted(REGIONS.values(), key=lambda r: (r.code not in MAJOR_MARKETS, name(r.code)))
    options = [(name(WORLD), WORLD, region_name(WORLD))] + [(name(r.code), r.code, r.name) for r in ordered]
    return [
        (shown, code, tuple(dict.fromkeys((shown.casefold(), english.casefold()))))
        for shown, code, english in options
    ]


# --- choosing what to show ----------------------------------------------------------------------


def select_report(report: TitleReport, region: str | None, category: str | None) -> TitleReport:
    """The part of a standing the user asked for: one region and/or one category (TV also picks the
    TV global lists)."""

    def wanted_category(name: str) -> bool:
        return category is None or name == category or name.startswith(category + "-")

    standings = [
        s for s in report.standings if (region is None or s.region == region) and wanted_category(s.category)
    ]
    countries = report.countries if region in (None, WORLD) else []
    countries = [c for c in countries if wanted_category(c.category)]
    return replace(report, standings=standings, countries=countries)


def history_label(h: RankHistory, tr: Messages = ENGLISH) -> str:
    """Legend text in the user's language, no emoji (the picture's font has no flags)."""
    word = category_word(h.category, tr)
    if h.region == WORLD:
        place = tr.gettext("place.global")
    else:
        place = region_name(h.region) if tr.locale == SOURCE else local.region_name(h.region, tr)
    label = f"{place} {word}".strip()
    if h.service != "netflix":
        label += f" ({service_name(h.service)})"
    return label + (f" {tr.gettext('chart.daily')}" if h.period == "day" else "")


def history_points(
    histories: Sequence[RankHistory], tr: Messages = ENGLISH
) -> list[tuple[str, list[tuple[date, int]]]]:
    return [(history_label(h, tr), h.points) for h in histories]


def draw_history(
    points: list[tuple[str, list[tuple[date, int]]]], title: str, tr: Messages = ENGLISH
) -> bytes:
    """The picture, then the garbage it left (in the worker thread, not on the event loop)."""
    try:
        return rank_history_png(points, title=title, locale=tr)
    finally:
        collect_garbage()


def first_page(views: Sequence[ChartView], category: str | None) -> ChartPage:
    """The page /top opens on: the charts bot.charts chose, as a kind (the one asked, else the kind of
    the chart chosen) of chart in a period, on their date."""
    first = views[0].series
    kind = category or kind_of(first.category)
    return ChartPage(first.service, first.region, kind, first.period, max(v.date for v in views))


def chart_title(page: ChartPage, tr: Messages = ENGLISH) -> str:
    return chart_name(page.service, page.region, page.kind, page.period, tr)


def milestones_heading(title: str | None, tr: Messages = ENGLISH) -> str:
    return tr.gettext("milestones.title", title=title) if title else tr.gettext("milestones.latest")


def _milestone_day(item: StoredMilestone) -> date:
    return item.milestone.chart.date


# --- page buttons ---------------------------------------------------------------------------------


class TopButton(PageButton, template=r"cb:t:.*"):
    cog_name = "Rank"


class MilestonesButton(PageButton, template=r"cb:m:.*"):
    cog_name = "Rank"


def chart_buttons(
    owner: int,
    page: ChartPage,
    dates: Sequence[date],
    kinds: Sequence[ChartKind],
    tr: Messages = ENGLISH,
) -> list[PageButton]:
    """Previous and next period (disabled at either end; on an all-time list: the versions read); the
    region's kinds of chart when it has several (the one shown is highlighted). None at all when there
    is nothing to turn to."""
    buttons: list[PageButton] = []
    if len(dates) > 1:
        buttons += [
            TopButton(
                chart_button(owner, PREVIOUS, page),
                label=previous_label(tr),
                disabled=page.day <= dates[0],
                row=0,
            ),
            TopButton(
                chart_button(owner, NEXT, page), label=next_label(tr), disabled=page.day >= dates[-1], row=0
            ),
        ]
    if len(kinds) > 1:
        for i, kind in enumerate(kinds):
            target = ChartPage(page.service, page.region, kind.kind, kind.period, page.day)
            current = (kind.kind, kind.period) == (page.kind, page.period)
            buttons.append(
                TopButton(
                    chart_button(owner, KIND, target),
                    label=kind_label(kind, kinds, tr),
                    current=current,
                    row=1 + i // 5,
                )
            )
    return buttons


def chart_page(
    owner: int,
    views: Sequence[ChartView],
    page: ChartPage,
    dates: Sequence[date],
    available: Sequence[Series],
    tr: Messages = ENGLISH,
) -> Page:
    """A page of /top: its charts (each with its place among the stored periods) and its buttons."""
    shown = with_day(page, max(v.date for v in views))
    embeds = [chart_embed(v, page=position(dates, shown.day), tr=tr) for v in views]
    kinds = chart_kinds(available, page.service, page.period)
    return Page(embeds=embeds, buttons=chart_buttons(owner, shown, dates, kinds, tr))


def milestone_buttons(
    owner: int, page: int, pages: int, title_key: str | None, tr: Messages = ENGLISH
) -> list[PageButton]:
    if pages <= 1:
        return []
    return [
        MilestonesButton(
            milestones_button(owner, PREVIOUS, page, title_key), label=previous_label(tr), disabled=page <= 0
        ),
        MilestonesButton(
            milestones_button(owner, NEXT, page, title_key), label=next_label(tr), disabled=page >= pages - 1
        ),
    ]


# --- answering ------------------------------------------------------------------------------------


class Rank(commands.Cog):
    """/rank, /top and /milestones."""

    def __init__(self, bot: ChartBot) -> None:
        self.bot = bot
        self.pages = Pages(
            bot, (TopButton, MilestonesButton), self.turn_page, defer_after=lambda: self.bot.defer_after
        )
        self._refs: tuple[TitleIndex, dict[str, Title]] | None = None

    async def cog_load(self) -> None:
        self.pages.register()  # buttons of earlier runs work again

    async def cog_unload(self) -> None:
        self.pages.unregister()

    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.command(name="rank", description="A title's chart standing, with its rank history")
    @app_commands.describe(
        title="The show or film (pick from the list as you type)",
        region="A country (code or name, e.g. us, South Korea) or world",
        category="Which kind of chart",
        on="A past date, YYYY-MM-DD (default: the latest charts)",
    )
    @app_commands.rename(on="date")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def rank(
        self,
        interaction: discord.Interaction,
        title: str,
        region: str | None = None,
        category: str | None = None,
        on: str | None = None,
    ) -> None:
        tr = translator(interaction.locale)
        region_code, category_name, day = (
            parse_region(region, tr),
            parse_category(category, tr),
            parse_day(on, tr),
        )
        store = await within(interaction, self.bot.get_store(), self.bot.defer_after)  # before the index
        key, name = resolve_title(self.bot.titles, title, tr)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)  # always: the picture takes a moment
        report = await store.charts.title_report(key, day)
        if report is None:
            raise InputError(tr.gettext("error.title_gone", title=quoted(safe(name, 100), tr)))
        shown = select_report(report, region_code, category_name)
        histories = await store.charts.rank_history(
            key, region=region_code, category=category_name, until=day, prefer=MAJOR_MARKETS
        )
        png = await asyncio.to_thread(draw_history, history_points(histories, tr), report.title, tr)
        note = None
        if region_code is not None and not shown.standings:
            note = tr.gettext("rank.not_here", where=in_place(region_code, tr), when=when_text(day, tr))
        embed = standing_embed(shown, on=day, note=note, tr=tr)
        embed.set_image(url=f"attachment://{PICTURE}")
        picture = discord.File(io.BytesIO(png), PICTURE)
        await interaction.edit_original_response(embed=embed, attachments=[picture])  # it was deferred

    @rank.autocomplete("title")
    async def _rank_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return title_choices(self.bot.titles, current)

    @rank.autocomplete("region")
    async def _rank_region(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return region_choices(current, tr=translator(interaction.locale))

    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.command(name="top", description="A Top 10 chart, with movement since the last one")
    @app_commands.describe(
        region="A country (code or name) or world (default: world)",
        category="Which kind of chart (default: TV)",
        service="Streaming service (default: Netflix)",
        on="A past date, YYYY-MM-DD (default: the latest chart)",
        period="Daily, weekly or all-time charts (default: the latest of daily and weekly)",
    )
    @app_commands.rename(on="date")
    @app_commands.choices(category=CATEGORY_CHOICES, period=PERIOD_CHOICES)
    async def top(
        self,
        interaction: discord.Interaction,
        region: str | None = None,
        category: str | None = None,
        service: str | None = None,
        on: str | None = None,
        period: str | None = None,
    ) -> None:
        tr = translator(interaction.locale)
        region_code = parse_region(region, tr)
        category_name, service_slug, day = (
            parse_category(category, tr),
            parse_service(service),
            parse_day(on, tr),
        )
        period_name = parse_period(period)

        async def work() -> Page:
            store = await self.bot.get_store()
            views = await top_charts(
                store.charts,
                region=region_code,
                category=category_name,
                service=service_slug,
                period=period_name,
                on=day,
                tr=tr,
            )
            page = first_page(views, category_name)
            available = await store.charts.find_series(service=page.service, region=page.region)
            dates = merged_dates([await store.charts.chart_dates(v.series) for v in views])
            return chart_page(interaction.user.id, views, page, dates, available, tr)

        page = await within(interaction, work(), self.bot.defer_after)
        await self.pages.send(interaction, page, TOP)

    @top.autocomplete("region")
    async def _top_region(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return region_choices(current, tr=translator(interaction.locale))

    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.command(name="milestones", description="The latest milestones, newest first")
    @app_commands.describe(title="Only this show or film (pick from the list as you type)")
    async def milestones(self, interaction: discord.Interaction, title: str | None = None) -> None:
        tr = translator(interaction.locale)
        await within(interaction, self.bot.get_store(), self.bot.defer_after)  # before the index
        key, name = resolve_title(self.bot.titles, title, tr) if title else (None, None)

        async def work() -> Page:
            lines = await self.milestone_lines(key, tr)
            return self.milestones_page(interaction.user.id, lines, key, name, 0, tr)

        page = await within(interaction, work(), self.bot.defer_after)
        await self.pages.send(interaction, page, MILESTONES)

    @milestones.autocomplete("title")
    async def _milestones_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return title_choices(self.bot.titles, current)

    # --- pages --------------------------------------------------------------------------------------

    async def milestone_lines(self, title_key: str | None, tr: Messages = ENGLISH) -> list[str]:
        """The newest milestones (of one title) as lines, newest first, the same news in many countries
        folded into one line (whole dates only: see bot.pages.whole_dates)."""
        store = await self.bot.get_store()
        items = await store.charts.milestones(title_key=title_key, newest_first=True, limit=MILESTONES_READ)
        return milestone_lines(whole_dates(items, MILESTONES_READ, _milestone_day), tr)

    @staticmethod
    def milestones_page(
        owner: int,
        lines: Sequence[str],
        title_key: str | None,
        title: str | None,
        page: int,
        tr: Messages = ENGLISH,
    ) -> Page:
        """One page of milestone lines (PAGE_SIZE of them) with its buttons."""
        pages = page_count(len(lines), PAGE_SIZE)
        embed = milestone_page_embed(
            page_slice(lines, page, PAGE_SIZE),
            title=milestones_heading(title, tr),
            page=(page + 1, pages) if pages > 1 else None,
            tr=tr,
        )
        return Page(embeds=[embed], buttons=milestone_buttons(owner, page, pages, title_key, tr))

    async def turn_page(self, interaction: discord.Interaction, press: Press) -> Page:
        """The page a button asks for (see bot.pages for what each action means), in the presser's
        language."""
        tr = translator(interaction.locale)
        if press.book == TOP:
            return await self._turn_chart(press, tr)
        if press.book == MILESTONES:
            return await self._turn_milestones(press, tr)
        raise PageExpired(press.book)

    async def _turn_chart(self, press: Press, tr: Messages) -> Page:
        page = parse_chart(press)
        store = await self.bot.get_store()
        available = await store.charts.find_series(service=page.service, region=page.region)
        series = page_series(available, page)
        dates = merged_dates([await store.charts.chart_dates(s) for s in series])
        name = chart_title(page, tr)
        if press.action in (PREVIOUS, NEXT):
            day = step(dates, page.day, -1 if press.action == PREVIOUS else 1, name, tr)
        elif press.action == KIND:
            day = nearest(dates, page.day, name, tr)
        else:
            raise PageExpired(press.action)
        views = [view for s in series if (view := await store.charts.chart_view(s, day)) is not None]
        if not views:  # the dates were read a moment ago: the charts went away in between
            raise InputError(no_chart(name, tr))
        return chart_page(press.owner, views, page, dates, available, tr)

    async def _turn_milestones(self, press: Press, tr: Messages) -> Page:
        """Previous or next page; from a page past the end (the list shrank since), the last page's."""
        page, fields = parse_numbered(press)
        ref = fields[0] if fields else ""
        await self.bot.get_store()  # opens the DB and the title index if they were not open yet
        title = self._title_for(ref) if ref else None
        if ref and title is None:
            raise PageExpired(ref)  # that title is no longer stored
        key, name = (title.key, title.title) if title else (None, None)
        lines = await self.milestone_lines(key, tr)
        pages = page_count(len(lines), PAGE_SIZE)
        target = turn(clamp_page(page, pages), press.action, pages, tr)
        return self.milestones_page(press.owner, lines, key, name, target, tr)

    def _title_for(self, ref: str) -> Title | None:
        """The title a button's reference stands for (a digest of its key: see bot.pages.title_ref)."""
        index = self.bot.titles
        if self._refs is None or self._refs[0] is not index:
            self._refs = (index, {title_ref(t.key): t for t in index.titles})
        return self._refs[1].get(ref)


async def setup(bot: ChartBot) -> None:
    await bot.add_cog(Rank(bot))
