"""The milestone detector: (previous state, new chart) -> milestones. Pure: no I/O, no Discord.

The store hands in what it knows before period P (running stats, the last chart before P, records) and
what P holds; the detector says what fans would cheer about. Transitions (entered, reached, lost, left)
compare with the last chart stored, even across a gap; runs count only consecutive periods, so a gap
breaks streaks. Keys are stable, so detecting the same period
twice (a re-ingest, a revision) yields the same keys and the outbox never holds a milestone twice.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from operator import itemgetter

from bot.model import ChartKey, Milestone, Snapshot, join_key, series_text, title_key
from bot.stats import TitleStats

KINDS = (
    "entered_top10",
    "reached_no1",
    "no1_streak",
    "lost_no1",
    "new_peak",
    "top10_run",
    "left_top10",
    "no1_countries",
    "top10_countries",
    "record",
    "record_near",
    "entered_all_time",
    "all_time_no1",
)
TOP10_RUN_THRESHOLDS = {"day": (7, 14, 28, 50, 100, 200, 365), "week": (2, 4, 8, 13, 26, 52)}
NO1_COUNTRIES_FLOOR = 5  # fewer countries than this at No. 1 is not news, even as a personal best
TOP10_COUNTRIES_THRESHOLDS = (25, 50, 75, 90)
MIN_REPORTING = 10  # aggregates over fewer regions than this are not "countries" news
# a run record must beat a real run: in a young history, "longest No. 1 run" of 2 days is no news
MIN_RECORD_RUN = {"day": 7, "week": 3}
# the thresholds as sets: every title of every chart is checked against them
_RUN_MILESTONES = {period: frozenset(runs) for period, runs in TOP10_RUN_THRESHOLDS.items()}


TitleKey = str  # titles are named by their keys (bot.model.title_key); `titles` maps them to display titles
_BY_RANK = itemgetter(1)  # sorts (title, rank) items; in C, cheaper than a Python key function


# Record and ChartChange are built once per chart detected: not frozen (treat them as immutable), as a
# frozen dataclass is four times dearer to build.
@dataclass(slots=True)
class Record:
    """The best so far in a series or group of charts, and who holds it."""

    value: int
    holder: TitleKey
    holder_title: str
    date: date | None  # when it was set (for a run: its last period)


@dataclass(slots=True)
class ChartChange:
    """What the detector needs to judge period P of one chart, keyed by title key."""

    chart: ChartKey
    ranks: Mapping[TitleKey, int]  # best rank at P
    previous_ranks: Mapping[TitleKey, int] | None  # the last chart before P (P-1, or older across a gap)
    before: Mapping[TitleKey, TitleStats]  # stats before P (absent: never charted); may hold others
    after: Mapping[TitleKey, TitleStats]  # stats after P, for every title at P
    titles: Mapping[TitleKey, str]  # display titles of every title at P and P-1 (may hold others)
    complete: bool = True  # a full, valid chart: only then may a title be said to have left
    run_record: Record | None = None  # longest No. 1 run in this series before P


@dataclass(frozen=True, slots=True)
class CountryChange:
    """Period P of a group of country charts (one service, category and period)."""

    chart: ChartKey  # region "world": the news is about the world, across countries
    counts: Mapping[TitleKey, tuple[int, int]]  # (countries at No. 1, countries in top 10)
    previous: Mapping[TitleKey, tuple[int, int]]  # the same at P-1
    best_before: Mapping[TitleKey, int]  # most countries at No. 1 before P (titles at the floor at P)
    reporting: int
    previous_reporting: int
    titles: Mapping[TitleKey, str]
    record: Record | None = None  # most countries at No. 1 in one period, before P


class _Emitter:
    """Builds the milestones of one chart; its date and series go into the keys once, not per key."""

    __slots__ = ("chart", "day", "series", "titles")

    def __init__(self, chart: ChartKey, titles: Mapping[TitleKey, str]) -> None:
        self.chart = chart
        self.day = chart.date.isoformat()
        self.series = series_text(chart)
        self.titles = titles

    def milestone(
        self,
        kind: str,
        title: TitleKey,
        value: int | None,
        previous: int | None,
        detail: str = "",
        **context: object,
    ) -> Milestone:
        """A method, not `__call__`: a bound method is called at half the cost of an instance."""
        key = join_key(self.day, kind, self.series, title, detail)
        return Milestone(kind, self.chart, title, self.titles[title], value, previous, key, context, detail)


def detect_chart(change: ChartChange) -> list[Milestone]:
    """Milestones of one chart at P, against P-1 and the titles' history in this chart."""
    found: list[Milestone] = []
    emitter = _Emitter(change.chart, change.titles)
    emit = emitter.milestone
    ranks, prev, before_p, after_p = change.ranks, change.previous_ranks, change.before, change.after
    thresholds = _RUN_MILESTONES[change.chart.period]
    run_record = change.run_record
    record_run = run_record.value if run_record is not None else math.inf
    for title, rank in sorted(ranks.items(), key=_BY_RANK):
        before, after = before_p.get(title), after_p[title]
        if prev is not None:
            last = prev.get(title)
            # most titles stayed in the chart below No. 1: nothing to compare, so no call for them
            if last is None or rank == 1 or last == 1:
                _transitions(change, emitter, found, title, rank, last, before, after)
        if before is not None and 1 < rank < before.peak:
            found.append(emit("new_peak", title, rank, before.peak))
        if after.periods_in_top10 in thresholds:
            found.append(emit("top10_run", title, after.periods_in_top10, None))
        if after.no1_run > record_run:  # rarely: a run beyond the record
            record = _run_record(change, emitter, title, before, after)
            if record:
                found.append(record)
        elif rank == 1 and after.no1_run == record_run - 1:  # rarely: one period short of the record
            near = _record_near(change, emitter, title)
            if near:
                found.append(near)
    if prev is not None:
        # the few titles that left, in their order at P-1 (a stable sort, as over the whole chart)
        for title in sorted((t for t in prev if t not in ranks), key=prev.__getitem__):
            before, last_rank = before_p.get(title), prev[title]
            if last_rank == 1:
                run = before.no1_run if before is not None else 1
                found.append(_lost_no1(change, emitter, title, None, run))
            if change.complete:
                periods = before.periods_in_top10 if before is not None else None
                found.append(emit("left_top10", title, None, last_rank, periods=periods))
    return found


def _transitions(
    change: ChartChange,
    emitter: _Emitter,
    found: list[Milestone],
    title: TitleKey,
    rank: int,
    last: int | None,
    before: TitleStats | None,
    after: TitleStats,
) -> None:
    """Kinds that compare P with P-1 (`last`, the rank there): entered, reached, streak, lost."""
    if last is None:
        previous = before.last_rank if before else None
        found.append(emitter.milestone("entered_top10", title, rank, previous, reentry=before is not None))
    if rank == 1 and last != 1:
        first_time = before is None or before.periods_at_no1 == 0
        found.append(emitter.milestone("reached_no1", title, 1, last, first_time=first_time))
    elif rank == 1:
        if after.no1_run > 1:  # after a gap the run starts again: No. 1 both sides is no streak yet
            found.append(emitter.milestone("no1_streak", title, after.no1_run, after.no1_run - 1))
    elif last == 1:
        run = before.no1_run if before else 1
        found.append(_lost_no1(change, emitter, title, rank, run))


def _lost_no1(
    change: ChartChange, emitter: _Emitter, title: TitleKey, rank: int | None, run: int
) -> Milestone:
    """Names who took No. 1: looked up here, as few charts lose their No. 1 on a given day."""
    new_no1 = next((t for t, r in change.ranks.items() if r == 1), None)
    new_title = change.titles.get(new_no1) if new_no1 is not None else None
    return emitter.milestone("lost_no1", title, rank, 1, run=run, new_no1=new_title)


def _run_record(
    change: ChartChange, emitter: _Emitter, title: TitleKey, before: TitleStats | None, after: TitleStats
) -> Milestone | None:
    """The longest No. 1 run in this chart's history, beaten just now (not merely extended)."""
    record, run = change.run_record, after.no1_run
    if record is None or record.value < MIN_RECORD_RUN[change.chart.period] or run <= record.value:
        return None
    extending_own_record = record.holder == title and before is not None and record.date == before.last_date
    if extending_own_record:
        return None
    return emitter.milestone(
        "record", title, run, record.value, "no1_run", record="no1_run", holder=record.holder_title
    )


def _record_near(change: ChartChange, emitter: _Emitter, title: TitleKey) -> Milestone | None:
    """A No. 1 run one period short of tying the chart's longest: once per run, as a run passes
    `record - 1` only once. The holder's own run never gets here while it is the record (the record
    before P is then that run up to P-1, one *less* than the run at P); a new run of the holder that
    nears its old record does, and says so (`holder` is its own title)."""
    record = change.run_record
    if record is None or record.value < MIN_RECORD_RUN[change.chart.period]:
        return None
    return emitter.milestone(
        "record_near",
        title,
        1,
        record.value,
        "no1_run",
        record="no1_run",
        run=record.value - 1,
        holder=record.holder_title,
        holder_date=record.date.isoformat() if record.date else None,
    )


def detect_countries(change: CountryChange) -> list[Milestone]:
    """Aggregate milestones over the country charts of one period."""
    if change.reporting < MIN_REPORTING:
        return []
    found: list[Milestone] = []
    emit = _Emitter(change.chart, change.titles).milestone
    reporting = change.reporting
    # ties go to the greater title key, and titles are worked in title key order: the same news and
    # order whatever order the store gave
    leader = max(change.counts.items(), key=lambda item: (item[1][0], item[0]), default=None)
    for title, (no1, top10) in sorted(change.counts.items()):
        best = change.best_before.get(title, 0)
        if no1 >= NO1_COUNTRIES_FLOOR and no1 > best:
            found.append(emit("no1_countries", title, no1, best or None, reporting=reporting))
        _, prev_top10 = change.previous.get(title, (0, 0))
        crossed = [t for t in TOP10_COUNTRIES_THRESHOLDS if prev_top10 < t <= top10]
        everywhere = top10 == reporting and prev_top10 < change.previous_reporting
        if crossed or everywhere:
            found.append(
                emit(
                    "top10_countries",
                    title,
                    top10,
                    prev_top10 or None,
                    reporting=reporting,
                    everywhere=everywhere,
                )
            )
    record = change.record
    if leader and record and record.value >= 1 and leader[1][0] > record.value:
        title, (no1, _) = leader
        found.append(
            emit(
                "record",
                title,
                no1,
                record.value,
                "no1_countries",
                record="no1_countries",
                holder=record.holder_title,
                holder_date=record.date.isoformat() if record.date else None,
                reporting=reporting,
            )
        )
    return found


# --- Netflix's all-time lists -----------------------------------------------------------------------

TitleRef = Hashable  # names one place-holder of a list across versions: a show *and* its season


@dataclass(frozen=True, slots=True)
class Listing:
    """One title on one version of an all-time list, with its figures and their window."""

    rank: int
    title_key: str
    title: str
    season: str | None
    hours: int | None
    views: int | None
    window_days: int | None  # 28 (hours, until 2023-05) or 91 (views, from 2023-07-26)


@dataclass(frozen=True, slots=True)
class AllTimeChange:
    """A new version of one all-time list (one category), against the version stored before it."""

    chart: ChartKey  # period `all-time`, dated by when the list was read
    listed: Mapping[TitleRef, Listing]
    previous: Mapping[TitleRef, Listing] | None  # the last version before; None: the first ever seen


def listings(snapshot: Snapshot) -> dict[tuple[str, str], Listing]:
    """A version of an all-time list keyed by (title key, season key): one show may hold several
    places (Money Heist Parts 3, 4 and 5), and each is its own title on the list."""
    found: dict[tuple[str, str], Listing] = {}
    for e in snapshot.entries:  # in rank order: a repeated place-holder keeps its better rank
        ref = (e.title_key, title_key(e.season) if e.season else "")
        if ref not in found:
            found[ref] = Listing(e.rank, e.title_key, e.title, e.season, e.hours, e.views, e.window_days)
    return found


def rebased(change: AllTimeChange) -> bool:
    """Did Netflix change the yardstick between the two versions (the window of days counted, or
    hours to views, as on 2023-07-26: 28-day hours became 91-day views, ranked by views)?"""
    return change.previous is not None and _yardstick(change.previous) != _yardstick(change.listed)


def _yardstick(listed: Mapping[TitleRef, Listing]) -> tuple[frozenset[int | None], bool]:
    """What a version measures: the windows of its figures, and whether it counts views."""
    windows = frozenset(item.window_days for item in listed.values())
    return windows, any(item.views is not None for item in listed.values())


def detect_all_time(change: AllTimeChange) -> list[Milestone]:
    """`entered_all_time` (a title joins the list; value: its rank) and `all_time_no1` (a new No. 1:
    the most watched ever in the list; context: the title it passed and both figures).

    The first version ever seen is the baseline and emits nothing. So is a re-based version (see
    `rebased`): across a change of yardstick the two versions measure different things, so neither
    "joined" nor "passed" can be told from the change of measure. On 2023-07-26 ten titles appeared
    that the 28-day list did not hold (We Can Be Heroes, The Queen's Gambit, ... — old titles that
    rank higher by 91-day views) and Wednesday replaced Stranger Things 4 at No. 1 of TV (English)
    only because the ranking moved from hours to views: Netflix restated its lists, nothing happened.
    The cost: a title that truly joins in the very version that re-bases the list is not announced.
    """
    previous = change.previous
    if previous is None or rebased(change):
        return []
    both = (*previous.values(), *change.listed.values())
    emit = _Emitter(change.chart, {item.title_key: item.title for item in both}).milestone
    found: list[Milestone] = []
    new_no1, old_no1 = _no1(change.listed), _no1(previous)
    for ref, item in sorted(change.listed.items(), key=lambda pair: pair[1].rank):
        measure, figure = _figure(item)
        figures = {
            "season": item.season,
            "measure": measure,
            "figure": figure,
            "window_days": item.window_days,
        }
        if ref not in previous:
            found.append(
                emit("entered_all_time", item.title_key, item.rank, None, _season_key(item), **figures)
            )
        if ref == new_no1 and ref != old_no1:
            passed = _passed(change, old_no1)
            last = previous.get(ref)
            found.append(
                emit(
                    "all_time_no1",
                    item.title_key,
                    1,
                    last.rank if last else None,
                    _season_key(item),
                    **figures,
                    passed=passed.title if passed else None,
                    passed_season=passed.season if passed else None,
                    passed_figure=_figure(passed, measure)[1] if passed else None,
                )
            )
    return found


def _passed(change: AllTimeChange, old_no1: TitleRef | None) -> Listing | None:
    """The No. 1 before, with its figures as the new version gives them (as the old one did if it left)."""
    if old_no1 is None or change.previous is None:
        return None
    return change.listed.get(old_no1) or change.previous.get(old_no1)


def _no1(listed: Mapping[TitleRef, Listing]) -> TitleRef | None:
    return next((ref for ref, item in listed.items() if item.rank == 1), None)


def _season_key(item: Listing) -> str:
    return title_key(item.season) if item.season else ""


def _figure(item: Listing, measure: str | None = None) -> tuple[str, int | None]:
    """The figure a list is ranked by: views when the list has them (since 2023), else hours."""
    measure = measure or ("views" if item.views is not None else "hours")
    return measure, item.views if measure == "views" else item.hours
