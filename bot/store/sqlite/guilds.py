"""Servers' settings, watches and channel health (`GuildConfig`), and the delivery queue
(`DeliveryQueue`), in SQLite.

Every query about a server's configuration is keyed by its guild id, so one server can never read or
change another's. A delivery is one message: written 'planned' before anything is posted, marked
'sending' before the POST and 'sent' with the message id after it (see bot/announcer/engine.py).
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
from bot.store.interfaces import ShardScope
from bot.store.shaping import (
    HALTED,
    SETTINGS,
    delivery_groups,
    delivery_items,
    milestone_from_row,
    policy_from_row,
    split_deliveries,
)
from bot.store.sqlite.connection import VARIABLES, Db, chunks, placeholders, rows_placeholders
from bot.store.sqlite.queries import MILESTONE_COLUMNS, MILESTONE_JOINS

__all__ = ["FAILED", "SqliteDeliveryQueue", "SqliteGuildConfig"]


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Timestamps of these tables: ISO, UTC, milliseconds (so they sort as text)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _seconds(moment: datetime) -> str:
    """The outbox's own timestamp format (seconds), for comparisons with its columns."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


_POLICY_COLUMNS = ", ".join(SETTINGS)
_WATCH_COLUMNS = "id, guild_id, target, title, channel_id, since_id, since_read"


class SqliteGuildConfig:
    def __init__(self, db: Db, reader: Db) -> None:
        self.db = db
        self.reader = reader

    async def policy(self, guild_id: int) -> Policy:
        return await _get_policy(self.reader, guild_id)

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
            values = replace(await _get_policy(db, guild_id), **changes)
            region_list = [ALL] if values.regions is None else sorted(values.regions)
            at = stamp(now())
            await db.execute(
                f"INSERT INTO guild_settings (guild_id, {_POLICY_COLUMNS}, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                "channel_id = excluded.channel_id, regions = excluded.regions, events = excluded.events, "
                "digest = excluded.digest, mention_role_id = excluded.mention_role_id, "
                "language = excluded.language, server_language = excluded.server_language, "
                "publish = excluded.publish, updated_at = excluded.updated_at",
                (
                    guild_id,
                    values.channel_id,
                    json.dumps(region_list),
                    json.dumps(sorted(values.events)),
                    values.digest,
                    values.mention_role_id,
                    values.language,
                    values.server_language,
                    int(values.publish),
                    at,
                    at,
                ),
            )
            return await _get_policy(db, guild_id)

    async def add_watch(
        self, guild_id: int, target: str, title: str, channel_id: int = 0
    ) -> tuple[Watch, bool]:
        """Follow `target` (a title key, or `*`) in a channel (0: the server's default). (watch, created).

        The watch starts at the newest milestone stored and the newest read begun: older ones are never
        posted to it, nor what a read already under way stores (a catch-up in progress counts as old).
        Re-adding a watch that exists keeps its start.
        """
        async with self.db.transaction() as db:
            since_id = await db.scalar("SELECT coalesce(max(id), 0) FROM outbox")
            since_read = await db.scalar("SELECT coalesce(max(id), 0) FROM reads")
            created = await db.execute(
                "INSERT INTO watches (guild_id, target, title, channel_id, since_id, since_read, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, target, channel_id) DO NOTHING",
                (guild_id, target, title, channel_id, since_id, since_read, stamp(now())),
            )
            row = await db.fetchone(
                f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = ? AND target = ? AND channel_id = ?",
                (guild_id, target, channel_id),
            )
        assert row is not None
        return Watch(*row), bool(created)

    async def remove_watches(self, guild_id: int, target: str, channel_id: int | None = None) -> int:
        sql, params = "DELETE FROM watches WHERE guild_id = ? AND target = ?", [guild_id, target]
        if channel_id is not None:
            sql += " AND channel_id = ?"
            params.append(channel_id)
        async with self.db.transaction() as db:
            return await db.execute(sql, params)

    async def watches(self, guild_id: int) -> list[Watch]:
        rows = await self.reader.fetch(
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE guild_id = ? ORDER BY target = '*' DESC, title, id",
            (guild_id,),
        )
        return [Watch(*row) for row in rows]

    async def watched_titles(self, guild_id: int) -> list[tuple[str, str]]:
        return await self.reader.fetch(
            "SELECT DISTINCT target, title FROM watches WHERE guild_id = ? ORDER BY title", (guild_id,)
        )

    async def broken_channels(self, guild_id: int) -> dict[int, str]:
        rows = await self.reader.fetch(
            "SELECT channel_id, broken FROM channel_health WHERE guild_id = ? AND broken IS NOT NULL",
            (guild_id,),
        )
        return dict(rows)

    async def mark_broken(self, guild_id: int, channel_id: int, reason: str) -> int:
        """A channel the bot cannot post in: remember why, and stop its queued messages (how many)."""
        at = stamp(now())
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO channel_health (guild_id, channel_id, broken, broken_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, channel_id) DO UPDATE SET broken = excluded.broken, "
                "broken_at = excluded.broken_at",
                (guild_id, channel_id, reason, at),
            )
            await db.execute(
                "UPDATE deliveries SET edit_needed = 0, last_error = ?, updated_at = ? "
                "WHERE guild_id = ? AND channel_id = ? AND edit_needed = 1",
                (f"not corrected: channel broken: {reason}", at, guild_id, channel_id),
            )
            return await db.execute(
                "UPDATE deliveries SET state = 'failed', last_error = ?, updated_at = ? "
                "WHERE guild_id = ? AND channel_id = ? AND state IN ('planned', 'sending')",
                (f"channel broken: {reason}", at, guild_id, channel_id),
            )

    async def clear_broken(self, guild_id: int, channel_id: int) -> bool:
        """Forget why a channel failed or waited (an admin chose it again): posting there resumes."""
        async with self.db.transaction() as db:
            return bool(
                await db.execute(
                    "DELETE FROM channel_health WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
                )
            )

    async def block_channel(self, guild_id: int, channel_id: int, reason: str) -> None:
        """The bot lacks a permission in a channel now: its deliveries wait (pending) until unblocked."""
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO channel_health (guild_id, channel_id, blocked, blocked_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, channel_id) DO UPDATE SET blocked = excluded.blocked, "
                "blocked_at = coalesce(channel_health.blocked_at, excluded.blocked_at)",
                (guild_id, channel_id, reason, stamp(now())),
            )

    async def unblock_channel(self, guild_id: int, channel_id: int) -> bool:
        async with self.db.transaction() as db:
            return bool(
                await db.execute(
                    "UPDATE channel_health SET blocked = NULL, blocked_at = NULL "
                    "WHERE guild_id = ? AND channel_id = ? AND blocked IS NOT NULL",
                    (guild_id, channel_id),
                )
            )

    async def blocked_channels(self, guild_id: int) -> dict[int, str]:
        rows = await self.reader.fetch(
            "SELECT channel_id, blocked FROM channel_health WHERE guild_id = ? AND blocked IS NOT NULL",
            (guild_id,),
        )
        return dict(rows)

    async def blocked_everywhere(self) -> dict[tuple[int, int], str]:
        rows = await self.reader.fetch(
            "SELECT guild_id, channel_id, blocked FROM channel_health WHERE blocked IS NOT NULL"
        )
        return {(guild_id, channel_id): reason for guild_id, channel_id, reason in rows}

    async def last_errors(self, guild_id: int) -> dict[int, str]:
        """channel id -> the error of its newest delivery that has one (a retry waiting, a failure)."""
        rows = await self.reader.fetch(
            "SELECT channel_id, last_error FROM deliveries WHERE guild_id = ? AND last_error IS NOT NULL "
            "AND state IN ('planned', 'sending', 'failed') ORDER BY updated_at",
            (guild_id,),
        )
        return dict(rows)


async def _get_policy(db: Db, guild_id: int) -> Policy:
    row = await db.fetchone(
        f"SELECT {_POLICY_COLUMNS} FROM guild_settings WHERE guild_id = ?",
        (guild_id,),
    )
    return policy_from_row(guild_id, row) if row else Policy(guild_id)


# --- the delivery queue ------------------------------------------------------------------------------

_PENDING_COLUMNS = f"{MILESTONE_COLUMNS}, o.status, o.revision, o.id, o.read_id"

# `revision > 0 OR status = 'retracted'` as written in the partial index outbox_revised, so that
# SQLite reads that index, not every delivery item
FLAG_EDITS = (
    "UPDATE deliveries SET edit_needed = 1 WHERE state = 'sent' AND edit_needed = 0 AND id IN ("
    " SELECT i.delivery_id FROM outbox o JOIN delivery_items i ON i.milestone_id = o.id"
    " WHERE o.updated_at >= ? AND (o.revision > 0 OR o.status = 'retracted')"
    " AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))"
)


class SqliteDeliveryQueue:
    def __init__(self, db: Db, reader: Db) -> None:
        self.db = db  # writes
        self.reader = reader

    async def plan(
        self, *, hold: float = 0.0, digest_hold: float = 0.0, settle: float = 0.0, limit: int = 20_000
    ) -> PlanReport:
        """Turn pending milestones into deliveries, in one transaction.

        A milestone joins the channel's unsent delivery of the same group (title and period, or the
        whole period for a digest) or starts one, due `hold` (digest: `digest_hold`) seconds from now;
        each join pushes that time back, so a burst of news becomes one message. `settle`: leave
        milestones younger than this for the next round (the rest of their batch may still be coming).
        """
        report = PlanReport()
        async with self.db.transaction() as db:
            moment = now()  # once the write lock is held: an ingest that held it is committed and visible
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
            statuses = [("sent" if p.outbox_id in routed else "skipped", at, p.outbox_id) for p in pending]
            await db.executemany("UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?", statuses)
            report.planned = len(routed)
            report.unwanted = len(pending) - len(routed)
        return report

    async def flag_edits(self, changed_since: datetime) -> int:
        """Sent posts showing a milestone revised or retracted since: flag them for an edit."""
        async with self.db.transaction() as db:
            return await db.execute(FLAG_EDITS, (_seconds(changed_since),))

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
        `shards`: of servers on these shards only. `member` means nothing here: one process per file."""
        del member
        moment = stamp(at or now())
        skipped = set(skip)
        scope, scope_params = "", ()
        if shards is not None:
            ids = sorted(shards.ids)
            scope = f"AND ((d.guild_id >> 22) % ?) IN ({placeholders(len(ids))}) "
            scope_params = (shards.count, *ids)
        rows = await self.reader.fetch(
            "SELECT d.id, d.guild_id, d.channel_id, d.group_key, d.nonce, d.state, d.message_id, "
            "d.mention_role_id, d.attempts, d.sending_at, "
            "d.state = 'sent' AND d.edit_needed = 1 AND d.due_at <= ?, "
            "CASE WHEN d.publish = 'pending' AND d.publish_at > ? THEN NULL ELSE d.publish END, "
            "coalesce(g.publish, 0), coalesce(g.language, g.server_language) "
            "FROM deliveries d LEFT JOIN guild_settings g ON g.guild_id = d.guild_id "
            "WHERE ((d.state IN ('planned', 'sending') AND d.due_at <= ?) "
            "OR (d.state = 'sent' AND d.edit_needed = 1 AND d.due_at <= ?) "
            "OR (d.state = 'sent' AND d.publish = 'pending' AND d.publish_at <= ?)) "
            "AND NOT EXISTS (SELECT 1 FROM channel_health h WHERE h.guild_id = d.guild_id "
            f"AND h.channel_id = d.channel_id AND h.blocked IS NOT NULL) {scope}"
            "ORDER BY d.due_at, d.id LIMIT ?",
            (moment, moment, moment, moment, moment, *scope_params, limit + len(skipped)),
        )
        jobs = [
            Job(
                *row[:9],
                sending_at=_moment(row[9]),
                edit=bool(row[10]),
                publish=row[11],
                publishes=bool(row[12]),
                language=row[13] or rules.SOURCE,
            )
            for row in rows
            if row[0] not in skipped
        ][:limit]
        await self._load_items(jobs)
        return jobs

    async def _load_items(self, jobs: list[Job]) -> None:
        """Each job's milestones. A fan-out posts the same few milestones to thousands of channels: each
        milestone is read and built once, and the jobs share it."""
        by_id = {job.id: job for job in jobs}
        links: list[tuple[int, int]] = []
        for part in chunks(list(by_id), VARIABLES):
            links += await self.reader.fetch(
                "SELECT delivery_id, milestone_id FROM delivery_items "
                f"WHERE delivery_id IN ({placeholders(len(part))}) ORDER BY delivery_id, milestone_id",
                part,
            )
        items: dict[int, Item] = {}
        for part in chunks(sorted({milestone_id for _, milestone_id in links}), VARIABLES):
            rows = await self.reader.fetch(
                f"SELECT {_PENDING_COLUMNS} FROM {MILESTONE_JOINS} WHERE o.id IN ({placeholders(len(part))})",
                part,
            )
            for row in rows:
                items[row[15]] = Item(
                    milestone_from_row(row),
                    revision=row[14],
                    retracted=row[13] == "retracted",
                    milestone_id=row[15],
                )
        for delivery_id, milestone_id in links:
            by_id[delivery_id].items.append(items[milestone_id])

    async def begin_sending(self, ids: Sequence[int], *, member: int | None = None) -> list[int]:
        """Mark deliveries 'sending' before their POST: after a crash they are looked for, not resent blind.
        Returns the ids claimed (those still 'planned' or 'sending'); one process per file, so no other
        process claims them."""
        del member
        at = stamp(now())
        claimed: list[int] = []
        async with self.db.transaction() as db:
            for part in chunks(sorted(set(ids)), VARIABLES - 2):
                rows = await db.fetch(
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                    f"sending_at = coalesce(sending_at, ?), updated_at = ? WHERE id IN ({placeholders(len(part))}) "
                    # `+state`: found by id. Given a choice, SQLite's planner reads every planned delivery
                    # through deliveries_due instead (4x the CPU of a fan-out's claims: bench/fanout.py).
                    "AND +state IN ('planned', 'sending') RETURNING id",
                    (at, at, *part),
                )
                claimed += (row[0] for row in rows)
        return sorted(claimed)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """A batch of outcomes in one transaction (posts made, edits made, failures, retries)."""
        at = stamp(now())
        done = [o for o in outcomes if o.state == SENT]
        other = [o for o in outcomes if o.state != SENT]
        async with self.db.transaction() as db:
            await db.executemany(
                "UPDATE deliveries SET state = 'sent', message_id = coalesce(?, message_id), edit_needed = 0, "
                "attempts = coalesce(?, attempts), last_error = ?, updated_at = ? WHERE id = ?",
                [(o.message_id, o.attempts, o.error, at, o.job_id) for o in done],
            )
            await db.executemany(
                "UPDATE delivery_items SET revision = ?, retracted = ? WHERE delivery_id = ? AND milestone_id = ?",
                [(rev, int(retracted), o.job_id, mid) for o in done for mid, rev, retracted in o.items],
            )
            for part in chunks([o.job_id for o in done], VARIABLES):  # revised while being posted: correct it
                await db.execute(
                    f"UPDATE deliveries SET edit_needed = 1 WHERE id IN ({placeholders(len(part))}) AND EXISTS ("
                    "SELECT 1 FROM delivery_items i JOIN outbox o ON o.id = i.milestone_id "
                    "WHERE i.delivery_id = deliveries.id "
                    "AND (i.revision != o.revision OR i.retracted != (o.status = 'retracted')))",
                    part,
                )
            await db.executemany(
                "UPDATE deliveries SET state = coalesce(?, state), last_error = ?, due_at = coalesce(?, due_at), "
                "attempts = coalesce(?, attempts), updated_at = ? WHERE id = ?",
                [
                    (o.state, o.error, stamp(o.retry_at) if o.retry_at else None, o.attempts, at, o.job_id)
                    for o in other
                ],
            )
            await db.executemany(
                "UPDATE deliveries SET publish = ?, publish_at = ? WHERE id = ?",
                [
                    (o.publish, stamp(o.publish_at) if o.publish_at else None, o.job_id)
                    for o in outcomes
                    if o.publish is not None
                ],
            )

    async def open_work(self) -> int:
        pending = await self.reader.scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
        unfinished = await self.reader.scalar(
            "SELECT count(*) FROM deliveries WHERE state IN ('planned', 'sending') OR edit_needed = 1 "
            "OR publish = 'pending'"
        )
        return pending + unfinished

    async def halt(self, reason: str) -> None:
        """Posting stopped for the whole bot: kept (with its first time) until `resume()`."""
        async with self.db.transaction() as db:
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (HALTED, reason, stamp(now())),
            )

    async def resume(self) -> None:
        async with self.db.transaction() as db:
            await db.execute("DELETE FROM bot_state WHERE key = ?", (HALTED,))

    async def halted(self) -> PostingHalt | None:
        row = await self.reader.fetchone("SELECT value, updated_at FROM bot_state WHERE key = ?", (HALTED,))
        return PostingHalt(row[0], datetime.fromisoformat(row[1])) if row else None


async def _skip_stale(db: Db, at: str) -> int:
    """Pending milestones of a chart whose newer period is stored are old news: mark them skipped.

    After downtime only the newest period is posted, so a restart never floods the channels. The
    newest period of a chart is its series' latest date; of a country aggregate, its group's.
    """
    return await db.execute(
        "UPDATE outbox SET status = 'skipped', updated_at = ? WHERE status = 'pending' AND date < ("
        " SELECT CASE WHEN outbox.scope = 'countries' THEN (SELECT max(p.date) FROM country_periods p"
        "   WHERE p.service = s.service AND p.category = s.category AND p.period = s.period)"
        " ELSE s.latest_date END FROM series s WHERE s.id = outbox.series_id)",
        (at,),
    )


async def _pending(db: Db, created_before: str, limit: int) -> list[Pending]:
    rows = await db.fetch(
        f"SELECT {_PENDING_COLUMNS} FROM {MILESTONE_JOINS} "
        "WHERE o.status = 'pending' AND o.created_at <= ? ORDER BY o.id LIMIT ?",
        (created_before, limit),
    )
    return [
        Pending(milestone_from_row(row), outbox_id=row[15], revision=row[14], read_id=row[16]) for row in rows
    ]


async def _routing(
    db: Db, titles: Iterable[str]
) -> tuple[list[Watch], dict[int, Policy], set[tuple[int, int]]]:
    """The watches of these titles and every headline watch, their servers' policies, broken channels."""
    wanted = sorted({*titles, ALL})
    watches: list[Watch] = []
    for part in chunks(wanted, VARIABLES):
        rows = await db.fetch(
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE target IN ({placeholders(len(part))})", part
        )
        watches.extend(Watch(*row) for row in rows)
    guilds = sorted({w.guild_id for w in watches})
    policies: dict[int, Policy] = {}
    broken: set[tuple[int, int]] = set()
    for part in chunks(guilds, VARIABLES):
        marks = placeholders(len(part))
        for row in await db.fetch(
            f"SELECT guild_id, {_POLICY_COLUMNS} FROM guild_settings WHERE guild_id IN ({marks})",
            part,
        ):
            policies[row[0]] = policy_from_row(row[0], row[1:])
        broken.update(
            await db.fetch(
                f"SELECT guild_id, channel_id FROM channel_health WHERE broken IS NOT NULL AND guild_id IN ({marks})",
                part,
            )
        )
    return watches, policies, broken


async def _write_routes(
    db: Db,
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
    await db.executemany("UPDATE deliveries SET due_at = ?, updated_at = ? WHERE id = ?", joins)
    created: dict[tuple[int, str], int] = {}
    rows_to_add = [(*start, at, at) for start in starts]
    for part in chunks(rows_to_add, VARIABLES // 8):
        rows = await db.fetch(
            "INSERT INTO deliveries (guild_id, channel_id, group_key, nonce, mention_role_id, due_at, "
            f"created_at, updated_at) VALUES {rows_placeholders(len(part), 8)} RETURNING id, channel_id, group_key",
            [value for row in part for value in row],
        )
        created.update(((channel_id, key), delivery_id) for delivery_id, channel_id, key in rows)
    items = delivery_items(groups, {**created, **unsent}, pending)
    # A (channel, milestone) already delivered keeps its first delivery: never posted twice.
    await db.executemany(
        "INSERT INTO delivery_items (channel_id, milestone_id, delivery_id, revision) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (channel_id, milestone_id) DO NOTHING",
        items,
    )


async def _unsent_deliveries(db: Db, group_keys: Iterable[str]) -> dict[tuple[int, str], int]:
    """(channel, group) -> the newest delivery of that group still waiting to be sent (news joins it)."""
    found: dict[tuple[int, str], int] = {}
    for part in chunks(sorted(group_keys), VARIABLES):
        rows = await db.fetch(
            "SELECT channel_id, group_key, max(id) FROM deliveries WHERE state = 'planned' "
            f"AND group_key IN ({placeholders(len(part))}) GROUP BY channel_id, group_key",
            part,
        )
        found.update(((channel_id, key), delivery_id) for channel_id, key, delivery_id in rows)
    return found
