"""What the chart queries answer: standings, charts, milestones, rank histories and source health.

Plain, immutable dataclasses with no I/O. Every store engine builds them; the renderers, the cogs and
the command line read them. Nothing here knows SQL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from bot.model import Milestone

SeriesKey = tuple[str, str, str, str]  # (service, region, category, period)


@dataclass(frozen=True, slots=True)
class Series:
    """A chart across its dates, with the newest date stored."""

    service: str
    region: str
    category: str
    period: str
    latest_date: date

    @property
    def key(self) -> SeriesKey:
        return (self.service, self.region, self.category, self.period)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a title stands in one chart on one date."""

    service: str
    region: str
    category: str
    period: str
    date: date
    rank: int
    season: str | None
    previous_rank: int | None
    peak: int
    peak_date: date
    periods_in_top10: int
    no1_streak: int
    periods_at_no1: int
    longest_no1_run: int
    points: float | None
    hours: int | None
    views: int | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["peak_date"] = self.peak_date.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class CountryCount:
    """In how many countries a title is No. 1 / in the Top 10 in one period."""

    service: str
    category: str
    period: str
    date: date
    no1: int
    top10: int
    reporting: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"date": self.date.isoformat()}


@dataclass(frozen=True, slots=True)
class LastSeen:
    service: str
    region: str
    category: str
    period: str
    date: date
    rank: int
    peak: int


@dataclass(frozen=True, slots=True)
class TitleReport:
    title: str
    title_key: str
    standings: list[Standing]
    countries: list[CountryCount]
    last_seen: LastSeen | None  # the most recent appearance anywhere, for a title off every chart now

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "title_key": self.title_key,
            "standings": [s.as_json() for s in self.standings],
            "countries": [c.as_json() for c in self.countries],
        }


@dataclass(frozen=True, slots=True)
class ChartRow:
    rank: int
    title: str
    title_key: str
    season: str | None
    points: float | None
    hours: int | None
    views: int | None
    previous_rank: int | None
    periods_in_top10: int


@dataclass(frozen=True, slots=True)
class ChartView:
    series: Series
    date: date
    source: str
    complete: bool
    has_previous: bool  # whether the previous period is stored (movement is meaningful)
    entries: list[ChartRow]

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.series.service,
            "region": self.series.region,
            "category": self.series.category,
            "period": self.series.period,
            "date": self.date.isoformat(),
            "entries": [
                {
                    "rank": r.rank,
                    "title": r.title,
                    "title_key": r.title_key,
                    "season": r.season,
                    "points": r.points,
                    "hours": r.hours,
                    "views": r.views,
                    "previous_rank": r.previous_rank,
                    "periods_in_top10": r.periods_in_top10,
                }
                for r in self.entries
            ],
        }


@dataclass(frozen=True, slots=True)
class StoredMilestone:
    """A milestone as the outbox holds it. `id` is the database's, in the order news was recorded."""

    milestone: Milestone
    status: str
    revision: int
    id: int = 0


@dataclass(frozen=True, slots=True)
class RankHistory:
    """One chart series of a title: its best rank on each date it charted, oldest first."""

    service: str
    region: str
    category: str
    period: str
    points: list[tuple[date, int]]

    @property
    def series(self) -> SeriesKey:
        return (self.service, self.region, self.category, self.period)


SOURCE_ROW = "*"  # the health row of a source itself, beside those of its files and pages


@dataclass(frozen=True, slots=True)
class HealthRow:
    """How one source (chart `*`: SOURCE_ROW) or one of its files or pages fares."""

    source: str
    chart: str
    healthy: bool
    note: str | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    rows: int | None
    chart_date: date | None
    pending_date: date | None
    pending_digest: str | None
