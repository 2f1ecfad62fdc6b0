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

TO_POST: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
    ("read_message_history", "Read Message History"),
)
TO_ATTACH = ("attach_files", "Attach Files")
_ALL_TO_POST = discord.Permissions(**{attr: True for attr, _ in TO_POST}).value
_ALL_TO_ATTACH = discord.Permissions(attach_files=True).value | _ALL_TO_POST


def missing(permissions: discord.Permissions, *, files: bool = False) -> list[str]:
    """The names of what the bot lacks to post (with a picture when `files`), in Discord's words.

    Only the cause is named: without View Channel nothing else counts, and without Send Messages
    Discord (and discord.py) denies Embed Links and Attach Files too."""
    wanted = _ALL_TO_ATTACH if files else _ALL_TO_POST
    if permissions.value & wanted == wanted:  # the usual answer, read from the bits at once
        return []
    if not permissions.view_channel:
        return ["View Channel"]
    needed = (*TO_POST, TO_ATTACH) if files else TO_POST
    lacking = [name for attr, name in needed if not getattr(permissions, attr)]
    if not permissions.send_messages:
        lacking = [name for name in lacking if name not in ("Embed Links", "Attach Files")]
    return lacking


def describe(names: list[str]) -> str | None:
    """ "missing Embed Links, Read Message History", or None when nothing is missing."""
    return f"missing {', '.join(names)}" if names else None


def problem(channel: object, me: discord.Member | None, *, files: bool = False) -> str | None:
    """Why the bot cannot post in this cached channel right now, or None (also when it cannot tell)."""
    if me is None or channel is None:
        return None
    if not isinstance(channel, discord.abc.Messageable) or not hasattr(channel, "permissions_for"):
        return "not a text channel"
    return describe(missing(channel.permissions_for(me), files=files))


def in_cache(
    client: discord.Client, guild_id: int, channel_id: int, *, files: bool = False
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
    return True, problem(channel, me, files=files)


def is_announcement_channel(client: discord.Client, guild_id: int, channel_id: int) -> bool:
    """A channel other servers can Follow (type 5), as the cache knows it."""
    guild = client.get_guild(guild_id)
    channel = guild.get_channel(channel_id) if guild is not None else None
    return channel is not None and channel.type == discord.ChannelType.news


def can_ping(role: discord.Role, me: discord.Member | None) -> bool:
    """Whether a post by the bot pings this role: it is mentionable, or the bot has Mention Everyone."""
    return role.mentionable or (me is not None and me.guild_permissions.mention_everyone)
