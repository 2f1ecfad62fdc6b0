"""This process's part in the cluster of bot processes sharing one database.

`Duties` keeps, every `tick` seconds, the jobs one process does at a time (polling, planning) - taking
one as soon as no process holds it, letting it go the moment the database connection is lost - and
tells the cluster how the process fares (a heartbeat). A job that changes hands is one log line. The
store decides who holds what (advisory locks on PostgreSQL; on SQLite the one process holds all), this
module only acts on it. No Discord, no SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from bot.store import JOBS, PLAN, POLL, ClusterLink, DatabaseUnavailable, MemberReport, StoreError

log = logging.getLogger("chartbot.cluster")

TAKEOVER = 60.0
"""Seconds at most before another process takes a job over from one that died (or the poll interval,
if shorter)."""

DOING = {POLL: "polls the sources", PLAN: "plans deliveries"}

OnJob = Callable[[str, bool], Awaitable[None] | None]


def tick_for(poll_interval: float) -> float:
    """How often a process tries the jobs: a few times within min(poll interval, TAKEOVER)."""
    return max(0.2, min(5.0, min(poll_interval, TAKEOVER) / 4))


class LastError(logging.Handler):
    """Remembers the last warning or error logged (one line), for the heartbeat and `chartbot status`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text: str | None = None
        self.at: datetime | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is someone else's bug
            return
        self.text = f"{record.levelname.lower()}: {message.splitlines()[0] if message else record.name}"[:500]
        self.at = datetime.fromtimestamp(record.created, UTC)


class Duties:
    """Which jobs this process does now. `start()` once (it takes what it can at once), `stop()` at the end.

    `on_job(job, held)` is called (and awaited) each time a job is taken or lost; `jobs` are the ones
    this process is willing to do (a process with polling turned off never polls)."""

    def __init__(
        self,
        link: ClusterLink,
        describe: Callable[[], MemberReport],
        on_job: OnJob,
        *,
        jobs: Iterable[str] = JOBS,
        tick: float = 5.0,
        heartbeat_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.describe = describe
        self.on_job = on_job
        self.jobs = tuple(job for job in JOBS if job in set(jobs))
        self.tick = tick
        self.heartbeat_every = heartbeat_every
        self.clock = clock
        self._held: set[str] = set()
        self._beat_at: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False
        link.on_lost(self._wake.set)  # a lost connection: act on it now, not at the next tick

    def holds(self, job: str) -> bool:
        return job in self._held

    async def start(self) -> None:
        await self.step()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="chartbot-cluster")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in [j for j in self.jobs if j in self._held]:
            await self._change(job, False)
        with contextlib.suppress(Exception):
            await self.link.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick)
            self._wake.clear()
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: the loop must outlive it
                log.exception("the cluster round failed")

    async def step(self) -> None:
        """One round: the heartbeat when due, then each job kept, taken or lost."""
        try:
            moment = self.clock()
            if self._beat_at is None or moment - self._beat_at >= self.heartbeat_every:
                await self.link.heartbeat(self.describe())
                self._beat_at = moment
            held = {job for job in self.jobs if await self.link.hold(job)}
        except (DatabaseUnavailable, StoreError) as exc:
            if not self._unreachable:
                log.warning("the cluster cannot be reached (%s): no job is held until it can", exc)
            self._unreachable = True
            held = set()
        else:
            if self._unreachable:
                log.info("the cluster can be reached again")
            self._unreachable = False
        held &= self.link.held()  # (a connection lost meanwhile took them all)
        for job in self.jobs:
            if (job in held) != (job in self._held):
                await self._change(job, job in held)

    async def _change(self, job: str, held: bool) -> None:
        if held:
            self._held.add(job)
            log.info("this process now %s", DOING[job])
        else:
            self._held.discard(job)
            log.info("this process no longer %s", DOING[job])
        try:
            result = self.on_job(job, held)
            if result is not None:
                await result
        except Exception:
            log.exception("could not act on the %s job changing hands", job)
