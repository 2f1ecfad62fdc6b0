"""Keeps the chart history current while the bot runs: the poller, started and stopped with the cog.

The poller gets its own connection to the database (SQLite in WAL mode: it writes while commands read)
and its own HTTP client. After each ingest it refreshes the bot's title index; new milestones are
dispatched as the `milestones` event, which the announcer listens for.
"""

from __future__ import annotations

import logging

from discord.ext import commands

from bot.model import Milestone
from bot.poller import Poller, make_http_client
from bot.sources.http import HttpClient
from bot.store import Store

log = logging.getLogger("chartbot.poll")


class Polling(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.store: Store | None = None
        self.http: HttpClient | None = None
        self.poller: Poller | None = None

    async def cog_load(self) -> None:
        settings = self.bot.settings  # type: ignore[attr-defined]
        if not settings.poll_in_bot:
            log.info(
                "polling is off (CHARTBOT_POLL=off): the history changes only by `chartbot poll` or import"
            )
            return
        self.store = await Store.open(settings.db_path)
        self.http = make_http_client(settings, self.store)
        self.poller = Poller(
            self.store, self.http, settings, on_milestones=self._found, on_stored=self._stored
        )
        self.poller.start()
        log.info("polling %s every %.0f s", ", ".join(settings.sources), settings.poll_interval)

    async def cog_unload(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
        if self.http is not None:
            await self.http.close()
        if self.store is not None:
            await self.store.close()
        self.poller = self.http = self.store = None

    async def _found(self, milestones: list[Milestone]) -> None:
        self.bot.dispatch("milestones", milestones)

    async def _stored(self, *_: object) -> None:
        await self.bot.refresh_titles()  # type: ignore[attr-defined]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Polling(bot))
