"""The store, cut to its use cases: what the rest of chartbot may ask of a database.

Five interfaces, all async, each a narrow face of one store:

- `ChartHistory` opens a `HistoryWrite`: one transaction of batch-shaped reads and writes that the
  ingest service (`bot.ingest`) drives. Charts, running stats, records, country counts and milestones
  change only through it, and only one history write runs at a time across every process.
- `ChartQueries`: standings, charts, milestones, rank histories and the title catalogue (`bot.views`).
- `SourceBook`: how each source fares, HTTP validators, what is stored already.
- `GuildConfig`: each server's announcement policy, watches and channel health (broken for good, or
  blocked while a permission is missing).
- `DeliveryQueue`: milestones turned into deliveries, claimed, and their outcomes recorded.
- `ClusterBook`: the bot processes serving this database, as `chartbot status` shows them.

A running bot process also joins the cluster of processes sharing its database (`ClusterLink`, from
`bot.store.join_cluster`): it holds jobs that one process does at a time (polling, planning), hears the
others' notices (new deliveries, changed settings, changed history) and tells how it fares.

Two engines implement them: SQLite (`bot.store.sqlite`, the embedded default) and PostgreSQL
(`bot.store.postgres`). Nothing outside the engines sees SQL, a driver or an engine module: callers
import `bot.store` and get a `Store` from `open_store`.

A bot process also claims its database for as long as it runs (`ProcessClaim`, from
`bot.store.claim_process`): SQLite serves one bot process per file, PostgreSQL any number.

Invariants are the database's own, in both engines: a milestone is unique by (title, chart, date,
kind, detail) and written with INSERT … ON CONFLICT; every id is assigned by the database; a watch
starts at the high-water mark of milestone ids, taken when no history write is in flight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from bot.announcer.jobs import Job, Outcome, PlanReport, PostingHalt
from bot.announcer.policy import Policy, Watch
from bot.model import Milestone, Snapshot
from bot.stats import TitleStats
from bot.views import ChartView, HealthRow, RankHistory, Series, SeriesKey, StoredMilestone, TitleReport

GroupKey = tuple[str, str, str]  # (service, category, period): the country charts of one kind


# --- errors -----------------------------------------------------------------------------------------


class StoreError(Exception):
    """Something went wrong in the database. The message is fit for a log line."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or opened right now (a missing server, a closed store)."""


class StoreBusy(DatabaseUnavailable):
    """The database is locked by another writer for longer than we wait: try again soon."""


class SchemaError(StoreError):
    """The database's schema is newer than this chartbot, or not chartbot's at all."""


class StoreInUse(StoreError):
    """Another process holds what this one needs alone (e.g. a SQLite file already served by a bot)."""


# --- what crosses the seam on the write path ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The longest No. 1 run of a chart series, and who holds it."""

    run: int
    holder: str  # title key
    holder_title: str
    end: date | None


@dataclass(frozen=True, slots=True)
class SeriesState:
    """A series as stored: its newest period, its run record, and a version bumped by every write."""

    key: SeriesKey
    latest: date | None
    record: RunRecord | None
    version: int
    is_new: bool  # created in this transaction: nothing is stored for it yet


@dataclass(frozen=True, slots=True)
class SeriesUpdate:
    key: SeriesKey
    latest: date | None
    record: RunRecord | None


@dataclass(slots=True)
class CountryTally:
    """What country charts stored for the first time add to one period of a group: how many charts,
    and per title (its stored key) in how many of them it is No. 1 and in the top 10."""

    charts: int = 0
    no1: Counter[str] = field(default_factory=Counter)
    top10: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class CountryInputs:
    """What the country detector needs of one period of a group, and of the period before it."""

    newest: date | None  # the group's newest counted period
    reporting: int | None  # country charts counted at the period (None: not counted)
    previous_reporting: int | None
    counts: Mapping[str, tuple[int, int]]  # title key -> (countries at No. 1, countries in the top 10)
    previous: Mapping[str, tuple[int, int]]
    best_before: Mapping[str, int]  # most countries at No. 1 before, for titles at or above the floor
    record: RunRecord | None  # most countries at No. 1 in one period before (`run` holds the count)
    titles: Mapping[str, str]  # display titles of every title above


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """One file or page read by a poll cycle. `pending`: set or clear the read waiting for a second one."""

    chart: str
    ok: bool
    rows: int | None = None
    error: str | None = None
    chart_date: date | None = None  # a chart of this date was accepted (stored, or known unchanged)
    pending: tuple[date, str] | None = None
    clear_pending: bool = False


@dataclass(frozen=True, slots=True)
class StoreStatus:
    engine: str  # "sqlite" or "postgresql"
    location: str  # a file path, or the URL without its password
    schema_version: int
    counts: Mapping[str, int] = field(default_factory=dict)  # table -> rows


# --- the cluster ------------------------------------------------------------------------------------

POLL, PLAN = "poll", "plan"
JOBS = (POLL, PLAN)
"""Jobs one process of the cluster does at a time: polling the sources, planning deliveries."""

# Notices, sent by the store in the transaction that made the change (a notice is only heard once its
# change is visible): (topic, detail).
HISTORY_CHANGED = "history"  # charts were stored (detail: "milestones" when new news came with them)
DELIVERIES_PLANNED = "deliveries"  # new deliveries, or news joined to waiting ones (detail: when the
# first of them is due, in seconds since the epoch)
SETTINGS_CHANGED = "settings"  # a server's settings or watches (detail: "guild" or "guild channel")
RECONNECTED = "reconnected"  # heard from the link itself: notices may have been missed meanwhile

Notice = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class ShardScope:
    """The shards a process posts for, of `count`: a server belongs to shard (guild_id >> 22) % count."""

    ids: frozenset[int]
    count: int

    def owns(self, guild_id: int) -> bool:
        return (guild_id >> 22) % self.count in self.ids


@dataclass(frozen=True, slots=True)
class MemberReport:
    """What a process tells the cluster about itself at each heartbeat."""

    name: str  # host:pid
    shard_ids: tuple[int, ...]  # empty: not connected to Discord yet
    shard_count: int
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """A live process of the cluster, as `chartbot status` shows it."""

    id: int
    name: str
    shard_ids: tuple[int, ...]
    shard_count: int
    jobs: tuple[str, ...]  # of `JOBS`, held now
    started_at: datetime
    seen_at: datetime
    queue: int  # deliveries of its shards waiting to be posted
    last_post: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class ClusterLink(Protocol):
    """A bot process's membership of the cluster serving one database, for as long as it runs.

    On PostgreSQL: a connection of its own (not the store's pool), on which the process holds an
    advisory lock for each job it does, and one that says it is alive; if the process dies (even by
    SIGKILL) its connection ends and the server lets the locks go, so another process takes the jobs
    over. It listens for notices there, and reconnects when the database comes back (the jobs are then
    held again only if no other process took them meanwhile). On SQLite (one process per file) the
    process holds every job and hears nothing: every change is its own.
    """

    @property
    def member_id(self) -> int | None:
        """This process's number in the cluster (None: not registered yet, or no cluster)."""
        ...

    async def hold(self, job: str) -> bool:
        """Keep the job (if held: is the connection still there?) or take it if no process holds it.
        DatabaseUnavailable when the database cannot be reached: then no job is held."""
        ...

    async def release(self, job: str) -> None: ...

    def held(self) -> frozenset[str]:
        """The jobs held as far as the link knows (a lost connection empties it at once)."""
        ...

    async def heartbeat(self, report: MemberReport) -> None:
        """Tell the cluster how this process fares (registers it on the first call)."""
        ...

    def subscribe(self, callback: Notice) -> None:
        """`callback(topic, detail)` for every notice (another process's, or this one's own)."""
        ...

    def on_lost(self, callback: Callable[[], None]) -> None:
        """`callback()` as soon as the connection is lost (every job is lost with it)."""
        ...

    async def close(self) -> None:
        """Leave the cluster: jobs released, the process no longer listed."""
        ...


class ClusterBook(Protocol):
    async def members(self) -> list[MemberStatus]:
        """The live processes of the cluster (none on an engine that serves one process)."""
        ...


# --- the interfaces -----------------------------------------------------------------------------------


class HistoryWrite(Protocol):
    """One history transaction. Titles are named by their keys; dates are `date`s.

    Reads see this transaction's own writes. Leaving the `async with` commits; an exception rolls
    everything back, so nothing of a failed batch is ever stored.
    """

    # titles
    async def resolve_titles(self, names: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """Store new titles (key -> display title); answer each key's stored identity and display
        title: the key itself, or for a title cut short with "…" the one stored title it begins. A full
        title whose cut-short form was stored first lends that title its full display name."""
        ...

    async def title_names(self, keys: Collection[str]) -> dict[str, str]: ...

    # series
    async def series_states(self, keys: Collection[SeriesKey]) -> dict[SeriesKey, SeriesState]:
        """Each series as stored; missing ones are created (`is_new`)."""
        ...

    async def update_series(self, updates: Sequence[SeriesUpdate]) -> None:
        """New newest dates and run records; bumps each series' version."""
        ...

    # charts
    async def chart_digests(self, since: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[date, str]]:
        """The stored charts of each series from a date on: date -> content digest."""
        ...

    async def ranks_before(self, before: Mapping[SeriesKey, date]) -> dict[SeriesKey, dict[str, int]]:
        """Each series' last chart before a date (P-1, or older across a gap): title -> best rank.
        Series without such a chart are left out."""
        ...

    async def chart_ranks(self, series: SeriesKey, day: date) -> dict[str, int]: ...

    async def chart_before(self, series: SeriesKey, before: date) -> Snapshot | None:
        """The last chart stored before a date, whole (entries and figures), or None."""
        ...

    async def add_charts(self, charts: Sequence[tuple[Snapshot, str]]) -> None:
        """New charts with their entries (snapshot, digest)."""
        ...

    async def replace_chart(self, snapshot: Snapshot, digest: str) -> None:
        """A revised chart: its entries replaced, its digest and source updated."""
        ...

    # running stats
    async def load_stats(
        self, wanted: Mapping[SeriesKey, Collection[str]]
    ) -> dict[SeriesKey, dict[str, TitleStats]]:
        """Stored stats of these titles in these series (titles without stats are left out)."""
        ...

    async def save_stats(self, rows: Sequence[tuple[SeriesKey, str, TitleStats]]) -> None: ...

    async def drop_stats(self, series: SeriesKey, titles: Collection[str]) -> None: ...

    async def appearances(
        self, series: SeriesKey, titles: Collection[str], until: date | None
    ) -> dict[str, list[tuple[date, int]]]:
        """Each title's best rank on every date it charted in the series (before `until`), in date order."""
        ...

    async def no1_history(self, series: SeriesKey, before: date) -> list[tuple[date, str]]:
        """Who was No. 1 on each stored date of the series before `before`, in date order."""
        ...

    async def run_record(self, series: SeriesKey) -> RunRecord | None:
        """The longest No. 1 run among the series' stored stats (ties: the earliest)."""
        ...

    # country aggregates
    async def count_countries(self, periods: Iterable[tuple[GroupKey, date]]) -> None:
        """Recount, for each period of a group, each title's countries at No. 1 and in the top 10."""
        ...

    async def add_country_counts(self, tallies: Mapping[tuple[GroupKey, date], CountryTally]) -> None:
        """Add to each period's counts what its charts stored for the first time contribute. A chart
        that replaced another, or was stored without a tally, needs `count_countries` instead."""
        ...

    async def country_inputs(self, group: GroupKey, day: date, floor: int) -> CountryInputs: ...

    # the outbox
    async def add_milestones(
        self, found: Sequence[Milestone], *, scope: str, new_period: bool = False
    ) -> list[Milestone]:
        """Write milestones to the outbox, each once (the database keeps them unique). A milestone
        already there with other figures is revised (and pending again unless it was delivered); one
        that was withdrawn comes back. Returns the ones that are new or changed.

        `new_period`: the milestones of periods never judged before, so none can be stored yet (the
        engine may skip looking; the unique key still holds)."""
        ...

    async def retract_milestones(
        self, series: SeriesKey, day: date, titles: Collection[str], keep: Sequence[Milestone]
    ) -> int:
        """Withdraw the chart news of these titles on that date, but for the milestones in `keep`."""
        ...

    # the poller's bookkeeping, committed with the charts it led to
    async def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None: ...


class ChartHistory(Protocol):
    def write(self, read: int | None = None) -> AbstractAsyncContextManager[HistoryWrite]:
        """A history transaction; waits while another one (in any process) is in flight.

        `read`: the read (`SourceBook.begin_read`) whose data this writes; its milestones carry it, so a
        watch made while that read was in flight never gets them. None: a read begun now."""
        ...


class ChartQueries(Protocol):
    async def title_report(self, title_key: str, on: date | None = None) -> TitleReport | None: ...

    async def title_catalog(self) -> list[tuple[str, str, int]]:
        """(title_key, title, periods in any top 10) of every title: the fuzzy index is built from it."""
        ...

    async def titles_by_prefix(self, prefix: str, limit: int = 25) -> list[tuple[str, str]]: ...

    async def find_series(
        self,
        service: str | None = None,
        region: str | None = None,
        category: str | None = None,
        period: str | None = None,
    ) -> list[Series]: ...

    async def chart_view(self, series: Series, on: date | None = None) -> ChartView | None: ...

    async def chart_dates(self, series: Series) -> list[date]:
        """Every stored date of a chart, oldest first (for paging through periods)."""
        ...

    async def milestones(
        self,
        *,
        title_key: str | None = None,
        since: date | None = None,
        statuses: tuple[str, ...] = ("pending", "sent", "skipped"),
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StoredMilestone]: ...

    async def rank_history(
        self,
        title_key: str,
        *,
        region: str | None = None,
        category: str | None = None,
        until: date | None = None,
        days: int = 365,
        limit: int = 5,
        prefer: Sequence[str] = (),
    ) -> list[RankHistory]: ...


class SourceBook(Protocol):
    async def begin_read(self, source: str) -> int:
        """A read of a source begins (a poll cycle, an import): its number, in the order reads began.
        What it stores is news only to watches made before it began."""
        ...

    async def health(self, source: str | None = None) -> list[HealthRow]: ...

    async def record_reads(self, source: str, outcomes: Iterable[ReadOutcome], at: datetime) -> None: ...

    async def record_cycle(
        self,
        source: str,
        at: datetime,
        *,
        healthy: bool | None,
        note: str | None,
        success: bool,
        error: str | None = None,
        rows: int | None = None,
    ) -> None: ...

    async def unchanged(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """For each chart: is the very same chart stored already?"""
        ...

    async def latest_dates(self, source: str, period: str) -> dict[str, date]: ...

    async def reporting(self, service: str, period: str, day: date) -> dict[str, int]: ...

    async def get_validators(self, url: str) -> tuple[str | None, str | None] | None: ...

    async def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None: ...


class GuildConfig(Protocol):
    async def policy(self, guild_id: int) -> Policy: ...

    async def update_settings(self, guild_id: int, **changes: Any) -> Policy:
        """Change some of a server's settings, the others kept: `channel_id`, `regions`, `events`,
        `digest`, `mention_role_id`, `language` (of its posts; None: the server's own),
        `server_language` (the server's own, from Discord; None: English) and `publish`. Returns the
        policy as stored. TypeError for another name, ValueError for a digest mode or a language
        chartbot does not have."""
        ...

    async def add_watch(
        self, guild_id: int, target: str, title: str, channel_id: int = 0
    ) -> tuple[Watch, bool]:
        """Follow a title (or `*`) in a channel (0: the server's). Returns (watch, created)."""
        ...

    async def remove_watches(self, guild_id: int, target: str, channel_id: int | None = None) -> int: ...

    async def watches(self, guild_id: int) -> list[Watch]: ...

    async def watched_titles(self, guild_id: int) -> list[tuple[str, str]]: ...

    async def broken_channels(self, guild_id: int) -> dict[int, str]:
        """channel id -> why posting there failed for good (Discord answered 403/404)."""
        ...

    async def mark_broken(self, guild_id: int, channel_id: int, reason: str) -> int:
        """A channel Discord refuses posts in: remember why, and fail its queued deliveries (how many)."""
        ...

    async def clear_broken(self, guild_id: int, channel_id: int) -> bool:
        """Forget a channel's health (broken and blocked alike): an admin chose it again."""
        ...

    async def block_channel(self, guild_id: int, channel_id: int, reason: str) -> None:
        """The bot lacks a permission in a channel now (`reason`: "missing Embed Links"): its deliveries
        stay pending - not failed - and are not handed out by `DeliveryQueue.due_jobs` until
        `unblock_channel`. Blocking again updates the reason and keeps the first time."""
        ...

    async def unblock_channel(self, guild_id: int, channel_id: int) -> bool:
        """The permission is back: the channel's deliveries are due again. False if it was not blocked."""
        ...

    async def blocked_channels(self, guild_id: int) -> dict[int, str]:
        """channel id -> the permission this server's channel waits for."""
        ...

    async def blocked_everywhere(self) -> dict[tuple[int, int], str]:
        """(guild id, channel id) -> reason, for every blocked channel of every server (the announcer
        re-checks them each round)."""
        ...

    async def last_errors(self, guild_id: int) -> dict[int, str]: ...


class DeliveryQueue(Protocol):
    async def plan(
        self, *, hold: float = 0.0, digest_hold: float = 0.0, settle: float = 0.0, limit: int = 20_000
    ) -> PlanReport: ...

    async def flag_edits(self, changed_since: datetime) -> int: ...

    async def due_jobs(
        self,
        *,
        limit: int,
        skip: Iterable[int] = (),
        at: datetime | None = None,
        shards: ShardScope | None = None,
        member: int | None = None,
    ) -> list[Job]:
        """Deliveries due at `at` (default: now), oldest due first, but those in `skip` and those of
        blocked channels: to send ('planned'), to look for ('sending'), to edit ('sent' with an edit
        due: `Job.edit`), to publish ('sent' with publishing 'pending' and `publish_at` reached:
        `Job.publish` is 'pending'; a publishing not due yet reads as None). `Job.publishes`: the
        server's `publish` setting now; `Job.language`: its server's post language (the one chosen,
        else the server's own, else English).

        `shards`: only those of servers on these shards (None: every server). `member`: the process
        asking (`ClusterLink.member_id`); a delivery another live process claimed is its own, not due
        here (one claimed by a process that died is, to be looked for)."""
        ...

    async def begin_sending(self, ids: Sequence[int], *, member: int | None = None) -> list[int]:
        """Claim deliveries before their POST ('sending', by `member`): the ids claimed, in order.

        A delivery is claimed only when still 'planned', or 'sending' and claimed by this member, by
        none, or by a process no longer alive; rows another claim holds right now are skipped (never
        waited for), so two processes never take one delivery."""
        ...

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """A batch of outcomes in one transaction. An outcome's `publish` (when not None) and
        `publish_at` replace the delivery's publishing state and time."""
        ...

    async def open_work(self) -> int:
        """Pending milestones and unfinished deliveries (to send, to edit, to publish): zero when
        nothing is left to do."""
        ...

    async def halt(self, reason: str) -> None:
        """Posting stopped for the whole bot (Discord rejected its token): kept, with the time it
        first stopped, until `resume()`; `chartbot status` shows it."""
        ...

    async def resume(self) -> None:
        """Forget a stop (the bot started with a token Discord accepts)."""
        ...

    async def halted(self) -> PostingHalt | None: ...


class TableRows(Protocol):
    """Every table read in one consistent snapshot, in the neutral form of `bot.store.catalog`."""

    def rows(self, table: str, *, batch: int = 5_000) -> AsyncIterator[list[tuple]]:
        """The table's rows in its key order, `batch` at a time, as `catalog.TABLES` describes them."""
        ...

    async def count(self, table: str) -> int: ...


class TableLoad(Protocol):
    """Rows written back in one transaction: all of them, or (on any error) none.

    No history write, planning round or new watch runs beside it; ids are kept as given, and the
    database goes on assigning new ones after the highest. A new database already holds a row of its
    own (read 1, the history before reads were counted): `clear()` before writing a whole copy."""

    async def clear(self) -> None:
        """Empty every table (in reverse dependency order)."""
        ...

    async def write(self, table: str, rows: Sequence[tuple]) -> None:
        """Add rows to a table, in the neutral form (tables in `catalog.TABLES` order)."""
        ...

    async def count(self, table: str) -> int:
        """Rows in the table as this transaction sees it (to verify a copy before it commits)."""
        ...


class ProcessClaim(Protocol):
    """What a bot process (`chartbot run`) holds on its database for as long as it runs.

    Each engine has a `claim_process(location, *, shard_subset)` that `bot.store.claim_process` calls.
    An engine that serves one bot process at a time (SQLite) refuses a second claim on the same database
    with `StoreInUse`, and refuses a process that runs only some of the bot's shards (`shard_subset`: the
    others would run in another process), each with one line that names PostgreSQL. The claim is not tied
    to an open `Store` (the bot closes and reopens its store while it runs); it ends with `release()` or
    with the process, however that ends (the operating system lets go of it, even after a SIGKILL).
    Commands that may run beside the bot (import, rank, top, status, …) do not claim.
    """

    def release(self) -> None: ...


class Store(Protocol):
    """An open database: the six interfaces, and its own upkeep."""

    engine: str
    location: str
    history: ChartHistory
    charts: ChartQueries
    sources: SourceBook
    guilds: GuildConfig
    deliveries: DeliveryQueue
    cluster: ClusterBook

    async def close(self) -> None: ...

    async def status(self) -> StoreStatus: ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Maintenance and tests only: a read-only query with `?` placeholders. Values come back
        alike from both engines: dates and moments as ISO text, whole numbers as int."""
        ...

    def read_tables(self) -> AbstractAsyncContextManager[TableRows]:
        """Every table's rows, from one snapshot (for a copy to another engine)."""
        ...

    def load_tables(self) -> AbstractAsyncContextManager[TableLoad]:
        """Write rows back, in one transaction (for a copy from another engine)."""
        ...

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...
