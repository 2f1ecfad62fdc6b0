"""The poller: each enabled source on its own schedule, fetched politely, validated, stored.

What the poller must never do:

- stop: a failing file, page or chart is caught, logged, reported and retried next cycle; a source's
  loop survives any exception but cancellation (`tasks.loop` would die on the first non-network one);
- store a partial chart: pages the parser refuses (challenge, "Page Not Found", 7 rows, a new layout)
  store nothing, so no title is said to have left the Top 10 because a page broke;
- flood channels after downtime: when several periods arrive at once only the newest is news, older
  ones are stored as history;
- lose news: a file's cache validator is saved in the same transaction as everything the file led to
  (charts, country counts, milestones), so a failure at any step leaves the file to be read again;
- post aggregates from a sick source: when pages suddenly parse to nothing, or a period's region count
  drops below 80% of the period before, the source is marked unhealthy and the aggregates are held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.ingest import Ingester
from bot.model import Milestone
from bot.poller.reports import PollReport, SourceReport
from bot.settings import Settings
from bot.sources import flixpatrol
from bot.sources.http import HttpClient
from bot.store import SourceBook, Store

log = logging.getLogger("chartbot.poller")

OnMilestones = Callable[[list[Milestone]], Awaitable[None] | None]
OnStored = Callable[[SourceReport], Awaitable[None] | None]
Progress = Callable[[str, int, int], None]  # (what, done, total)
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Poller:
    """Polls the enabled sources (settings.sources) into the store.

    In the Discord bot: the bot creates it and its cog `start()`s it, `await stop()` on unload. On the
    command line: `await run_once()` or `await run_forever()`. `on_milestones(list)` is called with
    each batch of new milestones (they are in the store's outbox already); `on_stored(report)` after a
    cycle that stored charts (e.g. to refresh title autocomplete); `progress(what, done, total)` while
    a long catch-up is stored. Exceptions in any of them are logged.

    The HTTP client gets the store's source book as its validator store when it has none, so
    conditional GETs survive a restart.
    """

    def __init__(
        self,
        store: Store,
        http: HttpClient,
        settings: Settings,
        *,
        on_milestones: OnMilestones | None = None,
        on_stored: OnStored | None = None,
        progress: Progress | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        regions: Sequence[str] = flixpatrol.DEFAULT_REGIONS,
        concurrency: int | None = None,
        settle_hour: int = 12,
        settle_after: timedelta = timedelta(hours=6),
        max_catch_up_days: int = 3,
        intervals: dict[str, float] | None = None,
    ) -> None:
        self.store = store
        self.ingester = Ingester(store)
        self.http = http
        self.settings = settings
        self.on_milestones = on_milestones
        self.on_stored = on_stored
        self.progress = progress or log_progress
        self.clock = clock
        self.sleep = sleep
        self.regions = tuple(dict.fromkeys(regions))
        # Twice the per-host limit: while one page is parsed or stored, its HTTP slot is already reused.
        self.concurrency = concurrency or 2 * http.per_host_limit
        self.settle_hour = settle_hour
        self.settle_after = settle_after
        self.max_catch_up_days = max_catch_up_days
        self.intervals = {s: settings.poll_interval for s in settings.sources} | (intervals or {})
        self.last_reports: dict[str, SourceReport] = {}
        self._task: asyncio.Task[None] | None = None
        if http.validator_store is None:
            http.validator_store = BookValidators(store.sources)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.settings.sources

    async def run_once(self) -> PollReport:
        """One cycle of every enabled source, side by side."""
        started = time.monotonic()
        reports = await asyncio.gather(*(self.poll_source(s) for s in self.sources))
        return PollReport({r.source: r for r in reports}, time.monotonic() - started)

    async def poll_source(self, source: str) -> SourceReport:
        """One cycle of one source. Never raises (but for cancellation): failures are in the report."""
        from bot.poller.cycles import CYCLES  # the cycles import this module

        cycle = CYCLES[source](self, source, self.clock())
        started = time.monotonic()
        try:
            await cycle.start()
            await cycle.run()
        except Exception as exc:  # a bug (or the database is down): report it, keep the loop alive
            log.exception("%s: the cycle failed", source)
            cycle.report_bug(exc)
        try:
            await cycle.finish()
        except Exception:
            log.exception("%s: could not record the source's health", source)
        report = cycle.report
        report.elapsed = time.monotonic() - started
        self.last_reports[source] = report
        log.info("%s", report.summary())
        if report.added or report.replaced:
            await call(self.on_stored, report, what="on_stored")
        return report

    async def run_forever(self) -> None:
        """Each source in its own loop, on its own interval, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for source in self.sources:
                group.create_task(self._loop(source), name=f"chartbot-poll-{source}")

    async def _loop(self, source: str) -> None:
        while True:
            try:
                await self.poll_source(source)
            except Exception:  # poll_source does not raise; this is the belt to its braces
                log.exception("%s: poll failed", source)
            await self.sleep(self.intervals.get(source, self.settings.poll_interval))

    def start(self) -> asyncio.Task[None]:
        """Run `run_forever` in a task (e.g. from a cog's cog_load); `stop()` cancels it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run_forever(), name="chartbot-poller")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def call(callback: Callable[..., Any] | None, *args: Any, what: str) -> None:
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("the poller's %s callback failed", what)


class _EveryFewSeconds:
    """Progress as a log line, at most every few seconds (a catch-up of today's full file takes a while)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.last = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        moment = time.monotonic()
        if done < total and moment - self.last < self.every:
            return
        self.last = moment
        log.info(
            "%s: %s of %s charts stored (%.0f%%)", what, f"{done:,}", f"{total:,}", 100 * done / max(total, 1)
        )


log_progress = _EveryFewSeconds()


class BookValidators:
    """The HTTP client's validator store in the store's source book: conditional GETs survive a restart."""

    def __init__(self, book: SourceBook) -> None:
        self.book = book

    async def get(self, url: str) -> tuple[str | None, str | None] | None:
        return await self.book.get_validators(url)

    async def set(self, url: str, etag: str | None, last_modified: str | None) -> None:
        await self.book.set_validators(url, etag, last_modified)


def make_http_client(settings: Settings, store: Store, **options: Any) -> HttpClient:
    """The HTTP client the poller wants: validators in the store, FlareSolverr when configured."""
    solver = settings.flaresolverr_url
    if solver:  # the client adds /v1 itself; people paste the endpoint with it
        solver = solver.rstrip("/").removesuffix("/v1")
    options.setdefault("max_body_bytes", settings.max_download_bytes)  # CHARTBOT_MAX_DOWNLOAD_MB
    return HttpClient(validator_store=BookValidators(store.sources), flaresolverr_url=solver, **options)
