"""One SQLite connection (through aiosqlite), its settings, transactions, and the store's errors.

Every statement goes through `Db`, so that a driver error leaves the engine as one of the store's own
errors (`bot.store.interfaces`): callers never see `sqlite3`.

Statements run one after another in aiosqlite's thread, in the order they were given. A write whose
result nobody needs may be left to run there while the caller goes on (`write_behind`): the next
statement waits for it first, and a transaction commits only after it. Its error is the queuing
task's: raised at that task's next statement, or instead of its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from bot.store.interfaces import DatabaseUnavailable, SchemaError, StoreBusy, StoreError

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 30_000  # another process's write: wait this long before saying the database is busy
VARIABLES = 32_000  # bound parameters per statement (SQLite's limit is 32,766 since 3.32)


def translate(error: BaseException) -> BaseException:
    """The store's own error for a driver error (others are returned as they are)."""
    if isinstance(error, StoreError):
        return error
    text = str(error)
    if isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusy(f"the database is busy: {text}")
    if isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError | sqlite3.ProgrammingError):
        if isinstance(error, sqlite3.IntegrityError):
            return error
        return DatabaseUnavailable(f"the database cannot be used: {text}")
    if isinstance(error, ValueError) and text in ("Connection closed", "no active connection"):
        return DatabaseUnavailable("the database connection is closed")
    return error


class Db:
    """An aiosqlite connection with the store's errors and a lock for write transactions."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.write_lock = asyncio.Lock()
        self.behind: list[asyncio.Future[Any]] = []  # writes queued in the driver's thread, not waited for
        self.behind_for: asyncio.Task[Any] | None = None  # the task that queued them
        self.behind_error: BaseException | None = None  # the first of them that failed, not yet raised

    @classmethod
    async def connect(cls, path: str) -> Db:
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseUnavailable(f"{path}: {exc}") from exc
        db = cls(conn, path)
        try:
            await db.configure()
        except BaseException as exc:
            await conn.close()
            raise translate(exc) from exc
        return db

    async def configure(self) -> None:
        conn = self.conn
        # the busy timeout first: switching a new file to WAL needs a lock another opener may hold
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.path != MEMORY:
            await conn.execute("PRAGMA journal_mode = WAL")
            # checkpoint every 40 MB of WAL rather than 4 MB: a day's ingest dirties a few MB (stats,
            # outbox), and the pages rewritten day after day are then copied back once, not each time
            await conn.execute("PRAGMA wal_autocheckpoint = 10000")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA temp_store = MEMORY")
        await conn.execute("PRAGMA cache_size = -65536")  # 64 MiB

    async def close(self) -> None:
        await self.settle()
        await self.conn.close()

    async def write_behind(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue one statement and go on without waiting for it. One statement runs in sqlite3 without
        holding the GIL (an `executemany` takes it back for every row), so the caller's Python runs
        beside it; it pays when that statement is long."""
        await self.caught_up()
        self.behind_for = asyncio.current_task()
        self.behind.append(asyncio.ensure_future(self.conn.execute_fetchall(sql, params)))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the task puts the statement in the driver's queue

    async def caught_up(self) -> None:
        """Wait for the writes queued behind. If one failed, its error is raised to the task that
        queued it (as the store's own error); anyone else just waited."""
        if self.behind:
            queued, self.behind = self.behind, []
            for outcome in await asyncio.gather(*queued, return_exceptions=True):
                if isinstance(outcome, BaseException) and self.behind_error is None:
                    self.behind_error = outcome
        if self.behind_error is not None and asyncio.current_task() is self.behind_for:
            error, self.behind_error = self.behind_error, None
            raise translate(error) from error

    async def settle(self) -> None:
        """Wait for the writes queued behind, whatever became of them (a rollback or a close follows)."""
        queued, self.behind = self.behind, []
        await asyncio.gather(*queued, return_exceptions=True)
        self.behind_for, self.behind_error = None, None

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        await self.caught_up()
        try:
            return list(await self.conn.execute_fetchall(sql, params))  # type: ignore[arg-type]
        except Exception as exc:
            raise translate(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return row[0] if row else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns how many rows it changed."""
        await self.caught_up()
        try:
            cursor = await self.conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count
        except Exception as exc:
            raise translate(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        await self.caught_up()
        try:
            await self.conn.executemany(sql, rows)
        except Exception as exc:
            raise translate(exc) from exc

    async def executemany_changed(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """`executemany`, answering how many rows it changed."""
        await self.caught_up()
        before = self.conn.total_changes
        await self.executemany(sql, rows)
        return self.conn.total_changes - before

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Db]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error: nothing is ever half-written.

        One at a time in this process (the lock) and across processes (SQLite's write lock)."""
        async with self.write_lock:
            await self.execute("BEGIN IMMEDIATE")
            try:
                yield self
                await self.caught_up()
            except BaseException:
                await self.settle()
                with contextlib.suppress(Exception):  # a broken connection: the transaction went with it
                    await self.conn.rollback()
                raise
            self.behind_for = None
            await self.execute("COMMIT")


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def rows_placeholders(count: int, width: int) -> str:
    """Placeholders for `count` rows of VALUES, `width` columns each."""
    row = f"({placeholders(width)})"
    return ", ".join([row] * count)


def chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "MEMORY",
    "VARIABLES",
    "Db",
    "SchemaError",
    "chunks",
    "placeholders",
    "rows_placeholders",
    "translate",
]
