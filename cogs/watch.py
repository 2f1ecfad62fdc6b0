"""Admins' commands: what this server follows (/watch) and how it is announced (/settings).

Both groups need Manage Server, checked by the bot on every command (`default_permissions` only hides
them in Discord's UI, and on a subcommand it is ignored, so it sits on the groups), and run only in
servers that installed the bot (`allowed_contexts` / `allowed_installs`). Every read and write
is keyed by the interaction's guild: a server never sees or changes another's configuration. Replies
are ephemeral: configuration is the admins' business, in the admin's own language; the posts are in
the server's (`/settings language`; by default the server's own language, which every admin command
notes down for the announcer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.announcer import pacing, permissions, posts
from bot.announcer import policy as rules
from bot.announcer.policy import ALL, Policy, Watch
from bot.answers import in_time, reply, settle
from bot.buttons import Page, PageButton, Pages
from bot.i18n import ENGLISH, LOCALES, Messages, translator
from bot.model import InputError, split_season, title_key
from bot.pages import (
    LIST_PAGE_SIZE,
    NEXT,
    PREVIOUS,
    WATCH_LIST,
    PageExpired,
    Press,
    clamp_page,
    list_button,
    next_label,
    pack,
    parse_numbered,
    previous_label,
    turn,
)
from bot.render import CONTENT, clean_user_text, clip, join_lines, page_text, safe
from bot.store import StoreError
from bot.titles import AmbiguousTitle, TitleIndex, TitleNotFound, UnchartedTitle, quoted

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

EVERYTHING = ENGLISH.gettext("watch.everything")
ADMIN = discord.Permissions(manage_guild=True)
# Servers only, and only where the bot itself was added: a user install could run these where the bot is not.
IN_SERVERS = app_commands.AppCommandContext(guild=True)
SERVER_INSTALLS = app_commands.AppInstallationType(guild=True, user=False)
DEFAULT_LANGUAGE = "default"  # /settings language: the server's own
LANGUAGE_CHOICES = [
    Choice(name="Server default (the server's language in Discord)", value=DEFAULT_LANGUAGE),
    *(Choice(name=rules.language_name(language), value=language) for language in LOCALES),
]


# --- plain functions (texts in the admin's language: `tr`) ------------------------------------------


def channel_problem(
    channel: discord.abc.GuildChannel | None,
    me: discord.Member | None,
    broken: str | None = None,
    tr: Messages = ENGLISH,
) -> str | None:
    """Why the bot cannot post in a channel: a failure it met (403/404), or permissions it lacks now
    (the announcer's own rule, `bot.announcer.permissions`: its posts there wait until they are back)."""
    if broken:
        return broken
    if channel is None:
        return tr.gettext("watch.problem.gone")
    if me is None:
        return None
    if not permissions.is_text(channel):
        return tr.gettext("watch.problem.not_text")
    missing = permissions.missing(channel.permissions_for(me))
    return waits(permissions.describe(missing, tr), tr) if missing else None


def waits(problem: str, tr: Messages = ENGLISH) -> str:
    """A permission missing now: the announcer's posts there wait until it is back."""
    return tr.gettext("watch.problem.waits", problem=problem)


def warning(channel_id: int, problem: str, tr: Messages = ENGLISH) -> str:
    return tr.gettext("watch.cannot_post", channel=channel_id, problem=problem)


def everything(tr: Messages = ENGLISH) -> str:
    """What `/watch all` follows, as a watch's name."""
    return tr.gettext("watch.everything")


def watch_line(watch: Watch, policy: Policy, problem: str | None, tr: Messages = ENGLISH) -> str:
    name = everything(tr) if watch.everything else safe(watch.title, 150)
    channel = watch.channel(policy)
    if not channel:
        line = tr.gettext("watch.line.no_channel", name=name, command=tr.command("settings channel"))
    elif not watch.channel_id:
        line = tr.gettext("watch.line.server_channel", name=name, channel=channel)
    else:
        line = tr.gettext("watch.line", name=name, channel=channel)
    return line + (f"\n  {warning(channel, problem, tr)}" if channel and problem else "")


def settings_text(policy: Policy, tr: Messages = ENGLISH) -> str:
    if policy.channel_id:
        channel = f"<#{policy.channel_id}>"
    else:
        channel = tr.gettext("settings.show.no_channel", command=tr.command("settings channel"))
    digest_key = "settings.show.instant" if policy.digest == "instant" else "settings.show.period"
    digest = tr.gettext(digest_key)
    role = f"<@&{policy.mention_role_id}>" if policy.mention_role_id else tr.gettext("settings.show.nobody")
    publish = (
        tr.gettext("settings.show.publish_on") if policy.publish else tr.gettext("settings.show.publish_off")
    )
    return "\n".join(
        [
            tr.gettext("settings.show.channel", channel=channel),
            tr.gettext("settings.show.regions", regions=rules.describe_regions(policy.regions, tr)),
            tr.gettext("settings.show.events", events=rules.describe_events(policy.events, tr)),
            tr.gettext("settings.show.posts", posts=digest),
            tr.gettext("settings.show.mention", role=role),
            tr.gettext("settings.show.language", language=rules.describe_language(policy, tr)),
            tr.gettext("settings.show.publish", publish=publish),
        ]
    )


def nothing_watched(tr: Messages = ENGLISH) -> str:
    return tr.gettext("watch.nothing", add=tr.command("watch add"), all=tr.command("watch all"))


NOTHING_WATCHED = nothing_watched()
NOT_ADMIN = ENGLISH.gettext("watch.not_admin")


def list_heading(count: int, tr: Messages = ENGLISH) -> str:
    return tr.gettext("watch.heading", count=count)


def watch_list_pages(lines: Sequence[str], settings: str, tr: Messages = ENGLISH) -> list[str]:
    """The texts of /watch list, page by page: the heading, at most LIST_PAGE_SIZE watches, the
    server's settings and, when there are several pages, which page it is; each within a message."""
    heading = list_heading(len(lines), tr)
    room = CONTENT - len(heading) - len(settings) - len(page_text(999, 999, tr)) - 4  # newlines between parts
    chunks = pack(lines, room, LIST_PAGE_SIZE)
    texts = []
    for number, chunk in enumerate(chunks, start=1):
        parts = [heading, join_lines(chunk, max(room, 1), tr), "", settings]
        if len(chunks) > 1:
            parts.append(page_text(number, len(chunks), tr))
        texts.append(clip("\n".join(parts), CONTENT))
    return texts


class WatchListButton(PageButton, template=r"cb:w:.*"):
    cog_name = "Watch"


def list_buttons(owner: int, page: int, pages: int, tr: Messages = ENGLISH) -> list[PageButton]:
    if pages <= 1:
        return []
    return [
        WatchListButton(list_button(owner, PREVIOUS, page), label=previous_label(tr), disabled=page <= 0),
        WatchListButton(list_button(owner, NEXT, page), label=next_label(tr), disabled=page >= pages - 1),
    ]


def title_choices(index: TitleIndex, current: str) -> list[Choice[str]]:
    """Autocomplete from memory; the command re-resolves the value."""
    query = clean_user_text(current)[:100]
    return [
        Choice(name=clip(title, 100), value=title[:100]) for _key, title in index.complete(query, limit=25)
    ]


def resolve_title(index: TitleIndex, text: str, tr: Messages = ENGLISH) -> tuple[str, str, list[str] | None]:
    """(title_key, title, None) for a charted title; for one not in any chart yet (an upcoming release)
    the title as typed and, in place of None, the closest charted titles in case it was a typo.

    A watch is kept, so only the same title is taken — the same key, spaced differently, or a small
    typo in a long title — never a charted title the typed one merely starts or resembles: "Anna" is
    not "Anna Karenina", "Inventing Anna" is not "Anna". A text that fits several titles is refused."""
    text = clean_user_text(text)
    if not text:
        raise InputError(tr.gettext("error.no_title"))
    try:
        match = index.find(text, prefixes=False)
    except AmbiguousTitle as exc:
        names = ", ".join(f"**{safe(name, 100)}**" for name in exc.candidates[:5])
        raise InputError(
            tr.gettext("watch.ambiguous", title=quoted(safe(text, 100), tr), titles=names)
        ) from None
    except UnchartedTitle as exc:
        show, _season = split_season(text)
        return title_key(show), show, exc.candidates
    except TitleNotFound:
        raise InputError(tr.gettext("watch.no_letters", title=quoted(safe(text, 100), tr))) from None
    return match.key, match.title, None


def remove_target(text: str, watched: Sequence[tuple[str, str]], tr: Messages = ENGLISH) -> str:
    """The watch target `/watch remove` means: `*` for the headlines, else a watched title."""
    text = clean_user_text(text)
    if text in (ALL, EVERYTHING, everything(tr)) or text.casefold() in ("all", "all titles"):
        return ALL
    for target, title in watched:
        if text in (target, title) or text.casefold() == title.casefold():
            return target
    raise InputError(
        tr.gettext("watch.not_watched", title=quoted(safe(text, 100), tr), command=tr.command("watch list"))
    )


# --- the cog ----------------------------------------------------------------------------------------


class WatchCog(commands.Cog, name="Watch"):
    """/watch add|remove|list|all and /settings channel|regions|events|digest|mention-role|language|
    publish|test|show."""

    watch = app_commands.Group(
        name="watch",
        description="Follow titles: their milestones are posted in this server",
        guild_only=True,
        allowed_contexts=IN_SERVERS,
        allowed_installs=SERVER_INSTALLS,
        default_permissions=ADMIN,
    )
    settings = app_commands.Group(
        name="settings",
        description="Where and how this server's milestone posts appear",
        guild_only=True,
        allowed_contexts=IN_SERVERS,
        allowed_installs=SERVER_INSTALLS,
        default_permissions=ADMIN,
    )

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self._watched: dict[int, list[tuple[str, str]]] = {}  # per server, for autocomplete from memory
        self.pages = Pages(
            bot,
            (WatchListButton,),
            self._turn_list,
            defer_after=lambda: self._defer_after,
        )

    async def cog_load(self) -> None:
        self.pages.register()

    async def cog_unload(self) -> None:
        self.pages.unregister()

    # --- helpers ---------------------------------------------------------------------------------

    async def _store(self) -> Store:
        get_store = getattr(self.bot, "get_store", None)
        return await get_store() if get_store else self.bot.store  # type: ignore[attr-defined]

    @property
    def _defer_after(self) -> float:
        """Seconds an admin command may take before its answer is deferred (Discord waits 3 s)."""
        return getattr(self.bot, "defer_after", 2.0)

    @property
    def _titles(self) -> TitleIndex:
        return getattr(self.bot, "titles", None) or TitleIndex([])

    @staticmethod
    def _guild_id(interaction: discord.Interaction) -> int:
        if interaction.guild_id is None:
            raise InputError(translator(interaction.locale).gettext("watch.servers_only"))
        return interaction.guild_id

    def _problem(
        self, interaction: discord.Interaction, channel_id: int, broken: str | None = None
    ) -> str | None:
        guild = interaction.guild
        if guild is None:
            return broken
        return channel_problem(
            guild.get_channel(channel_id), guild.me, broken, translator(interaction.locale)
        )

    @staticmethod
    def _as_now(policy: Policy, interaction: discord.Interaction) -> Policy:
        """The server's settings with its own language as Discord says it now."""
        return replace(policy, server_language=rules.server_language(interaction.guild_locale))

    @commands.Cog.listener()
    async def on_app_command_completion(
        self, interaction: discord.Interaction, command: app_commands.Command | app_commands.ContextMenu
    ) -> None:
        """After an admin command went through: note down the server's own language (Discord's
        preferred locale of the server), the language of its posts unless one was chosen."""
        root = getattr(command, "root_parent", None)
        if interaction.guild_id is None or root not in (self.watch, self.settings):
            return
        language = rules.server_language(interaction.guild_locale)
        try:
            store = await self._store()
            if (await store.guilds.policy(interaction.guild_id)).server_language != language:
                await store.guilds.update_settings(interaction.guild_id, server_language=language)
        except StoreError as exc:
            log.warning("could not note the language of server %s: %s", interaction.guild_id, exc)

    async def _healed(self, guild_id: int, channel_id: int) -> None:
        """An admin chose this channel again: forget an old failure there, post again."""
        store = await self._store()
        await store.guilds.clear_broken(guild_id, channel_id)
        announcer = getattr(self.bot, "announcer", None)
        if announcer is not None:
            announcer.forget_broken(guild_id, channel_id)

    async def _add(
        self,
        interaction: discord.Interaction,
        target: str,
        title: str,
        channel: discord.abc.GuildChannel | None,
        note: str = "",
    ) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        policy = await store.guilds.policy(guild_id)
        if channel is not None:
            stored, shown = channel.id, channel.id
        elif policy.channel_id:
            stored, shown = 0, policy.channel_id  # follows the server's channel if it changes
        else:
            stored = shown = interaction.channel_id or 0
        _, created = await store.guilds.add_watch(guild_id, target, title, stored)
        self._watched.pop(guild_id, None)
        await self._healed(guild_id, shown)
        tr = translator(interaction.locale)
        name = everything(tr) if target == ALL else f"**{safe(title, 150)}**"
        key = "watch.added" if created else "watch.already"
        text = tr.gettext(key, name=name, channel=shown)
        problem = self._problem(interaction, shown)
        if problem:
            text += f"\n{warning(shown, problem, tr)}"
        await reply(interaction, clip(text + note, CONTENT))

    # --- /watch ----------------------------------------------------------------------------------

    @watch.command(
        name="add", description="Post a title's milestones (in a channel, or the server's channel)"
    )
    @app_commands.describe(
        title="The title to follow", channel="Where to post (default: the server's channel)"
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_add(
        self, interaction: discord.Interaction, title: str, channel: discord.TextChannel | None = None
    ) -> None:
        async with in_time(interaction, self._defer_after):
            await self._store()  # opens the DB (and the title index) if it was not open yet
            tr = translator(interaction.locale)
            key, name, suggestions = resolve_title(self._titles, title, tr)
            note = ""
            if suggestions is not None:
                note = "\n" + tr.gettext("watch.uncharted", title=quoted(safe(name, 100), tr))
                if suggestions:
                    names = ", ".join(f"**{safe(t, 100)}**" for t in suggestions[:3])
                    note = tr.gettext("watch.did_you_mean", text=note, titles=names)
            await self._add(interaction, key, name, channel, note)

    @watch_add.autocomplete("title")
    async def _add_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return title_choices(self._titles, current)

    @watch.command(
        name="all", description="Post every title's headlines: No. 1 worldwide, records, many countries"
    )
    @app_commands.describe(channel="Where to post (default: the server's channel)")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_all(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        async with in_time(interaction, self._defer_after):
            await self._add(interaction, ALL, EVERYTHING, channel)

    @watch.command(name="remove", description="Stop posting a title's milestones (or `all`)")
    @app_commands.describe(title="A watched title, or `all` for every title's headlines")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_remove(self, interaction: discord.Interaction, title: str) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            store = await self._store()
            watched = await store.guilds.watched_titles(guild_id)
            target = remove_target(title, watched, tr)
            removed = await store.guilds.remove_watches(guild_id, target)
            self._watched.pop(guild_id, None)
            shown = next((t for k, t in watched if k == target), title)
            name = everything(tr) if target == ALL else f"**{safe(shown, 150)}**"
            key = "watch.removed" if removed else "watch.not_removed"
            text = tr.gettext(key, name=name)
            await reply(interaction, text)

    @watch_remove.autocomplete("title")
    async def _remove_title(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        if interaction.guild_id is None:
            return []
        watched = self._watched.get(interaction.guild_id)
        if watched is None:
            store = await self._store()
            watched = self._watched[interaction.guild_id] = await store.guilds.watched_titles(
                interaction.guild_id
            )
        query = clean_user_text(current).casefold()
        tr = translator(interaction.locale)
        choices = [
            Choice(name=clip(everything(tr) if target == ALL else title, 100), value=target[:100])
            for target, title in watched
            if query in title.casefold() or (target == ALL and query in everything(tr).casefold())
        ]
        return choices[:25]

    @watch.command(name="list", description="What this server watches, and whether the bot can post there")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_list(self, interaction: discord.Interaction) -> None:
        async with in_time(interaction, self._defer_after):
            tr = translator(interaction.locale)
            texts = await self._list_texts(interaction)
            if texts is None:
                await reply(interaction, nothing_watched(tr))
                return
            page = Page(content=texts[0], buttons=list_buttons(interaction.user.id, 0, len(texts), tr))
            await settle(interaction)
            await self.pages.send(interaction, page, WATCH_LIST, ephemeral=True)

    async def _list_texts(self, interaction: discord.Interaction) -> list[str] | None:
        """The pages of /watch list (None: nothing is watched), in the admin's language."""
        guild_id = self._guild_id(interaction)
        tr = translator(interaction.locale)
        store = await self._store()
        watches = await store.guilds.watches(guild_id)
        policy = self._as_now(await store.guilds.policy(guild_id), interaction)
        broken = await store.guilds.broken_channels(guild_id)
        blocked = await store.guilds.blocked_channels(guild_id)
        errors = await store.guilds.last_errors(guild_id)
        if not watches:
            return None
        lines = []
        for watch in watches:
            channel = watch.channel(policy)
            problem = self._problem(interaction, channel, broken.get(channel)) if channel else None
            if channel and not problem and channel in blocked:  # as the announcer last found it
                problem = waits(blocked[channel], tr)
            line = watch_line(watch, policy, problem, tr)
            if channel and not problem and channel in errors:
                line += "\n  " + tr.gettext("watch.retrying", error=clip(errors[channel], 80))
            lines.append(line)
        return watch_list_pages(lines, settings_text(policy, tr), tr)

    async def _turn_list(self, interaction: discord.Interaction, press: Press) -> Page:
        """Previous or next page of /watch list, read again (the admin check too: a role may be gone)."""
        if press.book != WATCH_LIST:
            raise PageExpired(press.book)
        page, _ = parse_numbered(press)
        tr = translator(interaction.locale)
        if not interaction.permissions.manage_guild:
            raise InputError(tr.gettext("watch.not_admin"))
        texts = await self._list_texts(interaction)
        if texts is None:
            return Page(content=nothing_watched(tr))
        target = turn(clamp_page(page, len(texts)), press.action, len(texts), tr)
        return Page(content=texts[target], buttons=list_buttons(press.owner, target, len(texts), tr))

    # --- /settings -------------------------------------------------------------------------------

    @settings.command(name="show", description="This server's announcement settings")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_show(self, interaction: discord.Interaction) -> None:
        async with in_time(interaction, self._defer_after):
            store = await self._store()
            policy = self._as_now(await store.guilds.policy(self._guild_id(interaction)), interaction)
            text = settings_text(policy, translator(interaction.locale))
            await reply(interaction, text)

    @settings.command(name="channel", description="The channel milestone posts go to by default")
    @app_commands.describe(channel="The announcement channel")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            store = await self._store()
            await store.guilds.update_settings(guild_id, channel_id=channel.id)
            await self._healed(guild_id, channel.id)
            tr = translator(interaction.locale)
            text = tr.gettext("settings.channel.set", channel=channel.id)
            problem = self._problem(interaction, channel.id)
            if problem:
                text += f"\n{warning(channel.id, problem, tr)}"
            await reply(interaction, text)

    @settings.command(name="regions", description="Which countries' own milestones to post (world always)")
    @app_commands.describe(regions="e.g. `world, us, South Korea`; `all`; `default`. Empty: show them")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_regions(self, interaction: discord.Interaction, regions: str | None = None) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            store = await self._store()
            if regions is None:
                policy = await store.guilds.policy(guild_id)
                text = tr.gettext("settings.regions.show", regions=rules.describe_regions(policy.regions, tr))
            else:
                chosen = rules.parse_regions(clean_user_text(regions), tr)
                policy = await store.guilds.update_settings(guild_id, regions=chosen)
                text = tr.gettext("settings.regions.set", regions=rules.describe_regions(policy.regions, tr))
            await reply(interaction, clip(text, CONTENT))

    @settings.command(name="events", description="Which kinds of milestones to post")
    @app_commands.describe(
        events="e.g. `reached_no1, no1_streak, record`; `+new_peak -entered_top10`; `default`; `all`"
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_events(self, interaction: discord.Interaction, events: str | None = None) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            store = await self._store()
            policy = await store.guilds.policy(guild_id)
            if events is None:
                described = rules.describe_events(policy.events, tr)
                text = tr.gettext("settings.events.show", events=described, known=rules.known_events())
            else:
                chosen = rules.parse_events(clean_user_text(events), policy.events, tr)
                policy = await store.guilds.update_settings(guild_id, events=chosen)
                text = tr.gettext("settings.events.set", events=rules.describe_events(policy.events, tr))
            await reply(interaction, clip(text, CONTENT))

    @settings.command(name="digest", description="One post per title as news comes, or one post per period")
    @app_commands.describe(mode="instant: a post per title and period; period: one grouped post per period")
    @app_commands.choices(
        mode=[
            Choice(name="instant: one post per title and period", value="instant"),
            Choice(name="period: one grouped post per period", value="period"),
        ]
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_digest(self, interaction: discord.Interaction, mode: Choice[str]) -> None:
        async with in_time(interaction, self._defer_after):
            store = await self._store()
            await store.guilds.update_settings(self._guild_id(interaction), digest=mode.value)
            tr = translator(interaction.locale)
            key = "settings.digest.instant" if mode.value == "instant" else "settings.digest.period"
            text = tr.gettext(key)
            await reply(interaction, text)

    @settings.command(name="mention-role", description="The one role pinged by milestone posts (empty: none)")
    @app_commands.describe(role="The role to ping; leave empty to ping nobody")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_mention_role(
        self, interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            if role is not None and role.is_default():
                raise InputError(tr.gettext("settings.mention.everyone"))
            store = await self._store()
            await store.guilds.update_settings(guild_id, mention_role_id=role.id if role else None)
            text = (
                tr.gettext("settings.mention.role", role=role.id)
                if role
                else tr.gettext("settings.mention.nobody")
            )
            me = interaction.guild.me if interaction.guild else None
            if role is not None and not permissions.can_ping(role, me):
                text += "\n" + tr.gettext("settings.mention.cannot_ping", role=role.id)
            await reply(interaction, text)

    @settings.command(
        name="publish",
        description="Publish posts made in announcement channels, for servers that Follow them",
    )
    @app_commands.describe(mode="on: publish each post in an announcement channel; off: only post it")
    @app_commands.choices(
        mode=[
            Choice(name="on: publish posts in announcement channels", value="on"),
            Choice(name="off: only post them", value="off"),
        ]
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_publish(self, interaction: discord.Interaction, mode: Choice[str]) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            store = await self._store()
            policy = await store.guilds.update_settings(guild_id, publish=mode.value == "on")
            if not policy.publish:
                text = tr.gettext("settings.publish.off")
            else:
                text = tr.gettext("settings.publish.on")
                guild = interaction.guild
                channel = guild.get_channel(policy.channel_id) if guild and policy.channel_id else None
                if channel is not None and channel.type != discord.ChannelType.news:
                    text += "\n" + tr.gettext("settings.publish.not_news", channel=channel.id)
            await reply(interaction, text)

    @settings.command(name="language", description="The language of this server's milestone posts")
    @app_commands.describe(language="A language, or the server's own (empty: show which)")
    @app_commands.choices(language=LANGUAGE_CHOICES)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_language(
        self, interaction: discord.Interaction, language: Choice[str] | None = None
    ) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            tr = translator(interaction.locale)
            store = await self._store()
            now = rules.server_language(interaction.guild_locale)
            if language is None:
                policy = self._as_now(await store.guilds.policy(guild_id), interaction)
                text = tr.gettext("settings.language.show", language=rules.describe_language(policy, tr))
            else:
                chosen = None if language.value == DEFAULT_LANGUAGE else language.value
                policy = await store.guilds.update_settings(guild_id, language=chosen, server_language=now)
                key = "settings.language.set" if chosen else "settings.language.follow"
                text = tr.gettext(key, language=rules.language_name(policy.post_language))
            await reply(interaction, text)

    @settings.command(name="test", description="Post a sample milestone, to see what posts will look like")
    @app_commands.describe(channel="Where to post it (default: the server's channel)")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_test(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        async with in_time(interaction, self._defer_after):
            guild_id = self._guild_id(interaction)
            store = await self._store()
            policy = await store.guilds.policy(guild_id)
            tr = translator(interaction.locale)
            channel_id = channel.id if channel else policy.channel_id or interaction.channel_id
            if channel_id is None:
                raise InputError(
                    tr.gettext("settings.test.no_channel", command=tr.command("settings channel"))
                )
            _, problem = permissions.in_cache(self.bot, guild_id, channel_id)
            if problem is not None:  # what the announcer meets there too: its posts wait
                await store.guilds.block_channel(guild_id, channel_id, problem)
                _, shown = permissions.in_cache(self.bot, guild_id, channel_id, tr=tr)
                await reply(interaction, warning(channel_id, waits(shown or problem, tr), tr))
                return
            await settle(interaction)
            if not interaction.response.is_done():  # posting the sample takes a moment
                await interaction.response.defer(ephemeral=True, thinking=True)
            language = self._as_now(policy, interaction).post_language  # the posts' own, not the admin's
            post = posts.sample(policy.mention_role_id, language=language)
            target = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
            try:
                # The role is shown as it will be, but this sample pings nobody.
                await target.send(
                    content=post.content, embed=post.embed, allowed_mentions=discord.AllowedMentions.none()
                )
            except (discord.Forbidden, discord.NotFound) as exc:
                reason = pacing.broken_reason(exc.status, exc.code, exc.text)
                await store.guilds.mark_broken(guild_id, channel_id, reason)
                await interaction.edit_original_response(content=warning(channel_id, reason, tr))
                return
            await self._healed(guild_id, channel_id)
            if policy.mention_role_id:
                text = tr.gettext(
                    "settings.test.posted_ping", channel=channel_id, role=policy.mention_role_id
                )
            else:
                text = tr.gettext("settings.test.posted", channel=channel_id)
            await interaction.edit_original_response(content=text)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(WatchCog(bot))
