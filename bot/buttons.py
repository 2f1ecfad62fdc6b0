"""Page buttons on Discord: buttons that still work after a restart, and a view that takes them away.

- `PageButton` (a `discord.ui.DynamicItem`): its custom_id carries the page (see bot.pages), so a press
  is answered by rebuilding that page from the store, whichever process receives it and however long
  after. Each paged command subclasses it with its own template; the cog registers its classes with
  `bot.add_dynamic_items` in `cog_load`.
- `PagesView` (a `discord.ui.View`): the buttons of one paged message while it is live. Its timeout runs
  from the last press; `on_timeout` edits the message without buttons through the last interaction that
  answered it (its token lasts 15 minutes, the timeout 10), so no channel access is needed: it works in
  DMs and in servers without the bot.
- `Pages`: one per paged cog: the live views by message, the answer to a press (an edit of the message,
  `UPDATE_MESSAGE`, or a deferred update and an edit when the store is slow), and the expired ones.

discord.py dispatches a dynamic item without asking its view: the owner check runs in the item's
`interaction_check` (the same rule as `PagesView.interaction_check`). When a view that holds dynamic
items stops, discord.py may forget their classes with it (`ViewStore.remove_view` does, for a view
stored beside others under the same message key): `Pages` registers them again whenever a view stops,
so that every other page keeps answering.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import discord
from discord.ext import commands

from bot.i18n import translator
from bot.pages import PAGE_TIMEOUT, PageExpired, Press, expired, not_yours, parse_button_id

log = logging.getLogger(__name__)

T = TypeVar("T")
_EXPIRED_KEPT = 10_000  # timed-out messages remembered (a press on one answers that it expired)


@dataclass
class Page:
    """What one page shows: embeds and/or text, and its buttons (none: a page without buttons)."""

    embeds: list[discord.Embed] = field(default_factory=list)
    content: str | None = None
    buttons: Sequence[PageButton] = ()

    def message(self) -> dict[str, Any]:
        return {"embeds": self.embeds, "content": self.content}


class PageButton(discord.ui.DynamicItem[discord.ui.Button], template=r"cb:[a-z]:.*"):
    """A page button. Subclasses name their book's template and the cog whose `pages` answer them."""

    cog_name: ClassVar[str] = ""

    def __init__(
        self,
        custom_id: str,
        *,
        label: str,
        disabled: bool = False,
        current: bool = False,
        row: int | None = None,
    ) -> None:
        style = discord.ButtonStyle.primary if current else discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(label=label, custom_id=custom_id, style=style, disabled=disabled or current),
            row=row,
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PageButton:
        button = item if isinstance(item, discord.ui.Button) else None
        label = (button.label or "") if button is not None else ""
        return cls(match.string, label=label)

    def pages(self, interaction: discord.Interaction) -> Pages | None:
        get_cog = getattr(interaction.client, "get_cog", None)  # a Bot or an AutoShardedBot
        cog = get_cog(self.cog_name) if get_cog is not None else None
        return getattr(cog, "pages", None)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        try:
            press = parse_button_id(self.custom_id)
        except PageExpired:
            return True  # the callback answers that it expired
        return await allowed(interaction, press.owner, press.book)

    async def callback(self, interaction: discord.Interaction) -> None:
        pages = self.pages(interaction)
        if pages is None:  # the cog is not loaded (any more)
            await answer_expired(interaction, self.custom_id)
            return
        await pages.press(interaction, self.custom_id)


async def allowed(interaction: discord.Interaction, owner: int, book: str) -> bool:
    """Only the user who ran the command may turn its pages; anyone else is told so, privately (in their
    own language)."""
    if interaction.user.id == owner:
        return True
    text = not_yours(owner, book, translator(interaction.locale))
    await interaction.response.send_message(text, ephemeral=True)
    return False


async def answer_expired(interaction: discord.Interaction, custom_id: str) -> None:
    """Tell the presser, privately, that this list expired and which command shows it again; take the
    buttons off the message."""
    parts = custom_id.split(":")
    text = expired(parts[1] if len(parts) > 1 else "", translator(interaction.locale))
    try:
        await interaction.response.edit_message(view=None)
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.info("could not answer a press on an expired page: %s", exc)


class PagesView(discord.ui.View):
    """The buttons of one live paged message (see the module's docstring)."""

    def __init__(self, pages: Pages, owner: int, book: str, interaction: discord.Interaction) -> None:
        super().__init__(timeout=pages.timeout)
        self.pages = pages
        self.owner = owner
        self.book = book
        self.interaction = interaction  # the last one that answered with this message: its token edits it
        self.message_id: int | None = None

    def show(self, buttons: Sequence[PageButton]) -> None:
        self.clear_items()
        for button in buttons:
            self.add_item(button)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await allowed(interaction, self.owner, self.book)

    async def on_timeout(self) -> None:
        self.pages.retire(self)
        try:
            await self.interaction.edit_original_response(view=None)
        except discord.HTTPException as exc:  # gone, or the token is too old: the buttons stay, expired
            log.info("could not take the buttons off message %s: %s", self.message_id, exc)


class Pages:
    """The paged messages of one cog: live views, presses, expiry.

    `turn` rebuilds the page a press asks for (InputError and store errors are answered as the bot
    answers a command's); `timeout` is how long a page stays live without a press.
    """

    def __init__(
        self,
        bot: commands.Bot,
        items: Sequence[type[PageButton]],
        turn: Callable[[discord.Interaction, Press], Awaitable[Page]],
        *,
        timeout: float = PAGE_TIMEOUT,
        defer_after: Callable[[], float] = lambda: 2.0,
    ) -> None:
        self.bot = bot
        self.items = tuple(items)
        self.turn = turn
        self.timeout = timeout
        self.defer_after = defer_after
        self.live: dict[int, PagesView] = {}
        self.expired: collections.deque[int] = collections.deque(maxlen=_EXPIRED_KEPT)

    def register(self) -> None:
        self.bot.add_dynamic_items(*self.items)

    def unregister(self) -> None:
        for view in list(self.live.values()):
            view.stop()
        self.live.clear()
        self.bot.remove_dynamic_items(*self.items)

    def retire(self, view: PagesView) -> None:
        """A view timed out: forget it, remember its message as expired, and register the button classes
        again (see the module's docstring)."""
        if view.message_id is not None:
            self.live.pop(view.message_id, None)
            self.expired.append(view.message_id)
        self.register()

    async def send(
        self, interaction: discord.Interaction, page: Page, book: str, *, ephemeral: bool = False
    ) -> None:
        """Answer a command with the first page (editing the "thinking…" message after a deferral)."""
        view = None
        if page.buttons:
            view = PagesView(self, interaction.user.id, book, interaction)
            view.show(page.buttons)
        message = page.message()
        if view is not None:
            message["view"] = view
        if interaction.response.is_done():  # deferred: the "thinking…" message becomes the page
            message_id = (await interaction.edit_original_response(**message)).id
        else:
            message_id = (await interaction.response.send_message(ephemeral=ephemeral, **message)).message_id
        if view is not None and message_id is not None:
            view.message_id = message_id
            self.live[message_id] = view

    async def press(self, interaction: discord.Interaction, custom_id: str) -> None:
        """Show the page a button asks for, by editing its message; or say why not, privately."""
        message = interaction.message
        if message is None or message.id in self.expired:
            await answer_expired(interaction, custom_id)
            return
        try:
            press = parse_button_id(custom_id)
            page = await self._within(interaction, self.turn(interaction, press))
        except PageExpired:
            await answer_expired(interaction, custom_id)
            return
        except Exception as exc:
            await self._failed(interaction, exc)
            return
        view = self.live.get(message.id)
        if not page.buttons and view is not None:  # the list shrank to one page: no more buttons
            self._drop(view)
            view = None
        elif page.buttons:
            if view is None:  # after a restart, or pressed in another process: adopt the message
                view = PagesView(self, press.owner, press.book, interaction)
                view.message_id = message.id
                self.live[message.id] = view
            view.interaction = interaction
            view.show(page.buttons)
        edit = {**page.message(), "view": view}
        try:
            if interaction.response.is_done():  # deferred: the edit of the original is the answer
                await interaction.edit_original_response(**edit)
            else:
                await interaction.response.edit_message(**edit)
        except discord.HTTPException as exc:
            log.warning("could not turn the page of message %s: %s", message.id, exc)

    def _drop(self, view: PagesView) -> None:
        if view.message_id is not None:
            self.live.pop(view.message_id, None)
        view.stop()
        self.register()  # in case discord.py forgot the classes with the view

    async def _within(self, interaction: discord.Interaction, work: Awaitable[T]) -> T:
        """Await `work`; past the budget, acknowledge the press first (Discord waits 3 s at most) with a
        deferred update: the message keeps its page until the edit."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.defer_after())
        if not done and not interaction.response.is_done():
            try:
                await interaction.response.defer()
            except BaseException:
                task.cancel()
                raise
        return await task

    async def _failed(self, interaction: discord.Interaction, error: Exception) -> None:
        """A press that cannot be answered: the bot's own error answer (one private line; the log for
        the unexpected), as for a command."""
        handler = getattr(self.bot, "on_app_command_error", None)
        if handler is not None:
            await handler(interaction, error)
            return
        log.error("a page press failed", exc_info=error)
