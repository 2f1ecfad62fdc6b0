"""Netflix's official weekly Top 10 exports (`all-weeks-countries.tsv`, `all-weeks-global.tsv`).

Parsing is a pure function of the file's bytes. Columns are read by name, never by position:
Netflix added `runtime` and `weekly_views` in 2023 and may add more.

The first half of this module holds the table-reading helpers that `files.py` shares
(decoding, line-numbered rows, field parsing, chart assembly).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from functools import lru_cache

from bot.model import (
    CHART_SIZE,
    WORLD,
    ChartError,
    ChartKey,
    Entry,
    InputError,
    Snapshot,
    make_snapshot,
    parse_date,
)
from bot.sources.http import FetchResult, HttpClient

Row = Mapping[str, str]
_MISSING = ("", "N/A")
_REGION = re.compile(r"[a-z]{2}")

# --- table reading, shared with files.py --------------------------------------------------------


def decode(data: bytes | str) -> str:
    """UTF-8 text, with or without a byte order mark; a bad byte is reported with its line."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"line {line}: byte 0x{data[exc.start]:02x} is not valid UTF-8 (save the file as UTF-8)"
        ) from None


def read_rows(text: str, required: Iterable[str], *, delimiter: str = ",") -> Iterator[tuple[int, Row]]:
    """(line number, {column: value}) for each non-blank row; the header is line 1.

    Column names are compared stripped and lower-cased. Tab-separated files are read without quote
    handling (Netflix never quotes, and a stray `"` in a title must not swallow lines).
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    header = _read_header(reader, required)
    line = 1
    try:
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not any(field.strip() for field in fields):
                continue  # a blank line, or a spreadsheet's empty row
            if len(fields) != len(header):
                raise InputError(
                    f"line {start}: expected {len(header)} fields, found {len(fields)} (a truncated row?)"
                )
            yield start, dict(zip(header, fields, strict=True))
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: {_csv_reason(exc)}") from None


def _csv_reason(exc: csv.Error) -> str:
    reason = str(exc)
    if reason == "unexpected end of data":
        return "a quoted field is not closed (a truncated row?)"
    return reason


def _read_header(reader: Iterator[list[str]], required: Iterable[str]) -> list[str]:
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise InputError(f"line 1: {_csv_reason(exc)}") from None
    if not any(header):
        raise InputError("line 1: the file is empty")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(f"line 1: column(s) {_names(repeated)} appear more than once")
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(f"line 1: missing column(s) {_names(missing)}")
    return header


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


@contextmanager
def at_line(line: int) -> Iterator[None]:
    """Prefix any InputError raised inside with the row's line number."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"line {line}: {exc}") from None


def integer(value: str, column: str) -> int:
    """A whole number ("42", "42.0", "-1")."""
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        number = _number(text, column, "whole number")
        if not number.is_integer():
            raise InputError(f"{column} {value!r} is not a whole number") from None
        return int(number)


def whole(value: str, column: str) -> int:
    """A whole number that counts something, so not negative."""
    number = integer(value, column)
    if number < 0:
        raise InputError(f"{column} {value!r} must not be negative")
    return number


def _number(text: str, column: str, what: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{column} {text!r} is not a {what}") from None
    if not math.isfinite(number):
        raise InputError(f"{column} {text!r} is not a {what}")
    return number


def decimal(value: str, column: str) -> float:
    number = _number(value.strip(), column, "number")
    if number < 0:
        raise InputError(f"{column} {value!r} must not be negative")
    return number


def optional(row: Row, column: str, convert: Callable[[str, str], int | float]) -> int | float | None:
    """A figure that may be absent from the header or blank (older weeks of a newer layout)."""
    value = row.get(column, "").strip()
    return None if value in _MISSING else convert(value, column)


def a_date(value: str, column: str) -> date:
    try:
        return parse_date(value)
    except InputError as exc:
        raise InputError(f"{column} {exc}") from None


def a_sunday(value: str, column: str) -> date:
    """Netflix (and the house) dates a week by its last day, a Sunday."""
    day = a_date(value, column)
    if day.isoweekday() != 7:
        raise InputError(f"{column} {value!r} is a {day:%A}; a week is dated by its last day, a Sunday")
    return day


def region(value: str, column: str) -> str:
    code = value.strip().lower()
    if code != WORLD and not _REGION.fullmatch(code):
        raise InputError(f"{column} {value!r} is not 'world' or a two-letter country code")
    return code


def lookup(value: str, column: str, table: Mapping[str, str]) -> str:
    try:
        return table[value.strip()]
    except KeyError:
        raise InputError(f"{column} {value!r} is not one of {_names(table)}") from None


@lru_cache(maxsize=65536)
def _identity(title: str, season: str | None) -> Entry:
    # Entry.make repairs and keys the title (ftfy, ~10 µs a call); titles repeat across charts.
    return Entry.make(0, title, season)


def make_entry(rank: int, title: str, season: str | None = None, **figures: int | float | None) -> Entry:
    """`Entry.make`, memoised on (title, season)."""
    return dataclasses.replace(_identity(title, season), rank=rank, **figures)


class Charts:
    """Collects entries into charts, checking ranks as rows arrive so errors name the row's line."""

    def __init__(self) -> None:
        self._entries: dict[ChartKey, list[Entry]] = {}
        self._lines: dict[ChartKey, dict[int, int]] = {}

    def add(self, key: ChartKey, entry: Entry, line: int) -> None:
        if not 1 <= entry.rank <= CHART_SIZE:
            raise InputError(f"rank {entry.rank} is outside 1..{CHART_SIZE}")
        lines = self._lines.setdefault(key, {})
        if entry.rank in lines:
            raise InputError(
                f"rank {entry.rank} is repeated in chart {key.label()} (first on line {lines[entry.rank]})"
            )
        lines[entry.rank] = line
        self._entries.setdefault(key, []).append(entry)

    def snapshots(self) -> list[Snapshot]:
        """Every chart, sorted by (date, service, region, category); any bad chart raises."""
        if not self._entries:
            raise InputError("line 1: the file has no chart rows")
        snapshots = [self._snapshot(key, entries) for key, entries in self._entries.items()]
        return sorted(snapshots, key=_order)

    def _snapshot(self, key: ChartKey, entries: list[Entry]) -> Snapshot:
        try:
            return make_snapshot(key, entries)
        except ChartError as exc:
            raise InputError(f"line {min(self._lines[key].values())}: {exc}") from None


def _order(snapshot: Snapshot) -> tuple[date, str, str, str, str]:
    key = snapshot.key
    return (key.date, key.service, key.region, key.category, key.period)


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


def parse_countries_tsv(data: bytes | str) -> list[Snapshot]:
    """`all-weeks-countries.tsv`: one `tv` and one `movies` chart per country and week."""
    return _parse_tsv(
        data, COUNTRIES_COLUMNS, COUNTRY_CATEGORIES, lambda row: region(row["country_iso2"], "country_iso2")
    )


def parse_global_tsv(data: bytes | str) -> list[Snapshot]:
    """`all-weeks-global.tsv` (2022 and 2023+ layouts): four `world` charts per week."""
    return _parse_tsv(data, GLOBAL_COLUMNS, GLOBAL_CATEGORIES, lambda row: WORLD)


def _parse_tsv(
    data: bytes | str,
    required: tuple[str, ...],
    categories: Mapping[str, str],
    region_of: Callable[[Row], str],
) -> list[Snapshot]:
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
                date=a_sunday(row["week"], "week"),
            )
        return keys[raw]

    for line, row in read_rows(decode(data), required, delimiter="\t"):
        with at_line(line):
            charts.add(chart_key(row), _entry(row), line)
    return charts.snapshots()


def _entry(row: Row) -> Entry:
    return make_entry(
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

FILES: dict[str, tuple[str, Callable[[bytes | str], list[Snapshot]]]] = {
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
