"""The bot keeps its history current by itself: the poll cog runs the poller inside ChartBot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fake_discord import FakeChannel, FakeDiscord, FakeMember
from local_servers import base
from test_sources_fetch import COUNTRIES_TSV, netflix_app, serve, tsv_weeks  # noqa: F401

from bot.client import ChartBot
from bot.settings import Settings

GUILD, CHANNEL, FAN = 501, 502, 503


async def test_the_bot_polls_and_learns_new_titles(serve, tmp_path: Path) -> None:  # noqa: F811
    files = {"all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, {"2022-01-30", "2022-02-06"})}
    server = await serve(netflix_app(files, []))
    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD, "Fans", channels=[FakeChannel(CHANNEL, "charts")], members=[FakeMember(FAN, "fan")]
        )
        settings = Settings.from_env(
            {
                **fake.settings_env(),
                "DISCORD_TOKEN": "fake-token",
                "CHARTBOT_DB": str(tmp_path / "bot.sqlite3"),
                "CHARTBOT_SOURCES": "netflix",
                "NETFLIX_TOP10_URL": base(server) + "top10/data/",
                "CHARTBOT_POLL_INTERVAL": "3600",
            }
        )
        seen: list = []
        bot = ChartBot(settings, guild_ready_timeout=0.05)

        async def heard(found: list) -> None:
            seen.extend(found)

        bot.add_listener(heard, "on_milestones")
        async with fake.run_bot(bot):
            for _ in range(200):
                if "all of us are dead" in {key for key, _ in bot.titles.complete("all of us", 5)}:
                    break
                await asyncio.sleep(0.05)
            assert bot.titles.resolve("all of us are dead")[1] == "All of Us Are Dead"
            assert seen and {m.chart.date.isoformat() for m in seen} == {"2022-02-06"}  # older week: history
            poller = bot.get_cog("Polling")
            assert poller is not None and poller.poller is not None
        assert poller.poller is None  # unloaded with the bot: loop cancelled, HTTP client and DB closed
