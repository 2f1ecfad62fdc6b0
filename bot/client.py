"""The Discord client: `ChartBot` owns the store, the title index and the HTTP session.

`serve` / `sync` are what `chartbot run` / `chartbot sync` call. The endpoints come from
settings (`DISCORD_API_BASE`, `DISCORD_GATEWAY_URL`) so that a REST or gateway proxy - or the fake
Discord of the tests - can stand in for discord.com; the bot restores discord.py's defaults on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import signal
import sqlite3
from collections.abc import Sequence

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.i18n.commands import ChartTranslator
from bot.model import InputError
from bot.render import CONTENT, clip
from bot.settings import Settings
from bot.sources.http import DEFAULT_USER_AGENT
from bot.store import SchemaError, Store
from bot.store.history import set_cache_size
from bot.titles import TitleIndex

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.rank", "cogs.watch", "cogs.announce", "cogs.poll")
DB_UNAVAILABLE = "The chart database is unavailable right now; try again in a minute."
UNEXPECTED = "Something went wrong on our side (it has been logged); try again in a minute."
_CLOSED = ("no active connection", "Connection closed", "Cannot operate on a closed database.")


class DatabaseUnavailable(Exception):
    """The store cannot be opened or used right now; commands say so and the bot stays up."""


def is_database_error(error: BaseException) -> bool:
    """Errors that mean "the database is unavailable" rather than a bug in a query."""
    if isinstance(error, DatabaseUnavailable | SchemaError):
        return True
    if type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError):
        return True
    return isinstance(error, ValueError | sqlite3.ProgrammingError) and str(error) in _CLOSED


def _is_transient(error: BaseException) -> bool:
    """A busy or locked database: the connection is fine, only this call failed."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def explain(error: BaseException) -> tuple[str, bool]:
    """(one line for the user, whether the error is unexpected and its traceback belongs in the log)."""
    original = getattr(error, "original", None) or error
    if isinstance(original, InputError):
        return str(original), False
    if is_database_error(original):
        return DB_UNAVAILABLE, False
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s.", False
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here.", False
    return UNEXPECTED, True


class ChartTree(app_commands.CommandTree):
    """The command tree, with one error handler for every command (see `ChartBot.on_app_command_error`)."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self.client.on_app_command_error(interaction, error)  # type: ignore[attr-defined]


class ChartBot(commands.Bot):
    """The bot. `setup_hook` opens the DB, builds the title index, loads the cogs and syncs to the dev
    guild (never globally on start: Discord limits command creation per day)."""

    def __init__(
        self,
        settings: Settings,
        *,
        guild_ready_timeout: float = 2.0,
        extensions: Sequence[str] = EXTENSIONS,
        sync_dev_guild: bool = True,
        defer_after: float = 2.0,
        cache_kib: int = 16 * 1024,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            tree_cls=ChartTree,
            guild_ready_timeout=guild_ready_timeout,
        )
        self.settings = settings
        self.extensions_wanted = tuple(extensions)
        self.sync_dev_guild = sync_dev_guild
        self.defer_after = defer_after  # commands that may take longer defer their answer
        self.cache_kib = cache_kib  # the DB connection's page cache (see bot.store.history.set_cache_size)
        # Production (serve) freezes the objects alive once ready, so that collecting the garbage a
        # picture leaves (matplotlib's cycles, ~30 MB if left to the collector) costs ~1 ms, not ~35.
        self.freeze_gc = freeze_gc
        self.store: Store | None = None
        self.titles = TitleIndex([])
        self.http_session: aiohttp.ClientSession | None = None
        self._store_lock = asyncio.Lock()
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self._closing = False

    # --- endpoints ------------------------------------------------------------------------------------

    def _apply_endpoints(self) -> None:
        base, gateway = self.settings.api_base, self.settings.gateway_url
        if not (base or gateway) or self._saved_endpoints is not None:
            return
        self._saved_endpoints = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if base:
            Route.BASE = base.rstrip("/")
        if gateway:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_endpoints
            self._saved_endpoints = None

    async def login(self, token: str) -> None:
        self._apply_endpoints()
        await super().login(token)

    # --- lifecycle ------------------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self.http_session = aiohttp.ClientSession(
            headers={"User-Agent": DEFAULT_USER_AGENT}, timeout=aiohttp.ClientTimeout(total=60)
        )
        await self.tree.set_translator(ChartTranslator())  # commands in the fans' languages
        try:
            await self.get_store()
        except DatabaseUnavailable as exc:
            log.error("the chart database is unavailable (%s); commands will say so until it opens", exc)
        for name in self.extensions_wanted:
            if importlib.util.find_spec(name) is None:
                log.debug("extension %s does not exist (yet): skipped", name)
                continue
            try:
                await self.load_extension(name)
            except Exception:
                log.exception("could not load extension %s", name)
            else:
                log.info("loaded extension %s", name)
        if self.sync_dev_guild and self.settings.dev_guild:
            guild = discord.Object(self.settings.dev_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to the dev guild %s", len(synced), self.settings.dev_guild)

    async def on_ready(self) -> None:
        if self.freeze_gc:
            freeze_long_lived()
        user = self.user
        log.info("ready as %s (id %s) in %d servers", user, user.id if user else "?", len(self.guilds))

    async def close(self) -> None:
        """Close Discord, then the HTTP session and the DB; idempotent (SIGTERM and `async with` both call it)."""
        if self._closing:
            return
        self._closing = True
        try:
            await super().close()
        finally:
            if self.http_session is not None:
                await self.http_session.close()
                self.http_session = None
            store, self.store = self.store, None
            if store is not None:
                with contextlib.suppress(Exception):
                    await store.close()
            self._restore_endpoints()

    # --- the store and the title index ----------------------------------------------------------------

    async def get_store(self) -> Store:
        """The open store; (re)opened on demand, so a missing or closed DB heals without a restart.

        Raises DatabaseUnavailable when it cannot be opened.
        """
        store = self.store
        if store is not None:
            return store
        async with self._store_lock:
            if self.store is None:
                try:
                    opened = await Store.open(self.settings.db_path)
                except (sqlite3.Error, OSError, SchemaError) as exc:
                    raise DatabaseUnavailable(f"{self.settings.db_path}: {exc}") from exc
                try:
                    await opened.run(set_cache_size, self.cache_kib)
                    await self._load_titles(opened)
                except Exception:
                    await opened.close()
                    raise
                self.store = opened
                log.info("opened the chart database %s (%d titles)", self.settings.db_path, len(self.titles))
            return self.store

    async def refresh_titles(self) -> None:
        """Rebuild the in-memory title index (autocomplete, title lookup) after history changed."""
        await self._load_titles(await self.get_store())

    async def _load_titles(self, store: Store) -> None:
        rows = await store.title_catalog()
        self.titles = await asyncio.to_thread(TitleIndex, rows)
        if self.freeze_gc and self.is_ready():
            freeze_long_lived()

    def _forget_store(self) -> None:
        """Drop a broken store: the next command opens the DB again."""
        store, self.store = self.store, None
        if store is not None:
            task = asyncio.get_running_loop().create_task(store.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # --- errors ---------------------------------------------------------------------------------------

    async def on_app_command_error(self, interaction: discord.Interaction, error: BaseException) -> None:
        """One clear ephemeral line for the user; a traceback in the log only for the unexpected."""
        message, unexpected = explain(error)
        original = getattr(error, "original", None) or error
        command = interaction.command.qualified_name if interaction.command else "?"
        if unexpected:
            log.error("/%s failed", command, exc_info=original)
        elif is_database_error(original):
            log.warning("/%s: database unavailable: %s", command, original)
            if not _is_transient(original):
                self._forget_store()
        await send_error(interaction, message)


def freeze_long_lived() -> None:
    """Move every object alive now out of the collector's sight (gc.freeze): later full collections
    only walk what was made since, so cleaning up after each picture stays cheap."""
    gc.collect()
    gc.freeze()


def collect_garbage() -> None:
    """A full collection, when long-lived objects are frozen (then it takes ~1 ms)."""
    if gc.get_freeze_count():
        gc.collect()


async def send_error(interaction: discord.Interaction, message: str) -> None:
    """Answer ephemerally, whatever state the interaction is in (fresh, deferred, or answered)."""
    message = clip(discord.utils.escape_mentions(message), CONTENT)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True)
            return
        if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            # A public "thinking…" placeholder: remove it, or the first followup would replace it publicly.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        await interaction.followup.send(message, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not tell the user about an error (%s): %s", exc, message)


# --- running --------------------------------------------------------------------------------------


class TokenRedactor(logging.Filter):
    """Replaces the bot token wherever it would appear in a log line, tracebacks included."""

    def __init__(self, token: str, replacement: str = "[redacted token]") -> None:
        super().__init__()
        self.token = token
        self.replacement = replacement

    def _clean(self, text: str) -> str:
        return text.replace(self.token, self.replacement)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = self._clean(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info and self.token in record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


def install_token_redaction(token: str, logger: logging.Logger | None = None) -> TokenRedactor:
    """Put a TokenRedactor on every handler of `logger` (default: the root logger).

    On handlers, not on the logger: a logger's filters do not see records propagated from its children.
    """
    logger = logger or logging.getLogger()
    redactor = TokenRedactor(token)
    for handler in logger.handlers:
        handler.addFilter(redactor)
    return redactor


def _require_token(settings: Settings) -> str:
    if not settings.discord_token:
        raise InputError(
            "DISCORD_TOKEN is not set: put the bot token from the Discord Developer Portal "
            "(Applications > your bot > Bot > Reset Token) in the environment or in .env"
        )
    return settings.discord_token


def setup_logging(settings: Settings) -> None:
    """The log level from settings, and the token scrubbed from every line that reaches a handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    root.setLevel(settings.log_level)
    if settings.discord_token:
        install_token_redaction(settings.discord_token, root)


def _login_failed(exc: discord.LoginFailure) -> InputError:
    return InputError(
        "Discord rejected DISCORD_TOKEN (401 Unauthorized): reset the token in the Developer Portal "
        "and update DISCORD_TOKEN"
    )


async def serve(settings: Settings, *, bot: ChartBot | None = None) -> None:
    """Run the bot until SIGTERM, Ctrl-C or a fatal error; close bot, session and DB cleanly."""
    token = _require_token(settings)
    bot = bot or ChartBot(settings, freeze_gc=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    try:
        async with bot:
            running = asyncio.create_task(bot.start(token), name="chartbot")
            stopping = asyncio.create_task(stop.wait(), name="chartbot-stop")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                log.info("stopping: closing the bot, the HTTP session and the database")
                await bot.close()
            stopping.cancel()
            try:
                await running
            except discord.LoginFailure as exc:
                raise _login_failed(exc) from None
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def sync(settings: Settings) -> list[app_commands.AppCommand]:
    """Publish the commands globally (they reach every server within an hour). Logs in over REST only."""
    token = _require_token(settings)
    bot = ChartBot(settings, sync_dev_guild=False)
    async with bot:
        try:
            await bot.login(token)
        except discord.LoginFailure as exc:
            raise _login_failed(exc) from None
        return await bot.tree.sync()
