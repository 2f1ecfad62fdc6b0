"""The PostgreSQL pool (through asyncpg), its settings, transactions, advisory locks and the store's errors.

Every statement goes through `Pg` or `Conn`, so that a driver error leaves the engine as one of the
store's own errors (`bot.store.interfaces`): callers never see asyncpg.

Locks that span processes are transaction-level advisory locks, released by COMMIT or ROLLBACK (and by
the server when a client dies), in one key space of chartbot's own:

- HISTORY: held exclusively by every history write, so history writes run one at a time across all
  processes; held shared by whatever must see no history write in flight (a new watch's start, a
  planning round), exactly as SQLite's single writer orders them.
- PLAN: one planning round of the delivery queue at a time.
- MIGRATE: one migration step at a time.

The cluster's locks are session-level, on a connection of their own (cluster.py): POLL_JOB and PLAN_JOB
in the same space, and one per live process in MEMBER_SPACE.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from bot.store.interfaces import DatabaseUnavailable, StoreBusy, StoreError

LOCK_SPACE = 0x43_48_42_54  # "CHBT": the first key of every chartbot advisory lock
HISTORY, PLAN, MIGRATE = 1, 2, 3  # the second key
POLL_JOB, PLAN_JOB = 10, 11  # session locks: the process that polls, the one that plans (cluster.py)
MEMBER_SPACE = LOCK_SPACE + 1  # session locks keyed by cluster member: held while the process lives
NOTICES = "chartbot"  # the LISTEN/NOTIFY channel of the cluster's notices

POOL_SIZE = 10  # connections at most: the bot's commands, the poller, the announcer
STATEMENT_TIMEOUT = 60.0  # seconds a statement may run on the server
LOCK_TIMEOUT = 30.0  # seconds a statement waits for a lock (as SQLite's busy timeout)
IDLE_IN_TRANSACTION = 600.0  # a client stuck inside a transaction lets its locks go after this
FOREVER = 7 * 86_400.0  # "no limit" for the driver: a history write waits for the one in flight

# Every connection's settings (the timeouts are added by `Pg.connect`); moments come back in UTC.
SERVER_SETTINGS = {
    "application_name": "chartbot",
    "timezone": "UTC",
}


def _millis(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class Target:
    """Where a URL points, for messages: never the password."""

    host: str
    port: str
    database: str

    @classmethod
    def of(cls, url: str) -> Target:
        try:
            parts = urlsplit(url)
        except ValueError:  # malformed: the driver says what is wrong; we say where we can
            return cls("?", "?", "?")
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        host = unquote(parts.hostname or query.get("host", "") or "localhost")
        try:
            port = str(parts.port or query.get("port", "") or 5432)
        except ValueError:  # a port that is not a number: asyncpg will say so too
            port = "?"
        user = unquote(parts.username or query.get("user", "") or "")
        database = unquote(parts.path.lstrip("/")) or query.get("dbname", "") or user or "?"
        return cls(host, port, database)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"


# --- errors ---------------------------------------------------------------------------------------

_BUSY = (
    asyncpg.LockNotAvailableError,  # lock_timeout
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.QueryCanceledError,  # statement_timeout
)
_GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.InvalidAuthorizationSpecificationError,  # no such role, or refused by pg_hba.conf
    asyncpg.InvalidPasswordError,
    asyncpg.InsufficientPrivilegeError,
    asyncpg.InterfaceError,  # a closed connection or pool
    asyncpg.InternalClientError,
)


def translate(error: BaseException, target: Target | None = None) -> BaseException:
    """The store's own error for a driver or network error (others are returned as they are)."""
    if isinstance(error, StoreError):
        return error
    where = f" ({target})" if target else ""
    text = _first_line(error)
    if isinstance(error, _BUSY):
        return StoreBusy(f"the database is busy{where}: {text}")
    if isinstance(error, TimeoutError):
        return StoreBusy(f"the database did not answer in time{where}")
    if isinstance(error, (*_GONE, OSError, ConnectionError)):
        return DatabaseUnavailable(f"the database cannot be used{where}: {text}")
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return StoreError(f"the database refused a write{where}: {text}")
    if isinstance(error, asyncpg.PostgresError):
        return DatabaseUnavailable(f"the database cannot be used{where}: {text}")
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def connect_error(error: BaseException, target: Target) -> DatabaseUnavailable:
    """One line for a server we cannot reach or log in to: where (never the password), and why."""
    if isinstance(error, ConnectionRefusedError):
        why = "connection refused (is the server running?)"
    elif isinstance(error, TimeoutError):
        why = "no answer in time"
    else:  # no such host, no such database or role, a refused login, …
        why = _first_line(error)
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {target}: {why}")


# --- statements -------------------------------------------------------------------------------------

_NUMBERED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?")


def numbered(sql: str) -> str:
    """`?` placeholders (outside strings, quoted names and comments) as `$1 … $n`."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _NUMBERED.sub(number, sql)


def command_count(status: str) -> int:
    """Rows a command changed, from its status tag ('UPDATE 3', 'INSERT 0 1', 'DELETE 0')."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Conn:
    """One connection (inside a transaction, usually) with the store's errors."""

    def __init__(self, conn: asyncpg.Connection, target: Target) -> None:
        self.conn = conn
        self.target = target

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self.conn.fetch(sql, *args)
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self.conn.fetchrow(sql, *args)
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self.conn.fetchval(sql, *args)
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def execute(self, sql: str, *args: Any, answer_within: float | None = None) -> int:
        """Run a statement (or, without arguments, a script); returns how many rows it changed."""
        try:
            return command_count(await self.conn.execute(sql, *args, timeout=answer_within))
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for many rows, pipelined (not a round trip a row)."""
        rows = list(rows)
        if not rows:
            return
        try:
            await self.conn.executemany(sql, rows)
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY rows into a table (binary): the fastest way in, inside the transaction."""
        if not rows:
            return
        try:
            await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))
        except Exception as exc:
            raise translate(exc, self.target) from exc

    async def notify(self, topic: str, detail: str = "") -> None:
        """A notice to every listening process, sent when (and only if) this transaction commits."""
        await self.execute("SELECT pg_notify($1, $2)", NOTICES, f"{topic} {detail}".strip())

    async def lock(self, key: int, *, shared: bool = False, wait: float | None = None) -> None:
        """Take one of chartbot's advisory locks until the transaction ends.

        `wait`: seconds to wait for it (None: the pool's lock timeout, then StoreBusy; FOREVER: until
        the holder is done, however long that takes)."""
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        if wait is None:
            await self.execute(f"SELECT {function}($1, $2)", LOCK_SPACE, key)
            return
        # the timeouts of this one statement only: SET LOCAL, the lock, then back to the session's
        await self.execute(
            f"SET LOCAL lock_timeout = '{_millis(wait) if wait < FOREVER else 0}'; "
            "SET LOCAL statement_timeout = 0; "
            f"SELECT {function}({LOCK_SPACE}, {int(key)}); "
            "SET LOCAL lock_timeout TO DEFAULT; SET LOCAL statement_timeout TO DEFAULT",
            answer_within=wait + 5.0,
        )


class Pg:
    """The pool: a connection per statement outside transactions, one per transaction inside."""

    def __init__(self, pool: asyncpg.Pool, target: Target) -> None:
        self.pool = pool
        self.target = target

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        statement_timeout: float = STATEMENT_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
        command_timeout: float | None = None,
        connect_timeout: float = 10.0,
    ) -> Pg:
        """A pool of 1 to `pool_size` connections. Fails with one line when the server cannot be used."""
        target = Target.of(url)
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        settings = {
            **SERVER_SETTINGS,
            "statement_timeout": _millis(statement_timeout),
            "lock_timeout": _millis(lock_timeout),
            "idle_in_transaction_session_timeout": _millis(IDLE_IN_TRANSACTION),
        }
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                # the driver's own limit on an answer: a little more than the server's own
                command_timeout=command_timeout if command_timeout is not None else statement_timeout + 30.0,
                timeout=connect_timeout,
                server_settings=settings,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connect_error(exc, target) from exc
        except ValueError as exc:  # a malformed URL (asyncpg says which part)
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {target}: {exc}") from exc
        assert pool is not None
        return cls(pool, target)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), 10.0)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            self.pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        try:
            conn = await self.pool.acquire()
        except Exception as exc:
            raise translate(exc, self.target) from exc
        try:
            yield Conn(conn, self.target)
        finally:
            try:
                await self.pool.release(conn)
            except Exception:  # a broken connection: the pool replaces it
                conn.terminate()

    @asynccontextmanager
    async def transaction(
        self, *, isolation: str = "read_committed", readonly: bool = False
    ) -> AsyncIterator[Conn]:
        """BEGIN … COMMIT, or ROLLBACK on any error: nothing is ever half-written."""
        async with self.connection() as conn:
            try:
                tx = conn.conn.transaction(isolation=isolation, readonly=readonly)
                await tx.start()
            except Exception as exc:
                raise translate(exc, self.target) from exc
            try:
                yield conn
            except BaseException:
                try:
                    await tx.rollback()
                except Exception:  # the connection went with the transaction
                    conn.conn.terminate()
                raise
            try:
                await tx.commit()
            except Exception as exc:
                raise translate(exc, self.target) from exc

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(sql, *args)


__all__ = [
    "FOREVER",
    "HISTORY",
    "LOCK_SPACE",
    "MEMBER_SPACE",
    "MIGRATE",
    "NOTICES",
    "PLAN",
    "PLAN_JOB",
    "POLL_JOB",
    "Conn",
    "Pg",
    "Target",
    "command_count",
    "numbered",
    "translate",
]
