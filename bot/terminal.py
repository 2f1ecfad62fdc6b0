"""Human output for the command line: aligned tables, flags, "No. 1 in 63 of 94 countries" (in the
language of `--lang`: `tr`), progress bars."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TextIO

from bot.announcer.jobs import PostingHalt
from bot.i18n import ENGLISH, SOURCE, Messages
from bot.i18n import formats as local
from bot.model import ALL_TIME
from bot.render import category_word, chart_name, date_text, movement, place_name, service_name, units
from bot.shards import describe_shards
from bot.store import JOBS, PLAN, POLL, MemberStatus, StoreStatus
from bot.views import SOURCE_ROW, ChartView, HealthRow, TitleReport

UNITS = {"day": ("day", "days"), "week": ("week", "weeks")}


def category_name(category: str, tr: Messages = ENGLISH) -> str:
    """ "TV", "Film (Non-English)", "Overall": render's word, as a table heading."""
    word = category_word(category, tr) or tr.gettext("kind.overall")
    return word[0].upper() + word[1:]


def periods(count: int, period: str, tr: Messages = ENGLISH) -> str:
    if tr.locale != SOURCE:
        return units(count, period, tr)
    one, many = UNITS[period]
    return f"{count} {one if count == 1 else many}"


def period_label(period: str, day: date, tr: Messages = ENGLISH) -> str:
    """ "week of Feb 6, 2022", "day of …", "as of …" (an all-time list, by when it was read)."""
    when = date_text(day, tr)
    if period == ALL_TIME:
        return tr.gettext("period.as_of", date=when)
    return tr.gettext("cli.week_of", date=when) if period == "week" else tr.gettext("cli.day_of", date=when)


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


def move(
    rank: int, previous: int | None, periods_in_top10: int, has_previous: bool = True, tr: Messages = ENGLISH
) -> str:
    """Movement since the previous period, blank when that period is not stored."""
    return movement(rank, previous, periods_in_top10, tr) if has_previous else ""


def number(value: float | None, tr: Messages = ENGLISH) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if tr.locale == SOURCE else local.number(round(value), tr)


def where(region: str, tr: Messages = ENGLISH) -> str:
    return place_name(region, tr)


def format_title_report(report: TitleReport, on: date | None = None, tr: Messages = ENGLISH) -> str:
    when = tr.gettext("when.on", date=date_text(on, tr)) if on else tr.gettext("cli.latest")
    lines = [f"{report.title} — {when}", ""]
    for count in report.countries:
        chart = f"{service_name(count.service)} {category_name(count.category, tr)}"
        text = tr.ngettext(
            "cli.countries",
            count.reporting,
            no1=count.no1,
            reporting=count.reporting,
            top10=count.top10,
            chart=chart,
            period=period_label(count.period, count.date, tr),
        )
        lines.append(f"  {text}")
    if report.countries:
        lines.append("")
    if not report.standings:
        if report.last_seen:
            seen = report.last_seen
            text = tr.gettext(
                "cli.last_seen",
                when=when,
                rank=seen.rank,
                chart=chart_name(seen.service, seen.region, seen.category, seen.period, tr),
                date=date_text(seen.date, tr),
                peak=seen.peak,
            )
        else:
            text = tr.gettext("cli.nowhere", when=when)
        lines.append(f"  {text}")
        return "\n".join(lines)
    rows = []
    for s in report.standings:
        rows.append(
            [
                where(s.region, tr),
                f"{service_name(s.service)} {category_name(s.category, tr)}",
                period_label(s.period, s.date, tr),
                tr.gettext("cli.rank", rank=s.rank),
                move(s.rank, s.previous_rank, s.periods_in_top10, tr=tr),
                tr.gettext("cli.rank", rank=s.peak),
                periods(s.no1_streak, s.period, tr) if s.no1_streak else "",
                periods(s.periods_in_top10, s.period, tr),
                number(s.hours, tr) or number(s.points, tr),
            ]
        )
    keys = ("region", "chart", "period", "rank", "move", "peak", "no1_run", "in_top10", "figures")
    headers = [tr.gettext(key) for key in (f"cli.head.{k}" for k in keys)]
    lines.extend("  " + line for line in table(headers, rows, right=(3, 5, 8)))
    return "\n".join(lines)


def format_chart(view: ChartView, tr: Messages = ENGLISH) -> str:
    series = view.series
    title = chart_name(series.service, series.region, series.category, series.period, tr)
    lines = [f"{title} — {period_label(series.period, view.date, tr)}", ""]
    listed = series.period == ALL_TIME  # a list of the most watched ever: versions, not periods
    has_views = listed and any(r.views for r in view.entries)
    has_hours = not has_views and any(r.hours for r in view.entries)
    has_points = any(r.points for r in view.entries)
    headers = [tr.gettext("cli.head.number"), tr.gettext("cli.head.move")]
    headers += [tr.gettext("cli.head.title"), tr.gettext("cli.head.season")]
    if not listed:
        in_top10 = f"cli.head.in_top10.{'day' if series.period == 'day' else 'week'}"
        headers.append(tr.gettext(in_top10))
    if has_views:
        headers.append(tr.gettext("cli.head.views"))
    elif has_hours:
        headers.append(tr.gettext("cli.head.hours"))
    elif has_points:
        headers.append(tr.gettext("cli.head.points"))
    rows = []
    for r in view.entries:
        row = [
            str(r.rank),
            move(r.rank, r.previous_rank, r.periods_in_top10, view.has_previous, tr),
            r.title,
            r.season or "",
        ]
        if not listed:
            row.append(str(r.periods_in_top10))
        if has_views:
            row.append(number(r.views, tr))
        elif has_hours:
            row.append(number(r.hours, tr))
        elif has_points:
            row.append(number(r.points, tr))
        rows.append(row)
    lines.extend("  " + line for line in table(headers, rows, right=(0, 4, 5) if not listed else (0, 4)))
    if not view.complete:
        lines.append("  " + tr.gettext("cli.incomplete"))
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


def format_cluster(members: Sequence[MemberStatus]) -> str:
    """`chartbot status` of a cluster: each live process, its shards, its jobs, its queue, its last
    post and its last warning; and a line for a job nobody holds (it is being taken over)."""
    rows = []
    for m in members:
        shards = describe_shards(m.shard_ids, m.shard_count) if m.shard_ids else "connecting"
        jobs = ", ".join(JOB_WORDS[job] for job in m.jobs) or "-"
        error = f"{m.last_error} ({_when(m.last_error_at)})" if m.last_error else ""
        rows.append([str(m.id), m.name, shards, jobs, str(m.queue), _when(m.last_post), error])
    headers = ["#", "PROCESS", "SHARDS", "JOBS", "QUEUE", "LAST POST", "LAST ERROR"]
    lines = [f"cluster: {len(members)} live process{'es' if len(members) != 1 else ''}"]
    lines += table(headers, rows)
    held = {job for m in members for job in m.jobs}
    lines += [f"no process {JOB_WORDS[job]} right now" for job in JOBS if job not in held]
    return "\n".join(lines) + "\n"


JOB_WORDS = {POLL: "polls", PLAN: "plans"}


# --- progress -----------------------------------------------------------------------------------------


class Progress:
    """Progress bars (tqdm) for long work on the command line, on `stream` (default: stderr), only when
    it is a terminal: in a pipe, a file or a test nothing at all is written. One bar per piece of work
    (`update(what, done, total)`, the poller's progress callback too), closed when it is done.

    Use as a context manager: bars still open at the end (an error) are closed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.shown = is_terminal(self.stream)
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, what: str, done: int, total: int, unit: str = "charts") -> None:
        if not self.shown:
            return
        bar = self._bars.get(what)
        if bar is None:
            from tqdm import tqdm

            scale = unit == "B"  # bytes read: kB, MB
            bar = tqdm(total=total, desc=what, unit=unit, unit_scale=scale, file=self.stream, leave=True)
            self._bars[what] = bar
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self._bars[what]

    def tracker(self, what: str, total: int, unit: str = "charts") -> Callable[[int], None] | None:
        """`update` of one piece of work, told only how much is done; None when nothing is shown."""
        if not self.shown:
            return None

        def done(count: int) -> None:
            self.update(what, count, total, unit)

        return done

    def write(self, out: TextIO, text: str) -> None:
        """Text to `out` that does not run into a bar drawn on the same terminal."""
        if self._bars and is_terminal(out):
            from tqdm import tqdm

            tqdm.write(text, file=out, end="")
        else:
            out.write(text)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def format_store_status(status: StoreStatus) -> str:
    """`chartbot db status`: the engine, where, the schema version, each table's rows."""
    lines = [
        f"engine:  {status.engine}",
        f"where:   {status.location}",
        f"schema:  version {status.schema_version}",
        "",
    ]
    rows = [[name, f"{count:,}"] for name, count in status.counts.items()]
    lines.extend(table(["TABLE", "ROWS"], rows, right=(1,)))
    return "\n".join(lines)


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
