"""Milestones, standings and charts as text, embeds and pictures. No Discord calls, no I/O.

Text is written the way a chart journalist would ("slipped to No. 2 in the 🇺🇸 U.S. after 1 day at
No. 1"). Everything that reaches Discord goes through `safe()` (markdown and mentions escaped, zero-width
characters gone) and `fit_embed()` (Discord's embed limits), because titles come from scraped pages and
users type whatever they like.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import discord
import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display, safe in worker threads

import matplotlib.dates as mdates
from matplotlib import font_manager, ft2font
from matplotlib.figure import Figure
from matplotlib.text import Text

from bot.i18n import SOURCE, Messages, translator
from bot.i18n.cjkfont import FAMILY as CJK_FAMILY
from bot.i18n.cjkfont import font_path as cjk_font_path
from bot.i18n.formats import date_part
from bot.model import ALL_TIME, WORLD, Milestone, full_title
from bot.regions import flag, region_name, region_phrase
from bot.views import ChartRow, ChartView, Standing, StoredMilestone, TitleReport

SERVICE_NAMES = {
    "netflix": "Netflix",
    "disney": "Disney+",
    "hbo-max": "HBO Max",
    "max": "Max",
    "amazon-prime": "Prime Video",
    "apple-tv": "Apple TV+",
    "paramount-plus": "Paramount+",
    "hulu": "Hulu",
    "peacock": "Peacock",
}
CATEGORY_WORDS = {
    "tv": "TV",
    "movies": "film",
    "overall": "",
    "tv-english": "TV (English)",
    "tv-non-english": "TV (Non-English)",
    "movies-english": "film (English)",
    "movies-non-english": "film (Non-English)",
}
# Among equal ranks, the markets readers look for first (and the picture draws first).
MAJOR_MARKETS = ("us", "gb", "kr", "jp", "in", "br", "mx", "fr", "de", "es", "it", "ca", "au")
GLOBAL_LISTS = frozenset({"tv-english", "tv-non-english", "movies-english", "movies-non-english"})

EMBED_TITLE, EMBED_DESCRIPTION, EMBED_FIELDS = 256, 4096, 25
FIELD_NAME, FIELD_VALUE, FOOTER, EMBED_TOTAL = 256, 1024, 2048, 6000
CONTENT = 2000
COLOUR = discord.Colour(0xE50914)  # chart red

_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufe00-\ufe0f]")
_SPACES = re.compile(r"\s+")


# --- small words ----------------------------------------------------------------------------------


def clean_user_text(text: str) -> str:
    """What a user typed, without zero-width, bidi and control characters, spacing collapsed."""
    text = _INVISIBLE.sub("", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch in "\t\n")
    return _SPACES.sub(" ", text).strip()


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking the cut (never a dangling backslash escape)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    while cut.endswith("\\"):
        cut = cut[:-1]
    return cut + "…"


def safe(text: str, limit: int | None = None) -> str:
    """Text from outside (titles, queries) made inert for Discord: no markdown, no pings."""
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(clean_user_text(text)))
    return clip(text, limit) if limit is not None else text


def service_name(service: str) -> str:
    return SERVICE_NAMES.get(service, service.replace("-", " ").title())


def category_word(category: str) -> str:
    return CATEGORY_WORDS.get(category, category)


def units(count: int, period: str) -> str:
    """Count and unit: "1 day", "8 days", "1 week"."""
    return f"{count:,} {period}{'' if count == 1 else 's'}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def date_text(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def period_text(day: date, period: str) -> str:
    """The period a chart covers: "week ending Feb 27, 2022", "Feb 27, 2022"; an all-time list is
    dated by when it was read: "as of Aug 27, 2025"."""
    if period == ALL_TIME:
        return f"as of {date_text(day)}"
    return f"week ending {date_text(day)}" if period == "week" else date_text(day)


def now_word(period: str) -> str:
    return "this week" if period == "week" else "today"


def compact(number: float) -> str:
    """Big numbers the way charts print them: 236230000 -> "236.2M"."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}{suffix}"
    return f"{number:,.0f}"


def figures(points: float | None, hours: int | None, views: int | None) -> str:
    parts = []
    if hours:
        parts.append(f"{compact(hours)} hours")
    if views:
        parts.append(f"{compact(views)} views")
    if points:
        parts.append(f"{points:,.0f} points")
    return " · ".join(parts)


def movement(rank: int, previous: int | None, periods_in_top10: int) -> str:
    """▲2, ▼1, = ; NEW for a first week in the chart, RE for a re-entry."""
    if previous is None:
        return "NEW" if periods_in_top10 <= 1 else "RE"
    if previous > rank:
        return f"▲{previous - rank}"
    if previous < rank:
        return f"▼{rank - previous}"
    return "="


def _flag(region: str) -> str:
    try:
        return flag(region)
    except ValueError:
        return ""


def _region(region: str, **options: bool) -> str:
    try:
        return region_phrase(region, **options)
    except ValueError:
        return region.upper()


def place_name(region: str) -> str:
    """A label for a field: "🇺🇸 United States", "🌍 Global"."""
    if region == WORLD:
        return f"{_flag(region)} Global"
    try:
        return f"{_flag(region)} {region_name(region)}"
    except ValueError:
        return region.upper()


def chart_name(service: str, region: str, category: str, period: str | None = None) -> str:
    """A chart's name: "🇺🇸 U.S. Top 10 · TV", "🌍 Netflix global Top 10 · TV (Non-English)",
    "🌍 Netflix all-time Top 10 · film (English)"."""
    if region == WORLD and period == ALL_TIME:
        head = f"{_flag(region)} {service_name(service)} all-time"
    elif region == WORLD:
        head = (
            f"{_flag(region)} {service_name(service) + ' global' if category in GLOBAL_LISTS else 'Global'}"
        )
    else:
        head = _region(region).removeprefix("the ")
    parts = [f"{head} Top 10"]
    if category_word(category):
        parts.append(category_word(category))
    if service != "netflix" and not (region == WORLD and (category in GLOBAL_LISTS or period == ALL_TIME)):
        parts.append(service_name(service))
    if period == "day":
        parts.append("daily")
    return " · ".join(parts)


# --- milestones -----------------------------------------------------------------------------------


def _on_service(service: str) -> str:
    return "" if service == "netflix" else f" on {service_name(service)}"


def _where(m: Milestone, *, when: bool = True) -> str:
    """Where a rank is, telling a daily chart from a weekly list: "on the 🇺🇸 U.S. daily Top 10",
    "in the 🇺🇸 U.S. this week" (`when`: say "this week"; a sentence counting weeks needs not),
    "on Netflix's global TV (Non-English) list"."""
    key = m.chart
    if key.region == WORLD and key.category in GLOBAL_LISTS:
        return f"on {service_name(key.service)}'s global {category_word(key.category)} list"
    if key.period == "day":
        return f"on {_top10(m)}"
    place = "worldwide" if key.region == WORLD else f"in {_region(key.region)}"
    return place + _on_service(key.service) + (" this week" if when and key.period == "week" else "")


def _top10(m: Milestone) -> str:
    """Which Top 10: "the 🇺🇸 U.S. daily Top 10", "the 🇺🇸 U.S. weekly Top 10", "the global daily Top 10",
    "Netflix's global TV (Non-English) Top 10"."""
    key = m.chart
    if key.region == WORLD and key.category in GLOBAL_LISTS:
        return f"{service_name(key.service)}'s global {category_word(key.category)} Top 10"
    place = "global" if key.region == WORLD else _region(key.region).removeprefix("the ")
    every = {"day": "daily ", "week": "weekly "}.get(key.period, "")
    return f"the {place} {every}Top 10{_on_service(key.service)}"


def _beating(m: Milestone, escape: bool) -> str:
    holder = m.context.get("holder")
    if not holder:
        return f"beating the old record of {m.previous}"
    if holder == m.title:
        return f"beating its own {m.previous}"
    return f"beating {_title(holder, escape)}'s {m.previous}"


def _title(text: str, escape: bool) -> str:
    return safe(text, 200) if escape else text


def milestone_text(m: Milestone, *, escape: bool = False) -> str:
    """One sentence for one milestone. `escape`: titles made safe for Discord markdown."""
    t = _title(m.title, escape)
    period, value, previous = m.chart.period, m.value, m.previous
    kind = m.kind
    if kind == "entered_top10":
        verb = "re-enters" if m.context.get("reentry") or previous is not None else "enters"
        text = f"{t} {verb} {_top10(m)} at No. {value}"
        return text + (f" (last seen at No. {previous})" if previous is not None else "")
    if kind == "reached_no1":
        if m.context.get("first_time"):
            return f"{t} is No. 1 {_where(m)} for the first time"
        return f"{t} is back at No. 1 {_where(m)}"
    if kind == "no1_streak":
        return f"{t} has been No. 1 {_where(m, when=False)} for {value} consecutive {period}s"
    if kind == "lost_no1":
        run = units(int(m.context.get("run") or 1), period)
        if value is None:
            text = f"{t} dropped out of {_top10(m)} after {run} at No. 1"
        else:
            text = f"{t} slipped to No. {value} {_where(m)} after {run} at No. 1"
        new_no1 = m.context.get("new_no1")
        return text + (f"; {_title(new_no1, escape)} is the new No. 1" if new_no1 else "")
    if kind == "new_peak":
        return f"{t} climbs to a new peak of No. {value} {_where(m)} (previous best No. {previous})"
    if kind == "top10_run":
        return f"{t} has spent {units(value or 0, period)} in {_top10(m)}"
    if kind == "left_top10":
        last = "last week" if period == "week" else "yesterday"
        detail = [f"No. {previous} {last}"] if previous is not None else []
        if m.context.get("periods"):
            detail.append(f"{units(int(m.context['periods']), period)} on the chart")
        return f"{t} left {_top10(m)}" + (f" ({'; '.join(detail)})" if detail else "")
    if kind == "no1_countries":
        text = f"{t} is No. 1 in {_n_countries(value)}{_on_service(m.chart.service)} {now_word(period)}"
        if m.context.get("reporting"):
            text += f" (of {m.context['reporting']} reporting)"
        return text + (f" — up from {previous}" if previous else "")
    if kind == "top10_countries":
        reporting = m.context.get("reporting")
        if m.context.get("everywhere"):
            where = "every reporting country" + (f" ({reporting} of {reporting})" if reporting else "")
            return f"{t} is in the Top 10 in {where}{_on_service(m.chart.service)} {now_word(period)}"
        text = (
            f"{t} is in the Top 10 in {_n_countries(value)}{_on_service(m.chart.service)} {now_word(period)}"
        )
        if reporting:
            text += f" (of {reporting} reporting)"
        return text + (f" — up from {previous}" if previous and value and previous < value else "")
    if kind == "record":
        if m.context.get("record") == "no1_countries":
            return (
                f"{t} sets a record: No. 1 in {_n_countries(value)}{_on_service(m.chart.service)} in a single {period}, "
                f"{_beating(m, escape)}"
            )
        where = _where(m, when=False) if m.chart.region == WORLD else f"in {_top10(m)}"
        return (
            f"{t} sets the record for the longest No. 1 run {where}: {units(value or 0, period)} "
            f"in a row, {_beating(m, escape)}"
        )
    if kind == "record_near":
        return _record_near_text(m, escape)
    if kind in ("entered_all_time", "all_time_no1"):
        return _all_time_text(m, escape)
    return f"{t}: {kind.replace('_', ' ')} {_where(m)} ({value})"  # a kind newer than this module


def _record_near_text(m: Milestone, escape: bool) -> str:
    """ "All of Us Are Dead is 1 day from tying Squid Game's 15-day No. 1 run in the 🇺🇸 U.S. daily Top 10"."""
    period, holder = m.chart.period, m.context.get("holder")
    run = f"{m.previous}-{period} No. 1 run"
    if not holder:
        whose = f"the record {run}"
    elif holder == m.title:
        whose = f"its own {run}"
    else:
        whose = f"{_title(holder, escape)}'s {run}"
    where = _where(m, when=False) if m.chart.region == WORLD else f"in {_top10(m)}"
    return f"{_title(m.title, escape)} is {units(m.value or 1, period)} from tying {whose} {where}"


# The all-time lists' names in a sentence: (one title, the list).
ALL_TIME_WORDS = {
    "movies-english": ("English film", "English films"),
    "movies-non-english": ("non-English film", "non-English films"),
    "tv-english": ("English series", "English series"),
    "tv-non-english": ("non-English series", "non-English series"),
    "movies": ("film", "films"),
    "tv": ("series", "series"),
}


def _all_time_text(m: Milestone, escape: bool) -> str:
    """ "KPop Demon Hunters is now Netflix's most-watched English film ever: 236.0M views in its first
    91 days, passing Red Notice (230.9M)"; "Red Notice joins Netflix's all-time most popular English
    films at No. 2 (277.9M hours in its first 28 days)"."""
    context = m.context
    name = _title(full_title(m.title, context.get("season")), escape)
    one, many = ALL_TIME_WORDS.get(m.chart.category, ("title", "titles"))
    owner = service_name(m.chart.service) + "'s"
    place = "" if m.chart.region == WORLD else f" in {_region(m.chart.region)}"
    figure = _all_time_figure(context)
    if m.kind == "entered_all_time":
        text = f"{name} joins {owner} all-time most popular {many}{place} at No. {m.value}"
        return text + (f" ({figure})" if figure else "")
    text = f"{name} is now {owner} most-watched {one}{place} ever" + (f": {figure}" if figure else "")
    passed = context.get("passed")
    if passed:
        text += f", passing {_title(full_title(passed, context.get('passed_season')), escape)}"
        if context.get("passed_figure") is not None:
            text += f" ({compact(context['passed_figure'])})"
    return text


def _all_time_figure(context: Mapping[str, Any]) -> str:
    """ "236.0M views in its first 91 days"."""
    if context.get("figure") is None:
        return ""
    text = f"{compact(context['figure'])} {context.get('measure') or 'hours'}"
    window = context.get("window_days")
    return text + (f" in its first {window} days" if window else "")


def _n_countries(count: int | None) -> str:
    return f"{count} {'country' if count == 1 else 'countries'}"


# --- embeds ---------------------------------------------------------------------------------------


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Clip every part to Discord's limits and drop trailing fields until the whole fits 6000."""
    if embed.title:
        embed.title = clip(embed.title, EMBED_TITLE)
    if embed.description:
        embed.description = clip(embed.description, EMBED_DESCRIPTION)
    fields = [
        (clip(f.name or "\u200b", FIELD_NAME), clip(f.value or "\u200b", FIELD_VALUE), f.inline)
        for f in embed.fields
    ][:EMBED_FIELDS]
    footer = embed.footer.text
    author = embed.author.name
    embed.clear_fields()
    if footer:
        embed.set_footer(text=clip(footer, FOOTER), icon_url=embed.footer.icon_url)
    if author:
        embed.set_author(name=clip(author, EMBED_TITLE), url=embed.author.url, icon_url=embed.author.icon_url)

    def size() -> int:
        return (
            len(embed.title or "")
            + len(embed.description or "")
            + len(embed.footer.text or "")
            + len(embed.author.name or "")
            + sum(len(n) + len(v) for n, v, _ in fields)
        )

    while size() > EMBED_TOTAL and fields:
        fields.pop()
    if size() > EMBED_TOTAL and embed.description:
        embed.description = clip(embed.description, max(len(embed.description) - (size() - EMBED_TOTAL), 1))
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    return embed


def join_lines(lines: Iterable[str], limit: int, more: str = "…and {n} more") -> str:
    """Whole lines up to `limit` characters, then a line saying how many were left out."""
    lines = list(lines)
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i
        tail = len(more.format(n=rest)) + 1 if rest > 1 else 0
        if used + len(line) + 1 + tail > limit and out:
            out.append(more.format(n=rest))
            break
        out.append(clip(line, limit))
        used += len(line) + 1
    return "\n".join(out)


def _standing_summary(s: Standing) -> str:
    """The lines of one chart in a standing card: rank and movement, No. 1 run, peak, time in the chart."""
    lines = [f"**No. {s.rank}** {movement(s.rank, s.previous_rank, s.periods_in_top10)}"]
    if s.rank == 1 and s.no1_streak:
        lines.append(f"{ordinal(s.no1_streak)} {s.period} at No. 1")
    elif s.periods_at_no1:
        lines.append(f"{units(s.periods_at_no1, s.period)} at No. 1 in all")
    lines.append(f"peak No. {s.peak} · {date_text(s.peak_date)}")
    lines.append(f"{units(s.periods_in_top10, s.period)} in the Top 10")
    extra = figures(s.points, s.hours, s.views)
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def _standing_headline(s: Standing) -> str:
    word = category_word(s.category)
    if s.region == WORLD and s.category in GLOBAL_LISTS:
        where = f"on {service_name(s.service)}'s global {word} list"
    elif s.period == "day":
        place = "global" if s.region == WORLD else _region(s.region).removeprefix("the ")
        where = f"on the {place} daily Top 10" + (f" ({word})" if word else "") + _on_service(s.service)
    else:
        where = ("worldwide" if s.region == WORLD else f"in {_region(s.region)}") + (
            f" ({word})" if word else ""
        )
        where += _on_service(s.service) + " this week"
    line = f"{_flag(s.region)} **No. {s.rank}** {where}"
    if s.rank == 1 and s.no1_streak > 1:
        line += f" · {ordinal(s.no1_streak)} {s.period} at No. 1"
    return line


def standing_embed(
    report: TitleReport, *, on: date | None = None, note: str | None = None, max_charts: int = 9
) -> discord.Embed:
    """A title's standing: world charts first, then its best country charts, the rest in one line.

    `report` is what to show (already filtered by region/category by the caller); `note` comes first.
    """
    embed = discord.Embed(title=safe(report.title, EMBED_TITLE), colour=COLOUR)
    lines = [note] if note else []
    lines += [_standing_headline(s) for s in report.standings if s.region == WORLD]
    for c in report.countries:
        word = category_word(c.category)
        label = f" ({word}{_on_service(c.service)})" if word or c.service != "netflix" else ""
        lines.append(
            f"{_flag(WORLD)} **No. 1 in {c.no1} of {c.reporting} countries** {now_word(c.period)}{label}"
            f" · Top 10 in {c.top10}"
        )
    countries = [s for s in report.standings if s.region != WORLD]
    if len(countries) == 1 and not lines:
        lines.append(_standing_headline(countries[0]))
    if not report.standings:
        lines.append(_off_the_charts(report, on))
    embed.description = join_lines(lines, EMBED_DESCRIPTION)
    standings = sorted(report.standings, key=_reading_order)
    seasons = {s.season for s in standings}
    one_season = seasons.pop() if len(seasons) == 1 else None
    if one_season:
        embed.title = safe(f"{report.title}: {one_season}", EMBED_TITLE)
    shown = standings[:max_charts]
    for s in shown:
        season = f" · {safe(s.season, 60)}" if s.season and not one_season else ""
        word = category_word(s.category)
        embed.add_field(
            name=f"{place_name(s.region)}{' · ' + word if word else ''}{season}",
            value=_standing_summary(s),
            inline=True,
        )
    rest = standings[len(shown) :]
    if rest:
        entries = [f"{_flag(s.region) or s.region.upper()} {s.rank}" for s in rest]
        embed.add_field(
            name=f"Also in the Top 10 in {len(rest)} more charts",
            value=_join_within(entries, " · ", FIELD_VALUE),
            inline=False,
        )
    dates = {(s.date, s.period) for s in report.standings} | {(c.date, c.period) for c in report.countries}
    if dates:
        day, period = max(dates)
        services = sorted({s.service for s in report.standings} | {c.service for c in report.countries})
        embed.set_footer(text=f"{', '.join(map(service_name, services))} Top 10 · {period_text(day, period)}")
    elif on is not None:
        embed.set_footer(text=f"as of {date_text(on)}")
    return fit_embed(embed)


def _reading_order(s: Standing) -> tuple:
    """World charts first, then by rank; among equal ranks the major markets first."""
    major = MAJOR_MARKETS.index(s.region) if s.region in MAJOR_MARKETS else len(MAJOR_MARKETS)
    return (s.region != WORLD, s.rank, major, s.region, s.category, s.period)


def _off_the_charts(report: TitleReport, on: date | None) -> str:
    when = f"on {date_text(on)}" if on else "right now"
    seen = report.last_seen
    if seen is None:
        return f"Not in any Top 10 {when}, and no earlier chart history."
    word = category_word(seen.category)
    where = "worldwide" if seen.region == WORLD else f"in {_region(seen.region)}"
    return (
        f"Not in any Top 10 {when}. Last seen at No. {seen.rank} {where}"
        f"{f' ({word})' if word else ''} on {date_text(seen.date)} · peak No. {seen.peak}"
    )


def _join_within(items: Sequence[str], sep: str, limit: int) -> str:
    out, used = [], 0
    for i, item in enumerate(items):
        tail = f"{sep}+{len(items) - i}"
        if used + len(sep) + len(item) + len(tail) > limit:
            out.append(f"+{len(items) - i}")
            break
        out.append(item)
        used += len(sep) + len(item)
    return sep.join(out)


def _chart_row(row: ChartRow, has_previous: bool) -> str:
    move = f" {movement(row.rank, row.previous_rank, row.periods_in_top10)}" if has_previous else ""
    season = f" · {safe(row.season, 60)}" if row.season else ""
    extra = figures(row.points, row.hours, row.views)
    return f"`{row.rank:>2}.`{move} **{safe(row.title, 150)}**{season}{' · ' + extra if extra else ''}"


def page_text(page: int, pages: int) -> str:
    """A page's place among its pages: "Page 2 of 7"."""
    return f"Page {page:,} of {pages:,}"


def chart_embed(view: ChartView, *, page: tuple[int, int] | None = None) -> discord.Embed:
    """A Top 10 with movement since the previous period and the figures the source gives; `page`: the
    period's place among the stored ones, when the chart is paged."""
    series = view.series
    embed = discord.Embed(
        title=chart_name(series.service, series.region, series.category, series.period), colour=COLOUR
    )
    embed.description = join_lines(
        (_chart_row(r, view.has_previous) for r in view.entries), EMBED_DESCRIPTION
    )
    footer = [period_text(view.date, series.period)]
    if not view.has_previous:
        footer.append("no chart for the period before: no movement shown")
    if not view.complete:
        footer.append("incomplete chart")
    if page is not None:
        footer.append(page_text(*page))
    embed.set_footer(text=" · ".join(footer))
    return fit_embed(embed)


_WEIGHT = {
    "record": 0,
    "no1_countries": 1,
    "reached_no1": 2,
    "no1_streak": 3,
    "top10_countries": 4,
    "lost_no1": 5,
    "new_peak": 6,
    "top10_run": 7,
    "entered_top10": 8,
    "left_top10": 9,
}
_GROUP_VERBS = {
    "entered_top10": "entered the Top 10",
    "reached_no1": "reached No. 1",
    "no1_streak": "stayed at No. 1",
    "lost_no1": "lost No. 1",
    "new_peak": "hit a new peak",
    "top10_run": "reached a Top 10 run milestone",
    "left_top10": "left the Top 10",
    "record": "set a record for the longest No. 1 run",
}
GROUP_AT = 3  # the same news in this many countries or more reads as one line


def fold_countries(milestones: Iterable[Milestone]) -> list[list[Milestone]]:
    """Groups of one piece of news: the same kind of country-level event for one title, chart and
    period is one group (to read as one line when it happened in GROUP_AT countries or more)."""
    groups: dict[tuple, list[Milestone]] = defaultdict(list)
    for m in milestones:
        if m.chart.region == WORLD:
            groups[(m.key,)].append(m)
        else:
            groups[
                (m.kind, m.title_key, m.chart.service, m.chart.category, m.chart.period, m.chart.date)
            ].append(m)
    return [sorted(group, key=lambda m: m.chart.region) for group in groups.values()]  # flags in code order


def group_text(group: Sequence[Milestone]) -> list[str]:
    """The lines of one group: each milestone's own text, or one line with the countries' flags."""
    if len(group) < GROUP_AT:
        return [milestone_text(m, escape=True) for m in group]
    first = group[0]
    flags = " ".join(_flag(m.chart.region) for m in group[:12]) + (" …" if len(group) > 12 else "")
    verb = _GROUP_VERBS.get(first.kind, first.kind.replace("_", " "))
    if first.kind == "top10_run" and len({m.value for m in group}) == 1:
        verb = f"has spent {units(first.value or 0, first.chart.period)} in the Top 10"
    return [f"{safe(first.title, 200)} {verb} in {len(group)} countries {flags}"]


def news_order(kind: str) -> int:
    """Biggest news first: records, then No. 1 in many countries, … , left the Top 10 last."""
    return _WEIGHT.get(kind, len(_WEIGHT))


def milestone_lines(items: Iterable[Milestone | StoredMilestone]) -> list[str]:
    """Newest first; within a date the biggest news first; one country-level event repeated in many
    countries folded into one line with their flags."""
    milestones = [i.milestone if isinstance(i, StoredMilestone) else i for i in items]
    ordered = sorted(
        fold_countries(milestones),
        key=lambda g: (-g[0].chart.date.toordinal(), news_order(g[0].kind), g[0].chart.region != WORLD),
    )
    lines = []
    for group in ordered:
        first = group[0]
        stamp = f"`{first.chart.date:%b} {first.chart.date.day:>2}`"
        lines.extend(f"{stamp} {line}" for line in group_text(group))
    return lines


NO_MILESTONES = "No milestones yet."


def milestones_embed(
    items: Iterable[Milestone | StoredMilestone], *, title: str = "Latest milestones"
) -> discord.Embed:
    return milestone_page_embed(milestone_lines(items), title=title)


def milestone_page_embed(
    lines: Sequence[str], *, title: str, page: tuple[int, int] | None = None
) -> discord.Embed:
    """Lines of `milestone_lines` (one page of them, when `page` says which of how many)."""
    embed = discord.Embed(title=safe(title, EMBED_TITLE), colour=COLOUR)
    embed.description = join_lines(lines, EMBED_DESCRIPTION) if lines else NO_MILESTONES
    if page is not None:
        embed.set_footer(text=page_text(*page))
    return fit_embed(embed)


# --- pictures -------------------------------------------------------------------------------------

_PALETTE = ("#e50914", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#7f7f7f")
_GOLD = "#d4a017"


def _with_gaps(points: Sequence[tuple[date, int]]) -> tuple[list[date], list[float]]:
    """Dates and ranks with a NaN wherever a period is missing, so a line never bridges a gap."""
    if not points:
        return [], []
    deltas = [b[0] - a[0] for a, b in itertools.pairwise(points)]
    step = min((d for d in deltas if d > timedelta(0)), default=timedelta(days=1))
    xs: list[date] = []
    ys: list[float] = []
    for i, (day, rank) in enumerate(points):
        if i and day - points[i - 1][0] > step:
            xs.append(points[i - 1][0] + step)
            ys.append(math.nan)
        xs.append(day)
        ys.append(rank)
    return xs, ys


def _register_cjk_font() -> None:
    """Make the shipped CJK font known to matplotlib by its family name. A picture asks for it only
    when its text needs it (`_families`): other pictures never load its 3 MB face."""
    font_manager.fontManager.addfont(str(cjk_font_path()))


_register_cjk_font()
LATIN_FONTS = ["sans-serif"]  # matplotlib's own DejaVu Sans, as the pictures have always been drawn
CJK_FONTS = ["sans-serif", CJK_FAMILY]  # and Hangul, kana, kanji from the CJK font, glyph by glyph


@functools.cache
def _charmap(family: str) -> frozenset[int]:
    """The code points of the font matplotlib picks for `family` (read from a face not kept open)."""
    path = font_manager.findfont(font_manager.FontProperties(family=[family]))
    return frozenset(ft2font.FT2Font(path).get_charmap())


def _drawable(code: int) -> bool:
    """Whether the picture's fonts can draw a code point (the CJK font's map is read only for the
    characters DejaVu Sans lacks)."""
    return code in _charmap(LATIN_FONTS[0]) or code in _charmap(CJK_FAMILY)


def _families(texts: Iterable[str]) -> list[str]:
    """The font families for a picture with these texts: DejaVu Sans alone when it has every glyph."""
    latin = _charmap(LATIN_FONTS[0])
    return LATIN_FONTS if all(ord(ch) in latin for text in texts for ch in text) else CJK_FONTS


def picture_text(text: str, limit: int) -> str:
    """Text for the picture: only characters its fonts have (no tofu boxes, no warnings), and `$`
    escaped so that matplotlib does not read it as mathematics."""
    text = "".join(ch for ch in clean_user_text(text) if _drawable(ord(ch)))
    return clip(_SPACES.sub(" ", text).strip(), limit).replace("$", r"\$")


class _LocalDates(mdates.ConciseDateFormatter):
    """ConciseDateFormatter's choice of what to label, written the reader's way by CLDR: "2월", "févr.",
    "2022年" (matplotlib's own formats are strftime's, in English whatever the language)."""

    # CLDR skeletons per level (years, months, days, hours, minutes, seconds): ticks, ticks that start
    # a larger unit, the offset under the axis.
    _TICKS = ("y", "MMM", "d", "Hm", "Hm", "Hms")
    _ZEROS = ("", "y", "MMM", "MMMd", "Hm", "Hm")
    _OFFSETS = ("", "y", "yMMM", "yMMMd", "yMMMd", "yMMMd")
    _TOKEN = re.compile("\x02([^\x03]*)\x03([^\x02]*)\x02")

    def __init__(self, locator: mdates.DateLocator, messages: Messages) -> None:
        self._messages = messages
        super().__init__(
            locator,
            formats=[self._token(k) for k in self._TICKS],
            zero_formats=[self._token(k) for k in self._ZEROS],
            offset_formats=[self._token(k) for k in self._OFFSETS],
        )

    @staticmethod
    def _token(skeleton: str) -> str:
        """A strftime format that carries the skeleton and the whole instant, for `_write`."""
        return f"\x02{skeleton}\x03%Y-%m-%dT%H:%M:%S\x02" if skeleton else ""

    def _write(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            when = datetime.fromisoformat(match[2])
            return date_part(when, match[1], self._messages.locale)

        return self._TOKEN.sub(one, text)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        labels = [self._write(label) for label in super().format_ticks(values)]
        self._offset_string = self._write(self._offset_string)
        return labels


def _date_formatter(locator: mdates.DateLocator, messages: Messages) -> mdates.ConciseDateFormatter:
    if messages.locale == SOURCE:
        return mdates.ConciseDateFormatter(locator)  # as the pictures have always been
    return _LocalDates(locator, messages)


@functools.cache
def _date_words(locale: str) -> tuple[str, ...]:
    """What the date axis may write in `locale` (every month, day, year and offset form)."""
    if locale == SOURCE:
        return ()  # strftime's English
    skeletons = {*_LocalDates._TICKS, *_LocalDates._ZEROS, *_LocalDates._OFFSETS} - {""}
    days = [datetime(2000, month, 28) for month in range(1, 13)]
    return tuple(date_part(day, skeleton, locale) for day in days for skeleton in skeletons)


def rank_history_png(
    points: Sequence[tuple[str, Sequence[tuple[date, int]]]], *, title: str, locale: str = SOURCE
) -> bytes:
    """A rank-history chart (800×400 PNG): one line per chart, rank 1 on top, No. 1 periods in gold.

    The axis, its dates and the empty-picture note are in `locale`'s language; `points`' labels and the
    title are drawn as given (characters the fonts lack are left out).
    CPU-bound (~50-100 ms): callers run it off the event loop (`asyncio.to_thread`). Deterministic: the
    same data gives the same bytes (no timestamp in the file).
    """
    messages = translator(locale)
    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.subplots()
    ax.axhspan(0.5, 1.5, color=_GOLD, alpha=0.12, linewidth=0)
    drawn = False
    for i, (label, series) in enumerate(points):
        series = sorted(series)
        if not series:
            continue
        xs, ys = _with_gaps(series)
        colour = _PALETTE[i % len(_PALETTE)]
        marker = "o" if len(series) <= 60 else None
        ax.plot(
            xs, ys, color=colour, linewidth=1.8, marker=marker, markersize=3, label=picture_text(label, 40)
        )
        tops = [d for d, r in series if r == 1]
        if tops:
            ax.scatter(tops, [1] * len(tops), marker="*", s=70, color=_GOLD, edgecolors=colour, zorder=3)
        drawn = True
    ax.set_ylim(10.5, 0.5)
    ax.set_yticks(range(1, 11))
    ax.set_ylabel(messages.gettext("picture.rank"))
    ax.grid(axis="y", alpha=0.25)
    ax.set_title(picture_text(title, 70), fontsize=11)
    if drawn:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(_date_formatter(locator, messages))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        ax.set_xticks([])
        note = messages.gettext("picture.no_history")
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="grey")
    texts = fig.findobj(Text)
    families = _families([*(t.get_text() for t in texts), *_date_words(messages.locale)])
    for text in texts:
        text.set_fontfamily(families)
    ax.tick_params(labelfontfamily=families)  # tick labels are made while drawing
    # Fixed margins (the legend sits right of the plot): tight_layout would draw the whole figure twice.
    fig.subplots_adjust(left=0.07, right=0.74, top=0.91, bottom=0.1)
    buffer = io.BytesIO()
    # Light compression: a third of the time of the default for a slightly bigger file (~60 KiB).
    fig.savefig(buffer, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()
