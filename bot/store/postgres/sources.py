"""The poller's bookkeeping in PostgreSQL: `SourceBook` (health, HTTP validators, what is stored already).

A source's own row has chart `*` (SOURCE_ROW): its `healthy` flag says whether its data can be trusted
for aggregates (No. 1 in N countries); a chart's row says whether its last read worked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from bot.model import WORLD, Snapshot
from bot.model import chart_digest as digest
from bot.store.interfaces import ReadOutcome
from bot.store.postgres.connection import Pg
from bot.store.postgres.history import begin_read, save_validators
from bot.views import SOURCE_ROW, HealthRow

_COLUMNS = (
    "source, chart, healthy, note, last_success, last_error, last_error_at, consecutive_failures, rows, "
    "chart_date, pending_date, pending_digest"
)


def seconds(at: datetime) -> datetime:
    """The health table's moments: UTC, whole seconds (as the SQLite engine keeps them)."""
    return at.astimezone(UTC).replace(microsecond=0)


class PostgresSourceBook:
    def __init__(self, pg: Pg) -> None:
        self.db = pg

    async def begin_read(self, source: str) -> int:
        async with self.db.transaction() as db:
            return await begin_read(db, source)

    async def health(self, source: str | None = None) -> list[HealthRow]:
        """Every row (of one source), the source's own row first."""
        where, params = ("WHERE source = $2", (source,)) if source else ("", ())
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM source_health {where} ORDER BY source, chart != $1, chart",
            SOURCE_ROW,
            *params,
        )
        return [HealthRow(*row) for row in rows]

    async def record_reads(self, source: str, outcomes: Iterable[ReadOutcome], at: datetime) -> None:
        """A cycle's outcomes in one transaction: successes reset the failure count, failures add one."""
        stamp = seconds(at)
        async with self.db.transaction() as db:
            for o in outcomes:
                await db.execute(
                    "INSERT INTO source_health (source, chart, updated_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (source, chart) DO NOTHING",
                    source,
                    o.chart,
                    stamp,
                )
                if o.ok:
                    await db.execute(
                        "UPDATE source_health SET healthy = true, last_success = $1, consecutive_failures = 0, "
                        "rows = coalesce($2, rows), chart_date = greatest(chart_date, $3), updated_at = $1 "
                        "WHERE source = $4 AND chart = $5",
                        stamp,
                        o.rows,
                        o.chart_date,
                        source,
                        o.chart,
                    )
                else:
                    await db.execute(
                        "UPDATE source_health SET healthy = false, last_error = $1, last_error_at = $2, "
                        "consecutive_failures = consecutive_failures + 1, updated_at = $2 "
                        "WHERE source = $3 AND chart = $4",
                        o.error,
                        stamp,
                        source,
                        o.chart,
                    )
                if o.pending is not None or o.clear_pending:
                    day, text = o.pending if o.pending else (None, None)
                    await db.execute(
                        "UPDATE source_health SET pending_date = $1, pending_digest = $2 "
                        "WHERE source = $3 AND chart = $4",
                        day,
                        text,
                        source,
                        o.chart,
                    )

    async def record_cycle(
        self,
        source: str,
        at: datetime,
        *,
        healthy: bool | None,
        note: str | None,
        success: bool,
        error: str | None = None,
        rows: int | None = None,
    ) -> None:
        """The source's own row after a cycle. `healthy=None` keeps the flag (a cycle that learnt nothing)."""
        stamp = seconds(at)
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO source_health (source, chart, updated_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (source, chart) DO NOTHING",
                source,
                SOURCE_ROW,
                stamp,
            )
            if healthy is not None:
                await db.execute(
                    "UPDATE source_health SET healthy = $1, note = $2 WHERE source = $3 AND chart = $4",
                    healthy,
                    note,
                    source,
                    SOURCE_ROW,
                )
            if success:
                await db.execute(
                    "UPDATE source_health SET last_success = $1, consecutive_failures = 0, "
                    "rows = coalesce($2, rows), updated_at = $1 WHERE source = $3 AND chart = $4",
                    stamp,
                    rows,
                    source,
                    SOURCE_ROW,
                )
            else:
                await db.execute(
                    "UPDATE source_health SET last_error = $1, last_error_at = $2, "
                    "consecutive_failures = consecutive_failures + 1, updated_at = $2 "
                    "WHERE source = $3 AND chart = $4",
                    error,
                    stamp,
                    source,
                    SOURCE_ROW,
                )

    async def unchanged(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """For each snapshot: is the very same chart stored already? (one query per service, period)"""
        wanted: dict[tuple[str, str], set[date]] = defaultdict(set)
        for s in snapshots:
            wanted[(s.key.service, s.key.period)].add(s.key.date)
        stored: dict[tuple[str, str, str, str, date], str] = {}
        for (service, period), days in wanted.items():
            rows = await self.db.fetch(
                "SELECT s.region, s.category, c.date, c.digest FROM charts c JOIN series s ON s.id = c.series_id "
                "WHERE s.service = $1 AND s.period = $2 AND c.date = ANY($3::date[])",
                service,
                period,
                sorted(days),
            )
            for region, category, day, dig in rows:
                stored[(service, period, region, category, day)] = dig
        result = []
        for s in snapshots:
            k = s.key
            result.append(stored.get((k.service, k.period, k.region, k.category, k.date)) == digest(s))
        return result

    async def latest_dates(self, source: str, period: str) -> dict[str, date]:
        """service -> newest chart date stored from `source` in `period` charts."""
        rows = await self.db.fetch(
            "SELECT s.service, max(c.date) FROM charts c JOIN series s ON s.id = c.series_id "
            "WHERE c.source = $1 AND s.period = $2 GROUP BY s.service",
            source,
            period,
        )
        return {service: day for service, day in rows}

    async def reporting(self, service: str, period: str, day: date) -> dict[str, int]:
        """category -> how many country charts are stored for this period (world not counted)."""
        rows = await self.db.fetch(
            "SELECT s.category, count(*) FROM charts c JOIN series s ON s.id = c.series_id "
            "WHERE s.service = $1 AND s.period = $2 AND c.date = $3 AND s.region != $4 GROUP BY s.category",
            service,
            period,
            day,
            WORLD,
        )
        return {category: count for category, count in rows}

    async def get_validators(self, url: str) -> tuple[str | None, str | None] | None:
        row = await self.db.fetchrow("SELECT etag, last_modified FROM http_validators WHERE url = $1", url)
        return (row[0], row[1]) if row else None

    async def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        async with self.db.transaction() as db:
            await save_validators(db, url, etag, last_modified)
