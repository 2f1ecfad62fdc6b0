"""Every table read or written whole, in the neutral form of `bot.store.catalog`: what a copy between
engines moves. SQLite keeps dates and moments as ISO text and flags as 0/1; they cross as `date`,
`datetime` (UTC) and `bool`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from bot.store.catalog import TABLES, Column, Table, table
from bot.store.sqlite.connection import Db, placeholders


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _flag(value: int | None) -> bool | None:
    return bool(value) if value is not None else None


def _reader(column: Column) -> Callable[[Any], Any] | None:
    return {"date": _day, "time": _moment, "bool": _flag}.get(column.kind)


def _writer(column: Column) -> Callable[[Any], Any] | None:
    if column.kind == "date":
        return lambda day: day.isoformat() if day is not None else None
    if column.kind == "bool":
        return lambda flag: int(flag) if flag is not None else None
    if column.kind == "time":
        timespec = column.timespec

        def text(moment: datetime | None) -> str | None:
            if moment is None:
                return None
            moment = moment.astimezone(UTC)
            # a column of whole seconds keeps a moment's fraction when it has one (nothing is lost)
            spec = "milliseconds" if timespec == "milliseconds" or moment.microsecond else "seconds"
            return moment.isoformat(timespec=spec)

        return text
    return None


def _converter(
    t: Table, make: Callable[[Column], Callable[[Any], Any] | None]
) -> Callable[[Sequence], tuple]:
    steps = [make(c) for c in t.columns]
    if not any(steps):
        return tuple
    return lambda row: tuple(v if step is None else step(v) for step, v in zip(steps, row, strict=True))


class SqliteTableRows:
    """`TableRows` inside one read transaction: one snapshot of every table."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def rows(self, name: str, *, batch: int = 5_000) -> AsyncIterator[list[tuple]]:
        t = table(name)
        convert = _converter(t, _reader)
        select = f"SELECT {', '.join(t.names)} FROM {t.name}"
        order = ", ".join(t.key)
        after: tuple | None = None
        while True:  # keyset pages: each one a range read of the primary key
            if after is None:
                rows = await self.db.fetch(f"{select} ORDER BY {order} LIMIT ?", (batch,))
            else:
                rows = await self.db.fetch(
                    f"{select} WHERE ({order}) > ({placeholders(len(after))}) ORDER BY {order} LIMIT ?",
                    (*after, batch),
                )
            if not rows:
                return
            yield [convert(row) for row in rows]
            if len(rows) < batch:
                return
            last = rows[-1]
            after = tuple(last[t.names.index(k)] for k in t.key)

    async def count(self, name: str) -> int:
        return await self.db.scalar(f"SELECT count(*) FROM {table(name).name}")


class SqliteTableLoad:
    """`TableLoad` in one write transaction (SQLite's write lock: nothing else writes meanwhile)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def clear(self) -> None:
        for t in reversed(TABLES):
            await self.db.execute(f"DELETE FROM {t.name}")

    async def write(self, name: str, rows: Sequence[tuple]) -> None:
        t = table(name)
        convert = _converter(t, _writer)
        await self.db.executemany(
            f"INSERT INTO {t.name} ({', '.join(t.names)}) VALUES ({placeholders(len(t.columns))})",
            [convert(row) for row in rows],
        )

    async def count(self, name: str) -> int:
        return await self.db.scalar(f"SELECT count(*) FROM {table(name).name}")


@asynccontextmanager
async def read_tables(reader: Db, writer: Db) -> AsyncIterator[SqliteTableRows]:
    """A deferred read transaction on the reader (WAL: writers go on, this sees one snapshot); an
    in-memory database has one connection, so its write transaction stands in."""
    if reader is writer:
        async with writer.transaction():
            yield SqliteTableRows(writer)
        return
    await reader.execute("BEGIN")
    try:
        yield SqliteTableRows(reader)
    finally:
        await reader.execute("COMMIT")


@asynccontextmanager
async def load_tables(writer: Db) -> AsyncIterator[SqliteTableLoad]:
    async with writer.transaction():
        yield SqliteTableLoad(writer)
