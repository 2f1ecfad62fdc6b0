"""Reading tables of chart rows: decoding, line-numbered rows, field checks, chart assembly.

Shared by the Netflix TSV parser and the generic file importer; every error names its line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date

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

Row = Mapping[str, str]
_MISSING = ("", "N/A")
_REGION = re.compile(r"[a-z]{2}")


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


def reject_markup(text: str) -> None:
    """A web page where a table was expected (a redirect or error body saved as the file) is refused
    with one clear line rather than as a table with odd columns."""
    if text.lstrip().startswith("<"):  # no chart file starts with a tag
        shown = text.strip().split("\n", 1)[0]
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise InputError(f"line 1: this is a web page, not a table ({shown!r})")


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


def a_date(value: str, column: str, today: date | None = None) -> date:
    """A YYYY-MM-DD chart date from 2000-01-01 to 7 days after `today` (default: today in UTC)."""
    try:
        return parse_date(value, today=today)
    except InputError as exc:
        raise InputError(f"{column} {exc}") from None


def a_sunday(value: str, column: str, today: date | None = None) -> date:
    """Netflix (and the house) dates a week by its last day, a Sunday."""
    day = a_date(value, column, today)
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
