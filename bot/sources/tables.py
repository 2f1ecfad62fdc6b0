"""Reading tables of chart rows: decoding, line-numbered rows, field checks, chart assembly.

Shared by the Netflix TSV parser and the generic file importer; every error names its line. A file is
read as it comes (`Text`) into a compact table of charts (`Charts`), so a large file is never whole in
memory, neither as text nor as `Entry` objects.
"""

from __future__ import annotations

import csv
import io
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any, BinaryIO

from bot.model import (
    CHART_SIZE,
    WORLD,
    ChartError,
    ChartKey,
    Entry,
    InputError,
    Snapshot,
    identify,
    parse_date,
)

Row = Mapping[str, str]
_MISSING = ("", "N/A")
_REGION = re.compile(r"[a-z]{2}")


BLOCK = 1 << 20  # bytes read at a time: a block is decoded and split into lines in C
Data = bytes | bytearray | memoryview | str | BinaryIO


class Text:
    """A file's UTF-8 text, read a block at a time: the whole file is never in memory, as bytes or
    as a str. With or without a byte order mark; a bad byte is reported with its line.

    Blocks end at a newline (but the last), so a line is never cut and UTF-8 decodes the same as the
    whole file would. Single use: `lines()` or `pieces()` once, after any look at the beginning.
    """

    def __init__(
        self, data: Data, *, block: int = BLOCK, progress: Callable[[int], None] | None = None
    ) -> None:
        """`progress(n)`: told the bytes read so far after each block."""
        self._pieces = _pieces(data, block, progress)
        self._ahead: list[str] = []  # pieces read to look at the beginning, not yet handed out

    @classmethod
    def of(cls, data: Data | Text) -> Text:
        return data if isinstance(data, Text) else cls(data)

    def _peek(self) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            return False
        self._ahead.append(piece)
        return True

    def is_blank(self) -> bool:
        """Nothing but white space (or nothing at all); reads ahead past a blank beginning only."""
        if not self._ahead and not self._peek():
            return True
        while not self._ahead[-1].strip():
            if not self._peek():
                return True
        return False

    def first_line(self) -> str:
        """The first line (up to the first "\\n"), without its newline."""
        if not self._ahead and not self._peek():
            return ""
        return self._ahead[0].split("\n", 1)[0]

    def start(self) -> str:
        """The beginning of the text, up to at least its first line that is not blank."""
        self.is_blank()
        return "".join(self._ahead)

    def pieces(self) -> Iterator[str]:
        """The text in pieces that end at a "\\n" (but the last)."""
        while self._ahead:
            yield self._ahead.pop(0)
        yield from self._pieces

    def lines(self) -> Iterator[str]:
        """Lines with their endings, split at "\\n", "\\r" and "\\r\\n" as `csv` wants (newline="")."""
        for piece in self.pieces():
            yield from io.StringIO(piece, newline="")


def _pieces(data: Data, block: int, progress: Callable[[int], None] | None) -> Iterator[str]:
    if isinstance(data, str):
        if data:
            yield data.removeprefix("\ufeff")
        return
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    line = 1  # the line the next piece starts on
    held: list[bytes] = []  # the start of a line not ended yet
    first = True
    read = 0
    while True:
        block_read = stream.read(block)
        if progress is not None and block_read:
            read += len(block_read)
            progress(read)
        if block_read:
            cut = block_read.rfind(b"\n") + 1
            if cut == 0:  # no line ends in this block: a long line goes on
                held.append(block_read)
                continue
            chunk = b"".join((*held, block_read[:cut])) if held else block_read[:cut]
            held = [block_read[cut:]] if cut < len(block_read) else []
        else:
            chunk, held = b"".join(held), []
            if not chunk:
                return
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = line + chunk.count(b"\n", 0, exc.start)
            raise InputError(
                f"line {where}: byte 0x{chunk[exc.start]:02x} is not valid UTF-8 (save the file as UTF-8)"
            ) from None
        if first:
            text, first = text.removeprefix("\ufeff"), False
        line += chunk.count(b"\n")
        yield text


def reject_markup(text: str) -> None:
    """A web page where a table was expected (a redirect or error body saved as the file) is refused
    with one clear line rather than as a table with odd columns."""
    if text.lstrip().startswith("<"):  # no chart file starts with a tag
        shown = text.strip().split("\n", 1)[0]
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise InputError(f"line 1: this is a web page, not a table ({shown!r})")


def read_rows(
    text: Text | str, required: Iterable[str], *, delimiter: str = ","
) -> Iterator[tuple[int, Row]]:
    """(line number, {column: value}) for each non-blank row, read as they come; the header is line 1.

    Column names are compared stripped and lower-cased. Tab-separated files are read without quote
    handling (Netflix never quotes, and a stray `"` in a title must not swallow lines).
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(Text.of(text).lines(), delimiter=delimiter, quoting=quoting, strict=True)
    header = _read_header(reader, required)
    line = 1
    try:
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not (fields and fields[0].strip()) and not any(field.strip() for field in fields):
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


FIGURES = ("points", "hours", "views", "runtime", "weeks_reported", "window_days")
_FLOAT_FIGURES = frozenset({"points", "runtime"})
_NO_ENTRY = array("i", [-1]) * CHART_SIZE


class Charts:
    """A file's entries gathered into charts, compactly, checking ranks as rows arrive so that errors
    name the row's line.

    A title is kept once (`title()` gives its number); a chart is ten slots, one per rank, of title
    numbers and lines in flat arrays, and each figure that occurs is an array of its own. So a file of
    millions of rows takes a small part of the memory its `Entry` objects would; `Snapshot`s are made
    only when asked for, a chunk of charts at a time, oldest first (`chunks()`, `on(day)`).
    """

    def __init__(self) -> None:
        self._index: dict[ChartKey, int] | None = {}  # dropped once read (`checked()`), made again if need be
        self._keys: list[ChartKey] = []
        self._by_day: dict[date, array[int]] = {}  # chart numbers by date
        self._titles: list[tuple[str, str | None, str]] = []  # (show, season, title key)
        self._title_ids: dict[tuple[str, str | None], int] = {}  # as written in the file -> number
        self._slots = array("i")  # title number per (chart, rank); -1: no entry at that rank
        self._lines = array("I")  # the line of the row in each slot (64-bit past 4 billion lines)
        self._figures: dict[str, _Column] = {}
        self._words: dict[object, object] = {}  # one copy of each region, category, … and date
        self._order: array[int] | None = None  # chart numbers in the order of `snapshots()`
        self.entries = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Snapshot]:
        """The charts as snapshots, in the order of `snapshots()`, made as they are wanted."""
        for chunk in self.chunks():
            yield from chunk

    def title(self, title: str, season: str | None = None) -> int:
        """The number of a title as written (cleaned, split from its season and keyed once)."""
        raw = (title, season)
        number = self._title_ids.get(raw)
        if number is None:
            number = self._title_ids[raw] = len(self._titles)
            self._titles.append(identify(title, season))
        return number

    def chart(self, key: ChartKey) -> int:
        """The number of a chart, added when new."""
        if self._index is None:
            self._index = {key: number for number, key in enumerate(self._keys)}
        number = self._index.get(key)
        if number is None:
            words = self._words
            fields = (key.source, key.service, key.region, key.category, key.period, key.date)
            key = ChartKey(*(words.setdefault(v, v) for v in fields))  # type: ignore[arg-type]
            number = self._index[key] = len(self._keys)
            self._keys.append(key)
            self._by_day.setdefault(key.date, array("i")).append(number)
            self._slots.extend(_NO_ENTRY)
            self._lines.frombytes(bytes(CHART_SIZE * self._lines.itemsize))
            for column in self._figures.values():
                column.grow(CHART_SIZE)
            self._order = None
        return number

    def add(
        self, chart: int, rank: int, title: int, line: int, figures: Mapping[str, float | None] | None = None
    ) -> None:
        """An entry of chart number `chart` (see `chart()`), title number `title` (see `title()`)."""
        if not 1 <= rank <= CHART_SIZE:
            raise InputError(f"rank {rank} is outside 1..{CHART_SIZE}")
        slot = chart * CHART_SIZE + rank - 1
        if self._slots[slot] >= 0:
            key = self._keys[chart]
            raise InputError(
                f"rank {rank} is repeated in chart {key.label()} (first on line {self._lines[slot]})"
            )
        self._slots[slot] = title
        try:
            self._lines[slot] = line
        except OverflowError:
            self._lines = array("q", self._lines)
            self._lines[slot] = line
        self.entries += 1
        if figures:
            for name, value in figures.items():
                if value is not None:
                    column = self._figures.get(name)
                    if column is None:
                        column = self._figures[name] = _Column(name in _FLOAT_FIGURES, len(self._slots))
                    column.set(slot, value)

    def checked(self) -> Charts:
        """Itself, once it holds a chart (a file of no chart rows is bad input)."""
        if not self._keys:
            raise InputError("line 1: the file has no chart rows")
        self._index = None  # only adding looks charts up: a large file's index is tens of MB
        return self

    def titles(self) -> Iterator[tuple[str, str]]:
        """(title key, title) of every title as written."""
        for show, _season, key in self._titles:
            yield key, show

    # --- snapshots, made when asked for -------------------------------------------------------------

    def snapshots(self) -> list[Snapshot]:
        """Every chart, sorted by (date, service, region, category); any bad chart raises."""
        self.checked()
        made: dict[int, Entry] = {}
        return [self._snapshot(number, made) for number in self._sorted()]

    def chunks(self, size: int = 2_000) -> Iterator[list[Snapshot]]:
        """The charts in the order of `snapshots()`, `size` at a time."""
        order = self._sorted()
        for start in range(0, len(order), size):
            made: dict[int, Entry] = {}  # the same title at the same rank in many charts: one Entry
            yield [self._snapshot(number, made) for number in order[start : start + size]]

    def dates(self) -> list[date]:
        return sorted(self._by_day)

    def on(self, day: date) -> list[Snapshot]:
        """The charts of one date, in the order of `snapshots()`."""
        made: dict[int, Entry] = {}
        return [self._snapshot(number, made) for number in self._on(day)]

    def _on(self, day: date) -> list[int]:
        """Chart numbers of a date, by service, region, category and period."""
        keys = self._keys
        return sorted(self._by_day.get(day, ()), key=lambda n: _series_order(keys[n]))

    def _sorted(self) -> array[int]:
        """Every chart number in the order of `snapshots()`: sorted a date at a time, so that no key
        per chart is held at once."""
        if self._order is None:
            self._order = array("i")
            for day in sorted(self._by_day):
                self._order.extend(self._on(day))
        return self._order

    def _snapshot(self, chart: int, made: dict[int, Entry]) -> Snapshot:
        """Chart number `chart` as a Snapshot; entries without figures are shared through `made`
        (they are immutable: the same title at the same rank is one Entry)."""
        key = self._keys[chart]
        base = chart * CHART_SIZE
        slots, titles, figures = self._slots, self._titles, self._figures.items()
        entries = []
        for rank, slot in enumerate(range(base, base + CHART_SIZE), start=1):
            number = slots[slot]
            if number < 0:
                continue
            if figures:
                show, season, title_key = titles[number]
                values = {name: column.get(slot) for name, column in figures}
                entries.append(Entry(rank, show, title_key, season, **values))
                continue
            entry = made.get(number * CHART_SIZE + rank)
            if entry is None:
                show, season, title_key = titles[number]
                entry = made[number * CHART_SIZE + rank] = Entry(rank, show, title_key, season)
            entries.append(entry)
        try:
            return Snapshot(key, tuple(entries))
        except ChartError as exc:
            lines = [self._lines[s] for s in range(base, base + CHART_SIZE) if slots[s] >= 0]
            raise InputError(f"line {min(lines, default=1)}: {exc}") from None


class _Column:
    """One figure of every slot: an array while the numbers fit in one (a list after), None missing."""

    def __init__(self, floats: bool, size: int) -> None:
        self.missing: float = math.nan if floats else -1  # figures are never negative
        self.values: array[Any] | list[Any] = array("d" if floats else "q", [self.missing]) * size

    def grow(self, size: int) -> None:
        if isinstance(self.values, list):
            self.values.extend([None] * size)
        else:
            self.values.extend(array(self.values.typecode, [self.missing]) * size)

    def set(self, slot: int, value: float) -> None:
        try:
            self.values[slot] = value
        except (OverflowError, TypeError):  # a number too big for the array: keep them as objects
            self.values = [self.get(s) for s in range(len(self.values))]
            self.values[slot] = value

    def get(self, slot: int) -> Any:
        value = self.values[slot]
        if value is None or value == -1 or value != value:  # NaN: the float columns' missing mark
            return None
        return value


def _series_order(key: ChartKey) -> tuple[str, str, str, str]:
    return (key.service, key.region, key.category, key.period)
