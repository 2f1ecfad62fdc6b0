"""The store: chart history, servers' settings and the delivery queue, behind interfaces cut to use
cases (see `bot.store.interfaces`). `open_store` picks the engine from the database setting: a
`postgresql://` URL selects PostgreSQL; anything else is a SQLite file path (or `:memory:`).

This package is the one door to the database: nothing outside the engines imports an engine module,
a database driver, or SQL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.store.interfaces import (
    ChartHistory,
    ChartQueries,
    CountryInputs,
    DatabaseUnavailable,
    DeliveryQueue,
    GroupKey,
    GuildConfig,
    HistoryWrite,
    ReadOutcome,
    RunRecord,
    SchemaError,
    SeriesState,
    SeriesUpdate,
    SourceBook,
    Store,
    StoreBusy,
    StoreError,
    StoreInUse,
    StoreStatus,
    TableLoad,
    TableRows,
)

MEMORY = ":memory:"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme.lower() in POSTGRES_SCHEMES


def redact(target: str | Path) -> str:
    """A database location fit for a log line: a URL loses its password."""
    text = str(target)
    if not is_postgres_url(text):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def open_store(target: str | Path = MEMORY, **options: object) -> Store:
    """Open (and migrate) the database at `target`: a SQLite path or a PostgreSQL URL."""
    if is_postgres_url(target):
        from bot.store.postgres import PostgresStore

        return await PostgresStore.open(str(target), **options)  # type: ignore[return-value]
    from bot.store.sqlite import SqliteStore

    return await SqliteStore.open(target, **options)  # type: ignore[arg-type, return-value]


__all__ = [
    "MEMORY",
    "ChartHistory",
    "ChartQueries",
    "CountryInputs",
    "DatabaseUnavailable",
    "DeliveryQueue",
    "GroupKey",
    "GuildConfig",
    "HistoryWrite",
    "ReadOutcome",
    "RunRecord",
    "SchemaError",
    "SeriesState",
    "SeriesUpdate",
    "SourceBook",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreInUse",
    "StoreStatus",
    "TableLoad",
    "TableRows",
    "is_postgres_url",
    "open_store",
    "redact",
]
