"""Answering an interaction in time. Discord waits 3 s for a command's first answer; work that may take
longer (the database behind another process's write, a picture) is acknowledged first with a
deferral, and the answer then replaces the "thinking…" message (`edit_original_response`).

- `within(interaction, work, budget)`: await one piece of work, deferring if it runs past `budget`;
- `in_time(interaction, budget)`: the same for a whole command body whose answer goes through
  `reply()` (a deferral already under way finishes first, so the two never cross).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import discord

T = TypeVar("T")


async def within(interaction: discord.Interaction, work: Awaitable[T], budget: float) -> T:
    """Await `work`; if it takes longer than `budget` seconds, defer first (a public "thinking…")."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if not done and not interaction.response.is_done():
        try:
            await interaction.response.defer(thinking=True)
        except BaseException:
            task.cancel()  # nobody can be answered any more
            raise
    return await task


class _Deferral:
    """Defers one interaction privately once `budget` seconds have passed without an answer."""

    def __init__(self, interaction: discord.Interaction, budget: float) -> None:
        self.interaction = interaction
        self.deferring = False
        self.task = asyncio.create_task(self._later(budget))

    async def _later(self, budget: float) -> None:
        await asyncio.sleep(budget)
        if not self.interaction.response.is_done():
            self.deferring = True
            await self.interaction.response.defer(ephemeral=True, thinking=True)

    async def settle(self) -> None:
        """No deferral from now on; one already sent to Discord is waited for."""
        if not self.deferring:
            self.task.cancel()  # still asleep (the event loop runs one thing at a time)
        with contextlib.suppress(asyncio.CancelledError, discord.HTTPException):
            await self.task


_pending: dict[int, _Deferral] = {}  # interaction id -> its deferral, while its command runs


@contextlib.asynccontextmanager
async def in_time(interaction: discord.Interaction, budget: float) -> AsyncIterator[None]:
    """Run a command body that answers with `reply()`: past `budget` seconds without an answer, the
    interaction is deferred privately, and `reply()` then edits the "thinking…" message. An error
    leaves with the deferral settled, so the error answer sees the interaction as it is."""
    deferral = _Deferral(interaction, budget)
    _pending[interaction.id] = deferral
    try:
        yield
    finally:
        del _pending[interaction.id]
        await deferral.settle()


async def settle(interaction: discord.Interaction) -> None:
    """Before answering outside `reply()` (a page with buttons): no deferral can cross the answer."""
    deferral = _pending.get(interaction.id)
    if deferral is not None:
        await deferral.settle()


async def reply(interaction: discord.Interaction, content: str | None = None, **fields: Any) -> None:
    """Answer privately: a message, or the edit of the "thinking…" message after a deferral."""
    await settle(interaction)
    if interaction.response.is_done():
        await interaction.edit_original_response(content=content, **fields)
    else:
        await interaction.response.send_message(content, ephemeral=True, **fields)
