"""Every table read or written whole, in the neutral form of `bot.store.catalog`: what a copy between
engines moves. PostgreSQL's own types are the neutral ones, so rows pass as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from bot.store.catalog import TABLES, table
from bot.store.postgres.connection import HISTORY, PLAN, Conn, Pg, translate


class PostgresTableRows:
    """`TableRows` over one REPEATABLE READ, read-only transaction: one snapshot of every table."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def rows(self, name: str, *, batch: int = 5_000) -> AsyncIterator[list[tuple]]:
        t = table(name)
        sql = f"SELECT {', '.join(t.names)} FROM {t.name} ORDER BY {', '.join(t.key)}"
        try:
            cursor = self.conn.conn.cursor(sql, prefetch=batch)
            chunk: list[tuple] = []
            async for record in cursor:
                chunk.append(tuple(record))
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
        except Exception as exc:
            raise translate(exc, self.conn.target) from exc
        if chunk:
            yield chunk

    async def count(self, name: str) -> int:
        return await self.conn.fetchval(f"SELECT count(*) FROM {table(name).name}")


class PostgresTableLoad:
    """`TableLoad` in one transaction holding the HISTORY and PLAN locks: nothing else writes meanwhile."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def clear(self) -> None:
        await self.conn.execute(f"TRUNCATE {', '.join(t.name for t in TABLES)} RESTART IDENTITY")

    async def write(self, name: str, rows: Sequence[tuple]) -> None:
        t = table(name)
        await self.conn.copy_rows(t.name, t.names, rows)

    async def count(self, name: str) -> int:
        return await self.conn.fetchval(f"SELECT count(*) FROM {table(name).name}")

    async def finish(self) -> None:
        """Identities go on after the highest id written."""
        for t in TABLES:
            if t.identity:
                await self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{t.name}', '{t.identity}'), "
                    f"coalesce(max({t.identity}), 0) + 1, false) FROM {t.name}"
                )


@asynccontextmanager
async def read_tables(pg: Pg) -> AsyncIterator[PostgresTableRows]:
    async with pg.transaction(isolation="repeatable_read", readonly=True) as conn:
        yield PostgresTableRows(conn)


@asynccontextmanager
async def load_tables(pg: Pg) -> AsyncIterator[PostgresTableLoad]:
    async with pg.transaction() as conn:
        await conn.lock(PLAN)
        await conn.lock(HISTORY)
        load = PostgresTableLoad(conn)
        yield load
        await load.finish()
