"""FlixPatrol's daily pages, world and per country, for each configured service.

The chart day is today from `settle_hour` UTC, yesterday before (today's page is still empty then).
While the chart day fills, a page is stored only when two reads agree (the first read is kept in the
health table, so this works across restarts and `poll --once` runs); earlier days are over and one
read is final. After downtime, the missed days (at most `max_catch_up_days`) are stored as history.
A page's charts and its cache validators are stored in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from bot.model import WORLD, Snapshot, chart_digest
from bot.poller.cycle import Cycle
from bot.poller.reports import SourceReport
from bot.sources import flixpatrol


class FlixPatrolCycle(Cycle):
    async def run(self) -> None:
        await self.load_states()
        poller = self.poller
        self.day = chart_day(self.now, poller.settle_hour)
        self.accepted: set[tuple[str, date]] = set()
        self.parsed: set[tuple[str, date]] = set()  # pages that parsed this cycle (stored or not)
        self.browser = bool(poller.settings.flaresolverr_url)
        latest = await self.store.sources.latest_dates(flixpatrol.SOURCE, flixpatrol.PERIOD)
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
            await self.store_page(page, label)
        except Exception as exc:
            self.fail(label, exc, what=what)

    async def store_page(self, page: flixpatrol.FetchedPage, label: str) -> None:
        snapshots = page.snapshots or []
        same = await self.store.sources.unchanged(snapshots)
        if all(same):  # a read that agrees with what is stored
            self.report.unchanged += len(snapshots)
            self.accept(label, page.date, rows=page.rows)
            await self.http.remember(page.result)
            return
        sign = signature(snapshots)
        state = self.states.get(label)
        agrees = state is not None and (state.pending_date, state.pending_digest) == (page.date, sign)
        if page.date >= self.day and not agrees:
            self.report.pending += 1
            self.ok(label, rows=page.rows, pending=(page.date, sign))
            return
        changed = [s for s, known in zip(snapshots, same, strict=True) if not known]
        self.report.unchanged += len(snapshots) - len(changed)
        news_date = page.date if page.date == self.day else None
        if await self.store_answer(changed, news_date=news_date, chart=label, result=page.result):
            self.accept(label, page.date, rows=page.rows)

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
        counts = await self.store.sources.reporting(service, flixpatrol.PERIOD, day)
        expected = dict.fromkeys(counts, len(countries))
        await self.aggregates(service, flixpatrol.PERIOD, day, expected, settled=settled)


def signature(snapshots: Iterable[Snapshot]) -> str:
    """One digest for a page's charts: two reads agree when their signatures do."""
    text = "|".join(sorted(f"{s.key.label()}={chart_digest(s)}" for s in snapshots))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _content_errors(report: SourceReport) -> bool:
    """Pages that came back but held no chart (not a network failure)."""
    return any(e.kind in ("page", "not-found", "challenge") for e in report.errors)


def chart_day(now: datetime, settle_hour: int = 12) -> date:
    """The FlixPatrol day to follow: today from `settle_hour` UTC, yesterday before."""
    now = now.astimezone(UTC)
    return now.date() if now.hour >= settle_hour else now.date() - timedelta(days=1)
