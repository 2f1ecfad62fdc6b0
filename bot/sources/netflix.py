"""Netflix's official Top 10 exports: the weekly `all-weeks-countries.tsv` and `all-weeks-global.tsv`,
and the all-time lists `most-popular.tsv`.

Parsing is a pure function of the file's bytes. Columns are read by name, never by position:
Netflix added `runtime` and `weekly_views` in 2023 and may add more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import date

from bot.model import ALL_TIME, WORLD, ChartKey, InputError, Snapshot, utc_today
from bot.sources.http import FetchResult, HttpClient
from bot.sources.tables import (
    Charts,
    Data,
    Row,
    Text,
    a_sunday,
    decimal,
    integer,
    lookup,
    optional,
    read_rows,
    region,
    reject_markup,
    whole,
)

# --- Netflix's TSVs -----------------------------------------------------------------------------

SOURCE = "netflix"
SERVICE = "netflix"
COUNTRY_CATEGORIES = {"Films": "movies", "TV": "tv"}
GLOBAL_CATEGORIES = {
    "Films (English)": "movies-english",
    "Films (Non-English)": "movies-non-english",
    "TV (English)": "tv-english",
    "TV (Non-English)": "tv-non-english",
}
GLOBAL_COLUMNS = ("week", "category", "weekly_rank", "show_title")
COUNTRIES_COLUMNS = ("country_iso2", *GLOBAL_COLUMNS)


def parse_countries_tsv(data: Data | Text, *, today: date | None = None) -> list[Snapshot]:
    """`all-weeks-countries.tsv`: one `tv` and one `movies` chart per country and week.

    A week before 2000 or more than 7 days after `today` (default: today in UTC) is a bad row."""
    return read_countries_tsv(data, today=today).snapshots()


def read_countries_tsv(data: Data | Text, *, today: date | None = None) -> Charts:
    """`parse_countries_tsv`, read as it comes into a compact table of charts."""
    return _read_tsv(
        data,
        COUNTRIES_COLUMNS,
        COUNTRY_CATEGORIES,
        lambda row: region(row["country_iso2"], "country_iso2"),
        today,
    )


def parse_global_tsv(data: Data | Text, *, today: date | None = None) -> list[Snapshot]:
    """`all-weeks-global.tsv` (2022 and 2023+ layouts): four `world` charts per week."""
    return read_global_tsv(data, today=today).snapshots()


def read_global_tsv(data: Data | Text, *, today: date | None = None) -> Charts:
    return _read_tsv(data, GLOBAL_COLUMNS, GLOBAL_CATEGORIES, lambda row: WORLD, today)


def _read_tsv(
    data: Data | Text,
    required: tuple[str, ...],
    categories: Mapping[str, str],
    region_of: Callable[[Row], str],
    today: date | None,
) -> Charts:
    today = today or utc_today()
    charts = Charts()
    keys: dict[tuple[str, str, str], int] = {}
    for line, row in read_rows(Text.of(data), required, delimiter="\t"):
        try:
            raw = (row.get("country_iso2", ""), row["week"], row["category"])
            chart = keys.get(raw)
            if chart is None:
                key = ChartKey(
                    source=SOURCE,
                    service=SERVICE,
                    region=region_of(row),
                    category=lookup(row["category"], "category", categories),
                    period="week",
                    date=a_sunday(row["week"], "week", today),
                )
                chart = keys[raw] = charts.chart(key)
            rank = integer(row["weekly_rank"], "weekly_rank")
            title, season = row["show_title"], row.get("season_title")
            figures = {
                "hours": optional(row, "weekly_hours_viewed", whole),
                "views": optional(row, "weekly_views", whole),
                "runtime": optional(row, "runtime", decimal),
                "weeks_reported": optional(row, "cumulative_weeks_in_top_10", whole),
            }
            charts.add(chart, rank, charts.title(title, season), line, figures)
        except InputError as exc:
            raise InputError(f"line {line}: {exc}") from None
    return charts.checked()


# --- the all-time lists: most-popular.tsv -------------------------------------------------------------

MOST_POPULAR_FILE = "most-popular.tsv"
MOST_POPULAR_COLUMNS = ("category", "rank", "show_title")
_WINDOW_COLUMN = re.compile(r"(?:hours_viewed|views)_first_(\d+)_days")


def parse_most_popular_tsv(data: Data | Text, day: date) -> list[Snapshot]:
    """`most-popular.tsv`: Netflix's four all-time lists (the most watched titles in their first days),
    as read on `day` — the file carries no date, so a version is dated by when it was read.

    Two layouts so far: until 2023-05 `hours_viewed_first_28_days`; from 2023-07-26
    `hours_viewed_first_91_days`, `runtime` and `views_first_91_days`, and the lists ranked by views.
    The window (28 or 91 days) comes from the column names and is kept on every entry, so that a
    re-based list is told apart from a changed one. Netflix's `rank` is kept as it is.
    """
    return read_most_popular_tsv(data, day).snapshots()


def read_most_popular_tsv(data: Data | Text, day: date) -> Charts:
    text = Text.of(data)
    if text.is_blank():
        raise InputError("line 1: the file is empty")
    reject_markup(text.start())
    window = _window(text.first_line())
    keys = {c: ChartKey(SOURCE, SERVICE, WORLD, c, ALL_TIME, day) for c in GLOBAL_CATEGORIES.values()}
    hours, views = f"hours_viewed_first_{window}_days", f"views_first_{window}_days"
    charts = Charts()
    for line, row in read_rows(text, MOST_POPULAR_COLUMNS, delimiter="\t"):
        try:
            chart = charts.chart(keys[lookup(row["category"], "category", GLOBAL_CATEGORIES)])
            rank = integer(row["rank"], "rank")
            title, season = row["show_title"], row.get("season_title")
            figures = {
                "hours": optional(row, hours, whole),
                "views": optional(row, views, whole),
                "runtime": optional(row, "runtime", decimal),
                "window_days": window,
            }
            charts.add(chart, rank, charts.title(title, season), line, figures)
        except InputError as exc:
            raise InputError(f"line {line}: {exc}") from None
    return charts.checked()


def _window(header: str) -> int:
    """The days the figures count (28 or 91), read from the header's column names."""
    columns = [name.strip().lower() for name in header.removeprefix("\ufeff").split("\t")]
    missing = [name for name in MOST_POPULAR_COLUMNS if name not in columns]
    if missing:
        shown = header if len(header) <= 60 else header[:57] + "..."
        raise InputError(
            f"line 1: missing column(s) {', '.join(map(repr, missing))}: "
            f"{shown!r} is not the header of most-popular.tsv"
        )
    windows = sorted({int(m[1]) for name in columns if (m := _WINDOW_COLUMN.fullmatch(name))})
    if not windows:
        raise InputError(
            "line 1: missing column 'hours_viewed_first_28_days' or 'hours_viewed_first_91_days' "
            "(the figures of the all-time lists)"
        )
    if len(windows) > 1:
        raise InputError(f"line 1: figures for more than one window ({' and '.join(map(str, windows))} days)")
    if windows[0] < 1:
        raise InputError("line 1: a window of 0 days")
    return windows[0]


# --- fetching -------------------------------------------------------------------------------------
# Netflix publishes both files in one folder (NETFLIX_TOP10_URL) and rewrites them weekly; an hourly
# conditional GET of an unchanged file costs a 304 and no parsing.

FILES: dict[str, tuple[str, Callable[..., list[Snapshot]]]] = {
    "countries": ("all-weeks-countries.tsv", parse_countries_tsv),
    "global": ("all-weeks-global.tsv", parse_global_tsv),
    "most-popular": ("most-popular.tsv", parse_most_popular_tsv),  # undated: dated by the day it is read
}
UNDATED = frozenset({"most-popular"})


@dataclasses.dataclass(frozen=True)
class FetchedFile:
    """One file as fetched: `snapshots` is None when the server said 304 (nothing changed)."""

    name: str  # a key of FILES
    result: FetchResult
    snapshots: list[Snapshot] | None


def file_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + FILES[name][0]


async def fetch_file(http: HttpClient, base_url: str, name: str, *, day: date | None = None) -> FetchedFile:
    """GET one file conditionally and parse it off the event loop (a real file is tens of MB).
    `day`: the date of an undated file (the all-time lists), default today (UTC).

    Validators are not remembered here: the caller saves them once the charts are stored. Raises
    FetchError (network, HTTP) or InputError (a file that cannot be read as charts).
    """
    filename, parse = FILES[name]
    result = await http.get(file_url(base_url, name), remember=False)
    if result.not_modified or result.body is None:
        return FetchedFile(name, result, None)
    args = (result.body, day or utc_today()) if name in UNDATED else (result.body,)
    try:
        snapshots = await asyncio.to_thread(parse, *args)
    except InputError as exc:
        raise InputError(f"{filename}: {exc}") from None
    if not snapshots:
        raise InputError(f"{filename}: the file holds no charts")
    return FetchedFile(name, result, snapshots)
