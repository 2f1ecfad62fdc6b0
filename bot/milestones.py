"""The milestone detector: (previous state, new chart) -> milestones. Pure: no I/O, no Discord.

The store hands in what it knows before period P (running stats, the last chart before P, records) and
what P holds; the detector says what fans would cheer about. Transitions (entered, reached, lost, left)
compare with the last chart stored, even across a gap; runs count only consecutive periods, so a gap
breaks streaks. Keys are stable, so detecting the same period
twice (a re-ingest, a revision) yields the same keys and the outbox never holds a milestone twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from bot.model import ChartKey, Milestone, milestone_key
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
)
TOP10_RUN_THRESHOLDS = {"day": (7, 14, 28, 50, 100, 200, 365), "week": (2, 4, 8, 13, 26, 52)}
NO1_COUNTRIES_FLOOR = 5  # fewer countries than this at No. 1 is not news, even as a personal best
TOP10_COUNTRIES_THRESHOLDS = (25, 50, 75, 90)
MIN_REPORTING = 10  # aggregates over fewer regions than this are not "countries" news
# a run record must beat a real run: in a young history, "longest No. 1 run" of 2 days is no news
MIN_RECORD_RUN = {"day": 7, "week": 3}


@dataclass(frozen=True, slots=True)
class Record:
    """The best so far in a series or group of charts, and who holds it."""

    value: int
    holder_key: str
    holder_title: str
    date: date | None  # when it was set (for a run: its last period)


@dataclass(frozen=True, slots=True)
class ChartChange:
    """What the detector needs to judge period P of one chart."""

    chart: ChartKey
    ranks: Mapping[str, int]  # title_key -> best rank at P
    titles: Mapping[str, str]  # title_key -> display title, for every title at P and P-1
    previous_ranks: Mapping[str, int] | None  # the last chart before P (P-1, or older across a gap)
    before: Mapping[str, TitleStats]  # stats before P (a title absent here never charted)
    after: Mapping[str, TitleStats]  # stats after P, for every title at P
    complete: bool = True  # a full, valid chart: only then may a title be said to have left
    run_record: Record | None = None  # longest No. 1 run in this series before P


@dataclass(frozen=True, slots=True)
class CountryChange:
    """Period P of a group of country charts (one service, category and period)."""

    chart: ChartKey  # region "world": the news is about the world, across countries
    counts: Mapping[str, tuple[int, int]]  # title_key -> (countries at No. 1, countries in top 10)
    previous: Mapping[str, tuple[int, int]]  # the same at P-1
    best_before: Mapping[str, int]  # title_key -> most countries at No. 1 in any earlier period
    reporting: int
    previous_reporting: int
    titles: Mapping[str, str]
    record: Record | None = None  # most countries at No. 1 in one period, before P


def _milestone(
    kind: str,
    change_chart: ChartKey,
    key: str,
    title: str,
    value: int | None,
    previous: int | None,
    detail: str = "",
    **context: object,
) -> Milestone:
    return Milestone(
        kind=kind,
        chart=change_chart,
        title_key=key,
        title=title,
        value=value,
        previous=previous,
        key=milestone_key(kind, change_chart, key, detail),
        context=context,
    )


def detect_chart(change: ChartChange) -> list[Milestone]:
    """Milestones of one chart at P, against P-1 and the titles' history in this chart."""
    found: list[Milestone] = []
    chart, ranks, prev = change.chart, change.ranks, change.previous_ranks
    new_no1 = next((k for k, r in ranks.items() if r == 1), None)
    for key, rank in sorted(ranks.items(), key=lambda item: item[1]):
        title, before, after = change.titles[key], change.before.get(key), change.after[key]
        if prev is not None:
            found.extend(_transitions(change, key, title, rank, before, after))
        if before is not None and 1 < rank < before.peak:
            found.append(_milestone("new_peak", chart, key, title, rank, before.peak))
        thresholds = TOP10_RUN_THRESHOLDS[chart.period]
        if after.periods_in_top10 in thresholds:
            found.append(_milestone("top10_run", chart, key, title, after.periods_in_top10, None))
        record = _run_record(change, key, title, before, after)
        if record:
            found.append(record)
    if prev is not None:
        for key, last_rank in sorted(prev.items(), key=lambda item: item[1]):
            if key in ranks:
                continue
            title = change.titles[key]
            if last_rank == 1:
                run = change.before[key].no1_run if key in change.before else 1
                found.append(_lost_no1(change, key, title, None, run, new_no1))
            if change.complete:
                periods = change.before[key].periods_in_top10 if key in change.before else None
                found.append(_milestone("left_top10", chart, key, title, None, last_rank, periods=periods))
    return found


def _transitions(
    change: ChartChange, key: str, title: str, rank: int, before: TitleStats | None, after: TitleStats
) -> list[Milestone]:
    """Kinds that compare P with P-1: entered, reached, streak, lost."""
    chart, prev = change.chart, change.previous_ranks or {}
    out: list[Milestone] = []
    last = prev.get(key)
    if last is None:
        previous = before.last_rank if before else None
        out.append(_milestone("entered_top10", chart, key, title, rank, previous, reentry=before is not None))
    if rank == 1 and last != 1:
        first_time = before is None or before.periods_at_no1 == 0
        out.append(_milestone("reached_no1", chart, key, title, 1, last, first_time=first_time))
    elif rank == 1:
        if after.no1_run > 1:  # after a gap the run starts again: No. 1 both sides is no streak yet
            out.append(_milestone("no1_streak", chart, key, title, after.no1_run, after.no1_run - 1))
    elif last == 1:
        run = before.no1_run if before else 1
        new_no1 = next((k for k, r in change.ranks.items() if r == 1), None)
        out.append(_lost_no1(change, key, title, rank, run, new_no1))
    return out


def _lost_no1(
    change: ChartChange, key: str, title: str, rank: int | None, run: int, new_no1: str | None
) -> Milestone:
    new_title = change.titles.get(new_no1) if new_no1 else None
    return _milestone("lost_no1", change.chart, key, title, rank, 1, run=run, new_no1=new_title)


def _run_record(
    change: ChartChange, key: str, title: str, before: TitleStats | None, after: TitleStats
) -> Milestone | None:
    """The longest No. 1 run in this chart's history, beaten just now (not merely extended)."""
    record, run = change.run_record, after.no1_run
    if record is None or record.value < MIN_RECORD_RUN[change.chart.period] or run <= record.value:
        return None
    extending_own_record = record.holder_key == key and before is not None and record.date == before.last_date
    if extending_own_record:
        return None
    return _milestone(
        "record",
        change.chart,
        key,
        title,
        run,
        record.value,
        "no1_run",
        record="no1_run",
        holder=record.holder_title,
    )


def detect_countries(change: CountryChange) -> list[Milestone]:
    """Aggregate milestones over the country charts of one period."""
    if change.reporting < MIN_REPORTING:
        return []
    found: list[Milestone] = []
    chart, reporting = change.chart, change.reporting
    leader = max(change.counts.items(), key=lambda item: (item[1][0], item[0]), default=None)
    for key, (no1, top10) in sorted(change.counts.items()):
        title = change.titles[key]
        best = change.best_before.get(key, 0)
        if no1 >= NO1_COUNTRIES_FLOOR and no1 > best:
            found.append(
                _milestone("no1_countries", chart, key, title, no1, best or None, reporting=reporting)
            )
        _, prev_top10 = change.previous.get(key, (0, 0))
        crossed = [t for t in TOP10_COUNTRIES_THRESHOLDS if prev_top10 < t <= top10]
        everywhere = top10 == reporting and prev_top10 < change.previous_reporting
        if crossed or everywhere:
            found.append(
                _milestone(
                    "top10_countries",
                    chart,
                    key,
                    title,
                    top10,
                    prev_top10 or None,
                    reporting=reporting,
                    everywhere=everywhere,
                )
            )
    record = change.record
    if leader and record and record.value >= 1 and leader[1][0] > record.value:
        key, (no1, _) = leader
        found.append(
            _milestone(
                "record",
                chart,
                key,
                change.titles[key],
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
