"""One cycle of one source: the steps every source shares.

Store a file's or a page's charts in one history transaction together with what they lead to (the
period's country aggregates, the answer's cache validators), pass the news on, judge a period's
aggregates, and keep the books (health outcomes, written once at the end).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.ingest import Batch, IngestReport
from bot.model import PERIODS, WORLD, InputError, Milestone, Snapshot
from bot.poller.reports import ItemError, SourceReport
from bot.sources.flixpatrol import PageError
from bot.sources.http import ChallengeError, FetchError, FetchResult, NotFoundError
from bot.store import ReadOutcome
from bot.views import HealthRow

if TYPE_CHECKING:
    from bot.poller.loop import Poller

log = logging.getLogger("chartbot.poller")

DROP_RATIO = 0.8  # a period with fewer regions than this share of the period before is suspect
AggregateStep = Callable[[Batch], Awaitable[None]]


class Cycle:
    def __init__(self, poller: Poller, source: str, now: datetime) -> None:
        self.poller = poller
        self.store = poller.store
        self.http = poller.http
        self.source = source
        self.now = now
        self.report = SourceReport(source, now)
        self.outcomes: list[ReadOutcome] = []
        self.states: dict[str, HealthRow] = {}
        self.touched: set[tuple[str, str, date]] = set()  # (service, period, day) of country charts stored
        self.read: int | None = None  # this cycle's read: what it stores is news only to older watches

    async def start(self) -> None:
        """Number this cycle's read before anything is fetched (see `SourceBook.begin_read`)."""
        self.read = await self.store.sources.begin_read(self.source)

    async def run(self) -> None:
        raise NotImplementedError

    async def load_states(self) -> None:
        self.states = {row.chart: row for row in await self.store.sources.health(self.source)}

    # --- outcomes -------------------------------------------------------------------------------------

    def ok(self, chart: str, **details: Any) -> None:
        self.outcomes.append(ReadOutcome(chart, True, **details))

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
        self.outcomes.append(ReadOutcome(chart, False, error=message))

    def report_bug(self, exc: BaseException) -> None:
        self.report.errors.append(ItemError("*", "bug", f"{type(exc).__name__}: {exc}"))

    def unhealthy(self, note: str) -> None:
        if self.report.healthy is not False:
            self.report.healthy, self.report.note = False, note

    # --- storing ------------------------------------------------------------------------------------

    async def store_answer(
        self,
        snapshots: Sequence[Snapshot],
        *,
        news_date: date | None,
        chart: str,
        result: FetchResult | None,
        then: AggregateStep | None = None,
    ) -> bool:
        """Store one answer's charts in one transaction, with what they lead to (`then`: the period's
        aggregates) and the answer's cache validators. Charts older than `news_date` are history only.
        Returns False (reported) when it could not be stored: then nothing of it was, validators
        included, and the next cycle reads it again."""
        older = [s for s in snapshots if news_date is None or s.key.date < news_date]
        newest = [s for s in snapshots if news_date is not None and s.key.date >= news_date]
        what = f"{self.source}: {chart}"
        try:
            async with self.poller.ingester.batch(self.read) as batch:
                total = len(older)
                if total:
                    progress = self.poller.progress
                    await batch.add(older, news=False, progress=lambda done: progress(what, done, total))
                if newest:
                    await batch.add(newest, news=True)
                self._count(batch.report)
                if then is not None:
                    await then(batch)
                if result is not None:
                    etag, last_modified = result.headers.get("ETag"), result.headers.get("Last-Modified")
                    if etag is not None or last_modified is not None:
                        await batch.save_validators(result.url, etag, last_modified)
        except Exception as exc:
            log.error("%s: could not store %s", self.source, chart, exc_info=exc)
            message = f"{chart}: could not be stored: {type(exc).__name__}: {exc}"
            self.report.errors.append(ItemError(chart, "ingest", message))
            self.outcomes.append(ReadOutcome(chart, False, error=message))
            return False
        report = batch.report
        self.report.added += report.added
        self.report.replaced += report.replaced
        self.report.unchanged += report.unchanged
        self.report.entries += report.entries
        if result is not None:
            await self.http.remember(result, persist=False)  # persisted with the charts
        await self.emit(report.milestones)
        return True

    def _count(self, report: IngestReport) -> None:
        for service, _category, period, day in report.country_periods:
            self.touched.add((service, period, day))

    async def emit(self, milestones: list[Milestone]) -> None:
        from bot.poller.loop import call

        if milestones:
            self.report.milestones.extend(milestones)
            await call(self.poller.on_milestones, list(milestones), what="on_milestones")

    # --- aggregates ---------------------------------------------------------------------------------

    def judge_aggregates(
        self,
        service: str,
        period: str,
        day: date,
        counts: dict[str, int],
        before: dict[str, int],
        expected: dict[str, int],
        *,
        settled: bool,
    ) -> list[tuple[str, int, int]]:
        """Which categories' aggregates of a period to detect now: (category, got, expected) for each
        whose regions are in (or `settled`: the wait is over), unless the region count fell sharply
        since the period before (then they are held back and the source is unhealthy)."""
        ready = []
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
                self.outcomes.append(ReadOutcome(chart, False, error=note))
                self.unhealthy(note)
                continue
            state = self.states.get(chart)
            same = state is not None and state.chart_date == day and state.rows == got and state.healthy
            if same and (service, period, day) not in self.touched:
                continue  # detected already, from the same charts
            ready.append((category, got, want))
        return ready

    async def detect_aggregates(
        self, batch: Batch, service: str, period: str, day: date, ready: list[tuple[str, int, int]]
    ) -> None:
        for category, got, want in ready:
            await batch.detect_countries((service, category, period), day, self.source)
            label = f"{service}/{category}/{period}/{day.isoformat()}"
            of = f" of {want}" if got < want else ""
            self.report.aggregates.append(f"{label}: aggregates from {got}{of} regions")
            log.info("%s: %s: aggregates from %d%s regions", self.source, label, got, of)
            self.outcomes.append(
                ReadOutcome(f"{service}/{category}/countries", True, rows=got, chart_date=day)
            )

    async def aggregates(
        self, service: str, period: str, day: date, expected: dict[str, int], *, settled: bool
    ) -> None:
        """A period's aggregates from what is stored, in a transaction of their own."""
        counts = await self.store.sources.reporting(service, period, day)
        before = await self.store.sources.reporting(service, period, day - PERIODS[period])
        ready = self.judge_aggregates(service, period, day, counts, before, expected, settled=settled)
        if not ready:
            return
        async with self.poller.ingester.batch(self.read) as batch:
            await self.detect_aggregates(batch, service, period, day, ready)
        await self.emit(batch.report.milestones)

    # --- the books ----------------------------------------------------------------------------------

    async def finish(self) -> None:
        report = self.report
        worked = [o for o in self.outcomes if o.ok and not o.chart.endswith("/countries")]
        if report.items and not worked:
            first = report.errors[0].message if report.errors else "no answer"
            self.unhealthy(f"every read failed this cycle: {first}")
        elif report.healthy is None and report.fetched:
            report.healthy = True
        await self.store.sources.record_reads(self.source, self.outcomes, self.now)
        errors = "; ".join(e.message for e in report.errors[:3]) or None
        await self.store.sources.record_cycle(
            self.source,
            self.now,
            healthy=report.healthy,
            note=report.note,
            success=bool(worked) or not report.items,
            error=errors,
            rows=report.entries or None,
        )


def country_periods(snapshots: Sequence[Snapshot], service: str, day: date) -> dict[str, int]:
    """category -> how many country charts of the period the answer holds."""
    counts: dict[str, int] = {}
    for s in snapshots:
        if s.key.date == day and s.key.region != WORLD and s.key.service == service:
            counts[s.key.category] = counts.get(s.key.category, 0) + 1
    return counts


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
