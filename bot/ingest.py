"""The ingest service: charts in, running stats, records and country counts updated, milestones out.

Backend-free: it opens a history transaction through the store's interface (`ChartHistory.write`),
asks it batch-shaped questions, calls the pure detector (`bot.milestones`) and hands back what to
write. Within a batch it works series by series: charts newer than a series' newest are appended
incrementally (stats advanced in memory, written once); older or revised charts are written first and
the stats of the titles they touch are recomputed from history, so the result never depends on
arrival order. Only a new newest period is news; a corrected newest chart is judged again (changed
news is revised, stale news withdrawn); a backfill is history only.

An `Ingester` keeps a little state between batches (each series' last chart and its titles' stats),
trusted only while the series' version in the database is the one it was cached at, so another
process writing the same history is noticed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date

from bot import milestones as detector
from bot.model import ALL_TIME, PERIODS, WORLD, ChartKey, Milestone, Snapshot
from bot.model import chart_digest as digest
from bot.stats import TitleStats, advance, fold
from bot.store import CountryTally, GroupKey, HistoryWrite, RunRecord, SeriesState, SeriesUpdate, Store
from bot.views import SeriesKey


@dataclass
class IngestReport:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    backfilled: int = 0  # added or replaced below a series' newest period: history only, no news
    entries: int = 0
    milestones: list[Milestone] = field(default_factory=list)
    # country periods counted in this batch: (service, category, period, date) -> a source of them
    country_periods: dict[tuple[str, str, str, date], str] = field(default_factory=dict)

    def merge(self, other: IngestReport) -> None:
        self.added += other.added
        self.replaced += other.replaced
        self.unchanged += other.unchanged
        self.backfilled += other.backfilled
        self.entries += other.entries
        self.milestones.extend(other.milestones)
        self.country_periods.update(other.country_periods)


@dataclass
class _Memo:
    """What the next period of a series starts from: its newest chart's ranks and those titles' stats."""

    version: int
    last_ranks: dict[str, int]
    stats: dict[str, TitleStats]


class Ingester:
    """Stores charts through a store's history interface. One per store; not for concurrent use."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._memos: dict[SeriesKey, _Memo] = {}

    async def ingest(
        self, snapshots: Sequence[Snapshot], *, news: bool = True, countries: bool = True
    ) -> IngestReport:
        """Store charts in one transaction. `news`: record milestones of new newest periods.

        `countries`: the batch holds complete periods of country charts, so their aggregate milestones
        (No. 1 in N countries, records) are detected too. A caller gathering a period's regions chart
        by chart passes False and calls `detect_countries` once the period is complete.
        """
        async with self.batch() as batch:
            await batch.add(snapshots, news=news)
            if news and countries:
                for (service, category, period, day), source in sorted(batch.report.country_periods.items()):
                    await batch.detect_countries((service, category, period), day, source)
        return batch.report

    async def detect_countries(
        self, service: str, category: str, period: str, day: date, source: str
    ) -> list[Milestone]:
        async with self.batch() as batch:
            return await batch.detect_countries((service, category, period), day, source)

    @asynccontextmanager
    async def batch(self, read: int | None = None) -> AsyncIterator[Batch]:
        """One history transaction for several steps (charts, aggregates, validators): all or nothing.
        `read`: the read whose data it stores (`SourceBook.begin_read`; None: a read begun now)."""
        try:
            async with self.store.history.write(read) as tx:
                batch = Batch(tx, self._memos)
                yield batch
                await batch.finish()
        except BaseException:
            self._memos.clear()  # they may hold the state of what was just rolled back
            raise


async def ingest(
    store: Store, snapshots: Sequence[Snapshot], *, news: bool = True, countries: bool = True
) -> IngestReport:
    """One batch with a fresh `Ingester` (a one-off import; long-running callers keep an Ingester)."""
    return await Ingester(store).ingest(snapshots, news=news, countries=countries)


@dataclass
class _Chunk:
    """Charts of one step of a batch, read for and then worked out series by series."""

    step: IngestReport
    work: list[_SeriesIngest]
    charts: set[tuple[SeriesKey, date]]  # every chart of the chunk, by series and date


class Batch:
    """The steps of one history transaction, and what they did."""

    # Running stats changed by the batch wait in memory and are written once, at the end (or when this
    # many are waiting): a long history fed in chunks would otherwise rewrite a title's stats per chunk.
    STATS_KEPT = 250_000

    def __init__(self, tx: HistoryWrite, memos: dict[SeriesKey, _Memo]) -> None:
        self.tx = tx
        self.memos = memos
        self.report = IngestReport()
        self.names: dict[str, str] = {}  # title key -> display title, of every title this batch met
        self.unsaved: dict[SeriesKey, dict[str, TitleStats]] = {}  # stats not written yet, newest
        self.unsaved_count = 0
        self.tallies: dict[tuple[GroupKey, date], CountryTally] = {}  # new country charts, to be added
        self.held: _Chunk | None = None  # worked out and written but for its new charts (see `add`)

    async def keep_stats(self, series: SeriesKey, stats: Mapping[str, TitleStats]) -> None:
        """Stats to write before the transaction ends (read back from here until then)."""
        kept = self.unsaved.setdefault(series, {})
        before = len(kept)
        kept.update(stats)
        self.unsaved_count += len(kept) - before
        if self.unsaved_count >= self.STATS_KEPT:
            await self.save_stats()

    async def save_stats(self, series: SeriesKey | None = None) -> None:
        """Write the stats kept (of one series, or all)."""
        keys = [series] if series is not None else list(self.unsaved)
        rows = []
        for key in keys:
            kept = self.unsaved.pop(key, {})
            self.unsaved_count -= len(kept)
            rows.extend((key, title, kept[title]) for title in sorted(kept))
        if rows:
            await self.tx.save_stats(rows)

    async def finish(self) -> None:
        """What must be written before the transaction commits."""
        await self.add_held()
        await self.save_stats()

    # --- charts -----------------------------------------------------------------------------------

    async def add(
        self,
        snapshots: Sequence[Snapshot],
        *,
        news: bool,
        progress: Callable[[int], None] | None = None,
        chunk: int = 2_000,
    ) -> IngestReport:
        """Store charts; with `news`, detect the milestones of new newest periods. Returns this step's report.

        A long history (a first poll, a catch-up) goes in `chunk` charts at a time, oldest first, in
        this same transaction; `progress(done)` is told how many charts are in after each. The new
        charts of a chunk are handed to the store only after the next chunk (of this call or the
        next) is read, and that chunk is worked out while the store writes them: SQLite writes their
        entries in its own thread (`HistoryWrite` reads wait for them)."""
        latest = {(s.key.series, s.key.date): s for s in snapshots}  # the last copy of a chart wins
        ordered = sorted(latest.values(), key=lambda s: s.key.date)
        step = IngestReport()
        for start in range(0, len(ordered), chunk):
            part = ordered[start : start + chunk]
            lists = [s for s in part if s.key.period == ALL_TIME]
            charts = [s for s in part if s.key.period != ALL_TIME]
            if self.held is not None and not self.held.charts.isdisjoint(
                (s.key.series, s.key.date) for s in charts
            ):
                await self.add_held()  # a chart given again: its first copy is stored first
            current = await self._read_charts(charts, news=news) if charts else None
            await self.add_held()
            if lists:
                step.merge(await self._add_all_time(lists, news=news))
            if current is not None:
                step.merge(await self._work_out(current))
                self.held = current
            if progress is not None:
                progress(start + len(part))
        return step

    async def add_held(self) -> None:
        """The new charts of the chunk worked out last, and then the country periods it needs counted
        again. Before anything that reads what they hold."""
        held, self.held = self.held, None
        if held is None:
            return
        charts = [chart for s in held.work for chart in s.new_charts]
        if charts:
            await self.tx.add_charts(charts)
        recount = sorted({period for series in held.work for period in series.recount})
        if recount:
            await self.tx.count_countries(recount)

    async def _add_all_time(self, snapshots: Sequence[Snapshot], *, news: bool) -> IngestReport:
        """Netflix's all-time lists: versions of a list, dated by when they were read. No running
        stats (a list has no periods to count); news compares a version with the one before it."""
        step = IngestReport()
        latest: dict[tuple[SeriesKey, date], Snapshot] = {}
        for snapshot in snapshots:
            latest[(snapshot.key.series, snapshot.key.date)] = snapshot  # type: ignore[index]
        wanted = {e.title_key: e.title for s in latest.values() for e in s.entries}
        await self.tx.resolve_titles(wanted)
        by_series: dict[SeriesKey, list[Snapshot]] = defaultdict(list)
        for snapshot in sorted(latest.values(), key=lambda s: s.key.date):
            by_series[snapshot.key.series].append(snapshot)  # type: ignore[index]
        states = await self.tx.series_states(list(by_series))
        since = {
            key: charts[0].key.date for key, charts in by_series.items() if states[key].latest is not None
        }
        stored = await self.tx.chart_digests(since) if since else {}
        for key, charts in by_series.items():
            newest = states[key].latest
            for snapshot in charts:
                known = stored.get(key, {}).get(snapshot.key.date)
                if known == digest(snapshot):
                    step.unchanged += 1
                    continue
                day = snapshot.key.date
                before = await self.tx.chart_before(key, day)
                if known is None and before is not None and digest(before) == digest(snapshot):
                    step.unchanged += 1  # the list as it was: not a new version
                    continue
                is_news = news and (newest is None or day >= newest)
                if known is None:
                    await self.tx.add_charts([(snapshot, digest(snapshot))])
                    step.added += 1
                else:
                    await self.tx.replace_chart(snapshot, digest(snapshot))
                    step.replaced += 1
                step.entries += len(snapshot.entries)
                if newest is not None and day < newest:
                    step.backfilled += 1
                newest = day if newest is None or day > newest else newest
                if is_news and before is not None:
                    change = detector.AllTimeChange(
                        snapshot.key, detector.listings(snapshot), detector.listings(before)
                    )
                    found = detector.detect_all_time(change)
                    written = await self.tx.add_milestones(found, scope="chart") if found else []
                    step.milestones.extend(written)
                    if known is not None:  # a corrected version: news it no longer supports is withdrawn
                        titles = {e.title_key for e in (*before.entries, *snapshot.entries)}
                        await self.tx.retract_milestones(key, day, titles, found)
            await self.tx.update_series([SeriesUpdate(key, newest, None)])
        self.report.merge(step)
        return step

    async def _read_charts(self, snapshots: Sequence[Snapshot], *, news: bool) -> _Chunk:
        """What the charts need of the store: titles, series, stored digests, previous ranks, stats."""
        step = IngestReport()
        latest: dict[tuple[SeriesKey, date], Snapshot] = {}
        for snapshot in snapshots:  # the last copy of a chart in a batch wins
            latest[(snapshot.key.series, snapshot.key.date)] = snapshot  # type: ignore[index]
        if not latest:
            return _Chunk(step, [], set())
        by_series: dict[SeriesKey, list[Snapshot]] = defaultdict(list)
        for snapshot in latest.values():
            by_series[snapshot.key.series].append(snapshot)  # type: ignore[index]
        wanted: dict[str, str] = {}
        for snapshot in latest.values():
            for entry in snapshot.entries:
                wanted.setdefault(entry.title_key, entry.title)
        stored_titles = await self.tx.resolve_titles(wanted)
        identity = {key: stored_key for key, (stored_key, _) in stored_titles.items()}
        self.names.update(stored_titles.values())
        for charts in by_series.values():
            charts.sort(key=lambda s: s.key.date)
        states = await self.tx.series_states(list(by_series))
        work = [_SeriesIngest(self, step, states[key], identity, news) for key in by_series]
        await self._classify(work, by_series)
        await self._prefetch(work)
        return _Chunk(step, work, set(latest))

    async def _work_out(self, chunk: _Chunk) -> IngestReport:
        """Stats, records and news of the chunk's charts; everything written but its new charts."""
        for series in chunk.work:
            await series.run()
        await self._write(chunk.work)
        self.report.merge(chunk.step)
        return chunk.step

    async def _classify(
        self, work: list[_SeriesIngest], by_series: Mapping[SeriesKey, list[Snapshot]]
    ) -> None:
        """Split each series' charts into fresh (newer than its newest), late and unchanged ones."""
        since = {
            s.key: by_series[s.key][0].key.date
            for s in work
            if s.latest is not None and by_series[s.key][0].key.date <= s.latest
        }
        stored = await self.tx.chart_digests(since) if since else {}
        for series in work:
            series.classify(by_series[series.key], stored.get(series.key, {}))

    async def _prefetch(self, work: list[_SeriesIngest]) -> None:
        """The reads the fresh charts of every series need, one query each for the whole batch.

        A series with late charts reads its own after writing them (they may change the chart before)."""
        await self.prefetch([s for s in work if s.fresh and not s.late])

    async def prefetch(self, work: list[_SeriesIngest]) -> None:
        before = {s.key: s.fresh[0].key.date for s in work if s.memo is None and s.latest is not None}
        if before:
            previous = await self.tx.ranks_before(before)
            for series in work:
                if series.key in before:
                    series.previous = previous.get(series.key)
        wanted = {s.key: s.stats_to_read() for s in work if not s.is_new}
        wanted = {key: titles for key, titles in wanted.items() if titles}
        if wanted:
            loaded = await self.tx.load_stats(wanted)
            for series in work:
                if series.key in wanted:
                    series.stats.update(loaded.get(series.key, {}))
        await self.need_names(t for s in work if s.news for t in s.names_needed())

    async def need_names(self, keys: Iterable[str]) -> None:
        missing = {k for k in keys if k not in self.names}
        if missing:
            self.names.update(await self.tx.title_names(missing))

    async def _write(self, work: list[_SeriesIngest]) -> None:
        # a new country chart adds to its period's counts; a period with a chart stored late (a
        # backfill, a revision) is counted again from its charts once they are all in
        recount = {period for series in work for period in series.recount}
        tallies = {period: tally for period, tally in self.tallies.items() if period not in recount}
        self.tallies = {}
        if tallies:
            await self.tx.add_country_counts(tallies)
        for s in work:
            if s.dirty:
                await self.keep_stats(s.key, {t: s.stats[t] for t in s.dirty})
        news = [m for s in work for m in s.news_found]
        if news:
            await self.tx.add_milestones(news, scope="chart", new_period=True)
        changed = [s for s in work if s.fresh or s.late]
        if changed:
            await self.tx.update_series([SeriesUpdate(s.key, s.latest, s.record) for s in changed])
        for series in work:
            series.remember()

    # --- country aggregates -------------------------------------------------------------------------

    async def detect_countries(self, group: GroupKey, day: date, source: str) -> list[Milestone]:
        """Aggregate milestones for one complete period of a group; nothing for a backfill or a baseline."""
        await self.add_held()
        inputs = await self.tx.country_inputs(group, day, detector.NO1_COUNTRIES_FLOOR)
        if inputs.newest != day or inputs.reporting is None or inputs.previous_reporting is None:
            return []
        record = None
        if inputs.record is not None:
            held = inputs.record
            record = detector.Record(held.run, held.holder, held.holder_title, held.end)
        service, category, period = group
        change = detector.CountryChange(
            chart=ChartKey(source, service, WORLD, category, period, day),
            counts=inputs.counts,
            previous=inputs.previous,
            best_before=inputs.best_before,
            reporting=inputs.reporting,
            previous_reporting=inputs.previous_reporting,
            titles=inputs.titles,
            record=record,
        )
        found = detector.detect_countries(change)
        if not found:
            return []
        written = await self.tx.add_milestones(found, scope="countries")
        self.report.milestones.extend(written)
        return written

    # --- the poller's bookkeeping -------------------------------------------------------------------

    async def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Committed with the charts: a failure at any step leaves the file to be read again."""
        await self.tx.save_validators(url, etag, last_modified)


class _SeriesIngest:
    """The charts of one series in one batch."""

    def __init__(
        self, batch: Batch, report: IngestReport, state: SeriesState, identity: Mapping[str, str], news: bool
    ) -> None:
        self.batch = batch
        self.tx = batch.tx
        self.report = report
        self.key = state.key
        self.identity = identity
        self.news = news
        self.step = PERIODS[state.key[3]]
        self.is_new = state.is_new
        self.latest = state.latest
        self.record = state.record
        self.version = state.version
        memo = batch.memos.pop(self.key, None)  # back in remember() if still true
        self.memo = memo if memo is not None and memo.version == state.version else None
        self.stats: dict[str, TitleStats] = dict(self.memo.stats) if self.memo else {}
        unsaved = batch.unsaved.get(self.key, {})  # newer than the database's, until written
        self.stats.update((title, unsaved[title]) for title in self.stats.keys() & unsaved.keys())
        self.previous: dict[str, int] | None = self.memo.last_ranks if self.memo else None
        self.dirty: set[str] = set()
        self.fresh: list[Snapshot] = []
        self.fresh_ranks: list[dict[str, int]] = []  # each fresh chart's ranks, by stored identity
        self.late: list[tuple[Snapshot, bool]] = []  # (chart, replaces a stored one)
        self.new_charts: list[tuple[Snapshot, str]] = []
        self.news_found: list[Milestone] = []
        self.recount: set[tuple[GroupKey, date]] = set()  # country periods with a chart stored late
        self.next_memo: _Memo | None = None

    def classify(self, charts: list[Snapshot], stored: Mapping[date, str]) -> None:
        for snapshot in charts:
            known = stored.get(snapshot.key.date)
            if known is not None and known == digest(snapshot):
                self.report.unchanged += 1
            elif self.latest is None or snapshot.key.date > self.latest:
                self.fresh.append(snapshot)
                self.fresh_ranks.append(self.ranks_of(snapshot))
            else:
                self.late.append((snapshot, known is not None))

    def ranks_of(self, snapshot: Snapshot) -> dict[str, int]:
        """Each title's best rank in the chart, under its stored identity, best first."""
        return snapshot.best_ranks(self.identity)

    def stats_to_read(self) -> set[str]:
        """The titles whose stats the fresh charts need and are not known already: those this batch
        changed are taken from what it has not written yet; the rest are to be read."""
        wanted = {t for ranks in self.fresh_ranks for t in ranks}
        wanted.update(self.previous or ())
        wanted.difference_update(self.stats)
        unsaved = self.batch.unsaved.get(self.key)
        if unsaved:
            for title in wanted & unsaved.keys():
                self.stats[title] = unsaved[title]
            wanted.difference_update(unsaved)
        return wanted

    def names_needed(self) -> set[str]:
        needed = set(self.previous or ())
        if self.record is not None:
            needed.add(self.record.holder)
        return needed

    async def run(self) -> None:
        if self.late:
            await self._write_late()
            if self.fresh:
                self.memo, self.previous = None, None
                await self.batch.prefetch([self])
        if self.fresh:
            self._append()

    # --- late charts: backfills and revisions -------------------------------------------------------

    async def _write_late(self) -> None:
        affected: set[str] = set()
        revised_latest: list[tuple[Snapshot, dict[str, int]]] = []
        for snapshot, replaces in self.late:
            old_ranks: dict[str, int] = {}
            if replaces:
                old_ranks = await self.tx.chart_ranks(self.key, snapshot.key.date)
                affected.update(old_ranks)
                await self.tx.replace_chart(snapshot, digest(snapshot))
                self.report.replaced += 1
            else:
                await self.tx.add_charts([(snapshot, digest(snapshot))])
                self.report.added += 1
            self.report.entries += len(snapshot.entries)
            affected.update(self.ranks_of(snapshot))
            if snapshot.key.date == self.latest and self.news:
                revised_latest.append((snapshot, old_ranks))
            else:
                self.report.backfilled += 1
            period = self._country_period(snapshot.key)
            if period is not None:
                self.recount.add(period)
        for snapshot, old_ranks in revised_latest:
            await self._detect_revision(snapshot, old_ranks)
        await self._recompute(affected)

    async def _detect_revision(self, snapshot: Snapshot, old_ranks: dict[str, int]) -> None:
        """A corrected newest chart: detect again against history; stale news is withdrawn."""
        day = snapshot.key.date
        ranks = self.ranks_of(snapshot)
        previous = (await self.tx.ranks_before({self.key: day})).get(self.key)
        titles = set(ranks) | set(previous or {})
        before = await self._fold(titles, until=day)
        after = {t: advance(before.get(t), day, r, self.step) for t, r in ranks.items()}
        record = await self._record_before(day)
        await self.batch.need_names([*titles, *([record.holder] if record else [])])
        found = self._detect(snapshot, ranks, previous, before, after, record)
        written = await self.tx.add_milestones(found, scope="chart") if found else []
        self.report.milestones.extend(written)
        await self.tx.retract_milestones(self.key, day, titles | set(old_ranks), found)

    async def _recompute(self, titles: set[str]) -> None:
        folded = await self._fold(titles, until=None)
        gone = [t for t in titles if t not in folded]
        kept = self.batch.unsaved.get(self.key, {})
        for title in gone:
            self.stats.pop(title, None)
            if kept.pop(title, None) is not None:
                self.batch.unsaved_count -= 1
        self.stats.update(folded)
        await self.batch.keep_stats(self.key, folded)
        await self.batch.save_stats(self.key)  # the record is read from the stats stored
        if gone:
            await self.tx.drop_stats(self.key, gone)
        self.record = await self.tx.run_record(self.key)

    async def _fold(self, titles: Iterable[str], until: date | None) -> dict[str, TitleStats]:
        """Stats from the stored history of these titles in this series (before `until`)."""
        seen = await self.tx.appearances(self.key, set(titles), until)
        result = {}
        for title, appearances in seen.items():
            stats = fold(appearances, self.step)
            if stats is not None:
                result[title] = stats
        return result

    async def _record_before(self, day: date) -> RunRecord | None:
        """The run record as it stood before `day`: runs ending earlier, cut at `day`."""
        best: tuple[int, str | None, date | None] = (0, None, None)
        holder, run, last = None, 0, None
        for when, title in await self.tx.no1_history(self.key, day):
            run = run + 1 if holder == title and last is not None and last + self.step == when else 1
            holder, last = title, when
            if run > best[0]:
                best = (run, title, when)
        if best[1] is None:
            return None
        names = await self.tx.title_names([best[1]])
        return RunRecord(best[0], best[1], names.get(best[1], best[1]), best[2])

    # --- fresh charts: the newest periods, appended in order ----------------------------------------

    def _append(self) -> None:
        """The hot path of every ingest: keep it lean (one pass, stats advanced in memory)."""
        stats, step, news = self.stats, self.step, self.news
        previous = self.previous
        for snapshot, ranks in zip(self.fresh, self.fresh_ranks, strict=True):
            day = snapshot.key.date
            after = {t: advance(stats.get(t), day, r, step) for t, r in ranks.items()}
            if news and previous is not None:  # `stats` is still as it was before this chart
                self.news_found.extend(self._detect(snapshot, ranks, previous, stats, after, self.record))
            stats.update(after)
            record_run = self.record.run if self.record else 0
            for title, title_stats in after.items():
                if title_stats.longest_no1_run > record_run:
                    name = self.batch.names.get(title, title)
                    self.record = RunRecord(
                        title_stats.longest_no1_run, title, name, title_stats.longest_no1_end
                    )
                    record_run = title_stats.longest_no1_run
            self.new_charts.append((snapshot, digest(snapshot)))
            self.report.entries += len(snapshot.entries)
            period = self._country_period(snapshot.key)
            if period is not None:
                self._tally(period, ranks)
            self.dirty.update(ranks)
            previous = ranks
        self.latest = self.fresh[-1].key.date
        self.report.added += len(self.fresh)
        self.report.milestones.extend(self.news_found)
        self.next_memo = _Memo(self.version + 1, previous or {}, {t: stats[t] for t in previous or ()})

    def _detect(
        self,
        snapshot: Snapshot,
        ranks: dict[str, int],
        previous: dict[str, int] | None,
        before: Mapping[str, TitleStats],
        after: dict[str, TitleStats],
        record: RunRecord | None,
    ) -> list[Milestone]:
        run_record = None
        if record is not None:
            run_record = detector.Record(record.run, record.holder, record.holder_title, record.end)
        change = detector.ChartChange(
            chart=snapshot.key,
            ranks=ranks,
            previous_ranks=previous,
            before=before,
            after=after,
            titles=self.batch.names,
            complete=snapshot.complete,
            run_record=run_record,
        )
        return detector.detect_chart(change)

    def _country_period(self, key: ChartKey) -> tuple[GroupKey, date] | None:
        """The period of the country charts a chart belongs to (None: a worldwide chart), noted as touched."""
        if key.region == WORLD:
            return None
        self.report.country_periods[(key.service, key.category, key.period, key.date)] = key.source
        return (key.service, key.category, key.period), key.date

    def _tally(self, period: tuple[GroupKey, date], ranks: dict[str, int]) -> None:
        """A country chart stored for the first time: what it adds to its period's counts."""
        tally = self.batch.tallies.get(period)
        if tally is None:
            tally = self.batch.tallies[period] = CountryTally()
        tally.charts += 1
        tally.top10.update(ranks.keys())
        for title, rank in ranks.items():  # best first: No. 1, if anyone, is the first
            if rank == 1:
                tally.no1[title] += 1
            break

    def remember(self) -> None:
        """Keep this series' state for the next batch: what its newest chart left, or what it had."""
        if self.next_memo is not None:
            self.batch.memos[self.key] = self.next_memo
        elif self.memo is not None and not self.late:
            self.batch.memos[self.key] = self.memo  # nothing written: the same version still
