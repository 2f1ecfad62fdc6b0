"""Keeps the chart history current while the bot runs: starts and stops the bot's poller with the cog.

The poller writes through the bot's own store (SQLite in WAL mode: it writes while commands read).
After a cycle that stored charts it refreshes the bot's title index; new milestones are dispatched as
the `milestones` event, which wakes the announcer. In a cluster of processes on one PostgreSQL database
only one polls at a time (`bot.holds(POLL)`): the bot starts and stops the poller as that job comes
and goes (bot/cluster.py).
"""

from __future__ import annotations

import logging

from discord.ext import commands

from bot.client import ChartBot
from bot.model import Milestone
from bot.poller import Poller, make_http_client
from bot.sources.http import HttpClient
from bot.store import POLL

log = logging.getLogger("chartbot.poll")


class Polling(commands.Cog):
    def __init__(self, bot: ChartBot) -> None:
        self.bot = bot
        self.http: HttpClient | None = None

    @property
    def poller(self) -> Poller | None:
        return self.bot.poller

    async def cog_load(self) -> None:
        settings = self.bot.settings
        if not settings.poll_in_bot:
            log.info(
                "polling is off (CHARTBOT_POLL=off): the history changes only by `chartbot poll` or import"
            )
            return
        store = await self.bot.get_store()
        self.http = make_http_client(settings, store)
        self.bot.poller = Poller(
            store, self.http, settings, on_milestones=self._found, on_stored=self._stored
        )
        if self.bot.holds(POLL):  # else the bot starts it once no other process of the cluster polls
            self.bot.poller.start()
        log.info("polling %s every %.0f s", ", ".join(settings.sources), settings.poll_interval)

    async def cog_unload(self) -> None:
        poller, self.bot.poller = self.bot.poller, None
        if poller is not None:
            await poller.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def _found(self, milestones: list[Milestone]) -> None:
        self.bot.dispatch("milestones", milestones)

    async def _stored(self, *_: object) -> None:
        await self.bot.refresh_titles()


async def setup(bot: ChartBot) -> None:
    await bot.add_cog(Polling(bot))
