"""Netflix's official weekly Top 10 exports (`all-weeks-countries.tsv`, `all-weeks-global.tsv`).

Parsing is a pure function of the file's bytes. Columns are read by name, never by position:
Netflix added `runtime` and `weekly_views` in 2023 and may add more.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from datetime import date

from bot.model import WORLD, ChartKey, Entry, InputError, Snapshot, utc_today
from bot.sources.http import FetchResult, HttpClient
from bot.sources.tables import (
    Charts,
    Row,
    a_sunday,
    at_line,
    decimal,
    decode,
    integer,
    lookup,
    optional,
    read_rows,
    region,
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


def parse_countries_tsv(data: bytes | str, *, today: date | None = None) -> list[Snapshot]:
    """`all-weeks-countries.tsv`: one `tv` and one `movies` chart per country and week.

    A week before 2000 or more than 7 days after `today` (default: today in UTC) is a bad row."""
    return _parse_tsv(
        data,
        COUNTRIES_COLUMNS,
        COUNTRY_CATEGORIES,
        lambda row: region(row["country_iso2"], "country_iso2"),
        today,
    )


def parse_global_tsv(data: bytes | str, *, today: date | None = None) -> list[Snapshot]:
    """`all-weeks-global.tsv` (2022 and 2023+ layouts): four `world` charts per week."""
    return _parse_tsv(data, GLOBAL_COLUMNS, GLOBAL_CATEGORIES, lambda row: WORLD, today)


def _parse_tsv(
    data: bytes | str,
    required: tuple[str, ...],
    categories: Mapping[str, str],
    region_of: Callable[[Row], str],
    today: date | None,
) -> list[Snapshot]:
    today = today or utc_today()
    charts = Charts()
    keys: dict[tuple[str, str, str], ChartKey] = {}

    def chart_key(row: Row) -> ChartKey:
        raw = (row.get("country_iso2", ""), row["week"], row["category"])
        if raw not in keys:
            keys[raw] = ChartKey(
                source=SOURCE,
                service=SERVICE,
                region=region_of(row),
                category=lookup(row["category"], "category", categories),
                period="week",
                date=a_sunday(row["week"], "week", today),
            )
        return keys[raw]

    for line, row in read_rows(decode(data), required, delimiter="\t"):
        with at_line(line):
            charts.add(chart_key(row), _entry(row), line)
    return charts.snapshots()


def _entry(row: Row) -> Entry:
    return Entry.make(
        integer(row["weekly_rank"], "weekly_rank"),
        row["show_title"],
        row.get("season_title"),
        hours=optional(row, "weekly_hours_viewed", whole),
        views=optional(row, "weekly_views", whole),
        runtime=optional(row, "runtime", decimal),
        weeks_reported=optional(row, "cumulative_weeks_in_top_10", whole),
    )


# --- fetching -------------------------------------------------------------------------------------
# Netflix publishes both files in one folder (NETFLIX_TOP10_URL) and rewrites them weekly; an hourly
# conditional GET of an unchanged file costs a 304 and no parsing.

FILES: dict[str, tuple[str, Callable[..., list[Snapshot]]]] = {
    "countries": ("all-weeks-countries.tsv", parse_countries_tsv),
    "global": ("all-weeks-global.tsv", parse_global_tsv),
}


@dataclasses.dataclass(frozen=True)
class FetchedFile:
    """One file as fetched: `snapshots` is None when the server said 304 (nothing changed)."""

    name: str  # a key of FILES
    result: FetchResult
    snapshots: list[Snapshot] | None


def file_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + FILES[name][0]


async def fetch_file(http: HttpClient, base_url: str, name: str) -> FetchedFile:
    """GET one file conditionally and parse it off the event loop (a real file is tens of MB).

    Validators are not remembered here: the caller calls `http.remember(result)` once the charts are
    stored. Raises FetchError (network, HTTP) or InputError (a file that cannot be read as charts).
    """
    filename, parse = FILES[name]
    result = await http.get(file_url(base_url, name), remember=False)
    if result.not_modified or result.body is None:
        return FetchedFile(name, result, None)
    try:
        snapshots = await asyncio.to_thread(parse, result.body)
    except InputError as exc:
        raise InputError(f"{filename}: {exc}") from None
    if not snapshots:
        raise InputError(f"{filename}: the file holds no charts")
    return FetchedFile(name, result, snapshots)
