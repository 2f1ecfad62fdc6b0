"""The PostgreSQL engine: `CHARTBOT_DB=postgresql://user:password@host:5432/dbname`.

One asyncpg pool (1 to `pool_size` connections) serves every interface: a query takes a connection
for one statement, a transaction holds one until it ends. Several processes may share a database
(two imports, an import beside the bot): history writes take turns by an advisory lock, and the
database keeps milestones unique and assigns every id (see connection.py, history.py, guilds.py).
Every table can be read and written whole, for copies between engines (tables.py, bot/store/catalog.py).
Bot processes sharing the database form a cluster (cluster.py): one polls, one plans, each posts for
its own shards, and they wake each other with LISTEN/NOTIFY.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bot.store import redact
from bot.store.catalog import TABLE_NAMES
from bot.store.interfaces import StoreStatus
from bot.store.postgres.cluster import PostgresClusterBook, PostgresClusterLink
from bot.store.postgres.connection import (
    LOCK_TIMEOUT,
    POOL_SIZE,
    STATEMENT_TIMEOUT,
    Pg,
    numbered,
    translate,
)
from bot.store.postgres.guilds import PostgresDeliveryQueue, PostgresGuildConfig
from bot.store.postgres.history import PostgresHistory
from bot.store.postgres.queries import PostgresChartQueries
from bot.store.postgres.schema import SCHEMA_VERSION, migrate, schema_version
from bot.store.postgres.sources import PostgresSourceBook
from bot.store.postgres.tables import PostgresTableLoad, PostgresTableRows, load_tables, read_tables


def plain(value: Any) -> Any:
    """A value as both engines give it to `fetch_all`: dates and moments as ISO text, numbers as int
    or float."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def typed(value: Any, kind: str) -> Any:
    """A parameter as PostgreSQL takes it: ISO text for a date or a moment, 0/1 for a flag."""
    if isinstance(value, str) and kind == "date":
        return date.fromisoformat(value)
    if isinstance(value, str) and kind in ("timestamptz", "timestamp"):
        return datetime.fromisoformat(value)
    if isinstance(value, int) and kind == "bool":
        return bool(value)
    return value


class PostgresStore:
    engine = "postgresql"

    def __init__(self, pg: Pg, location: str) -> None:
        self.location = location
        self._pg = pg
        self.history = PostgresHistory(pg)
        self.charts = PostgresChartQueries(pg)
        self.sources = PostgresSourceBook(pg)
        self.guilds = PostgresGuildConfig(pg)
        self.deliveries = PostgresDeliveryQueue(pg)
        self.cluster = PostgresClusterBook(pg)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        statement_timeout: float = STATEMENT_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
        command_timeout: float | None = None,
        cache_kib: int | None = None,
    ) -> PostgresStore:
        """Connect, then migrate. `pool_size`: connections at most; `statement_timeout`: seconds a
        statement may run on the server; `lock_timeout`: seconds a write waits for a lock another holds
        before it is StoreBusy (a history write waits for the one in flight however long it takes);
        `command_timeout`: seconds the driver waits for an answer (default: a little more than the
        statement timeout). `cache_kib` is SQLite's and means nothing here."""
        del cache_kib  # the server keeps its own cache
        pg = await Pg.connect(
            url,
            pool_size=pool_size,
            statement_timeout=statement_timeout,
            lock_timeout=lock_timeout,
            command_timeout=command_timeout,
        )
        try:
            await migrate(pg)
        except BaseException:
            await pg.close()
            raise
        return cls(pg, redact(url))

    async def close(self) -> None:
        await self._pg.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def status(self) -> StoreStatus:
        async with self._pg.connection() as conn:
            counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in TABLE_NAMES}
        return StoreStatus(self.engine, self.location, await schema_version(self._pg), counts)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """`?` placeholders; a date or a moment may be given as ISO text, as SQLite takes them."""
        async with self._pg.connection() as conn:
            try:
                statement = await conn.conn.prepare(numbered(sql))
                kinds = [parameter.name for parameter in statement.get_parameters()]
                if len(kinds) == len(params):  # (else the driver says how many it takes)
                    params = [typed(value, kind) for value, kind in zip(params, kinds, strict=True)]
                rows = await statement.fetch(*params)
            except Exception as exc:
                raise translate(exc, conn.target) from exc
        return [tuple(plain(value) for value in row) for row in rows]

    def read_tables(self) -> AbstractAsyncContextManager[PostgresTableRows]:
        return read_tables(self._pg)

    def load_tables(self) -> AbstractAsyncContextManager[PostgresTableLoad]:
        return load_tables(self._pg)


__all__ = ["SCHEMA_VERSION", "PostgresClusterLink", "PostgresStore"]
