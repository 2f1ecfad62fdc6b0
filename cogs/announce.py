"""Milestone posts: starts and stops the bot's announcer (bot/announcer/engine.py) with the cog, and
wakes it when the poller stored news or when the bot's permissions may have changed (a channel waiting
for a permission is re-checked at once rather than at the next look)."""

from __future__ import annotations

from typing import Any

import discord
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

    # --- what may change the bot's permissions in a channel -------------------------------------------

    @commands.Cog.listener()
    async def on_guild_channel_update(self, before: Any, after: Any) -> None:
        self.bot.announcer.permissions_changed()

    @commands.Cog.listener()
    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        self.bot.announcer.permissions_changed()

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if self.bot.user is not None and after.id == self.bot.user.id:
            self.bot.announcer.permissions_changed()

    @commands.Cog.listener()
    async def on_guild_update(self, before: discord.Guild, after: discord.Guild) -> None:
        self.bot.announcer.permissions_changed()


async def setup(bot: ChartBot) -> None:
    await bot.add_cog(Announce(bot))
