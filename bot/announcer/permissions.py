"""What the bot needs in a channel to post there, read from discord.py's cache (the GUILDS intent keeps
channels, roles and overwrites current): the one rule for the announcer, `/watch` and `/settings`.

- View Channel and Send Messages, to post at all;
- Embed Links: without it Discord drops a post's embed (and a milestone post is an embed);
- Attach Files, when a picture goes with the post;
- Read Message History: after a crash the announcer looks for a post it may have made; without it
  Discord answers an empty history, and the post would be made twice.
"""

from __future__ import annotations

import discord

from bot.i18n import ENGLISH, Messages

TO_POST = ("view_channel", "send_messages", "embed_links", "read_message_history")
TO_ATTACH = "attach_files"
_NAME_KEYS = {attr: f"permission.{attr}" for attr in (*TO_POST, TO_ATTACH)}  # Discord's own names
_ALL_TO_POST = discord.Permissions(**dict.fromkeys(TO_POST, True)).value
_ALL_TO_ATTACH = discord.Permissions(attach_files=True).value | _ALL_TO_POST


def missing(permissions: discord.Permissions, *, files: bool = False) -> list[str]:
    """What the bot lacks to post (with a picture when `files`), as discord.py's attribute names.

    Only the cause is named: without View Channel nothing else counts, and without Send Messages
    Discord (and discord.py) denies Embed Links and Attach Files too."""
    wanted = _ALL_TO_ATTACH if files else _ALL_TO_POST
    if permissions.value & wanted == wanted:  # the usual answer, read from the bits at once
        return []
    if not permissions.view_channel:
        return ["view_channel"]
    needed = (*TO_POST, TO_ATTACH) if files else TO_POST
    lacking = [attr for attr in needed if not getattr(permissions, attr)]
    if not permissions.send_messages:
        lacking = [attr for attr in lacking if attr not in ("embed_links", TO_ATTACH)]
    return lacking


def describe(attrs: list[str], tr: Messages = ENGLISH) -> str | None:
    """ "missing Embed Links, Read Message History" (in Discord's own names, in `tr`'s language), or
    None when nothing is missing. The announcer keeps the English one as the channel's reason."""
    if not attrs:
        return None
    names = ", ".join(tr.gettext(_NAME_KEYS[attr]) for attr in attrs)
    return tr.gettext("watch.problem.missing", permissions=names)


def is_text(channel: object) -> bool:
    """A channel the bot can post in (text, announcement, thread, voice chat), not a category."""
    return isinstance(channel, discord.abc.Messageable) and hasattr(channel, "permissions_for")


def problem(
    channel: object, me: discord.Member | None, *, files: bool = False, tr: Messages = ENGLISH
) -> str | None:
    """Why the bot cannot post in this cached channel right now, or None (also when it cannot tell)."""
    if me is None or channel is None:
        return None
    if not is_text(channel):
        return tr.gettext("watch.problem.not_text")
    return describe(missing(channel.permissions_for(me), files=files), tr)


def in_cache(
    client: discord.Client, guild_id: int, channel_id: int, *, files: bool = False, tr: Messages = ENGLISH
) -> tuple[bool, str | None]:
    """(known, problem) for a channel: `known` False when the cache cannot tell (the server or the
    channel is not in it: another process's shard, or gone — Discord will say which)."""
    guild = client.get_guild(guild_id)
    if guild is None:
        return False, None
    channel = guild.get_channel(channel_id) or guild.get_thread(channel_id)
    me = guild.me
    if channel is None or me is None:
        return False, None
    return True, problem(channel, me, files=files, tr=tr)


def is_announcement_channel(client: discord.Client, guild_id: int, channel_id: int) -> bool:
    """A channel other servers can Follow (type 5), as the cache knows it."""
    guild = client.get_guild(guild_id)
    channel = guild.get_channel(channel_id) if guild is not None else None
    return channel is not None and channel.type == discord.ChannelType.news


def can_ping(role: discord.Role, me: discord.Member | None) -> bool:
    """Whether a post by the bot pings this role: it is mentionable, or the bot has Mention Everyone."""
    return role.mentionable or (me is not None and me.guild_permissions.mention_everyone)
