"""A title's running stats in one chart series: pure arithmetic over its appearances.

The store keeps these per (series, title) so that a standing is a lookup; `fold` recomputes them from
raw history (after a backfill or a revision, and in the property tests that check the two agree).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(slots=True)  # not frozen (treat as immutable): built once per entry ingested, and frozen costs 6x
class TitleStats:
    first_date: date
    last_date: date  # the last period the title charted in
    last_rank: int
    prev_rank: int | None  # rank in the period just before last_date, None if it did not chart then
    peak: int
    peak_date: date  # the first date the peak was reached
    periods_in_top10: int
    periods_at_no1: int
    no1_run: int  # consecutive periods at No. 1 ending at last_date (0 if last_rank > 1)
    longest_no1_run: int
    longest_no1_end: date | None  # last period of the longest run (the earliest such run)
    top10_run: int  # consecutive periods in the chart ending at last_date


def first(day: date, rank: int) -> TitleStats:
    at_no1 = rank == 1
    return TitleStats(
        first_date=day,
        last_date=day,
        last_rank=rank,
        prev_rank=None,
        peak=rank,
        peak_date=day,
        periods_in_top10=1,
        periods_at_no1=int(at_no1),
        no1_run=int(at_no1),
        longest_no1_run=int(at_no1),
        longest_no1_end=day if at_no1 else None,
        top10_run=1,
    )


def advance(stats: TitleStats | None, day: date, rank: int, step: timedelta) -> TitleStats:
    """The stats after the title charts at `rank` on `day`, a period after every one seen so far."""
    if stats is None:
        return first(day, rank)
    if day <= stats.last_date:
        raise ValueError(f"advance() needs a later period: {day} is not after {stats.last_date}")
    contiguous = stats.last_date + step == day
    no1_run = 0
    if rank == 1:
        no1_run = stats.no1_run + 1 if contiguous and stats.last_rank == 1 else 1
    longest, longest_end = stats.longest_no1_run, stats.longest_no1_end
    if no1_run > longest:
        longest, longest_end = no1_run, day
    better = rank < stats.peak
    return TitleStats(  # positional, in field order: this runs once per entry ingested
        stats.first_date,
        day,
        rank,
        stats.last_rank if contiguous else None,
        rank if better else stats.peak,
        day if better else stats.peak_date,
        stats.periods_in_top10 + 1,
        stats.periods_at_no1 + (rank == 1),
        no1_run,
        longest,
        longest_end,
        stats.top10_run + 1 if contiguous else 1,
    )


def fold(appearances: Iterable[tuple[date, int]], step: timedelta) -> TitleStats | None:
    """Stats from scratch: `appearances` are (date, best rank) pairs in date order."""
    stats: TitleStats | None = None
    for day, rank in appearances:
        stats = advance(stats, day, rank, step)
    return stats
