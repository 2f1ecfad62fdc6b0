"""The SQLite engine: the embedded default, one file (or memory), WAL mode.

Two connections: the writer runs every transaction (one at a time in this process, and across
processes by SQLite's own write lock); the reader answers queries, so a long import never holds up a
command. An in-memory database has one connection for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from bot.store.catalog import TABLE_NAMES
from bot.store.interfaces import DatabaseUnavailable, StoreStatus
from bot.store.sqlite.cluster import SqliteClusterBook
from bot.store.sqlite.connection import MEMORY, Db
from bot.store.sqlite.guilds import SqliteDeliveryQueue, SqliteGuildConfig
from bot.store.sqlite.history import SqliteHistory
from bot.store.sqlite.process import claim_process
from bot.store.sqlite.queries import SqliteChartQueries
from bot.store.sqlite.schema import SCHEMA_VERSION, migrate, user_version
from bot.store.sqlite.sources import SqliteSourceBook
from bot.store.sqlite.tables import SqliteTableLoad, SqliteTableRows, load_tables, read_tables

TABLES = TABLE_NAMES  # every table, as the catalogue (bot/store/catalog.py) lists them


class SqliteStore:
    engine = "sqlite"

    def __init__(self, writer: Db, reader: Db) -> None:
        self.location = writer.path
        self._writer = writer
        self._reader = reader
        self.history = SqliteHistory(writer)
        self.charts = SqliteChartQueries(reader)
        self.sources = SqliteSourceBook(writer, reader)
        self.guilds = SqliteGuildConfig(writer, reader)
        self.deliveries = SqliteDeliveryQueue(writer, reader)
        self.cluster = SqliteClusterBook()

    @classmethod
    async def open(cls, path: str | Path = MEMORY, *, cache_kib: int | None = None) -> SqliteStore:
        """`cache_kib`: cap the reader's page cache (a long-running bot reads a file the OS caches
        anyway: scanning the title catalogue of a 5-year history would otherwise keep ~50 MB resident)."""
        path = str(path)
        if path != MEMORY and Path(path).is_dir():  # noqa: ASYNC240 -- once, at open
            raise DatabaseUnavailable(f"{path} is a folder, not a database file")
        writer = await Db.connect(path)
        try:
            await migrate(writer.conn)
            reader = writer if path == MEMORY else await Db.connect(path)
            if cache_kib is not None:
                await reader.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        except BaseException as exc:
            await writer.close()
            from bot.store.sqlite.connection import translate

            raise translate(exc) from exc
        return cls(writer, reader)

    async def close(self) -> None:
        if self._reader is not self._writer:
            await self._reader.close()
        await self._writer.close()

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def status(self) -> StoreStatus:
        counts = {table: await self._reader.scalar(f"SELECT count(*) FROM {table}") for table in TABLES}
        return StoreStatus(self.engine, self.location, await user_version(self._reader.conn), counts)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return await self._writer.fetch(sql, params)

    def read_tables(self) -> AbstractAsyncContextManager[SqliteTableRows]:
        return read_tables(self._reader, self._writer)

    def load_tables(self) -> AbstractAsyncContextManager[SqliteTableLoad]:
        return load_tables(self._writer)


__all__ = ["SCHEMA_VERSION", "SqliteStore", "claim_process"]
