"""Pages of a long answer: what a page button carries, which page comes next, how many there are.

Plain values and functions, no Discord and no store: the cogs read the store, call these, render with
bot.render and attach the buttons of bot.buttons.

A button's ``custom_id`` carries everything needed to show the page again, even after a restart:
``cb:<book>:<owner>:<action>:<fields…>``, where the book names the command (``t`` /top, ``m``
/milestones, ``w`` /watch list), the owner is the user who ran it (only they may press), and the action
is what the button does to the page written after it (``p`` previous, ``n`` next, ``k`` another kind of
chart). Discord allows 100 characters; every id made here fits (checked when it is made).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeVar

from bot.i18n import ENGLISH, Messages
from bot.model import ALL_TIME, CATEGORIES, InputError
from bot.views import Series

T = TypeVar("T")

PREFIX = "cb"
MAX_CUSTOM_ID = 100
TOP, MILESTONES, WATCH_LIST = "t", "m", "w"
PREVIOUS, NEXT, KIND = "p", "n", "k"
COMMANDS = {TOP: "top", MILESTONES: "milestones", WATCH_LIST: "watch list"}  # the command of each book

PAGE_SIZE = 10  # milestone lines on one page
LIST_PAGE_SIZE = 10  # watches on one page of /watch list
PAGE_TIMEOUT = 600.0  # seconds without a press before a page's buttons go away
SWITCHABLE_PERIODS = ("week", "day")  # the periods whose charts the kind buttons offer, in this order
_KIND_ORDER = {c: i for i, c in enumerate(CATEGORIES)}
KINDS = ("tv", "movies", "overall")  # the kinds of chart a button switches to (`kind.<kind>`)

# --- what the user reads (in the presser's language: `tr`) ------------------------------------------


def previous_label(tr: Messages = ENGLISH) -> str:
    return tr.gettext("button.previous")


def next_label(tr: Messages = ENGLISH) -> str:
    return tr.gettext("button.next")


PREVIOUS_LABEL = previous_label()
NEXT_LABEL = next_label()


def not_yours(owner: int, book: str, tr: Messages = ENGLISH) -> str:
    return tr.gettext("pages.not_yours", owner=owner, command=tr.command(COMMANDS[book]))


def expired(book: str, tr: Messages = ENGLISH) -> str:
    if book not in COMMANDS:
        return tr.gettext("pages.expired.unknown")
    return tr.gettext("pages.expired", command=tr.command(COMMANDS[book]))


def first_chart(chart: str, tr: Messages = ENGLISH) -> str:
    return tr.gettext("pages.first_chart", chart=chart)


def last_chart(chart: str, tr: Messages = ENGLISH) -> str:
    return tr.gettext("pages.last_chart", chart=chart)


def no_chart(chart: str, tr: Messages = ENGLISH) -> str:
    return tr.gettext("pages.no_chart", chart=chart)


class PageExpired(Exception):
    """A button whose page cannot be rebuilt (an id from an older chartbot, a title no longer stored)."""


# --- custom ids ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Press:
    """What a button's custom_id says: whose page, what to do, and the page it is pressed on."""

    book: str
    owner: int
    action: str
    fields: tuple[str, ...]


def button_id(book: str, owner: int, action: str, *fields: str) -> str:
    """``cb:<book>:<owner>:<action>:<fields…>``; a ValueError if Discord would refuse it (> 100)."""
    if any(":" in f for f in fields):
        raise ValueError(f"a field of a button id may not hold ':': {fields!r}")
    text = ":".join((PREFIX, book, str(owner), action, *fields))
    if len(text) > MAX_CUSTOM_ID:
        raise ValueError(f"button id of {len(text)} characters > {MAX_CUSTOM_ID}: {text!r}")
    return text


def parse_button_id(custom_id: str) -> Press:
    """The parts of a chartbot button id; PageExpired for one this chartbot cannot read."""
    parts = custom_id.split(":")
    if len(parts) < 4 or parts[0] != PREFIX or parts[1] not in COMMANDS or not parts[2].isdigit():
        raise PageExpired(custom_id)
    return Press(parts[1], int(parts[2]), parts[3], tuple(parts[4:]))


# --- /top: a chart, period by period, kind by kind -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartPage:
    """One page of /top: a kind of chart (as asked: `tv`, `movies`, `overall`, or one global list) of a
    service in a region and period, on one date."""

    service: str
    region: str
    kind: str
    period: str
    day: date


@dataclass(frozen=True, slots=True)
class ChartKind:
    """A kind of chart a region has stored: a category (the TV or film global lists at the world level
    count as one kind) in one period."""

    kind: str
    period: str


def chart_button(owner: int, action: str, page: ChartPage) -> str:
    return button_id(
        TOP, owner, action, page.service, page.region, page.kind, page.period, f"{page.day:%Y%m%d}"
    )


def parse_chart(press: Press) -> ChartPage:
    """The page a /top button is pressed on (for KIND: the kind it switches to, on the current date)."""
    try:
        service, region, kind, period, day = press.fields
        return ChartPage(service, region, kind, period, datetime.strptime(day, "%Y%m%d").date())
    except ValueError:
        raise PageExpired(":".join(press.fields)) from None


def kind_of(category: str) -> str:
    """The kind a category is switched as: `tv-english` and `tv-non-english` are `tv`."""
    return category.split("-", 1)[0] if category not in KINDS else category


def chart_kinds(available: Iterable[Series], service: str, period: str | None = None) -> list[ChartKind]:
    """The kinds of chart of a service in a region, in button order (weekly before daily; TV, films,
    overall). On an all-time list (`period`), the kinds of all-time list instead."""
    periods = (ALL_TIME,) if period == ALL_TIME else SWITCHABLE_PERIODS
    kinds = {
        ChartKind(kind_of(s.category), s.period)
        for s in available
        if s.service == service and s.period in periods
    }
    return sorted(kinds, key=lambda k: (periods.index(k.period), _KIND_ORDER.get(k.kind, 99), k.kind))


def kind_label(kind: ChartKind, kinds: Sequence[ChartKind], tr: Messages = ENGLISH) -> str:
    """ "TV", "Films"; with the period ("TV · daily") when the region has charts of several periods."""
    key = f"kind.{kind.kind}"
    label = tr.gettext(key) if kind.kind in KINDS else kind.kind
    if len({k.period for k in kinds}) > 1:
        label += f" · {_period_word(kind.period, tr)}"
    return label


def _period_word(period: str, tr: Messages) -> str:
    if period in (*SWITCHABLE_PERIODS, ALL_TIME):
        key = f"kind.period.{period}"
        return tr.gettext(key)
    return period


def page_series(available: Iterable[Series], page: ChartPage) -> list[Series]:
    """The series a page shows: its kind exactly, else every list of that kind (`tv` at the world level:
    both TV global lists), of its service and period, in category order."""
    same = [s for s in available if s.service == page.service and s.period == page.period]
    exact = [s for s in same if s.category == page.kind]
    chosen = exact or [s for s in same if s.category.startswith(page.kind + "-")]
    return sorted(chosen, key=lambda s: _KIND_ORDER.get(s.category, 99))


def merged_dates(per_series: Iterable[Sequence[date]]) -> list[date]:
    """Every date any of the series has a chart on, oldest first."""
    return sorted({d for dates in per_series for d in dates})


def step(dates: Sequence[date], day: date, delta: int, chart: str, tr: Messages = ENGLISH) -> date:
    """The stored date before (`delta` -1) or after (+1) `day`; InputError at either end."""
    if delta < 0:
        i = bisect.bisect_left(dates, day)
        if i == 0:
            raise InputError(first_chart(chart, tr))
        return dates[i - 1]
    i = bisect.bisect_right(dates, day)
    if i >= len(dates):
        raise InputError(last_chart(chart, tr))
    return dates[i]


def nearest(dates: Sequence[date], day: date, chart: str, tr: Messages = ENGLISH) -> date:
    """The chart current on `day` (the newest date on or before it), else the oldest stored."""
    if not dates:
        raise InputError(no_chart(chart, tr))
    i = bisect.bisect_right(dates, day)
    return dates[i - 1] if i else dates[0]


def position(dates: Sequence[date], day: date) -> tuple[int, int]:
    """(page number from 1, pages): where `day` stands among the stored dates."""
    return bisect.bisect_left(dates, day) + 1, len(dates)


# --- numbered pages: /milestones, /watch list -----------------------------------------------------------


def page_count(items: int, size: int = PAGE_SIZE) -> int:
    """Pages needed for `items` (an empty list still has one page, saying it is empty)."""
    return max(1, math.ceil(items / size))


def clamp_page(page: int, pages: int) -> int:
    """A page that exists: one past the end (the list shrank since the button was made) is the last."""
    return min(max(page, 0), pages - 1)


def turn(page: int, action: str, pages: int, tr: Messages = ENGLISH) -> int:
    """The page a previous/next press leads to; InputError before the first or after the last."""
    target = page - 1 if action == PREVIOUS else page + 1
    if target < 0:
        raise InputError(tr.gettext("pages.first"))
    if target >= pages:
        raise InputError(tr.gettext("pages.last"))
    return target


def page_slice(items: Sequence[T], page: int, size: int = PAGE_SIZE) -> list[T]:
    return list(items[page * size : (page + 1) * size])


def pack(lines: Sequence[str], budget: int, size: int = LIST_PAGE_SIZE) -> list[list[str]]:
    """Lines cut into pages of at most `size` lines and `budget` characters (joined by newlines); a line
    longer than the budget has a page of its own (the renderer clips it)."""
    pages: list[list[str]] = []
    current: list[str] = []
    used = 0
    for line in lines:
        cost = len(line) + (1 if current else 0)
        if current and (len(current) >= size or used + cost > budget):
            pages.append(current)
            current, used, cost = [], 0, len(line)
        current.append(line)
        used += cost
    return [*pages, current] if current or not pages else pages


def whole_dates(items: Sequence[T], limit: int | None, day_of: Callable[[T], date]) -> list[T]:
    """Items read newest first up to `limit`: when the read was cut short, the oldest date read may be
    cut too (its news would fold into lines naming too few countries), so it is left out, unless it is
    the only one."""
    if limit is None or len(items) < limit or not items:
        return list(items)
    oldest = day_of(items[-1])
    kept = [i for i in items if day_of(i) != oldest]
    return kept or list(items)


def title_ref(title_key: str | None) -> str:
    """A short, fixed-size stand-in for a title key in a button id (``""``: every title)."""
    if title_key is None:
        return ""
    return hashlib.blake2b(title_key.encode(), digest_size=8).hexdigest()


def milestones_button(owner: int, action: str, page: int, title: str | None) -> str:
    return button_id(MILESTONES, owner, action, str(page), title_ref(title))


def parse_numbered(press: Press) -> tuple[int, tuple[str, ...]]:
    """(page, the other fields) of a /milestones or /watch list button."""
    if not press.fields or not press.fields[0].isdigit() or press.action not in (PREVIOUS, NEXT):
        raise PageExpired(":".join(press.fields))
    return int(press.fields[0]), press.fields[1:]


def list_button(owner: int, action: str, page: int) -> str:
    return button_id(WATCH_LIST, owner, action, str(page))


def with_day(page: ChartPage, day: date) -> ChartPage:
    return replace(page, day=day)
