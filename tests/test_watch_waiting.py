"""A watch of a title that has not charted yet, end to end on the fake Discord with the real client: on
the real Netflix history to 2022-01-30, `/watch add Inventing Anna` says it will start when the title
charts (never "Anna", a charted title it resembles), `/watch list` shows it waiting, and when the week of
2022-02-13 brings Inventing Anna in, its post comes."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

from announce_worker import make_bot
from engines import both_engines
from fake_discord import MANAGE_GUILD, FakeChannel, FakeMember, FakeRole
from fake_discord_ext import DeliveryFake

from bot.client import ChartBot
from bot.ingest import Ingester
from bot.model import Snapshot
from bot.store import Store

GUILD = 860_000_000_000_000_001
CHARTS = 860_000_000_000_000_010
MODS, ALICE = 860_000_000_000_000_100, 860_000_000_000_001_000
JAN30, FEB13 = date(2022, 1, 30), date(2022, 2, 13)
pytestmark = both_engines


async def until_posted(fake: DeliveryFake, channel: int, within: float = 20.0) -> list:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if fake.sent_messages(channel):
            return fake.sent_messages(channel)
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing was posted in {channel} within {within} s")


async def test_a_title_watched_before_it_charts_is_posted_when_it_does(
    from_template, netflix_snapshots: list[Snapshot]
) -> None:
    async def before_it_charts(store: Store) -> None:
        await Ingester(store).ingest([s for s in netflix_snapshots if s.key.date <= JAN30], news=False)

    db = from_template("netflix_to_jan30", before_it_charts)
    target = db if "://" in db else Path(db)
    async with DeliveryFake() as fake:
        fake.add_guild(
            GUILD,
            "Chart Fans",
            channels=[FakeChannel(CHARTS, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ALICE, "alice", roles=[MODS])],
        )
        async with fake.run_bot(make_bot(target)) as bot:
            await bot.tree.sync()
            asked = await fake.slash(GUILD, CHARTS, ALICE, "watch add", {"title": "Inventing Anna"})
            added = (await asked.response()).content
            assert "**Inventing Anna**" in added and f"<#{CHARTS}>" in added
            assert (
                "“Inventing Anna” is not in any chart yet: its milestones are posted once it charts" in added
            )
            assert "**Anna**" not in added.split("Did you mean")[0]  # suggested at most, never taken
            listing = (await (await fake.slash(GUILD, CHARTS, ALICE, "watch list")).response()).content
            assert "**Inventing Anna**" in listing

            store = await bot.get_store()  # as the bot's own poller stores a new week
            assert await store.guilds.watched_titles(GUILD) == [("inventing anna", "Inventing Anna")]
            weeks = [s for s in netflix_snapshots if JAN30 < s.key.date <= FEB13]
            report = await Ingester(store).ingest(weeks)
            assert any(m.title_key == "inventing anna" for m in report.milestones)
            bot.dispatch("milestones", report.milestones)
            posts = await until_posted(fake, CHARTS)
            assert isinstance(bot, ChartBot)
        shown = " ".join(str(p.embeds) + p.content for p in posts)
        assert "Inventing Anna" in shown
        assert all("Inventing Anna" in str(p.embeds) + p.content for p in posts)  # nothing else is watched
