"""What the store keeps for Discord's failures and for publishing (SQLite step 9, PostgreSQL step 2):
channels blocked by a missing permission (pending, not failed), the server's publish setting, a
delivery's publishing state, and posting stopped for the whole bot. Through the interfaces, on both
engines (and a SQLite database of an older version, migrated)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from engines import both_engines

from bot.announcer.jobs import PLANNED, PUBLISH_PENDING, PUBLISHED, SENT, Outcome
from bot.ingest import ingest
from bot.model import ChartKey, Entry, make_snapshot
from bot.store import Store, open_store
from bot.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

GUILD, OTHER = 1, 2
CHANNEL, SECOND = 10, 11
TITLE = "All of Us Are Dead"
WEEK1, WEEK2 = date(2022, 1, 30), date(2022, 2, 6)
OTHERS = [f"Show {n}" for n in range(10)]


def chart(day: date, titles: list[str]) -> list:
    key = ChartKey("netflix", "netflix", "world", "tv-non-english", "week", day)
    return [make_snapshot(key, [Entry.make(rank, title) for rank, title in enumerate(titles, 1)])]


async def planned(store: Store, channels: tuple[int, ...] = (CHANNEL, SECOND)) -> None:
    """One delivery per channel: the title reaches No. 1 the week after the watches started."""
    await ingest(store, chart(WEEK1, OTHERS), news=False)
    await store.guilds.update_settings(GUILD, events=frozenset({"reached_no1"}))
    for channel in channels:
        await store.guilds.add_watch(GUILD, "all of us are dead", TITLE, channel)
    await ingest(store, chart(WEEK2, [TITLE, *OTHERS[:9]]))
    report = await store.deliveries.plan()
    assert report.deliveries == len(channels)


@both_engines
async def test_a_blocked_channel_waits_and_comes_back(db_target: str) -> None:
    async with await open_store(db_target) as store:
        await planned(store)
        await store.guilds.block_channel(GUILD, CHANNEL, "missing Embed Links")
        await store.guilds.block_channel(GUILD, CHANNEL, "missing Read Message History")  # the reason now
        assert await store.guilds.blocked_channels(GUILD) == {CHANNEL: "missing Read Message History"}
        assert await store.guilds.blocked_channels(OTHER) == {}
        assert await store.guilds.blocked_everywhere() == {(GUILD, CHANNEL): "missing Read Message History"}
        assert await store.guilds.broken_channels(GUILD) == {}  # blocked is not broken
        jobs = await store.deliveries.due_jobs(limit=10)
        assert [job.channel_id for job in jobs] == [SECOND]  # the blocked channel's post waits…
        assert await store.deliveries.open_work() == 2  # …and is still work to do, not failed
        assert await store.fetch_all("SELECT DISTINCT state FROM deliveries") == [("planned",)]
        assert await store.guilds.unblock_channel(GUILD, CHANNEL)
        assert not await store.guilds.unblock_channel(GUILD, CHANNEL)
        assert {job.channel_id for job in await store.deliveries.due_jobs(limit=10)} == {CHANNEL, SECOND}


@both_engines
async def test_choosing_a_channel_again_clears_its_block_and_a_403_still_breaks_it(db_target: str) -> None:
    async with await open_store(db_target) as store:
        await planned(store)
        await store.guilds.block_channel(GUILD, CHANNEL, "missing Send Messages")
        assert await store.guilds.clear_broken(GUILD, CHANNEL)
        assert await store.guilds.blocked_everywhere() == {}
        await store.guilds.block_channel(GUILD, SECOND, "missing Send Messages")
        assert await store.guilds.mark_broken(GUILD, SECOND, "missing access") == 1  # Discord said 403
        assert await store.guilds.broken_channels(GUILD) == {SECOND: "missing access"}


@both_engines
async def test_the_publish_setting_and_a_deliverys_publishing(db_target: str) -> None:
    async with await open_store(db_target) as store:
        assert not (await store.guilds.policy(GUILD)).publish
        policy = await store.guilds.update_settings(GUILD, publish=True)
        assert policy.publish and (await store.guilds.policy(GUILD)).publish
        await planned(store)
        first, second = await store.deliveries.due_jobs(limit=10)
        assert first.publishes and first.publish is None and not first.to_publish
        await store.deliveries.begin_sending([first.id, second.id])
        later = datetime.now(UTC) + timedelta(hours=1)
        await store.deliveries.record(
            [
                Outcome(first.id, SENT, message_id=101, publish=PUBLISHED),
                Outcome(second.id, SENT, message_id=102, publish=PUBLISH_PENDING, publish_at=later),
            ]
        )
        assert await store.deliveries.due_jobs(limit=10) == []  # the publishing is not due yet
        assert await store.deliveries.open_work() == 1  # but it is work left
        (job,) = await store.deliveries.due_jobs(limit=10, at=later)
        assert (job.id, job.state, job.message_id, job.to_publish, job.edit) == (
            second.id,
            SENT,
            102,
            True,
            False,
        )
        await store.deliveries.record([Outcome(job.id, None, publish=PUBLISHED)])  # only the publishing
        assert await store.fetch_all("SELECT state, message_id, publish FROM deliveries ORDER BY id") == [
            ("sent", 101, "published"),
            ("sent", 102, "published"),
        ]
        assert await store.deliveries.open_work() == 0
        await store.guilds.update_settings(GUILD, publish=False)
        assert not (await store.guilds.policy(GUILD)).publish


@both_engines
async def test_a_posting_stop_is_kept_until_resumed(db_target: str) -> None:
    path = db_target
    async with await open_store(path) as store:
        assert await store.deliveries.halted() is None
        await store.deliveries.halt("Discord rejected the bot's token (401 Unauthorized)")
        first = await store.deliveries.halted()
        await store.deliveries.halt("Discord rejected the bot's token (401 Unauthorized)")
    async with await open_store(path) as store:  # another process (chartbot status) sees it
        halt = await store.deliveries.halted()
        assert halt is not None and halt == first and "401" in halt.reason
        assert datetime.now(UTC) - halt.since < timedelta(minutes=1)
        await store.deliveries.resume()
        assert await store.deliveries.halted() is None


async def test_a_version_5_database_migrates_keeping_its_settings_and_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:5], start=1):
        conn.executescript(f"BEGIN IMMEDIATE; {step}; PRAGMA user_version = {number}; COMMIT;")
    at = "2026-01-01T00:00:00.000+00:00"
    conn.execute(
        "INSERT INTO guild_settings (guild_id, channel_id, digest, created_at, updated_at) "
        "VALUES (?, ?, 'instant', ?, ?)",
        (GUILD, CHANNEL, at, at),
    )
    conn.execute(
        "INSERT INTO channel_health (guild_id, channel_id, broken, broken_at) VALUES (?, ?, ?, ?)",
        (GUILD, SECOND, "missing access", at),
    )
    conn.execute(
        "INSERT INTO deliveries (guild_id, channel_id, group_key, nonce, due_at, created_at, updated_at) "
        "VALUES (?, ?, 'title|x', 'cbnonce', ?, ?, ?)",
        (GUILD, CHANNEL, at, at, at),
    )
    conn.close()
    async with await open_store(path) as store:
        assert await store.fetch_all("PRAGMA user_version") == [(SCHEMA_VERSION,)]
        policy = await store.guilds.policy(GUILD)
        assert policy.channel_id == CHANNEL and not policy.publish
        assert await store.guilds.broken_channels(GUILD) == {SECOND: "missing access"}
        assert await store.guilds.blocked_everywhere() == {}
        assert await store.fetch_all("SELECT state, publish, publish_at FROM deliveries") == [
            (PLANNED, None, None)
        ]
        assert await store.deliveries.halted() is None
