"""Human output for the command line: aligned tables, flags, "No. 1 in 63 of 94 countries"."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from bot.announcer.jobs import PostingHalt
from bot.render import category_word, chart_name, movement, place_name, service_name
from bot.views import SOURCE_ROW, ChartView, HealthRow, TitleReport

UNITS = {"day": ("day", "days"), "week": ("week", "weeks")}


def category_name(category: str) -> str:
    """ "TV", "Film (Non-English)", "Overall": render's word, as a table heading."""
    word = category_word(category) or "overall"
    return word[0].upper() + word[1:]


def periods(count: int, period: str) -> str:
    one, many = UNITS[period]
    return f"{count} {one if count == 1 else many}"


def period_label(period: str, day: date) -> str:
    return f"week of {day:%b %-d, %Y}" if period == "week" else f"{day:%b %-d, %Y}"


def width(text: str) -> int:
    """Columns a string takes in a terminal: wide (East Asian, emoji) characters count twice."""
    total = 0
    for char in text:
        if unicodedata.combining(char) or char in "\u200d\ufe0f":
            continue
        if 0x1F1E6 <= ord(char) <= 0x1F1FF:  # half of a flag: the pair shows as one wide glyph
            total += 1
            continue
        total += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return total


def pad(text: str, size: int, right: bool = False) -> str:
    gap = " " * max(0, size - width(text))
    return gap + text if right else text + gap


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    sizes = [max([width(h), *(width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, sizes[i], i in right) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(pad(c, sizes[i], i in right) for i, c in enumerate(row)).rstrip())
    return lines


def move(rank: int, previous: int | None, periods_in_top10: int, has_previous: bool = True) -> str:
    """Movement since the previous period, blank when that period is not stored."""
    return movement(rank, previous, periods_in_top10) if has_previous else ""


def number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}"


def where(region: str) -> str:
    return place_name(region)


def format_title_report(report: TitleReport, on: date | None = None) -> str:
    when = f"on {on:%b %-d, %Y}" if on else "in the latest charts"
    lines = [f"{report.title} — {when}", ""]
    for count in report.countries:
        lines.append(
            f"  No. 1 in {count.no1} of {count.reporting} countries · in the top 10 of {count.top10} "
            f"({service_name(count.service)} {category_name(count.category)}, "
            f"{period_label(count.period, count.date)})"
        )
    if report.countries:
        lines.append("")
    if not report.standings:
        if report.last_seen:
            seen = report.last_seen
            lines.append(
                f"  Not in any Top 10 {when}. Last seen at No. {seen.rank} in "
                f"{chart_name(seen.service, seen.region, seen.category, seen.period)} on {seen.date:%b %-d, %Y}; "
                f"peak No. {seen.peak}."
            )
        else:
            lines.append(f"  Not in any Top 10 {when}.")
        return "\n".join(lines)
    rows = []
    for s in report.standings:
        rows.append(
            [
                where(s.region),
                f"{service_name(s.service)} {category_name(s.category)}",
                period_label(s.period, s.date),
                f"No. {s.rank}",
                move(s.rank, s.previous_rank, s.periods_in_top10),
                f"No. {s.peak}",
                periods(s.no1_streak, s.period) if s.no1_streak else "",
                periods(s.periods_in_top10, s.period),
                number(s.hours) or number(s.points),
            ]
        )
    headers = ["Region", "Chart", "Period", "Rank", "Move", "Peak", "No. 1 run", "In top 10", "Hours/points"]
    lines.extend("  " + line for line in table(headers, rows, right=(3, 5, 8)))
    return "\n".join(lines)


def format_chart(view: ChartView) -> str:
    series = view.series
    title = chart_name(series.service, series.region, series.category, series.period)
    lines = [f"{title} — {period_label(series.period, view.date)}", ""]
    has_hours = any(r.hours for r in view.entries)
    has_points = any(r.points for r in view.entries)
    headers = ["#", "Move", "Title", "Season", f"{series.period.title()}s in top 10"]
    if has_hours:
        headers.append("Hours")
    elif has_points:
        headers.append("Points")
    rows = []
    for r in view.entries:
        row = [
            str(r.rank),
            move(r.rank, r.previous_rank, r.periods_in_top10, view.has_previous),
            r.title,
            r.season or "",
            str(r.periods_in_top10),
        ]
        if has_hours:
            row.append(number(r.hours))
        elif has_points:
            row.append(number(r.points))
        rows.append(row)
    lines.extend("  " + line for line in table(headers, rows, right=(0, 4, 5)))
    if not view.complete:
        lines.append("  (incomplete chart: fewer than 10 entries were published)")
    return "\n".join(lines)


def format_status(
    rows: Iterable[HealthRow], enabled: Sequence[str] = (), *, every_chart: bool = False
) -> str:
    """`chartbot status`: one line per source, then the charts that fail (or all of them)."""
    rows = list(rows)
    own = {r.source: r for r in rows if r.chart == SOURCE_ROW}
    charts = [r for r in rows if r.chart != SOURCE_ROW]
    summary = []
    for source in dict.fromkeys([*enabled, *own]):
        mine = [r for r in charts if r.source == source]
        failing = sum(1 for r in mine if r.consecutive_failures)
        row = own.get(source)
        if row is None:
            summary.append([source, "never polled", "-", "0", "0", ""])
            continue
        state = "ok" if row.healthy else "UNHEALTHY"
        if row.healthy and failing:
            state = "degraded"
        note = row.note or (row.last_error if row.consecutive_failures else "") or ""
        summary.append([source, state, _when(row.last_success), str(len(mine)), str(failing), note])
    blocks = ["\n".join(table(["SOURCE", "STATE", "LAST SUCCESS", "CHARTS", "FAILING", "NOTE"], summary))]
    shown = [r for r in charts if every_chart or r.consecutive_failures or len(charts) <= 12]
    if shown:
        detail = [
            [
                r.source,
                r.chart,
                "-" if r.rows is None else str(r.rows),
                r.chart_date.isoformat() if r.chart_date else "-",
                _when(r.last_success),
                str(r.consecutive_failures),
                (r.last_error if r.consecutive_failures else "") or "",
            ]
            for r in sorted(shown, key=lambda r: (r.source, -r.consecutive_failures, r.chart))
        ]
        headers = ["SOURCE", "CHART", "ROWS", "CHART DATE", "LAST SUCCESS", "FAILS", "LAST ERROR"]
        blocks.append("\n".join(table(headers, detail)))
    elif charts:
        blocks.append(f"all {len(charts)} charts read fine at their last attempt")
    return "\n\n".join(blocks) + "\n"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def format_posting(halt: PostingHalt | None, waiting: int, blocked: int = 0) -> str:
    """`chartbot status`: whether the bot posts, and what waits."""
    if halt is not None:
        line = (
            f"posting  STOPPED since {_when(halt.since)}: {halt.reason}; set a good DISCORD_TOKEN and "
            f"restart chartbot (nothing is lost: {waiting} waiting)"
        )
    else:
        line = f"posting  ok ({waiting} waiting)"
    if blocked:
        line += f"; {blocked} channel{'s' if blocked != 1 else ''} wait for a permission (see /watch list)"
    return line + "\n"
