"""Netflix's weekly files: a 304 costs nothing; a changed file stores only its new or revised weeks.

A file and everything it leads to go in one transaction: its charts (a first start or a long
catch-up in batches, as `chartbot import` stores them), the newest week's country aggregates, and the
file's cache validators. A failure at any step stores nothing and the next cycle reads the file again.
"""

from __future__ import annotations

import asyncio

from bot.ingest import Batch
from bot.model import PERIODS, WORLD
from bot.poller.cycle import Cycle, country_periods
from bot.sources import netflix


class NetflixCycle(Cycle):
    async def run(self) -> None:
        await self.load_states()
        names = list(netflix.FILES)
        self.report.items = len(names)
        base = self.poller.settings.netflix_url
        day = self.now.date()  # what an undated file (the all-time lists) is dated by: the day it was read
        answers = await asyncio.gather(
            *(netflix.fetch_file(self.http, base, n, day=day) for n in names), return_exceptions=True
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
        same = await self.store.sources.unchanged(snapshots)
        fresh = [s for s, known in zip(snapshots, same, strict=True) if not known]
        self.report.unchanged += len(snapshots) - len(fresh)
        newest = max(s.key.date for s in snapshots)
        services = sorted({s.key.service for s in snapshots})

        async def aggregates(batch: Batch) -> None:
            if not any(s.key.date == newest and s.key.region != WORLD for s in fresh):
                return
            for service in services:
                counts = country_periods(snapshots, service, newest)  # the file holds the whole period
                before = country_periods(snapshots, service, newest - PERIODS["week"])
                ready = self.judge_aggregates(service, "week", newest, counts, before, counts, settled=True)
                await self.detect_aggregates(batch, service, "week", newest, ready)

        stored = await self.store_answer(
            fresh, news_date=newest, chart=fetched.name, result=fetched.result, then=aggregates
        )
        if stored:
            rows = sum(len(s.entries) for s in snapshots)
            self.ok(fetched.name, rows=rows, chart_date=newest)
