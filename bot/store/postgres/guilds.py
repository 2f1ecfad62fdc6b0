"""Servers' settings, watches and channel health (`GuildConfig`), and the delivery queue
(`DeliveryQueue`), in PostgreSQL.

Every query about a server's configuration is keyed by its guild id, so one server can never read or
change another's. A delivery is one message: written 'planned' before anything is posted, marked
'sending' before the POST and 'sent' with the message id after it (see bot/announcer/engine.py).

Safe with several processes: a watch starts once no history write is in flight (the HISTORY lock,
shared); planning runs one round at a time (the PLAN lock) and sees no history write half-done (the
HISTORY lock, shared, as SQLite's single writer orders them); a claim is one UPDATE of the rows still
'planned' or 'sending'. Each statement is written to take one more settings column or delivery state
without changing shape (the column lists are the only place they are named).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.announcer import policy as rules
from bot.announcer.jobs import FAILED, SENT, Item, Job, Outcome, PlanReport, PostingHalt
from bot.announcer.policy import ALL, Pending, Policy, Route, Watch
from bot.store.interfaces import DELIVERIES_PLANNED, SETTINGS_CHANGED, ShardScope
from bot.store.postgres.connection import HISTORY, MEMBER_SPACE, PLAN, Conn, Pg
from bot.store.postgres.history import columns
from bot.store.postgres.queries import MILESTONE_COLUMNS, MILESTONE_JOINS
from bot.store.shaping import (
    HALTED,
    SETTINGS,
    delivery_groups,
    delivery_items,
    milestone_from_row,
    policy_from_row,
    split_deliveries,
)

__all__ = ["FAILED", "PostgresDeliveryQueue", "PostgresGuildConfig"]


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> datetime:
    """Moments of these tables: UTC, milliseconds (as the SQLite engine keeps them)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _seconds(moment: datetime) -> datetime:
    """The outbox's own precision (whole seconds), for comparisons with its columns."""
    return moment.astimezone(UTC).replace(microsecond=0)


_SETTINGS_COLUMNS = ", ".join(SETTINGS)
_WATCH_COLUMNS = "id, guild_id, target, title, channel_id, since_id, since_read"


class PostgresGuildConfig:
    def __init__(self, pg: Pg) -> None:
        self.db = pg

    async def policy(self, guild_id: int) -> Policy:
        async with self.db.connection() as conn:
            return await _get_policy(conn, guild_id)

    async def update_settings(self, guild_id: int, **changes: Any) -> Policy:
        """Change some of a server's settings (`SETTINGS`; the others keep their values)."""
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        if changes.get("digest", "instant") not in rules.DIGEST_MODES:
            raise ValueError(f"digest must be one of {rules.DIGEST_MODES}")
        for name in ("language", "server_language"):
            rules.check_language(changes.get(name))
        async with self.db.transaction() as db:
            # the server's row locked first: two changes at once apply one after the other, none lost
            await db.execute(
                "INSERT INTO guild_settings (guild_id, created_at, updated_at) VALUES ($1, $2, $2) "
                "ON CONFLICT (guild_id) DO NOTHING",
                guild_id,
                stamp(now()),
            )
            await db.execute("SELECT 1 FROM guild_settings WHERE guild_id = $1 FOR UPDATE", guild_id)
            values = replace(await _get_policy(db, guild_id), **changes)
            region_list = [ALL] if values.regions is None else sorted(values.regions)
            await db.execute(
                "UPDATE guild_settings SET channel_id = $2, regions = $3, events = $4, digest = $5, "
                "mention_role_id = $6, language = $7, server_language = $8, publish = $9, updated_at = $10 "
                "WHERE guild_id = $1",
                guild_id,
                values.channel_id,
                json.dumps(region_list),
                json.dumps(sorted(values.events)),
                values.digest,
                values.mention_role_id,
                values.language,
                values.server_language,
                values.publish,
                stamp(now()),
            )
            await db.notify(SETTINGS_CHANGED, str(guild_id))
            return await _get_policy(db, guild_id)

    async def add_watch(
        self, guild_id: int, target: str, title: str, channel_id: int = 0
    ) -> tuple[Watch, bool]:
        """Follow `target` (a title key, or `*`) in a channel (0: the server's default). (watch, created).

        The watch starts at the newest milestone stored and the newest read begun: older ones are never
        posted to it, nor what a read already under way stores (a catch-up in progress counts as old).
        It waits for any history write in flight (the HISTORY lock, shared), so the milestones and the
        read of that write are all there to count. Re-adding a watch that exists keeps its start.
        """
        async with self.db.transaction() as db:
            await db.lock(HISTORY, shared=True)
            since_id, since_read = await db.fetchrow(
                "SELECT (SELECT coalesce(max(id), 0) FROM outbox), (SELECT coalesce(max(id), 0) FROM reads)"
            )
            created = await db.fetchval(
                "INSERT INTO watches (guild_id, target, title, channel_id, since_id, since_read, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (guild_id, target, channel_id) DO NOTHING "
                "RETURNING id",
                guild_id,
                target,
                title,
                channel_id,
                since_id,
                since_read,
                stamp(now()),
            )
            if created is not None:
                await db.notify(SETTINGS_CHANGED, str(guild_id))
            row = await db.fetchrow(
                f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = $1 AND target = $2 AND channel_id = $3",
                guild_id,
                target,
                channel_id,
            )
        assert row is not None
        return Watch(*row), created is not None

    async def remove_watches(self, guild_id: int, target: str, channel_id: int | None = None) -> int:
        async with self.db.transaction() as db:
            if channel_id is None:
                removed = await db.execute(
                    "DELETE FROM watches WHERE guild_id = $1 AND target = $2", guild_id, target
                )
            else:
                removed = await db.execute(
                    "DELETE FROM watches WHERE guild_id = $1 AND target = $2 AND channel_id = $3",
                    guild_id,
                    target,
                    channel_id,
                )
            if removed:
                await db.notify(SETTINGS_CHANGED, str(guild_id))
            return removed

    async def watches(self, guild_id: int) -> list[Watch]:
        rows = await self.db.fetch(
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = $1 ORDER BY target = '*' DESC, title, id",
            guild_id,
        )
        return [Watch(*row) for row in rows]

    async def watched_titles(self, guild_id: int) -> list[tuple[str, str]]:
        rows = await self.db.fetch(
            "SELECT DISTINCT target, title FROM watches WHERE guild_id = $1 ORDER BY title", guild_id
        )
        return [(target, title) for target, title in rows]

    async def broken_channels(self, guild_id: int) -> dict[int, str]:
        rows = await self.db.fetch(
            "SELECT channel_id, broken FROM channel_health WHERE guild_id = $1 AND broken IS NOT NULL",
            guild_id,
        )
        return {channel_id: broken for channel_id, broken in rows}

    async def mark_broken(self, guild_id: int, channel_id: int, reason: str) -> int:
        """A channel the bot cannot post in: remember why, and stop its queued messages (how many)."""
        at = stamp(now())
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO channel_health (guild_id, channel_id, broken, broken_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id, channel_id) DO UPDATE SET broken = excluded.broken, "
                "broken_at = excluded.broken_at",
                guild_id,
                channel_id,
                reason,
                at,
            )
            await db.execute(
                "UPDATE deliveries SET edit_needed = false, last_error = $1, updated_at = $2 "
                "WHERE guild_id = $3 AND channel_id = $4 AND edit_needed",
                f"not corrected: channel broken: {reason}",
                at,
                guild_id,
                channel_id,
            )
            return await db.execute(
                "UPDATE deliveries SET state = 'failed', last_error = $1, updated_at = $2 "
                "WHERE guild_id = $3 AND channel_id = $4 AND state IN ('planned', 'sending')",
                f"channel broken: {reason}",
                at,
                guild_id,
                channel_id,
            )

    async def clear_broken(self, guild_id: int, channel_id: int) -> bool:
        """Forget why a channel failed or waited (an admin chose it again): posting there resumes, in
        every process (the notice names the channel)."""
        async with self.db.transaction() as db:
            cleared = await db.execute(
                "DELETE FROM channel_health WHERE guild_id = $1 AND channel_id = $2", guild_id, channel_id
            )
            if cleared:
                await db.notify(SETTINGS_CHANGED, f"{guild_id} {channel_id}")
            return bool(cleared)

    async def block_channel(self, guild_id: int, channel_id: int, reason: str) -> None:
        """The bot lacks a permission in a channel now: its deliveries wait (pending) until unblocked."""
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO channel_health (guild_id, channel_id, blocked, blocked_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (guild_id, channel_id) DO UPDATE SET blocked = excluded.blocked, "
                "blocked_at = coalesce(channel_health.blocked_at, excluded.blocked_at)",
                guild_id,
                channel_id,
                reason,
                stamp(now()),
            )

    async def unblock_channel(self, guild_id: int, channel_id: int) -> bool:
        async with self.db.transaction() as db:
            return bool(
                await db.execute(
                    "UPDATE channel_health SET blocked = NULL, blocked_at = NULL "
                    "WHERE guild_id = $1 AND channel_id = $2 AND blocked IS NOT NULL",
                    guild_id,
                    channel_id,
                )
            )

    async def blocked_channels(self, guild_id: int) -> dict[int, str]:
        rows = await self.db.fetch(
            "SELECT channel_id, blocked FROM channel_health WHERE guild_id = $1 AND blocked IS NOT NULL",
            guild_id,
        )
        return {channel_id: reason for channel_id, reason in rows}

    async def blocked_everywhere(self) -> dict[tuple[int, int], str]:
        rows = await self.db.fetch(
            "SELECT guild_id, channel_id, blocked FROM channel_health WHERE blocked IS NOT NULL"
        )
        return {(guild_id, channel_id): reason for guild_id, channel_id, reason in rows}

    async def last_errors(self, guild_id: int) -> dict[int, str]:
        """channel id -> the error of its newest delivery that has one (a retry waiting, a failure)."""
        rows = await self.db.fetch(
            "SELECT channel_id, last_error FROM deliveries WHERE guild_id = $1 AND last_error IS NOT NULL "
            "AND state IN ('planned', 'sending', 'failed') ORDER BY updated_at, id",
            guild_id,
        )
        return {channel_id: error for channel_id, error in rows}


async def _get_policy(db: Conn, guild_id: int) -> Policy:
    row = await db.fetchrow(f"SELECT {_SETTINGS_COLUMNS} FROM guild_settings WHERE guild_id = $1", guild_id)
    return policy_from_row(guild_id, row) if row else Policy(guild_id)


# --- the delivery queue ------------------------------------------------------------------------------

THIS_DATABASE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
"""pg_locks shows the locks of every database of the server: this one's only."""


def live_members(parameter: int) -> str:
    """A `live` CTE: the cluster members alive now, those whose connection holds their advisory lock
    (see cluster.py). The query passes MEMBER_SPACE as its parameter number `parameter`."""
    return (
        "live AS (SELECT objid::bigint AS id FROM pg_locks WHERE locktype = 'advisory' AND granted "
        f"AND objsubid = 2 AND classid::bigint = ${parameter} AND {THIS_DATABASE})"
    )


_PENDING_COLUMNS = f"{MILESTONE_COLUMNS}, o.status, o.revision, o.id, o.read_id"

FLAG_EDITS = (
    "UPDATE deliveries SET edit_needed = true WHERE state = 'sent' AND NOT edit_needed AND id IN ("
    " SELECT i.delivery_id FROM outbox o JOIN delivery_items i ON i.milestone_id = o.id"
    " WHERE o.updated_at >= $1 AND (o.revision > 0 OR o.status = 'retracted')"
    " AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))"
)


class PostgresDeliveryQueue:
    def __init__(self, pg: Pg) -> None:
        self.db = pg

    async def plan(
        self, *, hold: float = 0.0, digest_hold: float = 0.0, settle: float = 0.0, limit: int = 20_000
    ) -> PlanReport:
        """Turn pending milestones into deliveries, in one transaction.

        A milestone joins the channel's unsent delivery of the same group (title and period, or the
        whole period for a digest) or starts one, due `hold` (digest: `digest_hold`) seconds from now;
        each join pushes that time back, so a burst of news becomes one message. `settle`: leave
        milestones younger than this for the next round (the rest of their batch may still be coming).
        One round at a time across processes (PLAN), and never beside a history write (HISTORY, shared).
        """
        report = PlanReport()
        async with self.db.transaction() as db:
            await db.lock(PLAN)
            await db.lock(HISTORY, shared=True)
            moment = now()  # once the locks are held: an ingest that held HISTORY is committed and visible
            at = stamp(moment)
            report.stale = await _skip_stale(db, _seconds(moment))
            pending = await _pending(db, _seconds(moment - timedelta(seconds=settle)), limit)
            if not pending:
                return report
            watches, policies, broken = await _routing(db, {p.milestone.title_key for p in pending})
            routes = rules.route(pending, watches, policies, broken)
            await _write_routes(
                db, routes, {p.outbox_id: p for p in pending}, moment, hold, digest_hold, report
            )
            routed = {r.milestone_id for r in routes}
            ids = [p.outbox_id for p in pending]
            statuses = ["sent" if outbox_id in routed else "skipped" for outbox_id in ids]
            await db.execute(
                "UPDATE outbox o SET status = u.status, updated_at = $1 "
                "FROM unnest($2::bigint[], $3::text[]) AS u (id, status) WHERE o.id = u.id",
                at,
                ids,
                statuses,
            )
            report.planned = len(routed)
            report.unwanted = len(pending) - len(routed)
            if report.deliveries or report.joined:  # every process looks when the first is due
                wait = min(digest_hold if r.digest else hold for r in routes)
                await db.notify(DELIVERIES_PLANNED, f"{moment.timestamp() + wait:.3f}")
        return report

    async def flag_edits(self, changed_since: datetime) -> int:
        """Sent posts showing a milestone revised or retracted since: flag them for an edit."""
        async with self.db.transaction() as db:
            return await db.execute(FLAG_EDITS, _seconds(changed_since))

    async def due_jobs(
        self,
        *,
        limit: int,
        skip: Iterable[int] = (),
        at: datetime | None = None,
        shards: ShardScope | None = None,
        member: int | None = None,
    ) -> list[Job]:
        """Deliveries due now (or at `at`): to send (planned), to reconcile (sending), to edit (sent,
        revised), to publish (sent, publishing pending). Channels blocked by a permission wait.

        `shards`: of servers on these shards only. A 'sending' delivery claimed by another live process
        is that process's (it is posting it); one claimed by a process that died is due here."""
        moment = stamp(at or now())
        skipped = set(skip)
        rows = await self.db.fetch(
            f"WITH {live_members(6)} "
            "SELECT d.id, d.guild_id, d.channel_id, d.group_key, d.nonce, d.state, d.message_id, "
            "d.mention_role_id, d.attempts, d.sending_at, "
            "d.state = 'sent' AND d.edit_needed AND d.due_at <= $1, "
            "CASE WHEN d.publish = 'pending' AND d.publish_at > $1 THEN NULL ELSE d.publish END, "
            "coalesce(g.publish, false), coalesce(g.language, g.server_language) "
            "FROM deliveries d LEFT JOIN guild_settings g ON g.guild_id = d.guild_id "
            "WHERE ((d.state IN ('planned', 'sending') AND d.due_at <= $1) "
            "OR (d.state = 'sent' AND d.edit_needed AND d.due_at <= $1) "
            "OR (d.state = 'sent' AND d.publish = 'pending' AND d.publish_at <= $1)) "
            "AND NOT EXISTS (SELECT 1 FROM channel_health h WHERE h.guild_id = d.guild_id "
            "AND h.channel_id = d.channel_id AND h.blocked IS NOT NULL) "
            "AND ($3::int IS NULL OR (d.guild_id >> 22) % $3 = ANY($4::int[])) "
            "AND (d.state != 'sending' OR d.claimed_by IS NULL OR d.claimed_by = $5 "
            "OR d.claimed_by NOT IN (SELECT id FROM live)) "
            "ORDER BY d.due_at, d.id LIMIT $2",
            moment,
            limit + len(skipped),
            shards.count if shards else None,
            sorted(shards.ids) if shards else [],
            member,
            MEMBER_SPACE,
        )
        jobs = [
            Job(
                *row[:9],
                sending_at=row[9],
                edit=bool(row[10]),
                publish=row[11],
                publishes=row[12],
                language=row[13] or rules.SOURCE,
            )
            for row in rows
            if row[0] not in skipped
        ][:limit]
        await self._load_items(jobs)
        return jobs

    async def _load_items(self, jobs: list[Job]) -> None:
        by_id = {job.id: job for job in jobs}
        if not by_id:
            return
        rows = await self.db.fetch(
            f"SELECT i.delivery_id, {_PENDING_COLUMNS} FROM delivery_items i "
            "JOIN outbox o ON o.id = i.milestone_id JOIN titles t ON t.id = o.title_id "
            "JOIN series s ON s.id = o.series_id "
            "WHERE i.delivery_id = ANY($1::bigint[]) ORDER BY i.delivery_id, o.id",
            list(by_id),
        )
        for delivery_id, *row in rows:
            item = Item(
                milestone_from_row(row),
                revision=row[14],
                retracted=row[13] == "retracted",
                milestone_id=row[15],
            )
            by_id[delivery_id].items.append(item)

    async def begin_sending(self, ids: Sequence[int], *, member: int | None = None) -> list[int]:
        """Mark deliveries 'sending' (claimed by `member`) before their POST: after a crash they are
        looked for, not resent blind. Returns the ids claimed.

        One UPDATE claims them all, and only those still 'planned', or 'sending' and claimed by this
        member, by none or by a process no longer alive (never a sent or failed one, nor one another
        live process took). Rows another transaction is claiming are skipped, not waited for
        (FOR UPDATE SKIP LOCKED): two processes never take one delivery."""
        if not ids:
            return []
        at = stamp(now())
        async with self.db.transaction() as db:
            rows = await db.fetch(
                f"WITH {live_members(4)}, claim AS (SELECT id FROM deliveries WHERE id = ANY($2::bigint[]) "
                "AND (state = 'planned' OR (state = 'sending' AND (claimed_by IS NULL OR claimed_by = $3 "
                "OR claimed_by NOT IN (SELECT id FROM live)))) ORDER BY id FOR UPDATE SKIP LOCKED) "
                "UPDATE deliveries d SET state = 'sending', attempts = d.attempts + 1, claimed_by = $3, "
                "sending_at = coalesce(d.sending_at, $1), updated_at = $1 FROM claim WHERE d.id = claim.id "
                "RETURNING d.id",
                at,
                sorted(set(ids)),
                member,
                MEMBER_SPACE,
            )
        return sorted(row[0] for row in rows)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """A batch of outcomes in one transaction (posts made, edits made, failures, retries)."""
        at = stamp(now())
        done = sorted((o for o in outcomes if o.state == SENT), key=lambda o: o.job_id)
        other = sorted((o for o in outcomes if o.state != SENT), key=lambda o: o.job_id)
        async with self.db.transaction() as db:
            await db.executemany(
                "UPDATE deliveries SET state = 'sent', message_id = coalesce($1, message_id), "
                "edit_needed = false, attempts = coalesce($2, attempts), last_error = $3, updated_at = $4 "
                "WHERE id = $5",
                [(o.message_id, o.attempts, o.error, at, o.job_id) for o in done],
            )
            await db.executemany(
                "UPDATE delivery_items SET revision = $1, retracted = $2 WHERE delivery_id = $3 AND milestone_id = $4",
                [(rev, bool(retracted), o.job_id, mid) for o in done for mid, rev, retracted in o.items],
            )
            if done:  # revised while being posted: correct it
                await db.execute(
                    "UPDATE deliveries SET edit_needed = true WHERE id = ANY($1::bigint[]) AND EXISTS ("
                    "SELECT 1 FROM delivery_items i JOIN outbox o ON o.id = i.milestone_id "
                    "WHERE i.delivery_id = deliveries.id "
                    "AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))",
                    [o.job_id for o in done],
                )
            await db.executemany(
                "UPDATE deliveries SET state = coalesce($1, state), last_error = $2, due_at = coalesce($3, due_at), "
                "attempts = coalesce($4, attempts), updated_at = $5 WHERE id = $6",
                [
                    (o.state, o.error, stamp(o.retry_at) if o.retry_at else None, o.attempts, at, o.job_id)
                    for o in other
                ],
            )
            await db.executemany(
                "UPDATE deliveries SET publish = $1, publish_at = $2 WHERE id = $3",
                [
                    (o.publish, stamp(o.publish_at) if o.publish_at else None, o.job_id)
                    for o in sorted(outcomes, key=lambda o: o.job_id)
                    if o.publish is not None
                ],
            )

    async def open_work(self) -> int:
        return await self.db.fetchval(
            "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending') + (SELECT count(*) FROM deliveries "
            "WHERE state IN ('planned', 'sending') OR edit_needed OR publish = 'pending')"
        )

    async def halt(self, reason: str) -> None:
        """Posting stopped for the whole bot: kept (with its first time) until `resume()`."""
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                HALTED,
                reason,
                stamp(now()),
            )

    async def resume(self) -> None:
        async with self.db.transaction() as db:
            await db.execute("DELETE FROM bot_state WHERE key = $1", HALTED)

    async def halted(self) -> PostingHalt | None:
        row = await self.db.fetchrow("SELECT value, updated_at FROM bot_state WHERE key = $1", HALTED)
        return PostingHalt(row[0], row[1]) if row else None


async def _skip_stale(db: Conn, at: datetime) -> int:
    """Pending milestones of a chart whose newer period is stored are old news: mark them skipped.

    After downtime only the newest period is posted, so a restart never floods the channels. The
    newest period of a chart is its series' latest date; of a country aggregate, its group's.
    """
    return await db.execute(
        "UPDATE outbox SET status = 'skipped', updated_at = $1 WHERE status = 'pending' AND date < ("
        " SELECT CASE WHEN outbox.scope = 'countries' THEN (SELECT max(p.date) FROM country_periods p"
        "   WHERE p.service = s.service AND p.category = s.category AND p.period = s.period)"
        " ELSE s.latest_date END FROM series s WHERE s.id = outbox.series_id)",
        at,
    )


async def _pending(db: Conn, created_before: datetime, limit: int) -> list[Pending]:
    rows = await db.fetch(
        f"SELECT {_PENDING_COLUMNS} FROM {MILESTONE_JOINS} "
        "WHERE o.status = 'pending' AND o.created_at <= $1 ORDER BY o.id LIMIT $2",
        created_before,
        limit,
    )
    return [
        Pending(milestone_from_row(row), outbox_id=row[15], revision=row[14], read_id=row[16]) for row in rows
    ]


async def _routing(
    db: Conn, titles: Iterable[str]
) -> tuple[list[Watch], dict[int, Policy], set[tuple[int, int]]]:
    """The watches of these titles and every headline watch, their servers' policies, broken channels."""
    wanted = sorted({*titles, ALL})
    rows = await db.fetch(f"SELECT {_WATCH_COLUMNS} FROM watches WHERE target = ANY($1::text[])", wanted)
    watches = [Watch(*row) for row in rows]
    guilds = sorted({w.guild_id for w in watches})
    policies: dict[int, Policy] = {}
    broken: set[tuple[int, int]] = set()
    if guilds:
        for row in await db.fetch(
            f"SELECT guild_id, {_SETTINGS_COLUMNS} FROM guild_settings WHERE guild_id = ANY($1::bigint[])",
            guilds,
        ):
            policies[row[0]] = policy_from_row(row[0], row[1:])
        broken.update(
            (guild_id, channel_id)
            for guild_id, channel_id in await db.fetch(
                "SELECT guild_id, channel_id FROM channel_health WHERE broken IS NOT NULL "
                "AND guild_id = ANY($1::bigint[])",
                guilds,
            )
        )
    return watches, policies, broken


async def _write_routes(
    db: Conn,
    routes: list[Route],
    pending: Mapping[int, Pending],
    moment: datetime,
    hold: float,
    digest_hold: float,
    report: PlanReport,
) -> None:
    """One statement per kind of write, not per channel: a fan-out plans thousands of deliveries."""
    groups = delivery_groups(routes)
    at = stamp(moment)
    unsent = await _unsent_deliveries(db, {key for _, _, key in groups})
    due_at = {
        digest: stamp(moment + timedelta(seconds=digest_hold if digest else hold)) for digest in (False, True)
    }
    joins, starts = split_deliveries(groups, unsent, due_at, at, report)
    await db.executemany(
        "UPDATE deliveries SET due_at = $1, updated_at = $2 WHERE id = $3", sorted(joins, key=lambda j: j[2])
    )
    created: dict[tuple[int, str], int] = {}
    if starts:
        rows = await db.fetch(
            "INSERT INTO deliveries (guild_id, channel_id, group_key, nonce, mention_role_id, due_at, "
            "created_at, updated_at) SELECT *, $7::timestamptz, $7::timestamptz FROM unnest($1::bigint[], "
            "$2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[]) "
            "RETURNING id, channel_id, group_key",
            *columns(starts, 6),
            at,
        )
        created.update(((channel_id, key), delivery_id) for delivery_id, channel_id, key in rows)
    items = delivery_items(groups, {**created, **unsent}, pending)
    # A (channel, milestone) already delivered keeps its first delivery: never posted twice.
    if items:
        await db.execute(
            "INSERT INTO delivery_items (channel_id, milestone_id, delivery_id, revision) "
            "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[]) "
            "ON CONFLICT (channel_id, milestone_id) DO NOTHING",
            *columns(items, 4),
        )


async def _unsent_deliveries(db: Conn, group_keys: Iterable[str]) -> dict[tuple[int, str], int]:
    """(channel, group) -> the newest delivery of that group still waiting to be sent (news joins it)."""
    keys = sorted(group_keys)
    if not keys:
        return {}
    rows = await db.fetch(
        "SELECT channel_id, group_key, max(id) FROM deliveries WHERE state = 'planned' "
        "AND group_key = ANY($1::text[]) GROUP BY channel_id, group_key",
        keys,
    )
    return {(channel_id, key): delivery_id for channel_id, key, delivery_id in rows}
