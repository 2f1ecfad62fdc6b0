"""The poller: each enabled source on its own schedule, fetched politely, validated, stored chart by chart.

One cycle of a source reads its files or pages (bounded concurrency: the HTTP client's per-host limit
is the real bound), stores each chart in its own transaction with `Store.ingest([chart], countries=False)`,
and detects the aggregate milestones (No. 1 in N countries) once a period's regions are in — or after a
settle time, saying how many reported. What the poller must never do:

- stop: a failing file, page or chart is caught, logged, reported and retried next cycle; a source's
  loop survives any exception but cancellation (`tasks.loop` would die on the first non-network one);
- store a partial chart: pages the parser refuses (challenge, "Page Not Found", 7 rows, a new layout)
  store nothing, so no title is said to have left the Top 10 because a page broke;
- flood channels after downtime: when several periods arrive at once only the newest is news, older
  ones are stored as history (`news=False`);
- post aggregates from a sick source: when pages suddenly parse to nothing, or a period's region count
  drops below 80% of the period before, the source is marked unhealthy and the aggregates are held back.

ETag / Last-Modified live in the store and are saved only once the charts of that answer are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.model import PERIODS, WORLD, InputError, Milestone, Snapshot
from bot.settings import Settings
from bot.sources import flixpatrol, netflix
from bot.sources.flixpatrol import PageError
from bot.sources.http import ChallengeError, FetchError, FetchResult, HttpClient, NotFoundError
from bot.store import Store, health
from bot.store.health import HealthRow, Outcome, StoreValidators

log = logging.getLogger("chartbot.poller")

DROP_RATIO = 0.8  # a period with fewer regions than this share of the period before is suspect
OnMilestones = Callable[[list[Milestone]], Awaitable[None] | None]
OnStored = Callable[["SourceReport"], Awaitable[None] | None]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- reports ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemError:
    """One file, page or chart that failed. `kind`: fetch, challenge, not-found, page, ingest, bug."""

    chart: str
    kind: str
    message: str


@dataclass
class SourceReport:
    """What one cycle of one source did."""

    source: str
    started: datetime
    items: int = 0  # files or pages asked for
    fetched: int = 0  # full answers that parsed
    not_modified: int = 0  # 304: nothing changed since the last stored answer
    pending: int = 0  # pages of a day still filling, read once: stored when a second read agrees
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    entries: int = 0
    milestones: list[Milestone] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)  # periods whose aggregates were detected
    waiting: list[str] = field(default_factory=list)  # periods whose regions are still coming in
    held: list[str] = field(default_factory=list)  # aggregates held back, and why
    healthy: bool | None = None  # None: this cycle learnt nothing new about the source
    note: str | None = None
    elapsed: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.items} read"]
        for count, what in (
            (self.not_modified, "not modified"),
            (self.pending, "waiting for a second read"),
            (self.added, "charts added"),
            (self.replaced, "revised"),
            (self.unchanged, "unchanged"),
            (len(self.milestones), "milestones"),
            (len(self.errors), "failed"),
        ):
            if count:
                parts.append(f"{count} {what}")
        state = "" if self.healthy is not False else f"; UNHEALTHY: {self.note}"
        return f"{self.source}: {', '.join(parts)} in {self.elapsed:.1f} s{state}"


@dataclass
class PollReport:
    sources: dict[str, SourceReport]
    elapsed: float

    @property
    def milestones(self) -> list[Milestone]:
        return [m for r in self.sources.values() for m in r.milestones]

    @property
    def errors(self) -> list[ItemError]:
        return [e for r in self.sources.values() for e in r.errors]

    @property
    def added(self) -> int:
        return sum(r.added + r.replaced for r in self.sources.values())


# --- the poller -------------------------------------------------------------------------------------


class Poller:
    """Polls the enabled sources (settings.sources) into the store.

    In the Discord bot: create it in `setup_hook` and `start()` it, `await stop()` on close. On the
    command line: `await run_once()` or `await run_forever()`. `on_milestones(list)` is called with
    each batch of new milestones (they are in the store's outbox already); `on_stored(report)` after a
    cycle that stored charts (e.g. to refresh title autocomplete). Exceptions in either are logged.

    The HTTP client gets the store as its validator store when it has none, so conditional GETs
    survive a restart.
    """

    def __init__(
        self,
        store: Store,
        http: HttpClient,
        settings: Settings,
        *,
        on_milestones: OnMilestones | None = None,
        on_stored: OnStored | None = None,
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
        self.http = http
        self.settings = settings
        self.on_milestones = on_milestones
        self.on_stored = on_stored
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
            http.validator_store = StoreValidators(store)

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
        cycle = CYCLES[source](self, source, self.clock())
        started = time.monotonic()
        try:
            await cycle.run()
        except Exception as exc:  # a bug: report it, keep the loop alive
            log.exception("%s: the cycle failed", source)
            cycle.report.errors.append(ItemError("*", "bug", f"{type(exc).__name__}: {exc}"))
        try:
            await cycle.finish()
        except Exception:
            log.exception("%s: could not record the source's health", source)
        report = cycle.report
        report.elapsed = time.monotonic() - started
        self.last_reports[source] = report
        log.info("%s", report.summary())
        if report.added or report.replaced:
            await _call(self.on_stored, report, what="on_stored")
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
        """Run `run_forever` in a task (e.g. from the bot's setup_hook); `stop()` cancels it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run_forever(), name="chartbot-poller")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _call(callback: Callable[..., Any] | None, *args: Any, what: str) -> None:
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("the poller's %s callback failed", what)


# --- one cycle of one source ------------------------------------------------------------------------


class Cycle:
    """The steps every source shares: store a chart, pass news on, judge a period's aggregates, and
    keep the books (health outcomes, written once at the end)."""

    def __init__(self, poller: Poller, source: str, now: datetime) -> None:
        self.poller = poller
        self.store = poller.store
        self.http = poller.http
        self.source = source
        self.now = now
        self.report = SourceReport(source, now)
        self.outcomes: list[Outcome] = []
        self.states: dict[str, HealthRow] = {}
        self.touched: set[tuple[str, str, date]] = set()  # (service, period, day) of country charts stored

    async def run(self) -> None:
        raise NotImplementedError

    async def load_states(self) -> None:
        self.states = {row.chart: row for row in await self.store.run(health.load, self.source)}

    # --- outcomes -------------------------------------------------------------------------------------

    def ok(self, chart: str, **details: Any) -> None:
        self.outcomes.append(Outcome(chart, True, **details))

    def fail(self, chart: str, exc: BaseException, *, what: str = "") -> None:
        """Report a failed item, with the message that says what to do about it."""
        kind = _kind(exc)
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, FetchError):  # fetch errors name their URL already
            message = f"{what or chart}: {message}"
        if kind == "bug":
            log.error("%s: %s", self.source, message, exc_info=exc)
        else:
            log.warning("%s: %s", self.source, message)
        self.report.errors.append(ItemError(chart, kind, message))
        self.outcomes.append(Outcome(chart, False, error=message))

    def unhealthy(self, note: str) -> None:
        if self.report.healthy is not False:
            self.report.healthy, self.report.note = False, note

    # --- storing ------------------------------------------------------------------------------------

    async def ingest(self, snapshot: Snapshot, *, news: bool, chart: str) -> bool:
        """One chart, one transaction. False (reported) when it could not be stored."""
        try:
            result = await self.store.ingest([snapshot], news=news, countries=False)
        except Exception as exc:
            log.error("%s: could not store %s", self.source, snapshot.key.label(), exc_info=exc)
            message = f"{snapshot.key.label()}: could not be stored: {type(exc).__name__}: {exc}"
            self.report.errors.append(ItemError(chart, "ingest", message))
            return False
        self.report.added += result.added
        self.report.replaced += result.replaced
        if (result.added or result.replaced) and snapshot.key.region != WORLD:
            self.touched.add((snapshot.key.service, snapshot.key.period, snapshot.key.date))
        self.report.unchanged += result.unchanged
        self.report.entries += result.entries
        await self.emit(result.milestones)
        return True

    async def emit(self, milestones: list[Milestone]) -> None:
        if milestones:
            self.report.milestones.extend(milestones)
            await _call(self.poller.on_milestones, list(milestones), what="on_milestones")

    async def remember(self, result: FetchResult) -> None:
        """Keep the answer's validators, now that its charts are safely stored."""
        try:
            await self.http.remember(result)
        except Exception:
            log.exception("%s: could not save the validators of %s", self.source, result.url)

    # --- aggregates ---------------------------------------------------------------------------------

    async def aggregates(
        self, service: str, period: str, day: date, expected: dict[str, int], *, settled: bool
    ) -> None:
        """Detect a period's country aggregates once its regions are in (or `settled`: the wait is over),
        unless the region count fell sharply since the period before: then hold them back."""
        counts = await self.store.run(health.reporting, service, period, day)
        before = await self.store.run(health.reporting, service, period, day - PERIODS[period])
        for category, want in sorted(expected.items()):
            got = counts.get(category, 0)
            label = f"{service}/{category}/{period}/{day.isoformat()}"
            chart = f"{service}/{category}/countries"
            if got == 0:
                continue
            if got < want and not settled:
                self.report.waiting.append(f"{label}: {got} of {want} regions so far")
                continue
            previous = before.get(category)
            if previous and got < DROP_RATIO * previous:
                note = (
                    f"{label}: {got} regions reported, fewer than {DROP_RATIO:.0%} of the {previous} of the "
                    "period before; its aggregate milestones are held back"
                )
                log.warning("%s: %s", self.source, note)
                self.report.held.append(note)
                self.outcomes.append(Outcome(chart, False, error=note))
                self.unhealthy(note)
                continue
            state = self.states.get(chart)
            same = state is not None and state.chart_date == day and state.rows == got and state.healthy
            if same and (service, period, day) not in self.touched:
                continue  # detected already, from the same charts
            found = await self.store.detect_countries(service, category, period, day, self.source)
            of = f" of {want}" if got < want else ""
            self.report.aggregates.append(f"{label}: aggregates from {got}{of} regions")
            log.info("%s: %s: aggregates from %d%s regions", self.source, label, got, of)
            self.outcomes.append(Outcome(chart, True, rows=got, chart_date=day))
            await self.emit(found)

    # --- the books ----------------------------------------------------------------------------------

    async def finish(self) -> None:
        report = self.report
        worked = [o for o in self.outcomes if o.ok and not o.chart.endswith("/countries")]
        if report.items and not worked:
            first = report.errors[0].message if report.errors else "no answer"
            self.unhealthy(f"every read failed this cycle: {first}")
        elif report.healthy is None and report.fetched:
            report.healthy = True
        await self.store.run(health.record, self.source, self.outcomes, self.now)
        errors = "; ".join(e.message for e in report.errors[:3]) or None
        await self.store.run(
            health.set_source,
            self.source,
            self.now,
            healthy=report.healthy,
            note=report.note,
            success=bool(worked) or not report.items,
            error=errors,
            rows=report.entries or None,
        )


def _kind(exc: BaseException) -> str:
    if isinstance(exc, ChallengeError) or (isinstance(exc, PageError) and exc.reason == "cloudflare"):
        return "challenge"
    if isinstance(exc, NotFoundError) or (isinstance(exc, PageError) and exc.reason == "not-found"):
        return "not-found"
    if isinstance(exc, FetchError):
        return "fetch"
    if isinstance(exc, InputError):
        return "page"
    return "bug"


class NetflixCycle(Cycle):
    """Netflix's two weekly files: a 304 costs nothing; a changed file stores only new or revised weeks."""

    async def run(self) -> None:
        await self.load_states()
        names = list(netflix.FILES)
        self.report.items = len(names)
        base = self.poller.settings.netflix_url
        answers = await asyncio.gather(
            *(netflix.fetch_file(self.http, base, n) for n in names), return_exceptions=True
        )
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, asyncio.CancelledError):
                raise answer
            if isinstance(answer, BaseException):
                self.fail(name, answer, what=netflix.FILES[name][0])
            elif answer.snapshots is None:
                self.report.not_modified += 1
                self.ok(name)
            else:
                self.report.fetched += 1
                await self.store_file(answer)

    async def store_file(self, fetched: netflix.FetchedFile) -> None:
        snapshots = fetched.snapshots or []
        same = await self.store.run(health.unchanged, snapshots)
        fresh = sorted(
            (s for s, known in zip(snapshots, same, strict=True) if not known),
            key=lambda s: (s.key.date, s.key.region, s.key.category),
        )
        self.report.unchanged += len(snapshots) - len(fresh)
        newest = max(s.key.date for s in snapshots)
        failed = 0
        for snapshot in fresh:  # oldest first: each period finds the one before it stored
            if not await self.ingest(snapshot, news=snapshot.key.date == newest, chart=fetched.name):
                failed += 1
        rows = sum(len(s.entries) for s in snapshots)
        if failed:
            message = f"{netflix.FILES[fetched.name][0]}: {failed} of {len(fresh)} charts could not be stored"
            self.outcomes.append(Outcome(fetched.name, False, error=message))
            return  # validators not kept: the next cycle reads the file again and retries them
        self.ok(fetched.name, rows=rows, chart_date=newest)
        await self.remember(fetched.result)
        if any(s.key.date == newest and s.key.region != WORLD for s in fresh):
            for service in sorted({s.key.service for s in snapshots}):
                regions = Counter(
                    s.key.category
                    for s in snapshots
                    if s.key.date == newest and s.key.region != WORLD and s.key.service == service
                )
                await self.aggregates(service, "week", newest, dict(regions), settled=True)


class FlixPatrolCycle(Cycle):
    """FlixPatrol's daily pages, world and per country, for each configured service.

    The chart day is today from `settle_hour` UTC, yesterday before (today's page is still empty then).
    While the chart day fills, a page is stored only when two reads agree (the first read is kept in the
    health table, so this works across restarts and `poll --once` runs); earlier days are over and one
    read is final. After downtime, the missed days (at most `max_catch_up_days`) are stored as history.
    """

    async def run(self) -> None:
        await self.load_states()
        poller = self.poller
        self.day = chart_day(self.now, poller.settle_hour)
        self.accepted: set[tuple[str, date]] = set()
        self.parsed: set[tuple[str, date]] = set()  # pages that parsed this cycle (stored or not)
        self.browser = bool(poller.settings.flaresolverr_url)
        latest = await self.store.run(health.latest_dates, flixpatrol.SOURCE, flixpatrol.PERIOD)
        plan = self.plan(latest)
        for day in sorted(plan):  # oldest first: each day finds the one before it stored
            await self.read_day(day, plan[day])
        report = self.report
        if report.items and not self.readable() and _content_errors(report):
            note = f"no page of {self.day.isoformat()} could be read: {report.errors[0].message}"
            self.unhealthy(note)
            report.held.append(f"aggregates held back: {note}")
            return
        for service in poller.settings.flixpatrol_services:
            await self.settle(service)

    def readable(self) -> bool:
        """Did any page of the chart day parse, in this cycle or an earlier one?"""
        if any(day == self.day for _, day in self.parsed | self.accepted):
            return True
        pages = (s for s in self.states.values() if s.chart.count("/") == 1)
        return any(s.chart_date is not None and s.chart_date >= self.day for s in pages)

    def plan(self, latest: dict[str, date]) -> dict[date, list[tuple[str, str]]]:
        """day -> the (service, region) pages to read: the chart day, missed days, unsettled reads."""
        poller, today = self.poller, self.day
        oldest = today - timedelta(days=poller.max_catch_up_days)
        plan: dict[date, list[tuple[str, str]]] = {}
        for service in poller.settings.flixpatrol_services:
            last = latest.get(service)
            start = today if last is None or last >= today else max(last + timedelta(days=1), oldest)
            days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
            for region in poller.regions:
                state = self.states.get(flixpatrol.page_label(service, region))
                done = state.chart_date if state and state.chart_date else date.min
                wanted = [d for d in days if d > done]
                pending = state.pending_date if state else None
                if pending and oldest <= pending < today and pending > done and pending not in wanted:
                    wanted.append(pending)  # read once while it filled: now one read is final
                for day in wanted:
                    plan.setdefault(day, []).append((service, region))
        return plan

    async def read_day(self, day: date, pages: list[tuple[str, str]]) -> None:
        limit = asyncio.Semaphore(self.poller.concurrency)

        async def one(service: str, region: str) -> None:
            async with limit:
                await self.read_page(service, region, day)

        await asyncio.gather(*(one(s, r) for s, r in pages))

    async def read_page(self, service: str, region: str, day: date) -> None:
        label = flixpatrol.page_label(service, region)
        what = f"{label} {day.isoformat()}"
        self.report.items += 1
        base = self.poller.settings.flixpatrol_url
        try:
            page = await flixpatrol.fetch_page(self.http, base, service, region, day, browser=self.browser)
        except Exception as exc:
            self.fail(label, exc, what=what)
            return
        if page.snapshots is None:  # 304: the stored chart is what the page says
            self.report.not_modified += 1
            self.accept(label, day, rows=None)
            return
        self.report.fetched += 1
        self.parsed.add((label, day))
        try:
            await self.store_page(page, label, what)
        except Exception as exc:
            self.fail(label, exc, what=what)

    async def store_page(self, page: flixpatrol.FetchedPage, label: str, what: str) -> None:
        snapshots = page.snapshots or []
        same = await self.store.run(health.unchanged, snapshots)
        if all(same):  # a read that agrees with what is stored
            self.report.unchanged += len(snapshots)
            self.accept(label, page.date, rows=page.rows)
            await self.remember(page.result)
            return
        signature = health.signature(snapshots)
        state = self.states.get(label)
        agrees = state is not None and (state.pending_date, state.pending_digest) == (page.date, signature)
        if page.date >= self.day and not agrees:
            self.report.pending += 1
            self.ok(label, rows=page.rows, pending=(page.date, signature))
            return
        stored = True
        for snapshot, known in zip(snapshots, same, strict=True):
            if known:
                self.report.unchanged += 1
            elif not await self.ingest(snapshot, news=page.date == self.day, chart=label):
                stored = False  # the page's other charts are whole charts: they stay
        if not stored:
            self.outcomes.append(Outcome(label, False, error=f"{what}: a chart could not be stored"))
            return
        self.accept(label, page.date, rows=page.rows)
        await self.remember(page.result)

    def accept(self, label: str, day: date, *, rows: int | None) -> None:
        self.accepted.add((label, day))
        self.ok(label, rows=rows, chart_date=day, clear_pending=True)

    async def settle(self, service: str) -> None:
        """The chart day's aggregates: when every country page is in, or once `settle_after` has passed
        since the day became the chart day."""
        poller, day = self.poller, self.day
        countries = [r for r in poller.regions if r != WORLD]
        if not countries:
            return
        in_count = 0
        for region in countries:
            label = flixpatrol.page_label(service, region)
            state = self.states.get(label)
            if (label, day) in self.accepted or (state and state.chart_date and state.chart_date >= day):
                in_count += 1
        opened = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=poller.settle_hour)
        settled = in_count == len(countries) or self.now >= opened + poller.settle_after
        counts = await self.store.run(health.reporting, service, flixpatrol.PERIOD, day)
        expected = dict.fromkeys(counts, len(countries))
        await self.aggregates(service, flixpatrol.PERIOD, day, expected, settled=settled)


def _content_errors(report: SourceReport) -> bool:
    """Pages that came back but held no chart (not a network failure)."""
    return any(e.kind in ("page", "not-found", "challenge") for e in report.errors)


def chart_day(now: datetime, settle_hour: int = 12) -> date:
    """The FlixPatrol day to follow: today from `settle_hour` UTC, yesterday before."""
    now = now.astimezone(UTC)
    return now.date() if now.hour >= settle_hour else now.date() - timedelta(days=1)


CYCLES: dict[str, type[Cycle]] = {"netflix": NetflixCycle, "flixpatrol": FlixPatrolCycle}


# --- the command line -------------------------------------------------------------------------------


def make_http_client(settings: Settings, store: Store, **options: Any) -> HttpClient:
    """The HTTP client the poller wants: validators in the store, FlareSolverr when configured."""
    solver = settings.flaresolverr_url
    if solver:  # the client adds /v1 itself; people paste the endpoint with it
        solver = solver.rstrip("/").removesuffix("/v1")
    options.setdefault("max_body_bytes", settings.max_download_bytes)  # CHARTBOT_MAX_DOWNLOAD_MB
    return HttpClient(validator_store=StoreValidators(store), flaresolverr_url=solver, **options)


__all__ = [
    "Cycle",
    "ItemError",
    "PollReport",
    "Poller",
    "SourceReport",
    "chart_day",
    "make_http_client",
]
