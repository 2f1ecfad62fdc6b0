"""Fans' commands: /rank, /top, /milestones. Thin: read the options, ask the store, hand to bot.render.

The plain functions above the cog (parsing options, choosing charts, filtering a report) hold the
decisions and are tested on their own; the cog methods only sequence them around Discord calls.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.charts import top_charts
from bot.client import ChartBot, collect_garbage
from bot.model import CATEGORIES, WORLD, InputError, parse_date
from bot.regions import REGIONS, region_name, region_phrase, resolve_region
from bot.render import (
    MAJOR_MARKETS,
    category_word,
    chart_embed,
    clean_user_text,
    clip,
    date_text,
    milestones_embed,
    rank_history_png,
    safe,
    service_name,
    standing_embed,
)
from bot.titles import TitleIndex, TitleNotFound
from bot.views import RankHistory, TitleReport

T = TypeVar("T")

PICTURE = "rank-history.png"
MAX_CHOICES = 25
MILESTONES_READ = 300  # newest milestones read for /milestones; render folds and trims them
CATEGORY_CHOICES = [
    Choice(name="TV", value="tv"),
    Choice(name="Films", value="movies"),
    Choice(name="Overall", value="overall"),
    Choice(name="TV (English), Netflix global list", value="tv-english"),
    Choice(name="TV (Non-English), Netflix global list", value="tv-non-english"),
    Choice(name="Films (English), Netflix global list", value="movies-english"),
    Choice(name="Films (Non-English), Netflix global list", value="movies-non-english"),
]
_CATEGORY_ALIASES = {"film": "movies", "films": "movies", "movie": "movies", "shows": "tv", "series": "tv"}
_CATEGORY_ORDER = {c: i for i, c in enumerate(CATEGORIES)}


# --- options ------------------------------------------------------------------------------------


def parse_region(text: str | None) -> str | None:
    """A region code from a code, a name or a flag ("us", "United States", "South Korea", "🇰🇷")."""
    text = clean_user_text(text or "")
    return resolve_region(text) if text else None


def parse_category(text: str | None) -> str | None:
    text = clean_user_text(text or "").lower()
    if not text:
        return None
    text = _CATEGORY_ALIASES.get(text, text)
    if text not in CATEGORIES:
        raise InputError(f"unknown category {clip(text, 40)!r}: use one of {', '.join(CATEGORIES)}")
    return text


def parse_service(text: str | None) -> str | None:
    text = clean_user_text(text or "").lower().replace(" ", "-").replace("+", "")
    return text or None


def parse_day(text: str | None) -> date | None:
    text = clean_user_text(text or "")
    return parse_date(text) if text else None


def resolve_title(index: TitleIndex, query: str) -> tuple[str, str]:
    """(title_key, title) for what the user typed, or InputError naming the closest titles."""
    query = clean_user_text(query)
    if not query:
        raise InputError("Type a title, e.g. `All of Us Are Dead` (pick one from the list as you type).")
    try:
        return index.resolve(query)
    except TitleNotFound as exc:
        raise InputError(not_found_message(query, exc.candidates)) from None


def not_found_message(query: str, candidates: Sequence[str]) -> str:
    shown = safe(query, 80)
    if not candidates:
        return f"No title in the charts matches “{shown}”. Pick one from the list as you type."
    names = ", ".join(f"**{safe(c, 100)}**" for c in candidates[:5])
    return f"No single title in the charts matches “{shown}”. Did you mean {names}?"


def title_choices(index: TitleIndex, current: str, limit: int = MAX_CHOICES) -> list[Choice[str]]:
    """Autocomplete from memory; values are titles (≤ 100 characters) that the command re-resolves."""
    query = clean_user_text(current)[:100]
    choices = []
    for _key, title in index.complete(query, limit=min(limit, MAX_CHOICES)):
        name = clip(title, 100)
        if name:
            choices.append(Choice(name=name, value=title[:100]))
    return choices


def region_choices(current: str, limit: int = MAX_CHOICES) -> list[Choice[str]]:
    query = clean_user_text(current).casefold()
    ordered = sorted(REGIONS.values(), key=lambda r: (r.code not in MAJOR_MARKETS, r.name))
    options = [("Worldwide", WORLD), *((r.name, r.code) for r in ordered)]
    exact = [o for o in options if o[1] == query]
    starts = [o for o in options if o[0].casefold().startswith(query) and o not in exact]
    within = [o for o in options if query in o[0].casefold() and o not in exact and o not in starts]
    return [Choice(name=f"{name} ({code})", value=code) for name, code in (exact + starts + within)[:limit]]


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


def history_label(h: RankHistory) -> str:
    """Legend text, no emoji (the picture's font has no flags)."""
    word = category_word(h.category)
    place = "Global" if h.region == WORLD else region_name(h.region)
    label = f"{place} {word}".strip()
    if h.service != "netflix":
        label += f" ({service_name(h.service)})"
    return label + (" daily" if h.period == "day" else "")


def history_points(histories: Sequence[RankHistory]) -> list[tuple[str, list[tuple[date, int]]]]:
    return [(history_label(h), h.points) for h in histories]


def draw_history(points: list[tuple[str, list[tuple[date, int]]]], title: str) -> bytes:
    """The picture, then the garbage it left (in the worker thread, not on the event loop)."""
    try:
        return rank_history_png(points, title=title)
    finally:
        collect_garbage()


# --- answering ------------------------------------------------------------------------------------


async def within(interaction: discord.Interaction, work: Awaitable[T], budget: float) -> T:
    """Await `work`; if it takes longer than `budget` seconds, defer first (Discord waits 3 s at most)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if not done and not interaction.response.is_done():
        try:
            await interaction.response.defer(thinking=True)
        except BaseException:
            task.cancel()  # nobody can be answered any more
            raise
    return await task


async def reply(interaction: discord.Interaction, **message: Any) -> None:
    """Answer; when the interaction was deferred, by editing the "thinking…" message (a first followup
    would only do that through behaviour Discord deprecated)."""
    if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(**message)
    elif interaction.response.is_done():
        await interaction.followup.send(**message)
    else:
        await interaction.response.send_message(**message)


class Rank(commands.Cog):
    """/rank, /top and /milestones."""

    def __init__(self, bot: ChartBot) -> None:
        self.bot = bot

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
        region_code, category_name, day = parse_region(region), parse_category(category), parse_day(on)
        store = await within(interaction, self.bot.get_store(), self.bot.defer_after)  # before the index
        key, name = resolve_title(self.bot.titles, title)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)  # always: the picture takes a moment
        report = await store.charts.title_report(key, day)
        if report is None:
            raise InputError(f"“{safe(name, 100)}” is no longer in the chart database.")
        shown = select_report(report, region_code, category_name)
        histories = await store.charts.rank_history(
            key, region=region_code, category=category_name, until=day, prefer=MAJOR_MARKETS
        )
        png = await asyncio.to_thread(draw_history, history_points(histories), report.title)
        note = None
        if region_code is not None and not shown.standings:
            where = "worldwide" if region_code == WORLD else f"in {region_phrase(region_code)}"
            note = f"Not in the Top 10 {where} {f'on {date_text(day)}' if day else 'right now'}."
        embed = standing_embed(shown, on=day, note=note)
        embed.set_image(url=f"attachment://{PICTURE}")
        picture = discord.File(io.BytesIO(png), PICTURE)
        await interaction.edit_original_response(embed=embed, attachments=[picture])  # it was deferred

    @rank.autocomplete("title")
    async def _rank_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return title_choices(self.bot.titles, current)

    @rank.autocomplete("region")
    async def _rank_region(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return region_choices(current)

    @app_commands.command(name="top", description="A Top 10 chart, with movement since the last one")
    @app_commands.describe(
        region="A country (code or name) or world (default: world)",
        category="Which kind of chart (default: TV)",
        service="Streaming service (default: Netflix)",
        on="A past date, YYYY-MM-DD (default: the latest chart)",
    )
    @app_commands.rename(on="date")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def top(
        self,
        interaction: discord.Interaction,
        region: str | None = None,
        category: str | None = None,
        service: str | None = None,
        on: str | None = None,
    ) -> None:
        region_code = parse_region(region)
        category_name, service_slug, day = parse_category(category), parse_service(service), parse_day(on)

        async def work() -> list[discord.Embed]:
            store = await self.bot.get_store()
            views = await top_charts(
                store.charts, region=region_code, category=category_name, service=service_slug, on=day
            )
            return [chart_embed(view) for view in views]

        embeds = await within(interaction, work(), self.bot.defer_after)
        await reply(interaction, embeds=embeds)

    @top.autocomplete("region")
    async def _top_region(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return region_choices(current)

    @app_commands.command(name="milestones", description="The latest milestones, newest first")
    @app_commands.describe(title="Only this show or film (pick from the list as you type)")
    async def milestones(self, interaction: discord.Interaction, title: str | None = None) -> None:
        store = await within(interaction, self.bot.get_store(), self.bot.defer_after)  # before the index
        key, name = resolve_title(self.bot.titles, title) if title else (None, None)

        async def work() -> discord.Embed:
            items = await store.charts.milestones(title_key=key, newest_first=True, limit=MILESTONES_READ)
            heading = f"Milestones · {name}" if name else "Latest milestones"
            return milestones_embed(items, title=heading)

        embed = await within(interaction, work(), self.bot.defer_after)
        await reply(interaction, embed=embed)

    @milestones.autocomplete("title")
    async def _milestones_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return title_choices(self.bot.titles, current)


async def setup(bot: ChartBot) -> None:
    await bot.add_cog(Rank(bot))
