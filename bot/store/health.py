"""The poller's bookkeeping: how each source and chart fares, HTTP validators, what is already stored.

Plain functions of a sqlite3 connection, run on the database thread with `Store.run(fn, ...)`, so a
cycle's bookkeeping costs one hop. `StoreValidators` is the HTTP client's `ValidatorStore` on top.

A source's own row has chart `*` (SOURCE_ROW): its `healthy` flag says whether its data can be trusted
for aggregates (No. 1 in N countries); a chart's row says whether its last read worked.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from bot.model import WORLD, Snapshot
from bot.store import transaction
from bot.store.ingest import digest

if TYPE_CHECKING:
    from bot.store import Store

SOURCE_ROW = "*"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# --- health -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One file or page read by one cycle. `pending`: set or clear the read waiting for a second one."""

    chart: str
    ok: bool
    rows: int | None = None
    error: str | None = None
    chart_date: date | None = None  # a chart of this date was accepted (stored, or known unchanged)
    pending: tuple[date, str] | None = None
    clear_pending: bool = False


@dataclass(frozen=True, slots=True)
class HealthRow:
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


_COLUMNS = (
    "source, chart, healthy, note, last_success, last_error, last_error_at, consecutive_failures, rows, "
    "chart_date, pending_date, pending_digest"
)


def _row(v: Sequence) -> HealthRow:
    return HealthRow(
        *(v[0], v[1], bool(v[2]), v[3], _moment(v[4]), v[5], _moment(v[6]), v[7], v[8]),
        *(_day(v[9]), _day(v[10]), v[11]),
    )


def load(conn: sqlite3.Connection, source: str | None = None) -> list[HealthRow]:
    """Every row (of one source), the source's own row first."""
    where, params = ("WHERE source = ?", (source,)) if source else ("", ())
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM source_health {where} ORDER BY source, chart != ?, chart",
        (*params, SOURCE_ROW),
    )
    return [_row(r) for r in rows]


def record(conn: sqlite3.Connection, source: str, outcomes: Iterable[Outcome], at: datetime) -> None:
    """Write a cycle's outcomes in one transaction: successes reset the failure count, failures add one."""
    stamp = at.isoformat(timespec="seconds")
    with transaction(conn):
        for o in outcomes:
            conn.execute(
                "INSERT INTO source_health (source, chart, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (source, chart) DO NOTHING",
                (source, o.chart, stamp),
            )
            if o.ok:
                conn.execute(
                    "UPDATE source_health SET healthy = 1, last_success = ?, consecutive_failures = 0, "
                    "rows = coalesce(?, rows), chart_date = CASE WHEN ? > coalesce(chart_date, '') THEN ? "
                    "ELSE chart_date END, updated_at = ? WHERE source = ? AND chart = ?",
                    (stamp, o.rows, _iso(o.chart_date), _iso(o.chart_date), stamp, source, o.chart),
                )
            else:
                conn.execute(
                    "UPDATE source_health SET healthy = 0, last_error = ?, last_error_at = ?, "
                    "consecutive_failures = consecutive_failures + 1, updated_at = ? "
                    "WHERE source = ? AND chart = ?",
                    (o.error, stamp, stamp, source, o.chart),
                )
            if o.pending is not None or o.clear_pending:
                day, text = o.pending if o.pending else (None, None)
                conn.execute(
                    "UPDATE source_health SET pending_date = ?, pending_digest = ? WHERE source = ? AND chart = ?",
                    (_iso(day), text, source, o.chart),
                )


def set_source(
    conn: sqlite3.Connection,
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
    with transaction(conn):
        conn.execute(
            "INSERT INTO source_health (source, chart, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (source, chart) DO NOTHING",
            (source, SOURCE_ROW, stamp),
        )
        if healthy is not None:
            conn.execute(
                "UPDATE source_health SET healthy = ?, note = ? WHERE source = ? AND chart = ?",
                (int(healthy), note, source, SOURCE_ROW),
            )
        if success:
            conn.execute(
                "UPDATE source_health SET last_success = ?, consecutive_failures = 0, rows = coalesce(?, rows), "
                "updated_at = ? WHERE source = ? AND chart = ?",
                (stamp, rows, stamp, source, SOURCE_ROW),
            )
        else:
            conn.execute(
                "UPDATE source_health SET last_error = ?, last_error_at = ?, "
                "consecutive_failures = consecutive_failures + 1, updated_at = ? WHERE source = ? AND chart = ?",
                (error, stamp, stamp, source, SOURCE_ROW),
            )


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


# --- what is stored already -------------------------------------------------------------------------


def unchanged(conn: sqlite3.Connection, snapshots: Sequence[Snapshot]) -> list[bool]:
    """For each snapshot: is the very same chart stored already? (one query per service, period)"""
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in snapshots:
        wanted[(s.key.service, s.key.period)].add(s.key.date.isoformat())
    stored: dict[tuple[str, str, str, str, str], str] = {}
    for (service, period), days in wanted.items():
        ordered = sorted(days)
        for start in range(0, len(ordered), 500):
            part = ordered[start : start + 500]
            rows = conn.execute(
                "SELECT s.region, s.category, c.date, c.digest FROM charts c JOIN series s ON s.id = c.series_id "
                f"WHERE s.service = ? AND s.period = ? AND c.date IN ({','.join('?' * len(part))})",
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


def signature(snapshots: Iterable[Snapshot]) -> str:
    """One digest for a page's charts: two reads agree when their signatures do."""
    text = "|".join(sorted(f"{s.key.label()}={digest(s)}" for s in snapshots))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def latest_dates(conn: sqlite3.Connection, source: str, period: str) -> dict[str, date]:
    """service -> newest chart date stored from `source` in `period` charts."""
    rows = conn.execute(
        "SELECT s.service, max(c.date) FROM charts c JOIN series s ON s.id = c.series_id "
        "WHERE c.source = ? AND s.period = ? GROUP BY s.service",
        (source, period),
    )
    return {service: date.fromisoformat(day) for service, day in rows}


def reporting(conn: sqlite3.Connection, service: str, period: str, day: date) -> dict[str, int]:
    """category -> how many country charts are stored for this period (world not counted)."""
    rows = conn.execute(
        "SELECT s.category, count(*) FROM charts c JOIN series s ON s.id = c.series_id "
        "WHERE s.service = ? AND s.period = ? AND c.date = ? AND s.region != ? GROUP BY s.category",
        (service, period, day.isoformat(), WORLD),
    )
    return dict(rows)


# --- HTTP validators --------------------------------------------------------------------------------


def get_validators(conn: sqlite3.Connection, url: str) -> tuple[str | None, str | None] | None:
    row = conn.execute("SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)).fetchone()
    return (row[0], row[1]) if row else None


def set_validators(conn: sqlite3.Connection, url: str, etag: str | None, last_modified: str | None) -> None:
    with transaction(conn):
        if etag is None and last_modified is None:
            conn.execute("DELETE FROM http_validators WHERE url = ?", (url,))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO http_validators (url, etag, last_modified, updated_at) VALUES (?, ?, ?, ?)",
                (url, etag, last_modified, _now()),
            )


class StoreValidators:
    """`bot.sources.http.ValidatorStore` in the database: conditional GETs survive a restart.

    The poller fetches with `remember=False` and calls `HttpClient.remember(result)` only after the
    charts are stored, so a crash in between costs a full download, never a lost chart.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, url: str) -> tuple[str | None, str | None] | None:
        return await self.store.run(get_validators, url)

    async def set(self, url: str, etag: str | None, last_modified: str | None) -> None:
        await self.store.run(set_validators, url, etag, last_modified)
