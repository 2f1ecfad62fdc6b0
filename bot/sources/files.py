"""Import of local files: Netflix's TSVs, the Netflix U.S. daily Top 10 CSV and the generic format.

Every format turns a whole file into snapshots or raises one InputError naming the file, the line
and the reason: nothing of a bad file is returned. A file is read as it comes into a compact table of
charts (`read_charts`), so that a file of hundreds of megabytes is never whole in memory. Netflix's all-time lists (`most-popular.tsv`) carry
no date: they are dated by the `day` the caller gives (the day the file was read; default today).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from bot.model import CATEGORIES, PERIOD_NAMES, WEEK, ChartKey, InputError, Snapshot, utc_today
from bot.sources import netflix
from bot.sources.tables import (
    Charts,
    Data,
    Row,
    Text,
    a_date,
    a_sunday,
    decimal,
    integer,
    optional,
    read_rows,
    region,
    reject_markup,
    whole,
)

SOURCE = "file"
FORMATS = (
    "netflix-countries",
    "netflix-global",
    "netflix-most-popular",
    "netflix-us-daily",
    "generic-csv",
    "jsonl",
)

US_DAILY_COLUMNS = ("as of", "rank", "title")
GENERIC_COLUMNS = ("date", "region", "category", "rank", "title")
_GENERIC_FIELDS = (*GENERIC_COLUMNS, "period", "service", "season", "points", "hours", "views")
_HEADERS = {
    "netflix-countries": netflix.COUNTRIES_COLUMNS,
    "netflix-global": netflix.GLOBAL_COLUMNS,
    "netflix-most-popular": netflix.MOST_POPULAR_COLUMNS,
    "netflix-us-daily": US_DAILY_COLUMNS,
    "generic-csv": GENERIC_COLUMNS,
}


# --- format detection ---------------------------------------------------------------------------


def detect_format(first_line: str) -> str:
    """The format whose header this is (or `jsonl` when the line is a JSON object)."""
    line = first_line.removeprefix("\ufeff").split("\r", 1)[0].strip()  # a lone CR ends a line too
    if line.startswith("{"):
        return "jsonl"
    reject_markup(line)
    if "\t" in line:
        columns = {name.strip().lower() for name in line.split("\t")}
        candidates = ("netflix-countries", "netflix-global", "netflix-most-popular")
    else:
        columns = {name.strip().lower() for name in next(csv.reader([line]), [])}
        candidates = ("netflix-us-daily", "generic-csv")
    for name in candidates:
        if columns.issuperset(_HEADERS[name]):
            return name
    expected = "; ".join(f"{name} ({', '.join(cols)}, …)" for name, cols in _HEADERS.items())
    shown = line if len(line) <= 80 else line[:77] + "..."
    raise InputError(
        f"line 1: unrecognised header {shown!r}; expected one of: {expected}; "
        "or jsonl (one JSON object per line)"
    )


# --- entry points -------------------------------------------------------------------------------


def read_file(
    path: Path, format: str | None = None, day: date | None = None, *, today: date | None = None
) -> list[Snapshot]:
    """Parse a file on disk; `format` forces one of FORMATS instead of detecting it; `day` dates an
    undated file (the all-time lists: the day they were read; default: a YYYY-MM-DD date in the
    file's name, as archives of the list name their copies, else today).

    Chart dates must be from 2000-01-01 to 7 days after `today` (default: today in UTC)."""
    return read_charts(path, format, day, today=today).snapshots()


def read_charts(
    path: Path,
    format: str | None = None,
    day: date | None = None,
    *,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> Charts:
    """`read_file`, as a compact table of charts: the file is read as it comes, never whole, so a file
    of hundreds of megabytes takes a fraction of its size in memory. Any bad row raises, as there.
    `progress(n)` is told the bytes read so far as the reading goes."""
    if day is None:
        day = date_in_name(Path(path).name)
    try:
        with open(path, "rb") as stream:
            return parse_charts(stream, format, name=str(path), day=day, today=today, progress=progress)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


_NAMED_DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")


def date_in_name(name: str) -> date | None:
    """The first YYYY-MM-DD in a file name ("most-popular_2021-11-17T011549_38fd.tsv"), if it is a date."""
    match = _NAMED_DATE.search(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


def parse_bytes(
    data: bytes,
    format: str | None = None,
    name: str = "<data>",
    day: date | None = None,
    *,
    today: date | None = None,
) -> list[Snapshot]:
    """Parse a whole file's bytes; errors read `name: line N: reason`. `day`: as in `read_file`."""
    return parse_charts(data, format, name, day, today=today).snapshots()


def parse_charts(
    data: Data,
    format: str | None = None,
    name: str = "<data>",
    day: date | None = None,
    *,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> Charts:
    """`parse_bytes` of bytes, a str or a binary file, read as it comes, into a table of charts."""
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    try:
        text = Text(data, progress=progress)
        if text.is_blank():
            raise InputError("line 1: the file is empty")
        chosen = format or detect_format(text.first_line())
        if chosen in _UNDATED:
            return _UNDATED[chosen](text, day or utc_today())
        return _READERS[chosen](text, today=today)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None


# --- Netflix U.S. daily Top 10 (Kaggle "Netflix daily top 10 in US", via The Numbers) -----------


def parse_us_daily(data: Data | Text, *, today: date | None = None) -> list[Snapshot]:
    """`netflix_daily_top_10.csv`: one U.S. chart per day, TV and films mixed (`overall`)."""
    return read_us_daily(data, today=today).snapshots()


def read_us_daily(data: Data | Text, *, today: date | None = None) -> Charts:
    today = today or utc_today()
    charts = Charts()
    keys: dict[str, int] = {}
    for line, row in read_rows(Text.of(data), US_DAILY_COLUMNS):
        try:
            rank = integer(row["rank"], "Rank")
            figures = {
                "points": optional(row, "viewership score", decimal),
                "weeks_reported": optional(row, "days in top 10", whole),
            }
            title = charts.title(row["title"])
            day = row["as of"]
            chart = keys.get(day)
            if chart is None:
                key = ChartKey(SOURCE, "netflix", "us", "overall", "day", a_date(day, "As of", today))
                chart = keys[day] = charts.chart(key)
            charts.add(chart, rank, title, line, figures)
        except InputError as exc:
            raise InputError(f"line {line}: {exc}") from None
    return charts.checked()


# --- the generic format (DESIGN.md, "Generic import format") ------------------------------------


def parse_generic_csv(data: Data | Text, *, today: date | None = None) -> list[Snapshot]:
    """Generic CSV: one row per chart entry, columns named in the header (any order, extras ignored)."""
    return read_generic_csv(data, today=today).snapshots()


def read_generic_csv(data: Data | Text, *, today: date | None = None) -> Charts:
    return _read_generic(read_rows(Text.of(data), GENERIC_COLUMNS), today, same_columns=True)


def parse_jsonl(data: Data | Text, *, today: date | None = None) -> list[Snapshot]:
    """Generic JSON Lines: one object per chart entry, with the generic format's fields."""
    return read_jsonl(data, today=today).snapshots()


def read_jsonl(data: Data | Text, *, today: date | None = None) -> Charts:
    return _read_generic(_json_rows(Text.of(data)), today, same_columns=False)


def _json_rows(text: Text) -> Iterator[tuple[int, Row]]:
    # Split on "\n" only: str.splitlines() would also split on U+2028 inside JSON strings.
    line = 0
    for piece in text.pieces():
        raws = piece.split("\n")
        if piece.endswith("\n"):
            raws.pop()  # the next line starts the next piece
        for raw in raws:
            line += 1
            if raw.strip():
                try:
                    row = _json_row(raw)
                except InputError as exc:
                    raise InputError(f"line {line}: {exc}") from None
                yield line, row


def _json_row(raw: str) -> Row:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, found {_json_type(record)}")
    row = {str(name).strip().lower(): value for name, value in record.items()}
    missing = [name for name in GENERIC_COLUMNS if name not in row]
    if missing:
        raise InputError(f"missing field(s) {', '.join(map(repr, missing))}")
    return {name: _json_text(name, value) for name, value in row.items() if name in _GENERIC_FIELDS}


def _json_text(name: str, value: Any) -> str:
    """A JSON value as the text a CSV cell would hold, so both share one validator."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"{name} must be text or a number, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", bool: "true/false", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_FIGURES: tuple[tuple[str, Callable[[str, str], float]], ...] = (
    ("points", decimal),
    ("hours", whole),
    ("views", whole),
)


def _read_generic(rows: Iterator[tuple[int, Row]], today: date | None, *, same_columns: bool) -> Charts:
    """`same_columns`: every row has the same columns (a CSV's header; a JSON line has its own)."""
    today = today or utc_today()
    charts = Charts()
    last: tuple[str | None, ...] = ()  # the chart columns of the row before: a chart's rows come together
    chart = -1
    given: tuple[tuple[str, Callable[[str, str], float]], ...] | None = None  # figure columns present
    for line, row in rows:
        try:
            columns = (row["date"], row["region"], row["category"], row.get("period"), row.get("service"))
            if columns != last:
                chart, last = charts.chart(_generic_key(row, today)), columns
            rank = integer(_required(row, "rank"), "rank")
            title = _required(row, "title")
            season = row.get("season", "").strip() or None
            if given is None or not same_columns:
                given = tuple((name, read) for name, read in _FIGURES if name in row)
            figures = {name: optional(row, name, read) for name, read in given} if given else None
            charts.add(chart, rank, charts.title(title, season), line, figures)
        except InputError as exc:
            raise InputError(f"line {line}: {exc}") from None
    return charts.checked()


def _generic_key(row: Row, today: date) -> ChartKey:
    period = _choice(_default(row, "period", "day"), "period", PERIOD_NAMES)
    return ChartKey(
        source=SOURCE,
        service=_service(_default(row, "service", "netflix")),
        region=region(_required(row, "region"), "region"),
        category=_choice(_required(row, "category"), "category", CATEGORIES),
        period=period,
        date=(a_sunday if period == WEEK else a_date)(_required(row, "date"), "date", today),
    )


def _default(row: Row, column: str, default: str) -> str:
    return row.get(column, "").strip() or default


def _required(row: Row, column: str) -> str:
    value = row[column].strip()
    if not value:
        raise InputError(f"{column} is empty")
    return value


def _choice(value: str, column: str, allowed: tuple[str, ...]) -> str:
    word = value.strip().lower()
    if word not in allowed:
        raise InputError(f"{column} {value!r} is not one of {', '.join(allowed)}")
    return word


def _service(value: str) -> str:
    slug = value.strip().lower()
    if not slug or not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in slug):
        raise InputError(f"service {value!r} is not a service slug like 'netflix' or 'hbo-max'")
    return slug


_READERS: dict[str, Callable[..., Charts]] = {
    "netflix-countries": netflix.read_countries_tsv,
    "netflix-global": netflix.read_global_tsv,
    "netflix-us-daily": read_us_daily,
    "generic-csv": read_generic_csv,
    "jsonl": read_jsonl,
}
# formats whose rows carry no date: the caller dates them
_UNDATED: dict[str, Callable[[Text, date], Charts]] = {
    "netflix-most-popular": netflix.read_most_popular_tsv,
}
