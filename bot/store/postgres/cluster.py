"""The cluster in PostgreSQL: the bot processes sharing one database, the jobs one of them does at a time,
and the notices that wake them.

Each process keeps one connection of its own (`PostgresClusterLink`, outside the store's pool), and on
it session-level advisory locks: one for each job it holds (POLL_JOB, PLAN_JOB) and one in MEMBER_SPACE
keyed by its row in `cluster_members`, which says it is alive. A session lock lasts as long as the
session, so a process that dies - even by SIGKILL - lets its jobs go the moment its connection ends,
and a process whose connection was lost (the database restarted) holds nothing until it takes the jobs
again. Nothing is held by a lease that has to expire.

The same connection LISTENs for the notices the store sends in its transactions (`Conn.notify`); when it
comes back after a loss, a RECONNECTED notice tells the process that it may have missed some.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg

from bot.store.interfaces import JOBS, PLAN, POLL, RECONNECTED, MemberReport, MemberStatus, Notice
from bot.store.postgres.connection import (
    LOCK_SPACE,
    MEMBER_SPACE,
    NOTICES,
    PLAN_JOB,
    POLL_JOB,
    SERVER_SETTINGS,
    Pg,
    Target,
    connect_error,
    translate,
)
from bot.store.postgres.guilds import THIS_DATABASE, live_members

log = logging.getLogger(__name__)

JOB_KEYS = {POLL: POLL_JOB, PLAN: PLAN_JOB}
FORGET_AFTER = 86_400.0  # seconds after which the row of a process long gone is removed


def now() -> datetime:
    return datetime.now(UTC)


class PostgresClusterLink:
    """`ClusterLink` on a connection of its own, (re)connected on demand."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, answer_within: float = 10.0) -> None:
        self.url = url
        self.target = Target.of(url)
        self.connect_timeout = connect_timeout
        self.answer_within = answer_within
        self._conn: asyncpg.Connection | None = None
        self._member_id: int | None = None
        self._held: set[str] = set()
        self._listeners: list[Notice] = []
        self._lost: list[Callable[[], None]] = []
        self._connected_before = False
        self._lock = asyncio.Lock()  # one statement at a time on the connection

    @property
    def member_id(self) -> int | None:
        return self._member_id

    def held(self) -> frozenset[str]:
        if self._conn is None or self._conn.is_closed():
            return frozenset()
        return frozenset(self._held)

    def subscribe(self, callback: Notice) -> None:
        self._listeners.append(callback)

    def on_lost(self, callback: Callable[[], None]) -> None:
        self._lost.append(callback)

    # --- the connection -------------------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        self._forget_connection()
        try:
            conn = await asyncpg.connect(
                self.url,
                timeout=self.connect_timeout,
                command_timeout=self.answer_within,
                server_settings={**SERVER_SETTINGS, "application_name": "chartbot cluster"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connect_error(exc, self.target) from exc
        except ValueError as exc:
            raise connect_error(exc, self.target) from exc
        try:
            await conn.add_listener(NOTICES, self._heard)
            if self._member_id is not None:
                await self._take_member_lock(conn)
        except Exception as exc:
            conn.terminate()
            raise translate(exc, self.target) from exc
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        if self._connected_before:
            log.info("the cluster connection to %s is back", self.target)
            self._tell(RECONNECTED, "")
        self._connected_before = True
        return conn

    async def _take_member_lock(self, conn: asyncpg.Connection) -> None:
        assert self._member_id is not None
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", MEMBER_SPACE, self._member_id):
            # only this process uses its number: a lock still held is its old session, not yet gone
            log.warning("cluster member %d is still held by an old connection", self._member_id)

    def _terminated(self, conn: asyncpg.Connection) -> None:
        if conn is self._conn:
            lost = bool(self._held)
            self._forget_connection()
            if lost:
                log.warning("the cluster connection to %s was lost: every job is let go", self.target)
            for callback in self._lost:
                try:
                    callback()
                except Exception:
                    log.exception("a cluster callback failed")

    def _forget_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        del conn, pid, channel
        topic, _, detail = payload.partition(" ")
        self._tell(topic, detail)

    def _tell(self, topic: str, detail: str) -> None:
        for callback in self._listeners:
            try:
                callback(topic, detail)
            except Exception:
                log.exception("a cluster notice's callback failed (%s %s)", topic, detail)

    async def _run(self, statement: str, *args: object) -> object:
        """One statement on the link's connection; a lost connection is forgotten (jobs with it)."""
        async with self._lock:
            conn = await self._connection()
            try:
                return await conn.fetchval(statement, *args, timeout=self.answer_within)
            except Exception as exc:
                if isinstance(exc, (asyncpg.InterfaceError, OSError, TimeoutError)) or conn.is_closed():
                    self._forget_connection()
                raise translate(exc, self.target) from exc

    # --- jobs -----------------------------------------------------------------------------------------

    async def hold(self, job: str) -> bool:
        key = JOB_KEYS.get(job)
        if key is None:
            raise ValueError(f"unknown job {job!r}")
        if job in self.held():
            await self._run("SELECT 1")  # the session is there, so is its lock
            return job in self.held()
        taken = bool(await self._run("SELECT pg_try_advisory_lock($1, $2)", LOCK_SPACE, key))
        if taken:
            self._held.add(job)
        return taken

    async def release(self, job: str) -> None:
        if job not in self.held():
            return
        self._held.discard(job)
        with contextlib.suppress(Exception):
            await self._run("SELECT pg_advisory_unlock($1, $2)", LOCK_SPACE, JOB_KEYS[job])

    # --- membership -----------------------------------------------------------------------------------

    async def heartbeat(self, report: MemberReport) -> None:
        at = now()
        values = (
            report.name,
            list(report.shard_ids),
            report.shard_count,
            report.last_error,
            report.last_error_at,
        )
        if self._member_id is None:
            await self._run(
                f"WITH {live_members(2)} DELETE FROM cluster_members WHERE seen_at < $1 "
                "AND id NOT IN (SELECT id FROM live)",
                datetime.fromtimestamp(at.timestamp() - FORGET_AFTER, UTC),
                MEMBER_SPACE,
            )
            member = await self._run(
                "INSERT INTO cluster_members (name, shard_ids, shard_count, last_error, last_error_at, "
                "started_at, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                *values,
                at,
            )
            assert isinstance(member, int)
            self._member_id = member
            await self._run("SELECT pg_try_advisory_lock($1, $2)", MEMBER_SPACE, member)
            return
        await self._run(
            "INSERT INTO cluster_members (id, name, shard_ids, shard_count, last_error, last_error_at, "
            "started_at, seen_at) VALUES ($6, $1, $2, $3, $4, $5, $7, $7) ON CONFLICT (id) DO UPDATE SET "
            "name = excluded.name, shard_ids = excluded.shard_ids, shard_count = excluded.shard_count, "
            "last_error = excluded.last_error, last_error_at = excluded.last_error_at, seen_at = excluded.seen_at",
            *values,
            self._member_id,
            at,
        )

    async def close(self) -> None:
        """Leave: the row goes, and with the connection every lock."""
        member, conn = self._member_id, self._conn
        if conn is not None and not conn.is_closed() and member is not None:
            with contextlib.suppress(Exception):
                await self._run("DELETE FROM cluster_members WHERE id = $1", member)
        self._held.clear()
        self._conn = None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except Exception:
                conn.terminate()


class PostgresClusterBook:
    """`ClusterBook`: the live processes, for `chartbot status`."""

    def __init__(self, pg: Pg) -> None:
        self.db = pg

    async def members(self) -> list[MemberStatus]:
        rows = await self.db.fetch(
            f"WITH {live_members(1)}, held AS (SELECT m.objid::bigint AS id, array_agg(j.objid::int) AS jobs "
            "FROM pg_locks m JOIN pg_locks j ON j.pid = m.pid AND j.locktype = 'advisory' AND j.granted "
            "AND j.objsubid = 2 AND j.classid::bigint = $2 AND j.objid::bigint = ANY($3::bigint[]) "
            "WHERE m.locktype = 'advisory' AND m.granted AND m.objsubid = 2 AND m.classid::bigint = $1 "
            f"AND m.{THIS_DATABASE} AND j.database = m.database "
            "GROUP BY m.objid) "
            "SELECT c.id, c.name, c.shard_ids, c.shard_count, coalesce(h.jobs, '{}'), c.started_at, c.seen_at, "
            "(SELECT count(*) FROM deliveries d WHERE d.state IN ('planned', 'sending') "
            " AND (c.shard_count = 0 OR (d.guild_id >> 22) % c.shard_count = ANY(c.shard_ids))), "
            "(SELECT max(d.updated_at) FROM deliveries d WHERE d.claimed_by = c.id AND d.state = 'sent'), "
            "c.last_error, c.last_error_at "
            "FROM cluster_members c LEFT JOIN held h ON h.id = c.id "
            "WHERE c.id IN (SELECT id FROM live) ORDER BY c.id",
            MEMBER_SPACE,
            LOCK_SPACE,
            list(JOB_KEYS.values()),
        )
        names = {key: job for job, key in JOB_KEYS.items()}
        return [
            MemberStatus(
                id=row[0],
                name=row[1],
                shard_ids=tuple(row[2]),
                shard_count=row[3],
                jobs=_jobs(names, row[4]),
                started_at=row[5],
                seen_at=row[6],
                queue=row[7],
                last_post=row[8],
                last_error=row[9],
                last_error_at=row[10],
            )
            for row in rows
        ]


def _jobs(names: dict[int, str], keys: Sequence[int]) -> tuple[str, ...]:
    held = {names[key] for key in keys if key in names}
    return tuple(job for job in JOBS if job in held)


__all__ = ["PostgresClusterBook", "PostgresClusterLink"]
