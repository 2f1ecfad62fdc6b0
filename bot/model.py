"""The shared vocabulary: charts, entries, snapshots, milestones and title identity. No I/O."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ftfy

DAY, WEEK, ALL_TIME = "day", "week", "all-time"
# Periods that follow one another: a step apart, so they make runs and streaks (stats.py, milestones.py).
PERIODS: dict[str, timedelta] = {DAY: timedelta(days=1), WEEK: timedelta(days=7)}
# Every period a chart may have. `all-time` (Netflix's most-popular lists) has no step: a version of
# such a list is dated by when it was read, and the next version is not "the next period".
PERIOD_NAMES = (*PERIODS, ALL_TIME)
CATEGORIES = (
    "tv",
    "movies",
    "overall",
    "tv-english",
    "tv-non-english",
    "movies-english",
    "movies-non-english",
)
WORLD = "world"
CHART_SIZE = 10


class InputError(ValueError):
    """Bad input from a user or a file. The message is meant to be shown as it is."""


class ChartError(InputError):
    """A chart that must not be stored: wrong size, repeated or impossible ranks, no rows."""


# --- title identity -----------------------------------------------------------------------------

_QUOTES = dict.fromkeys(map(ord, "‘’‚‛′`´ʼ"), "'") | dict.fromkeys(map(ord, "“”„‟″«»"), '"')
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−﹘﹣"), "-")
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[\W_]+")  # any run of non-word characters: one space in a key
_SEASON_SUFFIX = re.compile(
    r"^(?P<show>.+?)\s*[:\-–—]\s*(?P<season>(?:season|series|part|volume|vol\.|book|chapter|collection)"
    r"\s+[\w.]+|limited series|miniseries)$",
    re.IGNORECASE,
)


def clean_title(text: str) -> str:
    """Repair mojibake (text decoded twice), normalise width and spacing, keep the spelling."""
    text = ftfy.fix_text(text)
    return _SPACES.sub(" ", text).strip()


def title_key(text: str) -> str:
    """The identity of a title: one key despite case, quotes, dashes, punctuation, width, accents and
    mojibake ("Munich – The Edge of War" and "Munich: The Edge of War" are one film)."""
    text = unicodedata.normalize("NFKD", clean_title(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.translate(_QUOTES).translate(_DASHES).casefold().replace("'", "")
    return _PUNCTUATION.sub(" ", text).strip()


def split_season(title: str, season: str | None = None) -> tuple[str, str | None]:
    """Keep the season apart from the show: ("All of Us Are Dead", "Season 1").

    Netflix writes seasons as "Show: Season 1" in its own column; other sources put them in the title.
    """
    title = clean_title(title)
    if season is not None:
        season = clean_title(season)
        if season.upper() in ("", "N/A", "NA", "NONE", "NULL"):
            season = None
    if season:
        prefix = title_key(title)
        if title_key(season).startswith(prefix) and len(season) > len(title):
            season = season[len(title) :].lstrip(" :-–—") or season
        return title, season
    match = _SEASON_SUFFIX.match(title)
    if match:
        return match["show"].strip(), match["season"].strip()
    return title, None


@functools.lru_cache(maxsize=65536)
def identify(title: str, season: str | None = None) -> tuple[str, str | None, str]:
    """(show, season, title_key): cached, as charts repeat the same titles day after day."""
    show, season = split_season(title, season)
    if not show:
        raise InputError("empty title")
    key = title_key(show)
    if not key:
        raise InputError(f"title {title!r} has no letters or digits")
    return show, season, key


# --- charts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartKey:
    """One chart on one date. `series` is the same chart across dates."""

    source: str
    service: str
    region: str
    category: str
    period: str
    date: date

    @property
    def series(self) -> tuple[str, str, str, str]:
        return (self.service, self.region, self.category, self.period)

    @property
    def step(self) -> timedelta:
        """The time between two periods of this chart; an `all-time` list has none (ValueError)."""
        try:
            return PERIODS[self.period]
        except KeyError:
            raise ValueError(f"{self.label()}: period {self.period!r} has no step between periods") from None

    def label(self) -> str:
        return f"{self.service}/{self.region}/{self.category}/{self.period}/{self.date.isoformat()}"


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    title: str
    title_key: str
    season: str | None = None
    points: float | None = None
    hours: int | None = None
    views: int | None = None
    runtime: float | None = None
    weeks_reported: int | None = None
    window_days: int | None = None  # the figures' window: an all-time list counts 28 or 91 days

    @classmethod
    def make(cls, rank: int, title: str, season: str | None = None, **figures: Any) -> Entry:
        """An entry whose title is cleaned, split from its season and keyed."""
        show, season, key = identify(title, season)
        return cls(rank=rank, title=show, title_key=key, season=season, **figures)


@dataclass(frozen=True, slots=True)
class Snapshot:
    key: ChartKey
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        validate_entries(self.key, self.entries)

    @property
    def complete(self) -> bool:
        """A full Top 10: only a complete chart may say that a title left it."""
        return [e.rank for e in self.entries] == list(range(1, CHART_SIZE + 1))

    def best_ranks(self, identity: Mapping[str, str] | None = None) -> dict[str, int]:
        """title_key -> best rank in this chart, best first (two seasons of one show may both chart).
        `identity` names titles by other keys (the ingest's: each title's stored key)."""
        best: dict[str, int] = {}
        for entry in self.entries:  # in rank order: a title's first entry is its best
            key = entry.title_key if identity is None else identity.get(entry.title_key, entry.title_key)
            if key not in best:
                best[key] = entry.rank
        return best


def validate_entries(key: ChartKey, entries: tuple[Entry, ...]) -> None:
    if key.period not in PERIOD_NAMES:
        raise ChartError(f"{key.label()}: period must be one of {', '.join(PERIOD_NAMES)}")
    if not entries:
        raise ChartError(f"{key.label()}: the chart has no entries")
    seen: set[int] = set()
    for entry in entries:
        if not 1 <= entry.rank <= CHART_SIZE:
            raise ChartError(f"{key.label()}: rank {entry.rank} is outside 1..{CHART_SIZE}")
        if entry.rank in seen:
            raise ChartError(f"{key.label()}: rank {entry.rank} is repeated")
        seen.add(entry.rank)
    if any(a.rank > b.rank for a, b in itertools.pairwise(entries)):
        raise ChartError(f"{key.label()}: entries must be in rank order")


def make_snapshot(key: ChartKey, entries: list[Entry]) -> Snapshot:
    return Snapshot(key, tuple(sorted(entries, key=lambda e: e.rank)))


def chart_digest(snapshot: Snapshot) -> str:
    """A chart's content: an identical chart stored again changes nothing. (An all-time list's window
    counts too; charts without one keep the digest they always had.)"""
    rows: list[tuple] = [
        (e.rank, e.title_key, e.title, e.season, e.points, e.hours, e.views, e.runtime, e.weeks_reported)
        for e in snapshot.entries
    ]
    if any(e.window_days is not None for e in snapshot.entries):
        rows = [(*row, e.window_days) for row, e in zip(rows, snapshot.entries, strict=True)]
    return hashlib.blake2b(repr(rows).encode(), digest_size=16).hexdigest()


# --- milestones ---------------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen (treat as immutable): about one is built per entry ingested
class Milestone:
    """Something fans cheer about. `key` is stable across runs: the same news has the same key."""

    kind: str
    chart: ChartKey
    title_key: str
    title: str
    value: int | None
    previous: int | None
    key: str
    context: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""  # what tells apart two milestones of one kind, title and chart (e.g. which record)

    def as_json(self, text: str) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "title_key": self.title_key,
            "service": self.chart.service,
            "region": self.chart.region,
            "category": self.chart.category,
            "period": self.chart.period,
            "date": self.chart.date.isoformat(),
            "value": self.value,
            "previous": self.previous,
            "key": self.key,
            "text": text,
        }


def milestone_key(kind: str, chart: ChartKey, title_key: str, detail: str = "") -> str:
    """Date first, so that keys sort by date."""
    return join_key(chart.date.isoformat(), kind, series_text(chart), title_key, detail)


def series_text(chart: ChartKey) -> str:
    """The series part of a milestone key ("netflix|us|tv|day")."""
    return "|".join(chart.series)


def join_key(day: str, kind: str, series: str, title_key: str, detail: str = "") -> str:
    """`milestone_key` from parts a caller keying many milestones of one chart computes once."""
    key = f"{day}|{kind}|{series}|{title_key}"
    return f"{key}|{detail}" if detail else key


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EARLIEST_DATE = date(2000, 1, 1)
"""No streaming chart is older: an earlier date is a typo (and year 1 overflows date arithmetic)."""
MAX_DAYS_AHEAD = 7
"""How far after today (UTC) a chart date may be: time zones and early publishing, never more. A chart
dated years ahead would stay the newest of its series and mute it for good."""


def utc_today() -> date:
    return datetime.now(UTC).date()


def check_date(day: date, *, today: date | None = None) -> date:
    """`day` if it is between 2000-01-01 and 7 days after `today` (default: today in UTC)."""
    if day < EARLIEST_DATE:
        raise InputError(f"{day.isoformat()} is before {EARLIEST_DATE.isoformat()}: no chart is that old")
    today = today or utc_today()
    if day > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InputError(
            f"{day.isoformat()} is more than {MAX_DAYS_AHEAD} days in the future (today is {today.isoformat()})"
        )
    return day


def parse_date(text: str, *, today: date | None = None) -> date:
    """YYYY-MM-DD only (Python's fromisoformat would also take 20220206 and 2022-W05-7), from
    2000-01-01 to 7 days after `today` (default: today in UTC); InputError otherwise."""
    try:
        if not _ISO_DATE.fullmatch(text.strip()):
            raise ValueError(text)
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None
    return check_date(day, today=today)


def full_title(title: str, season: str | None) -> str:
    """A show with its season, as Netflix writes it: "Bridgerton: Season 2", "Stranger Things 4"."""
    if not season:
        return title
    return f"{title} {season}" if season[0].isdigit() else f"{title}: {season}"
