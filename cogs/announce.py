"""Milestone posts: starts and stops the bot's announcer (bot/announcer/engine.py) with the cog, and
wakes it when the poller stored news."""

from __future__ import annotations

from typing import Any

from discord.ext import commands

from bot.client import ChartBot


class Announce(commands.Cog):
    def __init__(self, bot: ChartBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.announcer.start()

    async def cog_unload(self) -> None:
        await self.bot.announcer.stop()

    @commands.Cog.listener()
    async def on_milestones(self, milestones: Any = None) -> None:
        """`bot.dispatch("milestones", found)` after an ingest: post now rather than at the next look."""
        self.bot.announcer.wake()


async def setup(bot: ChartBot) -> None:
    await bot.add_cog(Announce(bot))
