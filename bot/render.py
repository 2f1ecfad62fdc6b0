"""Milestones, standings and charts as text, embeds and pictures, in the reader's language. No Discord
calls, no I/O.

Text is written the way a chart journalist would ("slipped to No. 2 in the 🇺🇸 U.S. after 1 day at
No. 1"), in whole sentences per language from the message catalogues (bot/i18n: `{title} is No. 1
{where} for the first time`), their parts (where, which Top 10, how long) made in the same language,
names, numbers and dates from CLDR (bot.i18n.formats). Every function takes the reader's `Messages`
(`tr`, English unless named): there is no "current language". Everything that reaches Discord goes
through `safe()` (markdown and mentions escaped, zero-width characters gone) and `fit_embed()`
(Discord's embed limits), because titles come from scraped pages and users type whatever they like.
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

from bot.i18n import ENGLISH, SOURCE, Messages, formats, translator
from bot.i18n.cjkfont import FAMILY as CJK_FAMILY
from bot.i18n.cjkfont import font_path as cjk_font_path
from bot.i18n.formats import date_part
from bot.model import ALL_TIME, WORLD, ChartKey, Milestone, full_title
from bot.regions import flag, region_name, region_phrase
from bot.views import ChartRow, ChartView, CountryCount, Standing, StoredMilestone, TitleReport

EN = ENGLISH
"""English: the language of every renderer unless the caller names another."""

SERVICE_NAMES = {  # brand names: the same in every language
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
# Categories with a word of their own in the catalogues (`category.<name>`); "overall" needs none.
WORDED_CATEGORIES = frozenset(
    {"tv", "movies", "tv-english", "tv-non-english", "movies-english", "movies-non-english"}
)
# Among equal ranks, the markets readers look for first (and the picture draws first).
MAJOR_MARKETS = ("us", "gb", "kr", "jp", "in", "br", "mx", "fr", "de", "es", "it", "ca", "au")
GLOBAL_LISTS = frozenset({"tv-english", "tv-non-english", "movies-english", "movies-non-english"})
# The all-time lists a sentence names by their own words (`alltime.one.<category>`, `alltime.many.…`).
ALL_TIME_LISTS = frozenset({*GLOBAL_LISTS, "movies", "tv"})

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


def category_word(category: str, tr: Messages = EN) -> str:
    """The category in a chart's name or a sentence: "TV", "film", "TV (Non-English)", "영화"; "" for
    overall (a chart of everything needs no word); a category without a word as it is."""
    if category not in WORDED_CATEGORIES:
        return "" if category == "overall" else category
    key = f"category.{category}"
    return tr.gettext(key)


def units(count: int, period: str, tr: Messages = EN) -> str:
    """Count and unit: "1 day", "8 days", "1 week"; "8일", "8 días" (CLDR's plural forms)."""
    if tr.locale != SOURCE:
        return formats.units(count, period, tr)
    return f"{count:,} {period}{'' if count == 1 else 's'}"


def ordinal(n: int, tr: Messages = EN) -> str:
    if tr.locale != SOURCE:
        return formats.ordinal(n, tr)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def date_text(day: date, tr: Messages = EN) -> str:
    """A day: "Feb 6, 2022", "2022년 2월 6일", "6 de febrero de 2022"."""
    if tr.locale != SOURCE:
        return formats.date_text(day, tr)
    return f"{day:%b} {day.day}, {day.year}"


def period_text(day: date, period: str, tr: Messages = EN) -> str:
    """The period a chart covers: "week ending Feb 27, 2022", "Feb 27, 2022"; an all-time list is
    dated by when it was read: "as of Aug 27, 2025"."""
    if period == ALL_TIME:
        return tr.gettext("period.as_of", date=date_text(day, tr))
    if tr.locale != SOURCE:
        return formats.period_text(day, period, tr)
    return f"week ending {date_text(day)}" if period == "week" else date_text(day)


def now_word(period: str, tr: Messages = EN) -> str:
    """ "this week" / "today"."""
    return tr.gettext("now.week") if period == "week" else tr.gettext("now.day")


def compact(number: float, tr: Messages = EN) -> str:
    """Big numbers the way charts print them: 236230000 -> "236.2M", "236,2 M", "2.4억"."""
    if tr.locale != SOURCE:
        return formats.compact(number, tr)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}{suffix}"
    return f"{number:,.0f}"


def _int(n: int | None, tr: Messages) -> str:
    """A rank or a count inside a sentence: as it always was in English, with the language's digits
    and grouping in the others."""
    if tr.locale == SOURCE or not isinstance(n, int):
        return str(n)
    return formats.number(n, tr)


def _grouped(n: int, tr: Messages) -> str:
    """A number grouped by thousands: "1,234", "1.234", "1 234"."""
    return f"{n:,}" if tr.locale == SOURCE else formats.number(n, tr)


def figures(points: float | None, hours: int | None, views: int | None, tr: Messages = EN) -> str:
    """ "236.2M hours · 1,234 points" (the figures a source gives)."""
    parts = []
    if hours:
        parts.append(tr.ngettext("figure.hours", _shown_count(hours), n=compact(hours, tr)))
    if views:
        parts.append(tr.ngettext("figure.views", _shown_count(views), n=compact(views, tr)))
    if points:
        shown = f"{points:,.0f}" if tr.locale == SOURCE else formats.number(round(points), tr)
        parts.append(tr.ngettext("figure.points", round(points), n=shown))
    return " · ".join(parts)


def _shown_count(value: float) -> int:
    """The count whose plural form fits a figure as `compact` writes it: millions and more read as
    millions ("236,2 M de horas", like "236 millones de horas"), smaller figures as themselves."""
    return 1_000_000 if abs(value) >= 1_000_000 else round(value)


def movement(rank: int, previous: int | None, periods_in_top10: int, tr: Messages = EN) -> str:
    """▲2, ▼1, = ; NEW for a first week in the chart, RE for a re-entry."""
    if previous is None:
        return tr.gettext("move.new") if periods_in_top10 <= 1 else tr.gettext("move.re")
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


def _region(region: str, tr: Messages = EN) -> str:
    """A region inside a sentence: "the 🇺🇸 U.S.", "🇰🇷 대한민국"."""
    if tr.locale != SOURCE:
        return formats.region_phrase(region, tr)
    try:
        return region_phrase(region)
    except ValueError:
        return region.upper()


def place_name(region: str, tr: Messages = EN) -> str:
    """A label for a field: "🇺🇸 United States", "🌍 Global"."""
    if tr.locale != SOURCE:
        return formats.place_name(region, tr)
    if region == WORLD:
        return f"{_flag(region)} Global"
    try:
        return f"{_flag(region)} {region_name(region)}"
    except ValueError:
        return region.upper()


def _on_service(text: str, service: str, tr: Messages) -> str:
    """A phrase on another service than Netflix: "the 🇺🇸 U.S. daily Top 10 on Disney+"."""
    if service == "netflix":
        return text
    return tr.gettext("on_service", what=text, service=service_name(service))


def chart_name(service: str, region: str, category: str, period: str | None = None, tr: Messages = EN) -> str:
    """A chart's name: "🇺🇸 U.S. Top 10 · TV", "🌍 Netflix global Top 10 · TV (Non-English)",
    "🌍 Netflix all-time Top 10 · film (English)"."""
    world = region == WORLD
    if world and period == ALL_TIME:
        head = tr.gettext("chart.all_time", flag=_flag(region), service=service_name(service))
    elif world and category in GLOBAL_LISTS:
        head = tr.gettext("chart.global_list", flag=_flag(region), service=service_name(service))
    elif world:
        head = tr.gettext("chart.world", flag=_flag(region))
    else:
        head = tr.gettext("chart.region", place=_region(region, tr).removeprefix("the "))
    parts = [head]
    word = category_word(category, tr)
    if word:
        parts.append(word)
    if service != "netflix" and not (world and (category in GLOBAL_LISTS or period == ALL_TIME)):
        parts.append(service_name(service))
    if period == "day":
        parts.append(tr.gettext("chart.daily"))
    return " · ".join(parts)


# --- milestones -----------------------------------------------------------------------------------


def in_place(region: str, tr: Messages = EN) -> str:
    """ "worldwide", "in the 🇺🇸 U.S."."""
    if region == WORLD:
        return tr.gettext("where.world")
    return tr.gettext("where.region", place=_region(region, tr))


def _where(m: Milestone, tr: Messages, *, when: bool = True) -> str:
    """Where a rank is, telling a daily chart from a weekly list: "on the 🇺🇸 U.S. daily Top 10",
    "in the 🇺🇸 U.S. this week" (`when`: say "this week"; a sentence counting weeks needs not),
    "on Netflix's global TV (Non-English) list"."""
    key = m.chart
    if key.region == WORLD and key.category in GLOBAL_LISTS:
        return tr.gettext(
            "where.global_list", service=service_name(key.service), category=category_word(key.category, tr)
        )
    if key.period == "day":
        return tr.gettext("where.on_chart", top10=_top10(key, tr))
    where = _on_service(in_place(key.region, tr), key.service, tr)
    return tr.gettext("where.this_week", where=where) if when and key.period == "week" else where


def _top10(key: ChartKey, tr: Messages) -> str:
    """Which Top 10: "the 🇺🇸 U.S. daily Top 10", "the 🇺🇸 U.S. weekly Top 10", "the global daily Top 10",
    "Netflix's global TV (Non-English) Top 10"."""
    if key.region == WORLD and key.category in GLOBAL_LISTS:
        return tr.gettext(
            "top10.global_list", service=service_name(key.service), category=category_word(key.category, tr)
        )
    every = key.period if key.period in ("day", "week") else "other"
    if key.region == WORLD:
        name = f"top10.world.{every}"
        text = tr.gettext(name)
    else:
        name = f"top10.region.{every}"
        text = tr.gettext(name, place=_region(key.region, tr).removeprefix("the "))
    return _on_service(text, key.service, tr)


def _in_top10(m: Milestone, tr: Messages) -> str:
    """Where a record stands: the world's charts by their own words, a country's "in" its Top 10."""
    if m.chart.region == WORLD:
        return _where(m, tr, when=False)
    return tr.gettext("where.in_top10", top10=_top10(m.chart, tr))


def _beating(m: Milestone, tr: Messages, escape: bool, what: str) -> str:
    """ "beating Squid Game's 4": `what` is the record's unit (`countries`, or the period of a run)."""
    holder = m.context.get("holder")
    previous = m.previous or 0
    values = {"previous": _int(m.previous, tr)}
    if not holder:
        key = f"beating.{what}.record"
    elif holder == m.title:
        key = f"beating.{what}.own"
    else:
        key, values["holder"] = f"beating.{what}.holder", _title(holder, escape)
    return tr.ngettext(key, previous, **values)


def _title(text: str, escape: bool) -> str:
    return safe(text, 200) if escape else text


def _run_period(period: str) -> str:
    """The period whose words a run is counted in (a chart of any other period counts like weeks)."""
    return "day" if period == "day" else "week"


def milestone_text(m: Milestone, *, escape: bool = False, tr: Messages = EN) -> str:
    """One sentence for one milestone, in `tr`'s language. `escape`: titles made safe for Discord
    markdown."""
    t = _title(m.title, escape)
    period, value, previous = m.chart.period, m.value, m.previous
    kind = m.kind
    if kind == "entered_top10":
        values = {"title": t, "top10": _top10(m.chart, tr), "rank": _int(value, tr)}
        if previous is not None:
            return tr.gettext("ms.entered_top10.again_from", previous=_int(previous, tr), **values)
        if m.context.get("reentry"):
            return tr.gettext("ms.entered_top10.again", **values)
        return tr.gettext("ms.entered_top10", **values)
    if kind == "reached_no1":
        key = "ms.reached_no1.first" if m.context.get("first_time") else "ms.reached_no1.back"
        return tr.gettext(key, title=t, where=_where(m, tr))
    if kind == "no1_streak":
        key = f"ms.no1_streak.{_run_period(period)}"
        return tr.ngettext(
            key,
            value or 0,
            title=t,
            where=_where(m, tr, when=False),
            n=_int(value, tr),
        )
    if kind == "lost_no1":
        run = units(int(m.context.get("run") or 1), period, tr)
        if value is None:
            text = tr.gettext("ms.lost_no1.out", title=t, top10=_top10(m.chart, tr), run=run)
        else:
            text = tr.gettext(
                "ms.lost_no1.slipped", title=t, rank=_int(value, tr), where=_where(m, tr), run=run
            )
        new_no1 = m.context.get("new_no1")
        return (
            tr.gettext("ms.lost_no1.new_no1", text=text, new_no1=_title(new_no1, escape)) if new_no1 else text
        )
    if kind == "new_peak":
        return tr.gettext(
            "ms.new_peak", title=t, rank=_int(value, tr), where=_where(m, tr), previous=_int(previous, tr)
        )
    if kind == "top10_run":
        return tr.gettext(
            "ms.top10_run", title=t, time=units(value or 0, period, tr), top10=_top10(m.chart, tr)
        )
    if kind == "left_top10":
        return _left_text(m, t, tr)
    if kind in ("no1_countries", "top10_countries"):
        return _countries_text(m, t, tr)
    if kind == "record":
        if m.context.get("record") == "no1_countries":
            countries = _on_service(_n_countries(value, tr), m.chart.service, tr)
            key = f"ms.record.countries.{_run_period(period)}"
            return tr.gettext(
                key,
                title=t,
                countries=countries,
                beating=_beating(m, tr, escape, "countries"),
            )
        return tr.gettext(
            "ms.record.run",
            title=t,
            where=_in_top10(m, tr),
            time=units(value or 0, period, tr),
            beating=_beating(m, tr, escape, _run_period(period)),
        )
    if kind == "record_near":
        return _record_near_text(m, escape, tr)
    if kind in ("entered_all_time", "all_time_no1"):
        return _all_time_text(m, escape, tr)
    # a kind newer than this module
    return tr.gettext("ms.other", title=t, kind=kind.replace("_", " "), where=_where(m, tr), value=value)


def _left_text(m: Milestone, title: str, tr: Messages) -> str:
    """ "All of Us Are Dead left the 🇺🇸 U.S. weekly Top 10 (No. 8 last week; 4 weeks on the chart)"."""
    period, previous = m.chart.period, m.previous
    detail = []
    if previous is not None:
        key = "ms.left_top10.last_week" if period == "week" else "ms.left_top10.yesterday"
        detail.append(tr.gettext(key, rank=_int(previous, tr)))
    if m.context.get("periods"):
        detail.append(tr.gettext("ms.left_top10.on_chart", time=units(int(m.context["periods"]), period, tr)))
    text = tr.gettext("ms.left_top10", title=title, top10=_top10(m.chart, tr))
    if not detail:
        return text
    if len(detail) == 2:
        detail = [tr.gettext("ms.detail.both", first=detail[0], second=detail[1])]
    return tr.gettext("ms.detail", text=text, detail=detail[0])


def _countries_text(m: Milestone, title: str, tr: Messages) -> str:
    """ "… is No. 1 in 63 countries this week (of 94 reporting) — up from 29", "… is in the Top 10 in
    every reporting country (94 of 94) this week"."""
    value, previous, service = m.value, m.previous, m.chart.service
    reporting = m.context.get("reporting")
    now = now_word(m.chart.period, tr)
    if m.kind == "top10_countries" and m.context.get("everywhere"):
        every = (
            tr.ngettext("countries.every_of", reporting, reporting=_int(reporting, tr))
            if reporting
            else tr.gettext("countries.every")
        )
        return tr.gettext(
            "ms.top10_countries", title=title, countries=_on_service(every, service, tr), now=now
        )
    countries = _on_service(_n_countries(value, tr), service, tr)
    key = f"ms.{m.kind}"
    text = tr.gettext(key, title=title, countries=countries, now=now)
    if reporting:
        text = tr.gettext("ms.countries.reporting", text=text, reporting=_int(reporting, tr))
    rising = previous and (m.kind == "no1_countries" or (value and previous < value))
    return tr.gettext("ms.countries.up_from", text=text, previous=_int(previous, tr)) if rising else text


def _record_near_text(m: Milestone, escape: bool, tr: Messages) -> str:
    """ "All of Us Are Dead is 1 day from tying Squid Game's 15-day No. 1 run in the 🇺🇸 U.S. daily Top 10"."""
    period, holder = m.chart.period, m.context.get("holder")
    key = f"run.{_run_period(period)}"
    run = tr.ngettext(key, m.previous or 0, n=_int(m.previous, tr))
    if not holder:
        whose = tr.gettext("whose.record", run=run)
    elif holder == m.title:
        whose = tr.gettext("whose.own", run=run)
    else:
        whose = tr.gettext("whose.holder", holder=_title(holder, escape), run=run)
    return tr.gettext(
        "ms.record_near",
        title=_title(m.title, escape),
        time=units(m.value or 1, period, tr),
        whose=whose,
        where=_in_top10(m, tr),
    )


def _all_time_text(m: Milestone, escape: bool, tr: Messages) -> str:
    """ "KPop Demon Hunters is now Netflix's most-watched English film ever: 236.0M views in its first
    91 days, passing Red Notice (230.9M)"; "Red Notice joins Netflix's all-time most popular English
    films at No. 2 (277.9M hours in its first 28 days)"."""
    context = m.context
    category = m.chart.category if m.chart.category in ALL_TIME_LISTS else "other"
    values = {
        "title": _title(full_title(m.title, context.get("season")), escape),
        "service": service_name(m.chart.service),
    }
    in_region = m.chart.region != WORLD
    if in_region:
        values["place"] = _region(m.chart.region, tr)
    figure = _all_time_figure(context, tr)
    if m.kind == "entered_all_time":
        key = "ms.entered_all_time.region" if in_region else "ms.entered_all_time"
        many = f"alltime.many.{category}"
        text = tr.gettext(key, list=tr.gettext(many), rank=_int(m.value, tr), **values)
        return tr.gettext("ms.with_figure", text=text, figure=figure) if figure else text
    key = "ms.all_time_no1.region" if in_region else "ms.all_time_no1"
    one = f"alltime.one.{category}"
    text = tr.gettext(key, kind=tr.gettext(one), **values)
    if figure:
        text = tr.gettext("ms.all_time_no1.figure", text=text, figure=figure)
    passed = context.get("passed")
    if passed:
        passed_name = _title(full_title(passed, context.get("passed_season")), escape)
        if context.get("passed_figure") is not None:
            return tr.gettext(
                "ms.all_time_no1.passing_figure",
                text=text,
                passed=passed_name,
                figure=compact(context["passed_figure"], tr),
            )
        text = tr.gettext("ms.all_time_no1.passing", text=text, passed=passed_name)
    return text


def _all_time_figure(context: Mapping[str, Any], tr: Messages) -> str:
    """ "236.0M views in its first 91 days"."""
    figure = context.get("figure")
    if figure is None:
        return ""
    measure = context.get("measure") or "hours"
    shown = compact(figure, tr)
    if measure in ("hours", "views"):
        key = f"figure.{measure}"
        text = tr.ngettext(key, _shown_count(figure), n=shown)
    else:  # a measure with no words in the catalogues
        text = f"{shown} {measure}"
    window = context.get("window_days")
    if not window:
        return text
    return tr.ngettext("figure.first_days", window, figure=text, n=_int(window, tr))


def _n_countries(count: int | None, tr: Messages) -> str:
    """ "1 country", "63 countries", "63개국"."""
    return tr.ngettext("countries", count or 0, n=_int(count, tr))


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


def join_lines(lines: Iterable[str], limit: int, tr: Messages = EN) -> str:
    """Whole lines up to `limit` characters, then a line saying how many were left out ("…and 5 more")."""
    lines = list(lines)
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i
        more = tr.ngettext("lines.more", rest, n=_grouped(rest, tr))
        tail = len(more) + 1 if rest > 1 else 0
        if used + len(line) + 1 + tail > limit and out:
            out.append(more)
            break
        out.append(clip(line, limit))
        used += len(line) + 1
    return "\n".join(out)


def _nth_at_no1(s: Standing, tr: Messages) -> str:
    """ "3rd week at No. 1"."""
    if tr.locale == SOURCE:
        nth = f"{ordinal(s.no1_streak)} {s.period}"
    else:
        nth = formats.ordinal_period(s.no1_streak, s.period, tr)
    return tr.gettext("standing.streak", nth=nth)


def _standing_summary(s: Standing, tr: Messages) -> str:
    """The lines of one chart in a standing card: rank and movement, No. 1 run, peak, time in the chart."""
    move = movement(s.rank, s.previous_rank, s.periods_in_top10, tr)
    lines = [tr.gettext("standing.rank", rank=_int(s.rank, tr), move=move)]
    if s.rank == 1 and s.no1_streak:
        lines.append(_nth_at_no1(s, tr))
    elif s.periods_at_no1:
        lines.append(tr.gettext("standing.no1_total", time=units(s.periods_at_no1, s.period, tr)))
    lines.append(tr.gettext("standing.peak", peak=_int(s.peak, tr), date=date_text(s.peak_date, tr)))
    lines.append(tr.gettext("standing.in_top10", time=units(s.periods_in_top10, s.period, tr)))
    extra = figures(s.points, s.hours, s.views, tr)
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def _with_category(where: str, word: str, tr: Messages) -> str:
    return tr.gettext("where.category", where=where, category=word) if word else where


def _standing_headline(s: Standing, tr: Messages) -> str:
    word = category_word(s.category, tr)
    if s.region == WORLD and s.category in GLOBAL_LISTS:
        where = tr.gettext("where.global_list", service=service_name(s.service), category=word)
    elif s.period == "day":
        if s.region == WORLD:
            top10 = tr.gettext("top10.world.day")
        else:
            top10 = tr.gettext("top10.region.day", place=_region(s.region, tr).removeprefix("the "))
        where = tr.gettext("where.on_chart", top10=top10)
        where = _on_service(_with_category(where, word, tr), s.service, tr)
    else:
        where = _on_service(_with_category(in_place(s.region, tr), word, tr), s.service, tr)
        where = tr.gettext("where.this_week", where=where)
    line = tr.gettext("standing.headline", flag=_flag(s.region), rank=_int(s.rank, tr), where=where)
    if s.rank == 1 and s.no1_streak > 1:
        line += " · " + _nth_at_no1(s, tr)
    return line


def _countries_line(c: CountryCount, tr: Messages) -> str:
    """ "🌍 **No. 1 in 63 of 94 countries** this week (TV) · Top 10 in 91"."""
    word = category_word(c.category, tr)
    label = ""
    if word or c.service != "netflix":
        label = _on_service(word, c.service, tr)
        label = f" ({label if tr.locale == SOURCE else label.strip()})"
    head = tr.ngettext(
        "standing.countries",
        c.reporting,
        no1=_int(c.no1, tr),
        reporting=_int(c.reporting, tr),
        now=now_word(c.period, tr),
    )
    top10 = tr.ngettext("standing.countries.top10", c.top10, n=_int(c.top10, tr))
    return f"{_flag(WORLD)} {head}{label} · {top10}"


def standing_embed(
    report: TitleReport,
    *,
    on: date | None = None,
    note: str | None = None,
    max_charts: int = 9,
    tr: Messages = EN,
) -> discord.Embed:
    """A title's standing: world charts first, then its best country charts, the rest in one line.

    `report` is what to show (already filtered by region/category by the caller); `note` comes first.
    """
    embed = discord.Embed(title=safe(report.title, EMBED_TITLE), colour=COLOUR)
    lines = [note] if note else []
    lines += [_standing_headline(s, tr) for s in report.standings if s.region == WORLD]
    lines += [_countries_line(c, tr) for c in report.countries]
    countries = [s for s in report.standings if s.region != WORLD]
    if len(countries) == 1 and not lines:
        lines.append(_standing_headline(countries[0], tr))
    if not report.standings:
        lines.append(_off_the_charts(report, on, tr))
    embed.description = join_lines(lines, EMBED_DESCRIPTION, tr)
    standings = sorted(report.standings, key=_reading_order)
    seasons = {s.season for s in standings}
    one_season = seasons.pop() if len(seasons) == 1 else None
    if one_season:
        embed.title = safe(f"{report.title}: {one_season}", EMBED_TITLE)
    shown = standings[:max_charts]
    for s in shown:
        season = f" · {safe(s.season, 60)}" if s.season and not one_season else ""
        word = category_word(s.category, tr)
        embed.add_field(
            name=f"{place_name(s.region, tr)}{' · ' + word if word else ''}{season}",
            value=_standing_summary(s, tr),
            inline=True,
        )
    rest = standings[len(shown) :]
    if rest:
        entries = [f"{_flag(s.region) or s.region.upper()} {s.rank}" for s in rest]
        embed.add_field(
            name=tr.ngettext("standing.also", len(rest), n=_int(len(rest), tr)),
            value=_join_within(entries, " · ", FIELD_VALUE),
            inline=False,
        )
    dates = {(s.date, s.period) for s in report.standings} | {(c.date, c.period) for c in report.countries}
    if dates:
        day, period = max(dates)
        services = sorted({s.service for s in report.standings} | {c.service for c in report.countries})
        embed.set_footer(
            text=tr.gettext(
                "footer.charts",
                services=", ".join(map(service_name, services)),
                period=period_text(day, period, tr),
            )
        )
    elif on is not None:
        embed.set_footer(text=tr.gettext("period.as_of", date=date_text(on, tr)))
    return fit_embed(embed)


def _reading_order(s: Standing) -> tuple:
    """World charts first, then by rank; among equal ranks the major markets first."""
    major = MAJOR_MARKETS.index(s.region) if s.region in MAJOR_MARKETS else len(MAJOR_MARKETS)
    return (s.region != WORLD, s.rank, major, s.region, s.category, s.period)


def when_text(on: date | None, tr: Messages = EN) -> str:
    """ "on Feb 6, 2022" / "right now"."""
    return tr.gettext("when.on", date=date_text(on, tr)) if on else tr.gettext("when.now")


def _off_the_charts(report: TitleReport, on: date | None, tr: Messages) -> str:
    when = when_text(on, tr)
    seen = report.last_seen
    if seen is None:
        return tr.gettext("off.never", when=when)
    where = _with_category(in_place(seen.region, tr), category_word(seen.category, tr), tr)
    return tr.gettext(
        "off.last_seen",
        when=when,
        rank=_int(seen.rank, tr),
        where=where,
        date=date_text(seen.date, tr),
        peak=_int(seen.peak, tr),
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


def _chart_row(row: ChartRow, has_previous: bool, tr: Messages) -> str:
    move = f" {movement(row.rank, row.previous_rank, row.periods_in_top10, tr)}" if has_previous else ""
    season = f" · {safe(row.season, 60)}" if row.season else ""
    extra = figures(row.points, row.hours, row.views, tr)
    return f"`{row.rank:>2}.`{move} **{safe(row.title, 150)}**{season}{' · ' + extra if extra else ''}"


def page_text(page: int, pages: int, tr: Messages = EN) -> str:
    """A page's place among its pages: "Page 2 of 7"."""
    return tr.gettext("page", page=_grouped(page, tr), pages=_grouped(pages, tr))


def chart_embed(view: ChartView, *, page: tuple[int, int] | None = None, tr: Messages = EN) -> discord.Embed:
    """A Top 10 with movement since the previous period and the figures the source gives; `page`: the
    period's place among the stored ones, when the chart is paged."""
    series = view.series
    embed = discord.Embed(
        title=chart_name(series.service, series.region, series.category, series.period, tr), colour=COLOUR
    )
    embed.description = join_lines(
        (_chart_row(r, view.has_previous, tr) for r in view.entries), EMBED_DESCRIPTION, tr
    )
    footer = [period_text(view.date, series.period, tr)]
    if not view.has_previous:
        footer.append(tr.gettext("chart.no_previous"))
    if not view.complete:
        footer.append(tr.gettext("chart.incomplete"))
    if page is not None:
        footer.append(page_text(*page, tr))
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
# The country-level news that reads as one line over many countries (`group.<kind>`).
_GROUPED_KINDS = frozenset(
    {
        "entered_top10",
        "reached_no1",
        "no1_streak",
        "lost_no1",
        "new_peak",
        "top10_run",
        "left_top10",
        "record",
    }
)
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


def group_text(group: Sequence[Milestone], tr: Messages = EN) -> list[str]:
    """The lines of one group: each milestone's own text, or one line with the countries' flags."""
    if len(group) < GROUP_AT:
        return [milestone_text(m, escape=True, tr=tr) for m in group]
    first = group[0]
    values = {
        "title": safe(first.title, 200),
        "countries": _n_countries(len(group), tr),
        "flags": " ".join(_flag(m.chart.region) for m in group[:12]) + (" …" if len(group) > 12 else ""),
    }
    if first.kind == "top10_run" and len({m.value for m in group}) == 1:
        return [
            tr.gettext("group.top10_run.same", time=units(first.value or 0, first.chart.period, tr), **values)
        ]
    if first.kind in _GROUPED_KINDS:
        key = f"group.{first.kind}"
        return [tr.gettext(key, **values)]
    return [tr.gettext("group.other", kind=first.kind.replace("_", " "), **values)]


def news_order(kind: str) -> int:
    """Biggest news first: records, then No. 1 in many countries, … , left the Top 10 last."""
    return _WEIGHT.get(kind, len(_WEIGHT))


def _stamp(day: date, tr: Messages) -> str:
    """A milestone line's date: "`Feb  6`", "`2月6日`"."""
    if tr.locale == SOURCE:
        return f"`{day:%b} {day.day:>2}`"
    return f"`{date_part(day, 'MMMd', tr)}`"


def milestone_lines(items: Iterable[Milestone | StoredMilestone], tr: Messages = EN) -> list[str]:
    """Newest first; within a date the biggest news first; one country-level event repeated in many
    countries folded into one line with their flags."""
    milestones = [i.milestone if isinstance(i, StoredMilestone) else i for i in items]
    ordered = sorted(
        fold_countries(milestones),
        key=lambda g: (-g[0].chart.date.toordinal(), news_order(g[0].kind), g[0].chart.region != WORLD),
    )
    lines = []
    for group in ordered:
        stamp = _stamp(group[0].chart.date, tr)
        lines.extend(f"{stamp} {line}" for line in group_text(group, tr))
    return lines


NO_MILESTONES = EN.gettext("milestones.none")


def milestones_embed(
    items: Iterable[Milestone | StoredMilestone], *, title: str | None = None, tr: Messages = EN
) -> discord.Embed:
    return milestone_page_embed(
        milestone_lines(items, tr), title=title or tr.gettext("milestones.latest"), tr=tr
    )


def milestone_page_embed(
    lines: Sequence[str], *, title: str, page: tuple[int, int] | None = None, tr: Messages = EN
) -> discord.Embed:
    """Lines of `milestone_lines` (one page of them, when `page` says which of how many)."""
    embed = discord.Embed(title=safe(title, EMBED_TITLE), colour=COLOUR)
    embed.description = join_lines(lines, EMBED_DESCRIPTION, tr) if lines else tr.gettext("milestones.none")
    if page is not None:
        embed.set_footer(text=page_text(*page, tr))
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
    points: Sequence[tuple[str, Sequence[tuple[date, int]]]], *, title: str, locale: str | Messages = SOURCE
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
