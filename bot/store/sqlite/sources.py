"""The poller's bookkeeping in SQLite: `SourceBook` (health, HTTP validators, what is stored already).

A source's own row has chart `*` (SOURCE_ROW): its `healthy` flag says whether its data can be trusted
for aggregates (No. 1 in N countries); a chart's row says whether its last read worked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from bot.model import WORLD, Snapshot
from bot.model import chart_digest as digest
from bot.store.interfaces import ReadOutcome
from bot.store.sqlite.connection import VARIABLES, Db, chunks, placeholders
from bot.store.sqlite.history import begin_read, iso, save_validators
from bot.views import SOURCE_ROW, HealthRow

_COLUMNS = (
    "source, chart, healthy, note, last_success, last_error, last_error_at, consecutive_failures, rows, "
    "chart_date, pending_date, pending_digest"
)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _row(v: Sequence) -> HealthRow:
    return HealthRow(
        *(v[0], v[1], bool(v[2]), v[3], _moment(v[4]), v[5], _moment(v[6]), v[7], v[8]),
        *(_day(v[9]), _day(v[10]), v[11]),
    )


class SqliteSourceBook:
    def __init__(self, db: Db, reader: Db) -> None:
        self.db = db  # writes
        self.reader = reader

    async def begin_read(self, source: str) -> int:
        async with self.db.transaction() as db:
            return await begin_read(db, source)

    async def health(self, source: str | None = None) -> list[HealthRow]:
        """Every row (of one source), the source's own row first."""
        where, params = ("WHERE source = ?", (source,)) if source else ("", ())
        rows = await self.reader.fetch(
            f"SELECT {_COLUMNS} FROM source_health {where} ORDER BY source, chart != ?, chart",
            (*params, SOURCE_ROW),
        )
        return [_row(r) for r in rows]

    async def record_reads(self, source: str, outcomes: Iterable[ReadOutcome], at: datetime) -> None:
        """A cycle's outcomes in one transaction: successes reset the failure count, failures add one."""
        stamp = at.isoformat(timespec="seconds")
        async with self.db.transaction() as db:
            for o in outcomes:
                await db.execute(
                    "INSERT INTO source_health (source, chart, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (source, chart) DO NOTHING",
                    (source, o.chart, stamp),
                )
                if o.ok:
                    await db.execute(
                        "UPDATE source_health SET healthy = 1, last_success = ?, consecutive_failures = 0, "
                        "rows = coalesce(?, rows), chart_date = CASE WHEN ? > coalesce(chart_date, '') THEN ? "
                        "ELSE chart_date END, updated_at = ? WHERE source = ? AND chart = ?",
                        (stamp, o.rows, iso(o.chart_date), iso(o.chart_date), stamp, source, o.chart),
                    )
                else:
                    await db.execute(
                        "UPDATE source_health SET healthy = 0, last_error = ?, last_error_at = ?, "
                        "consecutive_failures = consecutive_failures + 1, updated_at = ? "
                        "WHERE source = ? AND chart = ?",
                        (o.error, stamp, stamp, source, o.chart),
                    )
                if o.pending is not None or o.clear_pending:
                    day, text = o.pending if o.pending else (None, None)
                    await db.execute(
                        "UPDATE source_health SET pending_date = ?, pending_digest = ? WHERE source = ? AND chart = ?",
                        (iso(day), text, source, o.chart),
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
        stamp = at.isoformat(timespec="seconds")
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO source_health (source, chart, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (source, chart) DO NOTHING",
                (source, SOURCE_ROW, stamp),
            )
            if healthy is not None:
                await db.execute(
                    "UPDATE source_health SET healthy = ?, note = ? WHERE source = ? AND chart = ?",
                    (int(healthy), note, source, SOURCE_ROW),
                )
            if success:
                await db.execute(
                    "UPDATE source_health SET last_success = ?, consecutive_failures = 0, "
                    "rows = coalesce(?, rows), updated_at = ? WHERE source = ? AND chart = ?",
                    (stamp, rows, stamp, source, SOURCE_ROW),
                )
            else:
                await db.execute(
                    "UPDATE source_health SET last_error = ?, last_error_at = ?, "
                    "consecutive_failures = consecutive_failures + 1, updated_at = ? WHERE source = ? AND chart = ?",
                    (error, stamp, stamp, source, SOURCE_ROW),
                )

    async def unchanged(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """For each snapshot: is the very same chart stored already? (one query per service, period)"""
        wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        for s in snapshots:
            wanted[(s.key.service, s.key.period)].add(s.key.date.isoformat())
        stored: dict[tuple[str, str, str, str, str], str] = {}
        for (service, period), days in wanted.items():
            for part in chunks(sorted(days), VARIABLES - 2):
                rows = await self.reader.fetch(
                    "SELECT s.region, s.category, c.date, c.digest FROM charts c JOIN series s ON s.id = c.series_id "
                    f"WHERE s.service = ? AND s.period = ? AND c.date IN ({placeholders(len(part))})",
                    (service, period, *part),
                )
                for region, category, day, dig in rows:
                    stored[(service, period, region, category, day)] = dig
        result = []
        for s in snapshots:
            k = s.key
            result.append(
                stored.get((k.service, k.period, k.region, k.category, k.date.isoformat())) == digest(s)
            )
        return result

    async def latest_dates(self, source: str, period: str) -> dict[str, date]:
        """service -> newest chart date stored from `source` in `period` charts."""
        rows = await self.reader.fetch(
            "SELECT s.service, max(c.date) FROM charts c JOIN series s ON s.id = c.series_id "
            "WHERE c.source = ? AND s.period = ? GROUP BY s.service",
            (source, period),
        )
        return {service: date.fromisoformat(day) for service, day in rows}

    async def reporting(self, service: str, period: str, day: date) -> dict[str, int]:
        """category -> how many country charts are stored for this period (world not counted)."""
        rows = await self.reader.fetch(
            "SELECT s.category, count(*) FROM charts c JOIN series s ON s.id = c.series_id "
            "WHERE s.service = ? AND s.period = ? AND c.date = ? AND s.region != ? GROUP BY s.category",
            (service, period, day.isoformat(), WORLD),
        )
        return dict(rows)

    async def get_validators(self, url: str) -> tuple[str | None, str | None] | None:
        row = await self.reader.fetchone(
            "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
        )
        return (row[0], row[1]) if row else None

    async def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        async with self.db.transaction() as db:
            await save_validators(db, url, etag, last_modified)
