"""This process's duties in the cluster (bot/cluster.py): jobs taken, kept and lost, the log lines that
say so, the heartbeat, and each process's share of the REST budget. A link of our own stands in for
the database (the real one is tested in tests/test_cluster_store.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from bot.cluster import Duties, LastError, tick_for
from bot.shards import rate_share
from bot.store import PLAN, POLL, DatabaseUnavailable, MemberReport
from bot.store.interfaces import Notice


class Link:
    """A ClusterLink whose jobs the test hands out: `free` are the jobs nobody else holds."""

    def __init__(self) -> None:
        self.free = {POLL, PLAN}
        self.mine: set[str] = set()
        self.down = False
        self.beats: list[MemberReport] = []
        self.lost: list[Callable[[], None]] = []
        self.member_id = 1

    async def hold(self, job: str) -> bool:
        if self.down:
            self.mine.clear()
            raise DatabaseUnavailable("cannot connect to PostgreSQL at 127.0.0.1:5432/charts: refused")
        if job in self.free:
            self.free.discard(job)
            self.mine.add(job)
        return job in self.mine

    async def release(self, job: str) -> None:
        self.mine.discard(job)

    def held(self) -> frozenset[str]:
        return frozenset(self.mine)

    async def heartbeat(self, report: MemberReport) -> None:
        if self.down:
            raise DatabaseUnavailable("down")
        self.beats.append(report)

    def subscribe(self, callback: Notice) -> None:
        pass

    def on_lost(self, callback: Callable[[], None]) -> None:
        self.lost.append(callback)

    async def close(self) -> None:
        self.mine.clear()

    def lose_connection(self) -> None:
        self.mine.clear()
        for callback in self.lost:
            callback()


def duties(link: Link, changes: list[tuple[str, bool]], **options: object) -> Duties:
    clock = options.pop("clock", lambda: 0.0)
    return Duties(
        link,
        lambda: MemberReport("host:1", (0, 1), 4),
        lambda job, held: changes.append((job, held)),
        clock=clock,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


async def test_a_free_job_is_taken_and_said_so(caplog: pytest.LogCaptureFixture) -> None:
    link, changes = Link(), []
    link.free = {PLAN}  # another process polls
    caplog.set_level(logging.INFO, "chartbot.cluster")
    work = duties(link, changes)
    await work.step()
    assert changes == [(PLAN, True)] and work.holds(PLAN) and not work.holds(POLL)
    assert "this process now plans deliveries" in caplog.text
    assert "polls" not in caplog.text
    link.free.add(POLL)  # the polling process died: taken at the next round
    await work.step()
    assert changes[-1] == (POLL, True) and "this process now polls the sources" in caplog.text
    await work.step()
    assert len(changes) == 2  # kept, not taken again


async def test_a_lost_connection_stops_every_job_until_it_is_held_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, changes = Link(), []
    caplog.set_level(logging.INFO, "chartbot.cluster")
    work = duties(link, changes)
    await work.step()
    link.lose_connection()
    link.down = True
    await work.step()
    assert not work.holds(POLL) and not work.holds(PLAN)
    assert set(changes[-2:]) == {(POLL, False), (PLAN, False)}
    assert "this process no longer polls the sources" in caplog.text
    assert caplog.text.count("the cluster cannot be reached") == 1
    await work.step()  # still down: said once
    assert caplog.text.count("the cluster cannot be reached") == 1
    link.down = False
    link.free = {PLAN}  # meanwhile another process took the polling
    await work.step()
    assert work.holds(PLAN) and not work.holds(POLL)
    assert "the cluster can be reached again" in caplog.text


async def test_a_process_that_does_not_poll_never_takes_the_polling() -> None:
    link, changes = Link(), []
    work = duties(link, changes, jobs=(PLAN,))
    await work.step()
    assert changes == [(PLAN, True)] and POLL in link.free


async def test_the_heartbeat_is_sent_every_so_often() -> None:
    link, changes, now = Link(), [], [0.0]
    work = duties(link, changes, heartbeat_every=10.0, clock=lambda: now[0])
    for moment in (0.0, 3.0, 9.9, 10.0, 15.0, 20.5):
        now[0] = moment
        await work.step()
    assert len(link.beats) == 3 and link.beats[0] == MemberReport("host:1", (0, 1), 4)


async def test_stopping_lets_every_job_go() -> None:
    link, changes = Link(), []
    work = duties(link, changes)
    await work.start()
    await work.stop()
    assert set(changes) == {(POLL, True), (PLAN, True), (POLL, False), (PLAN, False)}
    assert link.held() == frozenset()


def test_takeover_tries_come_several_times_within_the_promised_time() -> None:
    assert tick_for(3600) == 5.0  # a minute at most: 12 tries
    assert tick_for(8) == 2.0
    assert tick_for(1) == 0.25
    assert tick_for(0.1) == 0.2


def test_the_last_warning_is_kept_on_one_line() -> None:
    last = LastError()
    logger = logging.getLogger("test.cluster.last")
    logger.addHandler(last)
    try:
        logger.info("fine")
        assert last.text is None
        logger.warning("delivery %d failed\nwith a second line", 7)
        assert last.text == "warning: delivery 7 failed" and last.at is not None
    finally:
        logger.removeHandler(last)


def test_each_process_posts_its_share_of_the_bots_budget() -> None:
    assert rate_share(48.0, None, None) == 48.0  # every shard: all of it
    assert rate_share(48.0, (0, 1), 6) == 16.0
    assert rate_share(48.0, (2, 3, 4, 5), 6) == 32.0
    shares = [rate_share(48.0, ids, 6) for ids in ((0, 1), (2, 3), (4, 5))]
    assert sum(shares) == 48.0


async def test_notices_wake_the_announcer_refresh_titles_and_unbreak_channels(tmp_path) -> None:
    """What a process does on hearing another's notice (bot/client.py)."""
    from bot.client import ChartBot
    from bot.settings import Settings
    from bot.store import DELIVERIES_PLANNED, HISTORY_CHANGED, RECONNECTED, SETTINGS_CHANGED

    bot = ChartBot(Settings(db_path=str(tmp_path / "bot.sqlite3")))
    link = Link()
    link.free = {PLAN}  # another process polls (and refreshes its own index after each cycle)
    bot.duties = duties(link, [])
    await bot.duties.step()
    woken, forgotten, refreshed = [], [], []
    bot.announcer.wake = lambda: woken.append(1)  # type: ignore[method-assign]
    bot.announcer.forget_broken = lambda g, c: forgotten.append((g, c))  # type: ignore[method-assign]

    running = asyncio.Event()
    go_on = asyncio.Event()

    async def refresh() -> None:
        refreshed.append(1)
        running.set()
        await go_on.wait()

    bot.refresh_titles = refresh  # type: ignore[method-assign]
    bot._on_notice(DELIVERIES_PLANNED, f"{time.time() + 0.2:.3f}")  # due in 0.2 s: woken now and then
    assert woken == [1] and refreshed == []
    await asyncio.sleep(0.4)
    assert woken == [1, 1]
    del woken[1:]
    bot._on_notice(DELIVERIES_PLANNED, "not a time")  # (woken now all the same)
    assert woken == [1, 1]
    del woken[1:]
    bot._on_notice(SETTINGS_CHANGED, "81 82")
    assert forgotten == [(81, 82)] and len(woken) == 2
    bot._on_notice(SETTINGS_CHANGED, "81")  # a server's settings: nothing to un-break
    assert forgotten == [(81, 82)]
    bot._on_notice(HISTORY_CHANGED, "")  # charts without news: the title index only
    assert len(woken) == 3
    bot._on_notice(HISTORY_CHANGED, "milestones")
    bot._on_notice(RECONNECTED, "")  # notices may have been missed: everything
    assert len(woken) == 5
    assert bot._title_refresh is not None
    await running.wait()
    assert refreshed == [1]  # three notices before the rebuild began: one rebuild
    bot._on_notice(HISTORY_CHANGED, "")
    bot._on_notice(HISTORY_CHANGED, "")
    go_on.set()
    await bot._title_refresh
    assert refreshed == [1, 1]  # two during the rebuild: one more, not two
    link.free.add(POLL)
    await bot.duties.step()  # now this process polls: its poller refreshes the index itself
    bot._on_notice(HISTORY_CHANGED, "")
    assert bot._title_refresh.done() and refreshed == [1, 1]
