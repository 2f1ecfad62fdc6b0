"""Admins' commands: what this server follows (/watch) and how it is announced (/settings).

Both groups need Manage Server, checked by the bot on every command (`default_permissions` only hides
them in Discord's UI, and on a subcommand it is ignored, so it sits on the groups), and run only in
servers that installed the bot (`allowed_contexts` / `allowed_installs`). Every read and write
is keyed by the interaction's guild: a server never sees or changes another's configuration. Replies
are ephemeral: configuration is the admins' business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.announcer import pacing, permissions, posts
from bot.announcer import policy as rules
from bot.announcer.policy import ALL, Policy, Watch
from bot.model import InputError, split_season, title_key
from bot.render import CONTENT, clean_user_text, clip, join_lines, safe
from bot.titles import AmbiguousTitle, TitleIndex, TitleNotFound, UnchartedTitle

if TYPE_CHECKING:
    from bot.store import Store

EVERYTHING = "All titles: No. 1 worldwide, records, No. 1 in many countries"
ADMIN = discord.Permissions(manage_guild=True)
# Servers only, and only where the bot itself was added: a user install could run these where the bot is not.
IN_SERVERS = app_commands.AppCommandContext(guild=True)
SERVER_INSTALLS = app_commands.AppInstallationType(guild=True, user=False)
WAITS = "posts wait until that is fixed"


# --- plain functions --------------------------------------------------------------------------------


def channel_problem(
    channel: discord.abc.GuildChannel | None, me: discord.Member | None, broken: str | None = None
) -> str | None:
    """Why the bot cannot post in a channel: a failure it met (403/404), or permissions it lacks now
    (the announcer's own rule, `bot.announcer.permissions`: its posts there wait until they are back)."""
    if broken:
        return broken
    if channel is None:
        return "the channel no longer exists"
    missing = permissions.problem(channel, me)
    return f"{missing} ({WAITS})" if missing and missing.startswith("missing") else missing


def warning(channel_id: int, problem: str) -> str:
    return f"⚠ cannot post in <#{channel_id}>: {problem}"


def watch_line(watch: Watch, policy: Policy, problem: str | None) -> str:
    name = EVERYTHING if watch.everything else safe(watch.title, 150)
    channel = watch.channel(policy)
    where = f"<#{channel}>" if channel else "no channel (set one with `/settings channel`)"
    line = f"• **{name}** → {where}" + (" (the server's channel)" if not watch.channel_id and channel else "")
    return line + (f"\n  {warning(channel, problem)}" if channel and problem else "")


def settings_text(policy: Policy) -> str:
    channel = f"<#{policy.channel_id}>" if policy.channel_id else "not set (`/settings channel`)"
    digest = "one post per title and period" if policy.digest == "instant" else "one post per period (digest)"
    role = f"<@&{policy.mention_role_id}>" if policy.mention_role_id else "nobody"
    publish = "on: posts in announcement channels are published" if policy.publish else "off"
    return "\n".join(
        [
            f"**Channel:** {channel}",
            f"**Regions:** {rules.describe_regions(policy.regions)}",
            f"**Events:** {rules.describe_events(policy.events)}",
            f"**Posts:** {digest}",
            f"**Mention:** {role}",
            f"**Publish:** {publish}",
        ]
    )


def title_choices(index: TitleIndex, current: str) -> list[Choice[str]]:
    """Autocomplete from memory; the command re-resolves the value."""
    query = clean_user_text(current)[:100]
    return [
        Choice(name=clip(title, 100), value=title[:100]) for _key, title in index.complete(query, limit=25)
    ]


def resolve_title(index: TitleIndex, text: str) -> tuple[str, str, list[str] | None]:
    """(title_key, title, None) for a charted title; for one not in any chart yet (an upcoming release)
    the title as typed and, in place of None, the closest charted titles in case it was a typo.

    A watch is kept, so only the same title is taken — the same key, spaced differently, or a small
    typo in a long title — never a charted title the typed one merely starts or resembles: "Anna" is
    not "Anna Karenina", "Inventing Anna" is not "Anna". A text that fits several titles is refused."""
    text = clean_user_text(text)
    if not text:
        raise InputError("Type a title, e.g. `All of Us Are Dead` (pick one from the list as you type).")
    try:
        match = index.find(text, prefixes=False)
    except AmbiguousTitle as exc:
        names = ", ".join(f"**{safe(name, 100)}**" for name in exc.candidates[:5])
        raise InputError(
            f"“{safe(text, 100)}” could be {names}: pick one from the list as you type."
        ) from None
    except UnchartedTitle as exc:
        show, _season = split_season(text)
        return title_key(show), show, exc.candidates
    except TitleNotFound:
        raise InputError(f"“{safe(text, 100)}” has no letters or digits: type a title.") from None
    return match.key, match.title, None


def remove_target(text: str, watched: Sequence[tuple[str, str]]) -> str:
    """The watch target `/watch remove` means: `*` for the headlines, else a watched title."""
    text = clean_user_text(text)
    if text in (ALL, EVERYTHING) or text.casefold() in ("all", "all titles"):
        return ALL
    for target, title in watched:
        if text in (target, title) or text.casefold() == title.casefold():
            return target
    raise InputError(f"This server does not watch “{safe(text, 100)}”: see `/watch list`.")


# --- the cog ----------------------------------------------------------------------------------------


class WatchCog(commands.Cog, name="Watch"):
    """/watch add|remove|list|all and /settings channel|regions|events|digest|mention-role|publish|test|show."""

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

    # --- helpers ---------------------------------------------------------------------------------

    async def _store(self) -> Store:
        get_store = getattr(self.bot, "get_store", None)
        return await get_store() if get_store else self.bot.store  # type: ignore[attr-defined]

    @property
    def _titles(self) -> TitleIndex:
        return getattr(self.bot, "titles", None) or TitleIndex([])

    @staticmethod
    def _guild_id(interaction: discord.Interaction) -> int:
        if interaction.guild_id is None:
            raise InputError("This command works in a server only.")
        return interaction.guild_id

    def _problem(
        self, interaction: discord.Interaction, channel_id: int, broken: str | None = None
    ) -> str | None:
        guild = interaction.guild
        if guild is None:
            return broken
        return channel_problem(guild.get_channel(channel_id), guild.me, broken)

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
        name = EVERYTHING if target == ALL else f"**{safe(title, 150)}**"
        if created:
            text = f"Watching {name} in <#{shown}>: milestones from now on are posted there (nothing from before)."
        else:
            text = f"{name} was already watched in <#{shown}>."
        problem = self._problem(interaction, shown)
        if problem:
            text += f"\n{warning(shown, problem)}"
        await interaction.response.send_message(clip(text + note, CONTENT), ephemeral=True)

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
        await self._store()  # opens the DB (and the title index) if it was not open yet
        key, name, suggestions = resolve_title(self._titles, title)
        note = ""
        if suggestions is not None:
            note = f"\n“{safe(name, 100)}” is not in any chart yet: its milestones are posted once it charts."
            if suggestions:
                note += f" Did you mean {', '.join(f'**{safe(t, 100)}**' for t in suggestions[:3])}?"
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
        await self._add(interaction, ALL, EVERYTHING, channel)

    @watch.command(name="remove", description="Stop posting a title's milestones (or `all`)")
    @app_commands.describe(title="A watched title, or `all` for every title's headlines")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_remove(self, interaction: discord.Interaction, title: str) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        watched = await store.guilds.watched_titles(guild_id)
        target = remove_target(title, watched)
        removed = await store.guilds.remove_watches(guild_id, target)
        self._watched.pop(guild_id, None)
        shown = next((t for k, t in watched if k == target), title)
        name = EVERYTHING if target == ALL else f"**{safe(shown, 150)}**"
        text = f"Stopped watching {name}." if removed else f"{name} was not watched."
        await interaction.response.send_message(text, ephemeral=True)

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
        choices = [
            Choice(name=clip(EVERYTHING if target == ALL else title, 100), value=target[:100])
            for target, title in watched
            if query in title.casefold()
        ]
        return choices[:25]

    @watch.command(name="list", description="What this server watches, and whether the bot can post there")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def watch_list(self, interaction: discord.Interaction) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        watches = await store.guilds.watches(guild_id)
        policy = await store.guilds.policy(guild_id)
        broken = await store.guilds.broken_channels(guild_id)
        blocked = await store.guilds.blocked_channels(guild_id)
        errors = await store.guilds.last_errors(guild_id)
        if not watches:
            text = "This server watches nothing yet: `/watch add` a title, or `/watch all` for the headlines."
            await interaction.response.send_message(text, ephemeral=True)
            return
        lines = [f"**Watched in this server ({len(watches)})**"]
        for watch in watches:
            channel = watch.channel(policy)
            problem = self._problem(interaction, channel, broken.get(channel)) if channel else None
            if channel and not problem and channel in blocked:  # as the announcer last found it
                problem = f"{blocked[channel]} ({WAITS})"
            line = watch_line(watch, policy, problem)
            if channel and not problem and channel in errors:
                line += f"\n  ⏳ last attempt failed ({clip(errors[channel], 80)}); retrying"
            lines.append(line)
        lines += ["", settings_text(policy)]
        await interaction.response.send_message(join_lines(lines, CONTENT), ephemeral=True)

    # --- /settings -------------------------------------------------------------------------------

    @settings.command(name="show", description="This server's announcement settings")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_show(self, interaction: discord.Interaction) -> None:
        store = await self._store()
        policy = await store.guilds.policy(self._guild_id(interaction))
        await interaction.response.send_message(settings_text(policy), ephemeral=True)

    @settings.command(name="channel", description="The channel milestone posts go to by default")
    @app_commands.describe(channel="The announcement channel")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        await store.guilds.update_settings(guild_id, channel_id=channel.id)
        await self._healed(guild_id, channel.id)
        text = f"Milestones are posted in <#{channel.id}> (watches without a channel of their own)."
        problem = self._problem(interaction, channel.id)
        if problem:
            text += f"\n{warning(channel.id, problem)}"
        await interaction.response.send_message(text, ephemeral=True)

    @settings.command(name="regions", description="Which countries' own milestones to post (world always)")
    @app_commands.describe(regions="e.g. `world, us, South Korea`; `all`; `default`. Empty: show them")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_regions(self, interaction: discord.Interaction, regions: str | None = None) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        if regions is None:
            policy = await store.guilds.policy(guild_id)
            text = f"Posting milestones of: {rules.describe_regions(policy.regions)}."
        else:
            chosen = rules.parse_regions(clean_user_text(regions))
            policy = await store.guilds.update_settings(guild_id, regions=chosen)
            text = f"From now on: milestones of {rules.describe_regions(policy.regions)}."
        await interaction.response.send_message(clip(text, CONTENT), ephemeral=True)

    @settings.command(name="events", description="Which kinds of milestones to post")
    @app_commands.describe(
        events="e.g. `reached_no1, no1_streak, record`; `+new_peak -entered_top10`; `default`; `all`"
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_events(self, interaction: discord.Interaction, events: str | None = None) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        policy = await store.guilds.policy(guild_id)
        if events is None:
            text = f"Posting: {rules.describe_events(policy.events)}.\nKnown kinds: {rules.known_events()}."
        else:
            chosen = rules.parse_events(clean_user_text(events), policy.events)
            policy = await store.guilds.update_settings(guild_id, events=chosen)
            text = f"From now on posting: {rules.describe_events(policy.events)}."
        await interaction.response.send_message(clip(text, CONTENT), ephemeral=True)

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
        store = await self._store()
        await store.guilds.update_settings(self._guild_id(interaction), digest=mode.value)
        text = (
            "Each title's milestones of a period are posted together, as they come."
            if mode.value == "instant"
            else "All milestones of a period are posted together, in one post once the period's news is in."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @settings.command(name="mention-role", description="The one role pinged by milestone posts (empty: none)")
    @app_commands.describe(role="The role to ping; leave empty to ping nobody")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_mention_role(
        self, interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        guild_id = self._guild_id(interaction)
        if role is not None and role.is_default():
            raise InputError(
                "Posts never ping the whole server: choose a role, or leave it empty to ping nobody."
            )
        store = await self._store()
        await store.guilds.update_settings(guild_id, mention_role_id=role.id if role else None)
        text = (
            f"Milestone posts ping <@&{role.id}> (and nobody else)."
            if role
            else "Milestone posts ping nobody."
        )
        me = interaction.guild.me if interaction.guild else None
        if role is not None and not permissions.can_ping(role, me):
            text += (
                f"\n⚠ <@&{role.id}> cannot be pinged by the bot: the role is not mentionable and the bot "
                "lacks Mention Everyone. Turn on “Allow anyone to @mention this role” in the role's "
                "settings (or give the bot Mention Everyone); until then posts show the role but ping nobody."
            )
        await interaction.response.send_message(text, ephemeral=True)

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
        guild_id = self._guild_id(interaction)
        store = await self._store()
        policy = await store.guilds.update_settings(guild_id, publish=mode.value == "on")
        if not policy.publish:
            text = "Posts in announcement channels are no longer published (they are still posted)."
        else:
            text = (
                "Posts in announcement channels are published: they reach every server that Follows the "
                "channel. Discord allows about 10 an hour per channel; beyond that, posts wait their turn."
            )
            guild = interaction.guild
            channel = guild.get_channel(policy.channel_id) if guild and policy.channel_id else None
            if channel is not None and channel.type != discord.ChannelType.news:
                text += f"\n<#{channel.id}> is not an announcement channel: its posts are not published."
        await interaction.response.send_message(text, ephemeral=True)

    @settings.command(name="test", description="Post a sample milestone, to see what posts will look like")
    @app_commands.describe(channel="Where to post it (default: the server's channel)")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_test(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        guild_id = self._guild_id(interaction)
        store = await self._store()
        policy = await store.guilds.policy(guild_id)
        channel_id = channel.id if channel else policy.channel_id or interaction.channel_id
        if channel_id is None:
            raise InputError("Choose a channel, or set one with `/settings channel`.")
        _, problem = permissions.in_cache(self.bot, guild_id, channel_id)
        if problem is not None:  # what the announcer meets there too: its posts wait
            await store.guilds.block_channel(guild_id, channel_id, problem)
            text = warning(channel_id, f"{problem} ({WAITS})")
            await interaction.response.send_message(text, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        post = posts.sample(policy.mention_role_id)
        target = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            # The role is shown as it will be, but this sample pings nobody.
            await target.send(
                content=post.content, embed=post.embed, allowed_mentions=discord.AllowedMentions.none()
            )
        except (discord.Forbidden, discord.NotFound) as exc:
            reason = pacing.broken_reason(exc.status, exc.code, exc.text)
            await store.guilds.mark_broken(guild_id, channel_id, reason)
            await interaction.edit_original_response(content=warning(channel_id, reason))
            return
        await self._healed(guild_id, channel_id)
        note = (
            f" It will ping <@&{policy.mention_role_id}> (this sample did not)."
            if policy.mention_role_id
            else ""
        )
        await interaction.edit_original_response(content=f"Posted a sample in <#{channel_id}>.{note}")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(WatchCog(bot))
