"""The Discord client: `ChartBot` owns the store, the title index and the HTTP session.

`serve` / `sync` are what `chartbot run` / `chartbot sync` call. The endpoints come from
settings (`DISCORD_API_BASE`, `DISCORD_GATEWAY_URL`) so that a REST or gateway proxy - or the fake
Discord of the tests - can stand in for discord.com; the bot restores discord.py's defaults on close
(both through bot.compat, which also checks the installed discord.py at login).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
import discord
import yarl
from babel.lists import format_list
from discord import app_commands
from discord.ext import commands

from bot import compat
from bot.announcer.engine import Announcer, AnnouncerConfig
from bot.announcer.pacing import InvalidRequests, RestGate
from bot.cluster import Duties, LastError, tick_for
from bot.i18n import ENGLISH, SOURCE, Messages, translator
from bot.i18n.commands import ChartTranslator
from bot.model import InputError
from bot.poller import Poller
from bot.render import CONTENT, clip
from bot.settings import Settings
from bot.shards import IDENTIFY_WINDOW, IdentifyPacer, describe_shards, rate_share
from bot.sources.http import DEFAULT_USER_AGENT
from bot.store import (
    DELIVERIES_PLANNED,
    HISTORY_CHANGED,
    PLAN,
    POLL,
    RECONNECTED,
    SETTINGS_CHANGED,
    DatabaseUnavailable,
    MemberReport,
    SchemaError,
    ShardScope,
    Store,
    StoreBusy,
    StoreError,
    claim_process,
    join_cluster,
    open_store,
    redact,
)
from bot.titles import TitleIndex

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.rank", "cogs.watch", "cogs.announce", "cogs.poll")
CLOSE_INVALID_SHARD = 4010  # the gateway's close codes for a shard it will not take
CLOSE_SHARDING_REQUIRED = 4011
DB_UNAVAILABLE = ENGLISH.gettext("error.db_unavailable")
UNEXPECTED = ENGLISH.gettext("error.unexpected")


def is_database_error(error: BaseException) -> bool:
    """Errors that mean "the database is unavailable" rather than a bug in a query."""
    return isinstance(error, DatabaseUnavailable | SchemaError | StoreError)


def _is_transient(error: BaseException) -> bool:
    """A busy or locked database: the connection is fine, only this call failed."""
    return isinstance(error, StoreBusy)


def explain(error: BaseException, tr: Messages = ENGLISH) -> tuple[str, bool]:
    """(one line for the user in `tr`'s language, whether the error is unexpected and its traceback
    belongs in the log). An InputError is already in the user's language (whoever raised it was told
    which)."""
    original = getattr(error, "original", None) or error
    if isinstance(original, InputError):
        return str(original), False
    if is_database_error(original):
        return tr.gettext("error.db_unavailable"), False
    if isinstance(error, app_commands.CommandOnCooldown):
        seconds = f"{error.retry_after:.0f}"
        return tr.gettext("error.cooldown", seconds=seconds), False
    if isinstance(error, app_commands.MissingPermissions):
        if tr.locale == SOURCE:
            return str(error), False  # discord.py's own words
        return missing_permissions(error.missing_permissions, tr), False
    if isinstance(error, app_commands.NoPrivateMessage):
        return tr.gettext("error.servers_only"), False
    if isinstance(error, app_commands.CheckFailure):
        if tr.locale == SOURCE and str(error):
            return str(error), False  # a check's own words (English)
        return tr.gettext("error.not_here"), False
    return tr.gettext("error.unexpected"), True


def missing_permissions(permissions: Sequence[str], tr: Messages = ENGLISH) -> str:
    """ "You are missing Manage Server permission(s) to run this command.", with Discord's own names of
    the permissions in the user's language (in English, discord.py says it itself)."""
    keys = {name: f"permission.{name}" for name in permissions}
    names = [
        tr.gettext(keys[name])
        if name in PERMISSION_NAMES
        else name.replace("_", " ").replace("guild", "server").title()
        for name in permissions
    ]
    return tr.gettext("error.missing_permissions", permissions=format_list(names, locale=tr.babel))


PERMISSION_NAMES = frozenset({"manage_guild"})
"""The permissions a command of ours requires (`permission.<name>`: Discord's name in each language)."""


class ChartTree(app_commands.CommandTree):
    """The command tree, with one error handler for every command (see `ChartBot.on_app_command_error`)."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self.client.on_app_command_error(interaction, error)  # type: ignore[attr-defined]


class ChartBot(commands.AutoShardedBot):
    """The bot. `setup_hook` opens the DB, builds the title index, loads the cogs and syncs to the dev
    guild (never globally on start: Discord limits command creation per day).

    Sharded: `connect` asks Discord for its recommended shard count (unless `CHARTBOT_SHARD_COUNT` sets
    it) and how many shards may IDENTIFY at once; the process runs every shard, or those
    `CHARTBOT_SHARDS` names. `identify_window` is Discord's 5 s between IDENTIFYs of one rate-limit key
    (tests shorten it, with the fake Discord's window)."""

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
        identify_window: float = IDENTIFY_WINDOW,
    ) -> None:
        # Every REST answer is seen here: Discord bans an IP after 10,000 invalid ones in 10 minutes, and
        # the announcer stops posting well before (bot/announcer/pacing.py).
        self.invalid_requests = InvalidRequests()
        # ...and every REST call takes a permit of one budget: Discord's global limit is per bot.
        self.rest_gate = RestGate()
        trace = aiohttp.TraceConfig()
        self.rest_gate.attach(trace)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            tree_cls=ChartTree,
            guild_ready_timeout=guild_ready_timeout,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shards) if settings.shards is not None else None,
            http_trace=self.invalid_requests.trace_config(trace),
            # A route limit longer than this (publishing: ~10 an hour per channel) raises RateLimited
            # with Discord's retry_after instead of holding a worker asleep for it.
            max_ratelimit_timeout=60.0,
        )
        self.settings = settings
        self.identify_pacer = IdentifyPacer(window=identify_window)
        self.recommended_shards: int | None = None  # what Discord recommended at the last connect
        self.extensions_wanted = tuple(extensions)
        self.sync_dev_guild = sync_dev_guild
        self.defer_after = defer_after  # commands that may take longer defer their answer
        self.cache_kib = cache_kib  # the DB connection's page cache (see bot.store.history.set_cache_size)
        # Production (serve) freezes the objects alive once ready, so that collecting the garbage a
        # picture leaves (matplotlib's cycles, ~30 MB if left to the collector) costs ~1 ms, not ~35.
        self.freeze_gc = freeze_gc
        self.store: Store | None = None
        self.announce_config = AnnouncerConfig(
            # CHARTBOT_ANNOUNCE_RATE is the whole bot's: a process running some shards posts its share
            rate=rate_share(settings.announce_rate, settings.shards, settings.shard_count),
            workers=settings.announce_workers,
            hold=settings.announce_hold,
        )
        self.announcer: Announcer = Announcer(self, self.announce_config)
        self.rest_gate.budget = self.announcer.budget
        self.poller: Poller | None = None  # set by cogs/poll.py when the bot polls its sources
        self.duties: Duties | None = None  # the jobs this process does for the cluster (setup_hook)
        self.last_error = LastError()
        self._title_refresh: asyncio.Task[None] | None = None
        self._titles_stale = False
        self.titles = TitleIndex([])
        self.http_session: aiohttp.ClientSession | None = None
        self._store_lock = asyncio.Lock()
        self._saved_endpoints: compat.Endpoints | None = None
        self._closing = False

    # --- endpoints ------------------------------------------------------------------------------------

    def _apply_endpoints(self) -> None:
        if self._saved_endpoints is None:
            self._saved_endpoints = compat.point_at(self.settings.api_base, self.settings.gateway_url)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            compat.restore_endpoints(self._saved_endpoints)
            self._saved_endpoints = None

    async def login(self, token: str) -> None:
        compat.check_discord_version()  # warns, naming the version, about any shortcut it cannot take
        self._apply_endpoints()
        await super().login(token)

    # --- lifecycle ------------------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self.http_session = aiohttp.ClientSession(
            headers={"User-Agent": DEFAULT_USER_AGENT}, timeout=aiohttp.ClientTimeout(total=60)
        )
        if self.announcer.config is not self.announce_config:  # tests and benches set their own
            self.announcer = Announcer(self, self.announce_config)
            self.rest_gate.budget = self.announcer.budget
        await self.tree.set_translator(ChartTranslator())  # commands in the fans' languages
        try:
            await self.get_store()
        except DatabaseUnavailable as exc:
            log.error("the chart database is unavailable (%s); commands will say so until it opens", exc)
        await self._join_cluster()
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

    # --- the cluster ----------------------------------------------------------------------------------

    async def _join_cluster(self) -> None:
        """Join the processes sharing the database: poll and plan when no other process does, hear
        their notices. On SQLite this process is the whole cluster and does every job."""
        link = join_cluster(self.settings.db_path)
        link.subscribe(self._on_notice)
        logging.getLogger().addHandler(self.last_error)
        jobs = (POLL, PLAN) if self.settings.poll_in_bot else (PLAN,)
        self.duties = Duties(
            link, self._member_report, self._on_job, jobs=jobs, tick=tick_for(self.settings.poll_interval)
        )
        await self.duties.start()

    def holds(self, job: str) -> bool:
        """Does this process do that job (`bot.store.POLL`, `PLAN`) now? (Before it joined: yes.)"""
        return self.duties is None or self.duties.holds(job)

    def shard_scope(self) -> ShardScope | None:
        """The shards whose servers this process posts for (None: every server)."""
        if self.shard_ids is None or not self.shard_count:
            return None
        return ShardScope(frozenset(self.shard_ids), self.shard_count)

    def _member_report(self) -> MemberReport:
        count = self.shard_count or 0
        ids = tuple(sorted(self.shard_ids)) if self.shard_ids is not None else tuple(range(count))
        return MemberReport(
            name=f"{socket.gethostname()}:{os.getpid()}",
            shard_ids=ids if self.is_ready() or self.shard_ids is not None else (),
            shard_count=count,
            last_error=self.last_error.text,
            last_error_at=self.last_error.at,
        )

    async def _on_job(self, job: str, held: bool) -> None:
        if job == PLAN:
            if held:
                self.announcer.wake()  # (the announcer plans while this process holds PLAN)
        elif job == POLL and self.poller is not None:
            if held:
                self.poller.start()
            else:
                await self.poller.stop()

    def _on_notice(self, topic: str, detail: str) -> None:
        """Another process (or this one) changed something in the database: act on it here."""
        if topic in (HISTORY_CHANGED, RECONNECTED) and not (topic == HISTORY_CHANGED and self.holds(POLL)):
            self._refresh_titles_soon()  # (the polling process refreshes its own after each cycle)
        if topic in (DELIVERIES_PLANNED, SETTINGS_CHANGED, RECONNECTED) or detail == "milestones":
            self.announcer.wake()
        if topic == DELIVERIES_PLANNED:
            self._wake_when_due(detail)
        if topic == SETTINGS_CHANGED and len(parts := detail.split()) == 2:
            self.announcer.forget_broken(int(parts[0]), int(parts[1]))
        self.dispatch("cluster_notice", topic, detail)

    def _wake_when_due(self, detail: str) -> None:
        """Wake the announcer again when the deliveries just planned are due (they wait for more news
        of their title for a while), rather than at its next look."""
        try:
            due = float(detail)
        except ValueError:
            return
        delay = due - time.time()
        if 0 < delay < 86_400:
            asyncio.get_running_loop().call_later(delay + 0.05, self.announcer.wake)

    def _refresh_titles_soon(self) -> None:
        """Rebuild the title index once; notices arriving meanwhile make one more rebuild, not one each."""
        if self._title_refresh is not None and not self._title_refresh.done():
            self._titles_stale = True
            return

        async def refresh() -> None:
            while True:
                self._titles_stale = False
                try:
                    await self.refresh_titles()
                except Exception as exc:
                    log.warning("could not refresh the title index: %s", exc)
                if not self._titles_stale:
                    return

        self._title_refresh = asyncio.get_running_loop().create_task(refresh(), name="chartbot-titles")

    # --- shards ---------------------------------------------------------------------------------------

    async def connect(self, *, reconnect: bool = True) -> None:
        """Ask Discord (`GET /gateway/bot`) for the recommended shard count and the IDENTIFY concurrency,
        then connect this process's shards. The shards connect to `DISCORD_GATEWAY_URL` when it is set
        (discord.py, left to ask for the count itself, would take the gateway URL Discord names)."""
        gateway = await compat.bot_gateway(self)
        self.recommended_shards = gateway.shards
        self.identify_pacer.max_concurrency = gateway.max_concurrency
        if self.settings.shard_count is None and gateway.shards is not None:
            self.shard_count = gateway.shards
        configured = self.settings.shard_count
        if configured is not None and gateway.shards is not None and configured < gateway.shards:
            log.warning(
                "CHARTBOT_SHARD_COUNT=%d is below the %d shards Discord recommends: a shard with more "
                "than 2,500 servers is refused (close code 4011)",
                configured,
                gateway.shards,
            )
        if self.shard_count is not None:
            log.info(
                "running %s (Discord recommends %s; IDENTIFY concurrency %d per %g s)",
                describe_shards(self.shard_ids or range(self.shard_count), self.shard_count),
                gateway.shards if gateway.shards is not None else "?",
                gateway.max_concurrency,
                self.identify_pacer.window,
            )
        await super().connect(reconnect=reconnect)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait until this shard's rate-limit key may IDENTIFY (discord.py's own hook waits 5 s before
        every shard but the first, whatever `max_concurrency` allows)."""
        waited = await self.identify_pacer.wait(shard_id or 0)
        log.debug("shard %s identifies (waited %.2f s)", shard_id, waited)

    def shard_description(self) -> str:
        """``"shards 0-3 of 6"``: the shards this process runs."""
        count = self.shard_count or 1
        return describe_shards(self.shard_ids or range(count), count)

    async def on_ready(self) -> None:
        if self.freeze_gc:
            freeze_long_lived()
        user = self.user
        log.info(
            "ready as %s (id %s) in %d servers on %s",
            user,
            user.id if user else "?",
            len(self.guilds),
            self.shard_description(),
        )

    async def close(self) -> None:
        """Close Discord, then the HTTP session and the DB; idempotent (SIGTERM and `async with` both call it)."""
        if self._closing:
            return
        self._closing = True
        try:
            await super().close()
        finally:
            duties, self.duties = self.duties, None
            if duties is not None:
                with contextlib.suppress(Exception):
                    await duties.stop()
            logging.getLogger().removeHandler(self.last_error)
            if self._title_refresh is not None:
                self._title_refresh.cancel()
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
                where = redact(self.settings.db_path)
                try:
                    opened = await open_store(self.settings.db_path, cache_kib=self.cache_kib)
                except (StoreError, OSError) as exc:
                    raise DatabaseUnavailable(f"{where}: {exc}") from exc
                try:
                    await self._load_titles(opened)
                except Exception:
                    await opened.close()
                    raise
                self.store = opened
                log.info("opened the chart database %s (%d titles)", where, len(self.titles))
            return self.store

    async def refresh_titles(self) -> None:
        """Rebuild the in-memory title index (autocomplete, title lookup) after history changed."""
        await self._load_titles(await self.get_store())

    async def _load_titles(self, store: Store) -> None:
        rows = await store.charts.title_catalog()
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
        message, unexpected = explain(error, translator(interaction.locale))
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
    """Answer ephemerally, whatever state the interaction is in (fresh, deferred, or answered).

    After a deferral the answer is an edit of the "thinking…" message - when that one is private. A
    public one would show the error to everyone: it is deleted and the error sent privately on its own
    (a followup, which is a new message once the original is gone). After a real answer, the error is
    a private followup beside it.
    """
    message = clip(discord.utils.escape_mentions(message), CONTENT)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True)
            return
        if interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            try:
                original: discord.InteractionMessage | None = await interaction.original_response()
            except discord.DiscordException:
                original = None  # unknown: treat it as a public placeholder
            if original is None or original.flags.loading:
                if original is not None and original.flags.ephemeral:
                    await interaction.edit_original_response(content=message)
                    return
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


@dataclass
class Backoff:
    """Exponential backoff with jitter: waits of about `first`, 2x, 4x, ... up to `cap` seconds, each
    drawn from the upper half of its step so that many bots restarting together spread out."""

    first: float = 5.0
    cap: float = 300.0
    random: Callable[[], float] = random.random
    failures: int = 0

    def next_wait(self) -> float:
        step = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return step * (0.5 + self.random() / 2)

    def reset(self) -> None:
        self.failures = 0


class DiscordUnreachable(Exception):
    """A probe of Discord's API or gateway got no usable answer (a 5xx, or the handshake failed)."""


def is_unreachable(error: BaseException) -> bool:
    """Failures that waiting can fix: no connection, a timeout, a 5xx. A 401 (LoginFailure) is not one."""
    if isinstance(error, discord.LoginFailure):
        return False
    if isinstance(error, discord.HTTPException):
        return error.status >= 500
    return isinstance(
        error, OSError | TimeoutError | aiohttp.ClientError | discord.GatewayNotFound | DiscordUnreachable
    )


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())  # one line, whatever the library put in the message
    return text or type(error).__name__


def discord_endpoints(settings: Settings) -> tuple[str, str]:
    """(REST base, gateway URL) the bot will use: from settings, else discord.py's defaults."""
    api_base, gateway = compat.current_endpoints()
    return (settings.api_base or api_base).rstrip("/"), settings.gateway_url or gateway


_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


async def probe_api(api_base: str) -> None:
    """GET {api}/gateway (no token needed): any answer below 500 means the API is there."""
    async with (
        aiohttp.ClientSession(timeout=_PROBE_TIMEOUT, headers={"User-Agent": DEFAULT_USER_AGENT}) as session,
        session.get(f"{api_base}/gateway") as resp,
    ):
        if resp.status >= 500:
            raise DiscordUnreachable(f"HTTP {resp.status}")


async def probe_gateway(gateway_url: str) -> None:
    """Open a websocket to the gateway and close it again (no IDENTIFY: nothing is started)."""
    url = yarl.URL(gateway_url).with_query(v=10, encoding="json")
    async with (
        aiohttp.ClientSession(timeout=_PROBE_TIMEOUT, headers={"User-Agent": DEFAULT_USER_AGENT}) as session,
        session.ws_connect(url, heartbeat=None) as ws,
    ):
        await ws.close()


async def wait_until_reachable(what: str, probe: Callable[[], Awaitable[None]], backoff: Backoff) -> None:
    """Probe until it succeeds; each failure is one warning line and a wait from `backoff`."""
    while True:
        try:
            await probe()
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            await asyncio.sleep(_wait_to_retry(what, exc, backoff))
        else:
            return


def _wait_to_retry(what: str, error: BaseException, backoff: Backoff) -> float:
    """The next wait, logged as one line."""
    wait = backoff.next_wait()
    log.warning(
        "%s is unreachable (%s); trying again in %.1f s (attempt %d)",
        what,
        _reason(error),
        wait,
        backoff.failures + 1,
    )
    return wait


async def start_when_reachable(bot: ChartBot, token: str, backoff: Backoff) -> None:
    """`bot.start(token)`, except that an unreachable API or gateway is waited for with backoff.

    Each endpoint is probed first, with a session of our own: discord.py cannot retry its first
    connection (a failed login leaves an unclosed session behind; a failed first gateway connection
    ends in an AttributeError, Rapptz/discord.py#10520). A 401 raises LoginFailure at once.
    """
    api, gateway = discord_endpoints(bot.settings)
    while True:
        await wait_until_reachable(f"Discord's API at {api}", lambda: probe_api(api), backoff)
        try:
            await bot.login(token)
            break
        except Exception as exc:
            # Discord went away between the probe and the login (rare): try again, leaving the failed
            # attempt's HTTP session to the collector. Only before setup_hook has begun: after it, a
            # second login would load the cogs twice.
            if not is_unreachable(exc) or bot.http_session is not None:
                raise
            await asyncio.sleep(_wait_to_retry(f"Discord's API at {api}", exc, backoff))
    backoff.reset()
    while True:
        await wait_until_reachable(f"Discord's gateway at {gateway}", lambda: probe_gateway(gateway), backoff)
        try:
            await bot.connect()  # once connected, discord.py reconnects by itself
            return
        except Exception as exc:
            first_connection_failed = not bot.shards and not bot.is_closed()
            if not (first_connection_failed and (is_unreachable(exc) or isinstance(exc, AttributeError))):
                raise
            await asyncio.sleep(_wait_to_retry(f"Discord's gateway at {gateway}", exc, backoff))


def _shard_refused(exc: discord.ConnectionClosed, bot: ChartBot) -> InputError:
    """One line for a shard Discord will not take: too many servers on it (4011) or an invalid one (4010)."""
    shard = f"shard {exc.shard_id} of {bot.shard_count}"
    if exc.code == CLOSE_SHARDING_REQUIRED:
        if bot.settings.shard_count is None:
            advice = "start again to use Discord's new recommendation"
        else:
            advice = (
                f"raise CHARTBOT_SHARD_COUNT (Discord recommends {bot.recommended_shards or 'more'}), "
                "or leave it empty to use Discord's recommendation"
            )
        return InputError(
            f"Discord refused {shard}: it would hold more servers than a shard may (close code 4011, "
            f"sharding required); {advice}"
        )
    return InputError(
        f"Discord refused {shard} as invalid (close code 4010): check CHARTBOT_SHARD_COUNT and CHARTBOT_SHARDS"
    )


async def serve(settings: Settings, *, bot: ChartBot | None = None, backoff: Backoff | None = None) -> None:
    """Run the bot until SIGTERM, Ctrl-C or a fatal error; close bot, session and DB cleanly.

    The database is claimed for this process first (`bot.store.claim_process`): a second bot process
    on one SQLite file, or a subset of shards on SQLite, is refused with StoreInUse before anything
    starts. While Discord cannot be reached at start, wait and try again (`backoff`: 5 s doubling to
    5 min)."""
    token = _require_token(settings)
    claim = await claim_process(settings.db_path, shard_subset=settings.shards is not None)
    try:
        await _serve_claimed(settings, token, bot, backoff)
    finally:
        claim.release()


async def _serve_claimed(
    settings: Settings, token: str, bot: ChartBot | None, backoff: Backoff | None
) -> None:
    bot = bot or ChartBot(settings, freeze_gc=True)
    backoff = backoff or Backoff()
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
            running = asyncio.create_task(start_when_reachable(bot, token, backoff), name="chartbot")
            stopping = asyncio.create_task(stop.wait(), name="chartbot-stop")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                log.info("stopping: closing the bot, the HTTP session and the database")
                await bot.close()
                running.cancel()  # still waiting for Discord, perhaps: nothing left to wait for
            stopping.cancel()
            try:
                await running
            except asyncio.CancelledError:
                if not stop.is_set():
                    raise
            except discord.LoginFailure as exc:
                raise _login_failed(exc) from None
            except discord.ConnectionClosed as exc:
                if exc.code in (CLOSE_INVALID_SHARD, CLOSE_SHARDING_REQUIRED):
                    raise _shard_refused(exc, bot) from None
                raise
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
