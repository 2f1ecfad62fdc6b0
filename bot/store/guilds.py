"""Servers' announcement settings, watches, channel health and deliveries: the announcer's SQL.

Plain functions of a sqlite3 connection, run on the database thread with `Store.run(fn, ...)`. Every
query about a server's configuration is keyed by its guild id, so one server can never read or change
another's. A delivery is one message: it is written ('planned') before anything is posted, marked
'sending' before the POST and 'sent' with the message id after it, so a crash or a restart can tell
what may already be in the channel (see cogs/announce.py, which reconciles 'sending' rows).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import delivery
from bot.delivery import ALL, Pending, Policy, Watch
from bot.model import Milestone
from bot.store import transaction
from bot.store.ingest import chunks, marks
from bot.store.queries import MILESTONE_COLUMNS, milestone_from_row

PLANNED, SENDING, SENT, FAILED = "planned", "sending", "sent", "failed"


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Timestamps of these tables: ISO, UTC, milliseconds (so they sort as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _seconds(moment: datetime) -> str:
    """The outbox's own timestamp format (seconds), for comparisons with its columns."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- settings ---------------------------------------------------------------------------------------


def get_policy(conn: sqlite3.Connection, guild_id: int) -> Policy:
    row = conn.execute(
        "SELECT channel_id, regions, events, digest, mention_role_id FROM guild_settings WHERE guild_id = ?",
        (guild_id,),
    ).fetchone()
    return _policy(guild_id, row) if row else Policy(guild_id)


def _policy(guild_id: int, row: Sequence) -> Policy:
    channel_id, regions, events, digest, role = row
    region_set: frozenset[str] | None = frozenset(delivery.DEFAULT_REGIONS)
    if regions is not None:
        codes = json.loads(regions)
        region_set = None if codes == [ALL] else frozenset(codes)
    return Policy(
        guild_id=guild_id,
        channel_id=channel_id,
        regions=region_set,
        events=frozenset(json.loads(events)) if events is not None else delivery.DEFAULT_EVENTS,
        digest=digest,
        mention_role_id=role,
    )


SETTINGS = ("channel_id", "regions", "events", "digest", "mention_role_id")


def update_settings(conn: sqlite3.Connection, guild_id: int, **changes: Any) -> Policy:
    """Change some of a server's settings (`SETTINGS`; the others keep their values). Returns the policy."""
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    if changes.get("digest", "instant") not in delivery.DIGEST_MODES:
        raise ValueError(f"digest must be one of {delivery.DIGEST_MODES}")
    with transaction(conn):
        values = replace(get_policy(conn, guild_id), **changes)
        region_list = [ALL] if values.regions is None else sorted(values.regions)
        at = stamp(now())
        conn.execute(
            "INSERT INTO guild_settings (guild_id, channel_id, regions, events, digest, mention_role_id, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
            "channel_id = excluded.channel_id, regions = excluded.regions, events = excluded.events, "
            "digest = excluded.digest, mention_role_id = excluded.mention_role_id, "
            "updated_at = excluded.updated_at",
            (
                guild_id,
                values.channel_id,
                json.dumps(region_list),
                json.dumps(sorted(values.events)),
                values.digest,
                values.mention_role_id,
                at,
                at,
            ),
        )
        return get_policy(conn, guild_id)


# --- watches ----------------------------------------------------------------------------------------

_WATCH_COLUMNS = "id, guild_id, target, title, channel_id, since, since_keys"


def _watch(row: Sequence) -> Watch:
    keys = row[6]  # almost always none: skip the JSON parse, a plan reads every watch
    return Watch(*row[:6], since_keys=frozenset(json.loads(keys)) if keys != "[]" else frozenset())


def add_watch(
    conn: sqlite3.Connection, guild_id: int, target: str, title: str, channel_id: int = 0
) -> tuple[Watch, bool]:
    """Follow `target` (a title key, or `*`) in a channel (0: the server's default). (watch, created).

    The watch starts now: milestones already in the outbox are never posted to it (re-adding a watch
    that exists keeps its start, so it never replays anything either).
    """
    with transaction(conn):
        since = stamp(now())
        already = [
            key
            for (key,) in conn.execute(
                "SELECT key FROM outbox WHERE status = 'pending' AND substr(created_at, 1, 19) = ?",
                (since[:19],),
            )
        ]
        created = conn.execute(
            "INSERT INTO watches (guild_id, target, title, channel_id, since, since_keys, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, target, channel_id) DO NOTHING",
            (guild_id, target, title, channel_id, since, json.dumps(sorted(already)), since),
        ).rowcount
        row = conn.execute(
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = ? AND target = ? AND channel_id = ?",
            (guild_id, target, channel_id),
        ).fetchone()
    return _watch(row), bool(created)


def remove_watches(
    conn: sqlite3.Connection, guild_id: int, target: str, channel_id: int | None = None
) -> int:
    """Stop following `target` in this server (in one channel, or everywhere). Returns how many ended."""
    sql, params = "DELETE FROM watches WHERE guild_id = ? AND target = ?", [guild_id, target]
    if channel_id is not None:
        sql += " AND channel_id = ?"
        params.append(channel_id)
    with transaction(conn):
        return conn.execute(sql, params).rowcount


def list_watches(conn: sqlite3.Connection, guild_id: int) -> list[Watch]:
    rows = conn.execute(
        f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = ? ORDER BY target = '*' DESC, title, id",
        (guild_id,),
    )
    return [_watch(row) for row in rows]


def watched_titles(conn: sqlite3.Connection, guild_id: int) -> list[tuple[str, str]]:
    """(target, title) of this server's watches, for autocomplete of /watch remove."""
    return conn.execute(
        "SELECT DISTINCT target, title FROM watches WHERE guild_id = ? ORDER BY title", (guild_id,)
    ).fetchall()


# --- channel health ---------------------------------------------------------------------------------


def broken_channels(conn: sqlite3.Connection, guild_id: int) -> dict[int, str]:
    """channel id -> why posting there failed for good, for this server."""
    rows = conn.execute(
        "SELECT channel_id, broken FROM channel_health WHERE guild_id = ? AND broken IS NOT NULL", (guild_id,)
    )
    return dict(rows.fetchall())


def mark_broken(conn: sqlite3.Connection, guild_id: int, channel_id: int, reason: str) -> int:
    """A channel the bot cannot post in (403, 404): remember why, and stop its queued messages.

    Returns how many queued deliveries were given up.
    """
    at = stamp(now())
    with transaction(conn):
        conn.execute(
            "INSERT INTO channel_health (guild_id, channel_id, broken, broken_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (guild_id, channel_id) DO UPDATE SET broken = excluded.broken, "
            "broken_at = excluded.broken_at",
            (guild_id, channel_id, reason, at),
        )
        conn.execute(
            "UPDATE deliveries SET edit_needed = 0, last_error = ?, updated_at = ? "
            "WHERE guild_id = ? AND channel_id = ? AND edit_needed = 1",
            (f"not corrected: channel broken: {reason}", at, guild_id, channel_id),
        )
        return conn.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?, updated_at = ? "
            "WHERE guild_id = ? AND channel_id = ? AND state IN ('planned', 'sending')",
            (f"channel broken: {reason}", at, guild_id, channel_id),
        ).rowcount


def clear_broken(conn: sqlite3.Connection, guild_id: int, channel_id: int) -> bool:
    """An admin fixed or re-chose the channel: try it again from now on."""
    with transaction(conn):
        return bool(
            conn.execute(
                "DELETE FROM channel_health WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
            ).rowcount
        )


# --- planning: pending milestones -> deliveries -----------------------------------------------------


@dataclass
class PlanReport:
    stale: int = 0  # pending milestones of a period older than the newest: skipped, never posted
    planned: int = 0  # milestones handed to at least one channel
    unwanted: int = 0  # pending milestones no channel wants
    deliveries: int = 0  # new deliveries (messages) created
    joined: int = 0  # items added to a delivery not sent yet (the same title and period)


def skip_stale(conn: sqlite3.Connection, at: str) -> int:
    """Pending milestones of a chart whose newer period is stored are old news: mark them skipped.

    After downtime only the newest period is posted, so a restart never floods the channels. The
    newest period of a chart is its series' latest date; of a country aggregate, its group's.
    """
    return conn.execute(
        "UPDATE outbox SET status = 'skipped', updated_at = ? WHERE status = 'pending' AND date < ("
        " CASE WHEN scope = 'countries' THEN (SELECT max(p.date) FROM country_periods p"
        "   WHERE p.service = outbox.service AND p.category = outbox.category AND p.period = outbox.period)"
        " ELSE (SELECT s.latest_date FROM series s WHERE s.service = outbox.service"
        "   AND s.region = outbox.region AND s.category = outbox.category AND s.period = outbox.period) END)",
        (at,),
    ).rowcount


_MILESTONE_COLUMNS = f"o.created_at, {MILESTONE_COLUMNS}, o.status, o.revision, o.id"


def _milestone(row: Sequence) -> Milestone:
    """From `SELECT _MILESTONE_COLUMNS`: created_at first, then the shared columns."""
    return milestone_from_row(row[1:])


def pending_milestones(conn: sqlite3.Connection, created_before: str, limit: int) -> list[Pending]:
    rows = conn.execute(
        f"SELECT {_MILESTONE_COLUMNS} FROM outbox o JOIN titles t ON t.id = o.title_id "
        "WHERE o.status = 'pending' AND o.created_at <= ? ORDER BY o.created_at, o.key LIMIT ?",
        (created_before, limit),
    )
    return [Pending(row[0], _milestone(row), outbox_id=row[16], revision=row[15]) for row in rows]


def all_watches(conn: sqlite3.Connection) -> tuple[list[Watch], dict[int, Policy], set[tuple[int, int]]]:
    """Every watch, every server's policy, every broken channel: what routing needs."""
    watches = [_watch(row) for row in conn.execute(f"SELECT {_WATCH_COLUMNS} FROM watches")]
    policies = {
        row[0]: _policy(row[0], row[1:])
        for row in conn.execute(
            "SELECT guild_id, channel_id, regions, events, digest, mention_role_id FROM guild_settings"
        )
    }
    broken = set(conn.execute("SELECT guild_id, channel_id FROM channel_health WHERE broken IS NOT NULL"))
    return watches, policies, broken


def plan(
    conn: sqlite3.Connection,
    *,
    hold: float = 0.0,
    digest_hold: float = 0.0,
    settle: float = 0.0,
    limit: int = 20_000,
) -> PlanReport:
    """Turn pending milestones into deliveries, in one transaction.

    A milestone joins the channel's unsent delivery of the same group (title and period, or the whole
    period for a digest) or starts one, due `hold` (digest: `digest_hold`) seconds from now; each join
    pushes that time back, so a burst of news becomes one message. `settle`: leave milestones younger
    than this for the next round (the rest of their batch may still be arriving).
    """
    report = PlanReport()
    with transaction(conn):
        moment = now()  # once the write lock is held: an ingest that held it is committed and visible
        at = stamp(moment)
        report.stale = skip_stale(conn, _seconds(moment))
        pending = pending_milestones(conn, _seconds(moment - timedelta(seconds=settle)), limit)
        if not pending:
            return report
        watches, policies, broken = all_watches(conn)
        routes = delivery.route(pending, watches, policies, broken)
        routed = {r.milestone_key for r in routes}
        _write_routes(conn, routes, {p.milestone.key: p for p in pending}, moment, hold, digest_hold, report)
        statuses = [("sent" if p.milestone.key in routed else "skipped", at, p.outbox_id) for p in pending]
        conn.executemany("UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?", statuses)
        report.planned = len(routed)
        report.unwanted = len(pending) - len(routed)
    return report


def _write_routes(
    conn: sqlite3.Connection,
    routes: list[delivery.Route],
    pending: Mapping[str, delivery.Pending],
    moment: datetime,
    hold: float,
    digest_hold: float,
    report: PlanReport,
) -> None:
    """One statement per kind of write, not per channel: a fan-out plans thousands of deliveries."""
    groups: dict[tuple[int, int, str], list[delivery.Route]] = defaultdict(list)
    for r in routes:
        groups[(r.guild_id, r.channel_id, r.group_key)].append(r)
    at = stamp(moment)
    unsent = _unsent_deliveries(conn, {key for _, _, key in groups})
    # Ids chosen here (as SQLite would: one past the largest) so that the items can name them.
    next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM deliveries").fetchone()[0]
    due_at = {
        digest: stamp(moment + timedelta(seconds=digest_hold if digest else hold)) for digest in (False, True)
    }
    joins, starts, items = [], [], []
    for (guild_id, channel_id, key), members in groups.items():
        due = due_at[members[0].digest]
        delivery_id = unsent.get((channel_id, key))
        if delivery_id is not None:
            joins.append((due, at, delivery_id))
            report.joined += len(members)
        else:
            delivery_id, next_id = next_id, next_id + 1
            mention = members[0].mention_role_id
            starts.append((delivery_id, guild_id, channel_id, key, new_nonce(), mention, due, at, at))
            report.deliveries += 1
        for m in members:
            milestone = pending[m.milestone_key]
            items.append((channel_id, m.milestone_key, milestone.outbox_id, delivery_id, milestone.revision))
    conn.executemany("UPDATE deliveries SET due_at = ?, updated_at = ? WHERE id = ?", joins)
    conn.executemany(
        "INSERT INTO deliveries (id, guild_id, channel_id, group_key, nonce, mention_role_id, due_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        starts,
    )
    # A (channel, milestone) already delivered keeps its first delivery: never posted twice.
    conn.executemany(
        "INSERT INTO delivery_items (channel_id, milestone_key, milestone_id, delivery_id, revision) "
        "VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (channel_id, milestone_key) DO NOTHING",
        items,
    )


def _unsent_deliveries(conn: sqlite3.Connection, group_keys: Iterable[str]) -> dict[tuple[int, str], int]:
    """(channel, group) -> the newest delivery of that group still waiting to be sent (news joins it)."""
    found: dict[tuple[int, str], int] = {}
    for part in chunks(sorted(group_keys)):
        rows = conn.execute(
            "SELECT channel_id, group_key, max(id) FROM deliveries WHERE state = 'planned' "
            f"AND group_key IN ({marks(len(part))}) GROUP BY channel_id, group_key",
            part,
        )
        found.update(((channel_id, key), delivery_id) for channel_id, key, delivery_id in rows)
    return found


def new_nonce() -> str:
    """Discord takes nonces of up to 25 characters; this one also marks the post (see announcements)."""
    return "cb" + secrets.token_hex(10)


# --- revisions: posts to edit ------------------------------------------------------------------------


# `revision > 0 OR status = 'retracted'` as written in the partial index outbox_revised, so that
# SQLite reads that index, not every delivery item
FLAG_EDITS = (
    "UPDATE deliveries SET edit_needed = 1 WHERE state = 'sent' AND edit_needed = 0 AND id IN ("
    " SELECT i.delivery_id FROM outbox o JOIN delivery_items i ON i.milestone_id = o.id"
    " WHERE o.updated_at >= ? AND (o.revision > 0 OR o.status = 'retracted')"
    " AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))"
)


def flag_edits(conn: sqlite3.Connection, changed_since: datetime) -> int:
    """Sent posts showing a milestone that was revised or retracted since: flag them for an edit."""
    with transaction(conn):
        return conn.execute(FLAG_EDITS, (_seconds(changed_since),)).rowcount


# --- the work queue -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """A milestone in a delivery, as the post shows it now."""

    milestone: Milestone
    revision: int
    retracted: bool


@dataclass
class Job:
    """A delivery to work on: send it, find it after a crash, or edit it."""

    id: int
    guild_id: int
    channel_id: int
    group_key: str
    nonce: str
    state: str
    message_id: int | None
    mention_role_id: int | None
    attempts: int
    sending_at: str | None
    edit: bool
    items: list[Item] = field(default_factory=list)

    @property
    def digest(self) -> bool:
        return self.group_key.startswith("digest|")


def due_jobs(conn: sqlite3.Connection, *, limit: int, skip: Iterable[int] = ()) -> list[Job]:
    """Deliveries due now: to send (planned), to reconcile (sending), to edit (sent, revised)."""
    at = stamp(now())
    skipped = set(skip)
    rows = conn.execute(
        "SELECT id, guild_id, channel_id, group_key, nonce, state, message_id, mention_role_id, attempts, "
        "sending_at, edit_needed FROM deliveries WHERE ((state IN ('planned', 'sending') AND due_at <= ?) "
        "OR (state = 'sent' AND edit_needed = 1 AND due_at <= ?)) ORDER BY due_at, id LIMIT ?",
        (at, at, limit + len(skipped)),
    ).fetchall()
    jobs = [Job(*row[:10], edit=row[5] == SENT) for row in rows if row[0] not in skipped][:limit]
    _load_items(conn, jobs)
    return jobs


def _load_items(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    by_id = {job.id: job for job in jobs}
    for part in chunks(list(by_id)):
        rows = conn.execute(
            f"SELECT i.delivery_id, {_MILESTONE_COLUMNS} FROM delivery_items i "
            "JOIN outbox o ON o.id = i.milestone_id JOIN titles t ON t.id = o.title_id "
            f"WHERE i.delivery_id IN ({marks(len(part))}) ORDER BY i.delivery_id, i.channel_id, i.milestone_key",
            part,
        )
        for delivery_id, *row in rows:
            item = Item(_milestone(row), revision=row[15], retracted=row[14] == "retracted")
            by_id[delivery_id].items.append(item)


def begin_sending(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Mark deliveries 'sending' before their POST: after a crash they are looked for, not resent blind."""
    at = stamp(now())
    with transaction(conn):
        for part in chunks(list(ids)):
            conn.execute(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                f"sending_at = coalesce(sending_at, ?), updated_at = ? WHERE id IN ({marks(len(part))}) "
                "AND state IN ('planned', 'sending')",
                (at, at, *part),
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a job. `state` None: leave it as it is (only record the error / the time)."""

    job_id: int
    state: str | None
    message_id: int | None = None
    items: tuple[tuple[str, int, bool], ...] = ()  # (milestone key, revision, retracted) as posted
    error: str | None = None
    retry_at: datetime | None = None
    attempts: int | None = None  # set for edits (a post's attempts are counted by `begin_sending`)


def record(conn: sqlite3.Connection, outcomes: Sequence[Outcome]) -> None:
    """Write a batch of outcomes in one transaction (posts made, edits made, failures, retries)."""
    at = stamp(now())
    done = [o for o in outcomes if o.state == SENT]
    other = [o for o in outcomes if o.state != SENT]
    with transaction(conn):
        conn.executemany(
            "UPDATE deliveries SET state = 'sent', message_id = coalesce(?, message_id), edit_needed = 0, "
            "attempts = coalesce(?, attempts), last_error = ?, updated_at = ? WHERE id = ?",
            [(o.message_id, o.attempts, o.error, at, o.job_id) for o in done],
        )
        conn.executemany(
            "UPDATE delivery_items SET revision = ?, retracted = ? WHERE delivery_id = ? AND milestone_key = ?",
            [(rev, int(retracted), o.job_id, key) for o in done for key, rev, retracted in o.items],
        )
        for part in chunks([o.job_id for o in done]):  # revised while it was being posted: correct it now
            conn.execute(
                f"UPDATE deliveries SET edit_needed = 1 WHERE id IN ({marks(len(part))}) AND EXISTS ("
                "SELECT 1 FROM delivery_items i JOIN outbox o ON o.id = i.milestone_id "
                "WHERE i.delivery_id = deliveries.id "
                "AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))",
                part,
            )
        conn.executemany(
            "UPDATE deliveries SET state = coalesce(?, state), last_error = ?, due_at = coalesce(?, due_at), "
            "attempts = coalesce(?, attempts), updated_at = ? WHERE id = ?",
            [
                (o.state, o.error, stamp(o.retry_at) if o.retry_at else None, o.attempts, at, o.job_id)
                for o in other
            ],
        )


# --- reading, for /watch list and the tests ------------------------------------------------------------


def last_errors(conn: sqlite3.Connection, guild_id: int) -> dict[int, str]:
    """channel id -> the error of its newest delivery that has one (a retry waiting, a failure)."""
    rows = conn.execute(
        "SELECT channel_id, last_error FROM deliveries WHERE guild_id = ? AND last_error IS NOT NULL "
        "AND state IN ('planned', 'sending', 'failed') ORDER BY updated_at",
        (guild_id,),
    )
    return dict(rows.fetchall())


def open_work(conn: sqlite3.Connection) -> int:
    """Pending milestones and unfinished deliveries: zero when the announcer has nothing left to do."""
    pending = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    unfinished = conn.execute(
        "SELECT count(*) FROM deliveries WHERE state IN ('planned', 'sending') OR edit_needed = 1"
    ).fetchone()[0]
    return pending + unfinished
