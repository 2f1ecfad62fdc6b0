"""The store: chart history, servers' settings and the delivery queue, behind interfaces cut to use
cases (see `bot.store.interfaces`). `open_store` picks the engine from the database setting: a
`postgresql://` URL selects PostgreSQL; anything else is a SQLite file path (or `:memory:`).

This package is the one door to the database: nothing outside the engines imports an engine module,
a database driver, or SQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.store.catalog import TABLES
from bot.store.interfaces import (
    DELIVERIES_PLANNED,
    HISTORY_CHANGED,
    JOBS,
    PLAN,
    POLL,
    RECONNECTED,
    SETTINGS_CHANGED,
    ChartHistory,
    ChartQueries,
    ClusterBook,
    ClusterLink,
    CountryInputs,
    CountryTally,
    DatabaseUnavailable,
    DeliveryQueue,
    GroupKey,
    GuildConfig,
    HistoryWrite,
    MemberReport,
    MemberStatus,
    ProcessClaim,
    ReadOutcome,
    RunRecord,
    SchemaError,
    SeriesState,
    SeriesUpdate,
    ShardScope,
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
    """A `postgresql://` (or `postgres://`) URL, even a malformed one (the engine then says what is wrong)."""
    if not isinstance(target, str) or "://" not in target:
        return False
    return target.split("://", 1)[0].lower() in POSTGRES_SCHEMES


# user:password@ at the start of a URL's authority; the password runs to the last "@" before the host
_USERINFO = re.compile(r"^([^:/?#]+://[^:/?#@]*):[^/?#]*@")


def redact(target: str | Path) -> str:
    """A database location fit for a log line: a URL loses its password."""
    text = str(target)
    if not is_postgres_url(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # malformed (an unclosed IPv6 bracket, say): cut the password out by pattern
        return _USERINFO.sub(r"\1:***@", text, count=1)
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


class _Unclaimed:
    """The claim of an engine that serves any number of processes: it holds nothing."""

    def release(self) -> None:
        pass


async def claim_process(target: str | Path = MEMORY, *, shard_subset: bool = False) -> ProcessClaim:
    """Claim the database at `target` for this bot process until `release()` or the process ends.

    Raises StoreInUse when the engine serves one process at a time and another holds it, or when
    `shard_subset` (this process runs only some of the bot's shards) and the engine serves one process.
    PostgreSQL serves any number of processes.
    """
    if is_postgres_url(target):
        return _Unclaimed()
    from bot.store.sqlite import claim_process as claim_sqlite

    return claim_sqlite(str(target), shard_subset=shard_subset)


def join_cluster(target: str | Path = MEMORY) -> ClusterLink:
    """This bot process's link to the cluster of processes serving the database at `target`.

    It connects on first use (a database that is down at start is no error) and again after a loss.
    On SQLite the process is the whole cluster: it holds every job."""
    if is_postgres_url(target):
        from bot.store.postgres import PostgresClusterLink

        return PostgresClusterLink(str(target))
    from bot.store.sqlite.cluster import SoleProcess

    return SoleProcess()


__all__ = [
    "DELIVERIES_PLANNED",
    "HISTORY_CHANGED",
    "JOBS",
    "MEMORY",
    "PLAN",
    "POLL",
    "RECONNECTED",
    "SETTINGS_CHANGED",
    "TABLES",
    "ChartHistory",
    "ChartQueries",
    "ClusterBook",
    "ClusterLink",
    "CountryInputs",
    "CountryTally",
    "DatabaseUnavailable",
    "DeliveryQueue",
    "GroupKey",
    "GuildConfig",
    "HistoryWrite",
    "MemberReport",
    "MemberStatus",
    "ProcessClaim",
    "ReadOutcome",
    "RunRecord",
    "SchemaError",
    "SeriesState",
    "SeriesUpdate",
    "ShardScope",
    "SourceBook",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreInUse",
    "StoreStatus",
    "TableLoad",
    "TableRows",
    "claim_process",
    "is_postgres_url",
    "join_cluster",
    "open_store",
    "redact",
]
