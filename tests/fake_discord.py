"""A fake Discord (REST + websocket gateway) on 127.0.0.1 for end-to-end tests of the real discord.py client.

The real ``discord.py`` client is aimed at this server by two process-global class attributes,
``discord.http.Route.BASE`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (see
``/work/shared/notes/discord-without-discord.md``). Nothing here ever talks to discord.com.

Typical test::

    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD,
            "Fans",
            channels=[FakeChannel(CHANNEL, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ALICE, "alice", roles=[MODS]), FakeMember(BOB, "bob")],
        )
        async with fake.run_bot(make_bot()):  # patches discord.py, starts the bot, waits until ready
            rec = await fake.slash(GUILD, CHANNEL, ALICE, "rank", {"title": "All of Us Are Dead"})
            reply = await rec.response()  # waits for the callback (and the edit/followup after a defer)
            assert "No. 1" in reply.content and not reply.ephemeral
            choices = await fake.autocomplete(GUILD, CHANNEL, BOB, "rank", focused="title", value="all of")
            posts = await fake.wait_for_messages(CHANNEL, count=1)

A bot that reads its endpoints from settings can use :meth:`FakeDiscord.settings_env` instead of (or as
well as) :meth:`FakeDiscord.patch_discord`. One fake per test: the patch is process-global and is
restored when the context manager exits.

What the fake records (all public attributes): ``requests`` (every REST call, with status),
``unhandled`` (REST calls it has no route for), ``interactions`` (one :class:`InteractionRecord` per
push: a command, an autocomplete or a press, with its ``context``, ``install`` and, for a press, the
``message`` and the ``edits`` made to it), ``private_channels`` and ``users`` (DMs and their people),
``messages`` (every message the bot created, by id), ``sync_calls`` (every bulk command sync),
``identify_payloads`` (every IDENTIFY, e.g. to check intents), ``identifies`` (each IDENTIFY's shard
and outcome), ``shard_close_codes``, ``gateway_connects``, ``resumes``,
``global_rate_limited`` / ``route_rate_limited`` (429s answered), ``invalid_requests`` (401/403/429 in
the last 10 minutes) and ``peak_invalid_requests()``, ``cloudflare_answers``, ``outage_answers``.
A :class:`Reply` holds the live :class:`SentMessage`: edits made after ``response()`` returned show up.

Realism that catches bugs: unknown channels answer 404 (10003); the bot's own permissions in a channel
(roles + overwrites) are enforced: no View Channel 403 50001, no Send Messages or a file without Attach
Files 403 50013, embeds without Embed Links are dropped (and a post left empty answers 400 50006), the
history without Read Message History is ``[]``; >25 autocomplete choices, content >2000 and embed limits
answer 400 (50035); a second callback answers 400 (40060); a callback later than
``interaction_deadline`` answers 404 Unknown interaction (10062); the first followup after a deferral
edits the "thinking…" original, as Discord still does (``InteractionRecord.followup_edited_original``).

Buttons and pages: messages may carry components (action rows of buttons), validated as Discord does
(at most 5 rows of 5 buttons, ``custom_id`` 1-100 characters and unique in the message, labels at most
80: else 400 50035). :meth:`FakeDiscord.press` presses a button (a component interaction, type 3, with
``data.custom_id``, ``component_type`` and the message) and refuses what a client could not press (a button
not shown, disabled, or an ephemeral message not shown to that user) unless ``force=True``; the bot answers
with ``UPDATE_MESSAGE`` (7: the message is edited at once) or ``DEFERRED_UPDATE_MESSAGE`` (6, then
``PATCH …/@original`` edits that message). Messages made by an interaction carry ``interaction_metadata``.

Commands anywhere: a DM with the bot (:meth:`FakeDiscord.add_dm`, context 1), a group DM
(:meth:`FakeDiscord.add_group_dm`, context 2) and a server the bot is not in (``add_guild(...,
bot_member=False)``: no READY entry, no cached guild, its channels 403 Missing Access over REST), each with
``authorizing_integration_owners`` as Discord writes them (``{"0": guild_id}`` server install, ``{"0": "0"}``
a server install answering in its DM, ``{"1": user_id}`` user install) and ``app_permissions`` of a user
install there. A synced command is pushed only where its ``contexts`` / ``integration_types`` offer it.

Rate limits as Discord's: every answer carries ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``
of a per-route bucket (one per major parameter, e.g. 5 posts per 5 s per channel; see
:data:`DEFAULT_ROUTE_LIMITS`), and a bucket overrun answers 429 (``Via``, ``retry_after``, ``global:
false``, ``X-RateLimit-Scope: user``). The global limit is a sliding window of 50 requests per second
per bot token (interaction callbacks and webhooks exempt), answered with a global 429. discord.py
honours all of it: it waits on ``X-RateLimit-Remaining: 0`` (a sixth post to one channel within 5 s
waits, it draws no 429). ``invalid_requests`` counts 401/403/429 over the last 10 minutes; 10,000 of
them start a Cloudflare ban. A bad or revoked token (:meth:`FakeDiscord.revoke_token`) answers 401 on
every route. :meth:`FakeDiscord.start_cloudflare_ban` (429 without ``Via``, an HTML page) and
:meth:`FakeDiscord.start_outage` (503/502) answer every request for a while, on ``fake.clock``.

Shards as Discord's: ``GET /gateway/bot`` recommends a shard count (one per 1,000 servers, at least one;
``recommended_shards`` sets it) with a ``session_start_limit``; an IDENTIFY with ``shard: [id, count]``
gets READY and GUILD_CREATE only for its servers (``(guild_id >> 22) % count``, see :func:`shard_of`); a
shard that would hold more than ``max_guilds_per_shard`` servers (2,500) is closed with 4011, a bad shard
id with 4010; IDENTIFYs of one rate-limit key (``shard_id % max_concurrency``) closer than
``identify_window`` seconds (Discord: 5; 0, off, by default here) are answered INVALID_SESSION and recorded (``identify_violations``).
Interactions and guild events go out on the connection of the shard that owns the server, so several
bot processes (or clients) may connect at once, each with its own shards (``connected_shards()``).

Gotchas (beyond the shared note):
- Start the bot with :meth:`FakeDiscord.run_bot` (or close it before the fake exits): a bot left running
  retries its connection forever against a dead port.
- Without the members intent discord.py caches no other members (``guild.get_member`` is ``None``);
  interactions still carry the invoking member and its ``permissions``.
- ``@app_commands.default_permissions`` on a subcommand is silently dropped: put it on the ``Group``.
  discord.py sends it as an int (Discord echoes a string).
- ``AutoShardedBot`` with several shards sleeps 5 s before each further IDENTIFY
  (``before_identify_hook``): override that hook in tests, and shorten ``identify_window`` to match.
"""

# ruff: noqa: ASYNC109 -- waiting helpers take `timeout=` on purpose: it reads better in tests.
from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

Json = dict[str, Any]

API_VERSION = 10

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 0x8
MANAGE_GUILD = 0x20
VIEW_CHANNEL = 0x400
SEND_MESSAGES = 0x800
EMBED_LINKS = 0x4000
ATTACH_FILES = 0x8000
READ_MESSAGE_HISTORY = 0x10000
MENTION_EVERYONE = 0x20000
ALL_PERMISSIONS = discord.Permissions.all().value
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
    use_external_emojis=True,
).value
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
).value

# Message flags and interaction callback types.
CROSSPOSTED = 1
EPHEMERAL = 64
LOADING = 128
CALLBACK_PONG = 1
CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_AUTOCOMPLETE = 8
CALLBACK_MODAL = 9

# Application command option types.
OPT_SUBCOMMAND = 1
OPT_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_CHANNEL = 7
OPT_ROLE = 8
OPT_MENTIONABLE = 9
OPT_NUMBER = 10

# Interaction types, where an interaction happens (``context``) and who installed the app (``integration_types``).
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1
CONTEXT_PRIVATE_CHANNEL = 2
INSTALL_GUILD = 0
INSTALL_USER = 1
USER_APP_PERMISSIONS = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE
"""``app_permissions`` where the bot is not a member (a user-installed command in a server without the bot, a
DM, a group DM): what Discord grants an app's interaction answers there."""
USE_EXTERNAL_EMOJIS = 0x40000

OWNER_ID = 100_000_000_000_000_009
"""Default guild and application owner: a user who is not a member of any fake guild."""

_BOT_USER_ID = 100_000_000_000_000_001


class FakeDiscordTimeout(AssertionError):
    """Raised when something the test waits for did not happen in time (a test failure, not an error)."""


# --------------------------------------------------------------------------------------------------
# Rate limits and clocks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteLimit:
    """A per-route rate limit: ``limit`` requests per ``per`` seconds for each value of the route's major
    parameter (channel, guild, or webhook/interaction id and token) and each bot token. The window
    opens with its first request and resets ``per`` seconds later, as Discord's buckets do."""

    limit: int
    per: float


DEFAULT_ROUTE_LIMITS: Mapping[str, RouteLimit] = {
    "POST /channels/{channel_id}/messages": RouteLimit(5, 5.0),
    "GET /channels/{channel_id}/messages": RouteLimit(5, 5.0),
    "GET /channels/{channel_id}/messages/{message_id}": RouteLimit(5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": RouteLimit(5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": RouteLimit(5, 1.0),
    "POST /channels/{channel_id}/typing": RouteLimit(5, 5.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": RouteLimit(5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": RouteLimit(5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": RouteLimit(5, 2.0),
    "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/@original": RouteLimit(5, 2.0),
}
"""Per-route limits modelled on what Discord answers (a copy is ``FakeDiscord.route_limits``)."""

DEFAULT_ROUTE_LIMIT = RouteLimit(50, 1.0)
"""The limit of a route not in :data:`DEFAULT_ROUTE_LIMITS`."""

INVALID_REQUEST_WINDOW = 600.0
"""Discord counts invalid requests (401, 403, 429 except ``X-RateLimit-Scope: shared``) over 10 minutes."""

_PARAM_NAMES = {
    "channels": "channel_id",
    "guilds": "guild_id",
    "applications": "application_id",
    "messages": "message_id",
    "users": "user_id",
    "members": "user_id",
    "roles": "role_id",
    "commands": "command_id",
}


def route_key(method: str, path: str) -> tuple[str, str]:
    """The route as discord.py writes it, and its major parameter(s) (what a bucket is kept per).

    >>> route_key("POST", "/channels/42/messages")
    ('POST /channels/{channel_id}/messages', '42')
    """
    parts = path.strip("/").split("/")
    template: list[str] = []
    major: list[str] = []
    i = 0
    while i < len(parts):
        segment = parts[i]
        template.append(segment)
        i += 1
        if segment in ("webhooks", "interactions") and i < len(parts):
            kind = "webhook" if segment == "webhooks" else "interaction"
            ids = parts[i : i + 2]
            template += [f"{{{kind}_id}}", f"{{{kind}_token}}"][: len(ids)]
            major = major or ids
            i += len(ids)
        elif i < len(parts) and parts[i].isdigit():
            template.append(f"{{{_PARAM_NAMES.get(segment, 'id')}}}")
            if segment in ("channels", "guilds") and not major:
                major = [parts[i]]
            i += 1
    return f"{method} /{'/'.join(template)}", "+".join(major)


class ManualClock:
    """A clock that moves only when told: ``FakeDiscord(clock=ManualClock())``, then ``clock.advance(60)``.

    As ``clock`` it drives the fake's outage and Cloudflare modes and its count of invalid requests;
    rate-limit windows keep real time unless ``rate_clock`` is swapped too (discord.py waits them out
    with real sleeps).
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Bucket:
    hash: str
    limit: RouteLimit
    count: int = 0
    reset_at: float = 0.0

    def _roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.count, self.reset_at = 0, now + self.limit.per

    def take(self, now: float) -> bool:
        """Use one request of the window; False when none is left."""
        self._roll(now)
        if self.count >= self.limit.limit:
            return False
        self.count += 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        fresh = now >= self.reset_at  # a window not opened yet (or over): what the next request gets
        remaining = self.limit.limit if fresh else max(0, self.limit.limit - self.count)
        reset_after = self.limit.per if fresh else self.reset_at - now
        return {
            "X-RateLimit-Limit": str(self.limit.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.hash,
        }


# --------------------------------------------------------------------------------------------------
# Guild model
# --------------------------------------------------------------------------------------------------


@dataclass
class FakeRole:
    """A guild role. ``permissions`` is the bit set (e.g. ``MANAGE_GUILD``)."""

    id: int
    name: str
    permissions: int = 0
    position: int = 1
    bot_id: int | None = None  # set on the bot's managed role
    mentionable: bool = False  # "Allow anyone to @mention this role"

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.bot_id is not None,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Overwrite:
    """A channel permission overwrite: ``type`` 0 = role (use the guild id for @everyone), 1 = member."""

    id: int
    type: int = 0
    allow: int = 0
    deny: int = 0

    def payload(self) -> Json:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass
class FakeChannel:
    """A guild channel (``type`` 0 = text, 4 = category, 5 = announcement)."""

    id: int
    name: str = ""
    type: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None

    def payload(self, guild_id: int) -> Json:
        return {
            "id": str(self.id),
            "guild_id": str(guild_id),
            "type": self.type,
            "name": self.name or f"channel-{self.id}",
            "position": self.position,
            "permission_overwrites": [ow.payload() for ow in self.overwrites],
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "topic": self.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass
class FakeMember:
    """A guild member; ``roles`` are role ids (the @everyone role is implied)."""

    id: int
    name: str = ""
    roles: list[int] = field(default_factory=list)
    bot: bool = False
    nick: str | None = None

    def user_payload(self) -> Json:
        name = self.name or f"user{self.id}"
        return {
            "id": str(self.id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    def payload(self) -> Json:
        return {
            "user": self.user_payload(),
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }


@dataclass
class FakeGuild:
    """A guild as the fake serves it; mutate ``channels``/``members``/``roles`` before the bot connects."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    locale: str = "en-US"

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def base_permissions(self, user_id: int) -> int:
        """Guild-level permissions of a user: owner, @everyone, roles, administrator."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone.permissions
        member = self.members.get(user_id)
        for role_id in member.roles if member else ():
            role = self.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def permissions_in(self, user_id: int, channel_id: int) -> int:
        """Permissions of a user in a channel, with overwrites applied the way Discord does."""
        perms = self.base_permissions(user_id)
        channel = self.channels.get(channel_id)
        if perms == ALL_PERMISSIONS or channel is None:
            return perms
        member = self.members.get(user_id)
        role_ids = set(member.roles) if member else set()
        for ow in channel.overwrites:
            if ow.type == 0 and ow.id == self.id:
                perms = (perms & ~ow.deny) | ow.allow
        allow = deny = 0
        for ow in channel.overwrites:
            if ow.type == 0 and ow.id in role_ids:
                allow |= ow.allow
                deny |= ow.deny
        perms = (perms & ~deny) | allow
        for ow in channel.overwrites:
            if ow.type == 1 and ow.id == user_id:
                perms = (perms & ~ow.deny) | ow.allow
        return perms if perms & VIEW_CHANNEL else 0

    def payload(self, *, bot_id: int) -> Json:
        """The GUILD_CREATE payload."""
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "large": False,
            "member_count": len(self.members),
            "joined_at": "2024-01-01T00:00:00+00:00",
            "roles": [r.payload() for r in self.roles.values()],
            "channels": [c.payload(self.id) for c in self.channels.values()],
            "members": [m.payload() for m in self.members.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "icon": None,
            "banner": None,
            "splash": None,
            "discovery_splash": None,
            "description": None,
            "vanity_url_code": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "premium_progress_bar_enabled": False,
        }


@dataclass
class FakePrivateChannel:
    """A channel outside any server: a DM (``type`` 1) or a group DM (``type`` 3).

    A DM whose recipients include the bot is the bot's own DM (interaction context 1); every other private
    channel (a group DM, a DM between two users) is context 2, where only a user-installed app runs.
    """

    id: int
    recipients: list[int]
    type: int = 1
    name: str | None = None
    owner_id: int | None = None

    def payload(self, users: Mapping[int, Json], *, bot_id: int) -> Json:
        data: Json = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": None,
            "flags": 0,
            "recipients": [users[u] for u in self.recipients if u != bot_id],
        }
        if self.type == 3:
            data |= {"name": self.name, "icon": None, "owner_id": str(self.owner_id or self.recipients[0])}
        return data


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass
class SentFile:
    """A file the bot uploaded (multipart ``files[n]`` part)."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass
class SentMessage:
    """A message the bot created: a channel post, an interaction reply (``original``) or a followup.

    ``payload`` is the JSON body as the bot sent it, with later edits merged in; ``history`` keeps
    every raw body (creation first, then each edit).
    """

    id: int
    channel_id: int
    kind: str  # "channel" | "interaction" | "followup"
    payload: Json
    files: list[SentFile]
    flags: int = 0
    created_at: float = 0.0
    history: list[Json] = field(default_factory=list)
    deleted: bool = False
    interaction_id: int | None = None

    @property
    def content(self) -> str:
        return self.payload.get("content") or ""

    @property
    def embeds(self) -> list[Json]:
        return self.payload.get("embeds") or []

    @property
    def allowed_mentions(self) -> Json | None:
        """``allowed_mentions`` as sent (``None`` when the bot sent none: Discord then parses everything)."""
        return self.payload.get("allowed_mentions")

    @property
    def components(self) -> list[Json]:
        """The action rows the message carries now (``[]`` once an edit removed them)."""
        return self.payload.get("components") or []

    @property
    def buttons(self) -> list[Json]:
        """Every button of every row, in reading order."""
        return buttons_of(self.components)

    def button(self, custom_id: str) -> Json | None:
        """The button with this ``custom_id``, or ``None``."""
        return next((b for b in self.buttons if b.get("custom_id") == custom_id), None)

    def button_labelled(self, label: str) -> Json:
        """The button with this label (an AssertionError naming the labels there if there is none)."""
        found = next((b for b in self.buttons if b.get("label") == label), None)
        if found is None:
            raise AssertionError(
                f"no button {label!r} on message {self.id}: {[b.get('label') for b in self.buttons]}"
            )
        return found

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def edited(self) -> bool:
        return len(self.history) > 1

    @property
    def mentions_everyone(self) -> bool:
        """Whether Discord would ping @everyone/@here for this content and ``allowed_mentions``."""
        content = self.content
        if "@everyone" not in content and "@here" not in content:
            return False
        allowed = self.allowed_mentions
        return allowed is None or "everyone" in allowed.get("parse", [])


@dataclass
class Reply:
    """What the invoking user sees for a slash command (returned by :meth:`InteractionRecord.response`).

    ``type`` is the callback type (4 message, 5 deferred, 8 autocomplete, 9 modal, …). ``message`` is
    the original response (after edits; a first followup after a deferral edits it, as on Discord), or
    when the "thinking…" original was deleted and the bot followed up instead, that followup.
    """

    type: int
    message: SentMessage | None
    followups: list[SentMessage]
    callback: Json
    deferred_flags: int = 0

    @property
    def content(self) -> str:
        return self.message.content if self.message else ""

    @property
    def embeds(self) -> list[Json]:
        return self.message.embeds if self.message else []

    @property
    def embed(self) -> Json | None:
        return self.embeds[0] if self.embeds else None

    @property
    def files(self) -> list[SentFile]:
        return self.message.files if self.message else []

    @property
    def flags(self) -> int:
        flags = self.message.flags if self.message else self.callback.get("data", {}).get("flags", 0)
        return int(flags) | (self.deferred_flags & EPHEMERAL)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def deferred(self) -> bool:
        return self.type in (CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE)

    @property
    def payload(self) -> Json:
        return self.message.payload if self.message else self.callback.get("data", {})

    @property
    def allowed_mentions(self) -> Json | None:
        return self.message.allowed_mentions if self.message else None

    @property
    def components(self) -> list[Json]:
        return self.message.components if self.message else []

    @property
    def buttons(self) -> list[Json]:
        return buttons_of(self.components)


@dataclass
class InteractionRecord:
    """One interaction pushed to the bot, and everything the bot did with it."""

    id: int
    token: str
    type: int  # 2 = slash command, 3 = component (a button press), 4 = autocomplete
    guild_id: int | None  # None in a DM or group DM
    channel_id: int
    user_id: int
    command: str  # full name, e.g. "watch add"; for a press "button <custom_id>"
    payload: Json  # as dispatched in INTERACTION_CREATE
    pushed_at: float
    fake: FakeDiscord = field(repr=False)
    callbacks: list[Json] = field(default_factory=list)
    answered_at: float | None = None
    original: SentMessage | None = None
    followups: list[SentMessage] = field(default_factory=list)
    followup_edited_original: bool = False
    """A first followup after a deferral (callback type 5) edited the "thinking…" original instead of
    posting a new message: Discord's deprecated behaviour, which a bot should not rely on (it should
    call ``edit_original_response``)."""
    context: int = CONTEXT_GUILD
    """Where it happened: 0 a server, 1 the bot's DM, 2 a group DM or another private channel."""
    install: int = INSTALL_GUILD
    """Which installation authorized it: 0 the server's, 1 the user's (``authorizing_integration_owners``)."""
    message: SentMessage | None = None
    """For a press: the message the button is on (``UPDATE_MESSAGE`` edits it)."""
    custom_id: str | None = None
    edits: list[Json] = field(default_factory=list)
    """Edits of the original made through this interaction: an ``UPDATE_MESSAGE`` body, then every
    ``PATCH …/messages/@original``."""

    @property
    def callback(self) -> Json | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def callback_type(self) -> int | None:
        return self.callbacks[0]["type"] if self.callbacks else None

    @property
    def answered_after(self) -> float | None:
        """Seconds from the push to the (accepted) interaction callback."""
        return None if self.answered_at is None else self.answered_at - self.pushed_at

    @property
    def choices(self) -> list[Json] | None:
        """Autocomplete choices (callback type 8), or ``None`` if not answered that way."""
        if self.callback_type != CALLBACK_AUTOCOMPLETE:
            return None
        return list(self.callbacks[0].get("data", {}).get("choices", []))

    def _visible_message(self) -> SentMessage | None:
        if self.original is not None and not self.original.flags & LOADING:
            return self.original
        if self.followups:
            return self.followups[0]
        return self.original

    def _settled(self, followups: int) -> bool:
        if not self.callbacks or len(self.followups) < followups:
            return False
        if self.callback_type == CALLBACK_DEFERRED_UPDATE:  # settled by an edit of the message, or a followup
            return bool(self.edits) or bool(self.followups)
        if self.callback_type == CALLBACK_DEFERRED_MESSAGE:
            return self._visible_message() is not self.original or (
                self.original is not None and self.original.edited
            )
        return True

    async def response(self, timeout: float = 2.0, *, followups: int = 0) -> Reply:
        """Wait for the callback (after a defer: also the edit of the original or a followup).

        ``followups``: also wait until at least that many followups were posted.
        """
        await self.fake._wait_until(
            lambda: self._settled(followups),
            timeout,
            lambda: (
                f"no complete response to /{self.command} (interaction {self.id}) within {timeout}s; "
                f"callbacks={self.callbacks}, followups={len(self.followups)}"
            ),
        )
        assert self.callbacks
        deferred_flags = 0
        if self.callback_type == CALLBACK_DEFERRED_MESSAGE:
            deferred_flags = int(self.callbacks[0].get("data", {}).get("flags", 0))
        return Reply(
            type=self.callbacks[0]["type"],
            message=self._visible_message(),
            followups=list(self.followups),
            callback=self.callbacks[0],
            deferred_flags=deferred_flags,
        )

    async def wait_followups(self, count: int = 1, timeout: float = 2.0) -> list[SentMessage]:
        """Wait until at least ``count`` followups were posted; return them all."""
        await self.fake._wait_until(
            lambda: len(self.followups) >= count,
            timeout,
            lambda: f"/{self.command}: {len(self.followups)} followups, wanted {count}",
        )
        return list(self.followups)


@dataclass
class RecordedRequest:
    """One REST call received by the fake (``path`` is relative to the API base, without query)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[SentFile]
    at: float
    status: int = 0
    token: str | None = None
    """The bot token of the ``Authorization`` header (``None``: no or another kind of header)."""


@dataclass
class SyncCall:
    """One bulk overwrite of application commands (``guild_id`` is ``None`` for global)."""

    guild_id: int | None
    commands: list[Json]
    at: float


@dataclass
class Crosspost:
    """A message the bot published to the servers that Follow its announcement channel."""

    channel_id: int
    message_id: int
    at: float  # on ``FakeDiscord.clock``


@dataclass
class InjectedFailure:
    """A failure queued with :meth:`FakeDiscord.fail_next`; ``hits`` counts how often it was served."""

    method: str
    path_regex: re.Pattern[str]
    status: int
    retry_after: float
    times: int
    is_global: bool
    code: int
    message: str
    hits: int = 0
    scope: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and self.method in ("*", method)
            and self.path_regex.search(path) is not None
        )


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    shard_id: int = 0
    shard_count: int = 1
    session_id: str = ""
    seq: int = 0
    identified: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, op: int, data: Any, event: str | None = None) -> None:
        async with self.lock:
            seq = None
            if op == 0:
                self.seq += 1
                seq = self.seq
            await self.ws.send_str(json.dumps({"op": op, "d": data, "s": seq, "t": event}))


class _HTTPError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: Json | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": web.json_response adds "; charset=utf-8" and discord.py then reads text.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _bot_token(header: str | None) -> str | None:
    if header is None or not header.startswith("Bot "):
        return None
    return header.removeprefix("Bot ")


def _too_many(
    retry_after: float,
    *,
    is_global: bool,
    scope: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A 429 from Discord's API (it has ``Via``: without it discord.py takes it for a Cloudflare ban)."""
    answer = {
        **(headers or {}),
        "Retry-After": str(max(1, math.ceil(retry_after))),  # Discord: whole seconds here, exact in body
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Scope": scope or ("global" if is_global else "user"),
        "Via": "1.1 google",
    }
    if is_global:
        answer["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    if is_global:
        body["code"] = 0
    return _json_response(body, 429, answer)


_CLOUDFLARE_BAN_PAGE = """<!DOCTYPE html>
<html><head><title>Access denied | discord.com used Cloudflare to restrict access</title></head>
<body><h1>Error 1015</h1><h2>You are being rate limited</h2>
<p>The owner of this website (discord.com) has banned you temporarily from accessing this website.</p>
</body></html>
"""
_BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)


# --------------------------------------------------------------------------------------------------
# Message components: buttons in action rows, validated as Discord does
# --------------------------------------------------------------------------------------------------

COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
_SELECT_MENUS = frozenset({3, 5, 6, 7, 8})
BUTTON_LINK, BUTTON_PREMIUM = 5, 6
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80


def _embed_size(embed: Json) -> int:
    """The characters Discord counts towards 6000 per message: title, description, fields, footer, author."""
    fields = embed.get("fields") or []
    return (
        sum(len(embed.get(k) or "") for k in ("title", "description"))
        + len((embed.get("footer") or {}).get("text") or "")
        + len((embed.get("author") or {}).get("name") or "")
        + sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
    )


def buttons_of(components: Iterable[Json]) -> list[Json]:
    """Every button in these action rows, in reading order."""
    return [
        item
        for row in components
        for item in row.get("components") or []
        if item.get("type") == COMPONENT_BUTTON
    ]


def component_problems(components: Any) -> list[str]:
    """Why Discord would refuse these components with 400 Invalid Form Body (50035): at most 5 action rows
    of 1-5 buttons (a select menu fills a row alone), every button but a link or premium one with a
    ``custom_id`` of 1-100 characters, unique in the message; labels at most 80 characters."""
    if not isinstance(components, list):
        return ["components: must be a list"]
    problems = [] if len(components) <= MAX_ACTION_ROWS else [f"components: {len(components)} rows > 5"]
    seen: set[str] = set()
    for i, row in enumerate(components):
        where = f"components.{i}"
        if not isinstance(row, dict) or row.get("type") != COMPONENT_ACTION_ROW:
            problems.append(f"{where}: a top-level component must be an action row (type 1)")
            continue
        items = row.get("components") or []
        if not 1 <= len(items) <= MAX_ROW_BUTTONS:
            problems.append(f"{where}.components: {len(items)} items, must be 1 to 5")
        if len(items) > 1 and any(item.get("type") in _SELECT_MENUS for item in items):
            problems.append(f"{where}: a select menu must be alone in its row")
        for j, item in enumerate(items):
            problems += _item_problems(item, f"{where}.components.{j}", seen)
    return problems


def _item_problems(item: Json, where: str, seen: set[str]) -> list[str]:
    kind = item.get("type")
    if kind not in (COMPONENT_BUTTON, *_SELECT_MENUS):
        return [f"{where}.type: {kind!r} is not a button or a select menu"]
    problems = []
    custom_id = item.get("custom_id")
    needs_id = kind != COMPONENT_BUTTON or item.get("style") not in (BUTTON_LINK, BUTTON_PREMIUM)
    if kind == COMPONENT_BUTTON:
        style, label = item.get("style"), item.get("label")
        if style not in range(1, 7):
            problems.append(f"{where}.style: {style!r} is not a button style (1-6)")
        if style == BUTTON_LINK and not item.get("url"):
            problems.append(f"{where}.url: a link button needs a url")
        if label is not None and len(label) > MAX_BUTTON_LABEL:
            problems.append(f"{where}.label: {len(label)} characters > 80")
        if style != BUTTON_PREMIUM and not label and not item.get("emoji"):
            problems.append(f"{where}: a button needs a label or an emoji")
        if not needs_id and custom_id is not None:
            problems.append(f"{where}.custom_id: a link or premium button has none")
    if needs_id:
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
            problems.append(f"{where}.custom_id: must be 1 to 100 characters, not {custom_id!r}")
        elif custom_id in seen:
            problems.append(
                f"{where}.custom_id: {custom_id!r} is duplicated (COMPONENT_CUSTOM_ID_DUPLICATED)"
            )
        else:
            seen.add(custom_id)
    return problems


class FakeDiscordRefusal(AssertionError):
    """What a test asked for cannot happen on Discord (a press on a button the message does not show,
    a command where its ``contexts`` or ``integration_types`` do not offer it): a test error."""


@dataclass(frozen=True)
class _Where:
    """Where an interaction happens and who acts there, as the payload fields that say so."""

    guild: FakeGuild | None
    context: int
    install: int
    fields: Json


# Shards
# --------------------------------------------------------------------------------------------------

CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that serves a server: ``(guild_id >> 22) % shard_count``, as Discord routes it."""
    return (guild_id >> 22) % shard_count


@dataclass
class IdentifyRecord:
    """One IDENTIFY and what the fake did with it.

    ``outcome``: ``"ready"`` (READY and the shard's GUILD_CREATEs sent), ``"too-soon"`` (another
    IDENTIFY of the same rate-limit key ``shard_id % max_concurrency`` came within ``identify_window``:
    answered INVALID_SESSION, as Discord does), ``"invalid-shard"`` (closed 4010), ``"sharding-required"``
    (closed 4011). ``at`` is on the fake's ``rate_clock``. (A bad token is closed 4004 before this.)
    """

    shard_id: int
    shard_count: int
    token: str | None
    at: float
    outcome: str = "ready"
    since_last: float | None = None
    """Seconds since the last accepted IDENTIFY of the same rate-limit key (``None``: the first)."""


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class FakeDiscord:
    """A fake Discord API + gateway on 127.0.0.1 (random port). Use as ``async with FakeDiscord() as fake``.

    Knobs (plain attributes):

    - ``global_limit`` / ``global_window``: the global rate limit, a sliding window per bot token
      (default 50 requests per 1 s, as Discord; ``global_limit = None`` turns it off). Interaction
      callbacks and interaction webhooks do not count. ``rate_limit_per_second`` and
      ``rate_limit_burst`` set the same window another way (``burst`` requests per ``burst / rate`` s).
    - ``route_limits`` (route -> :class:`RouteLimit`, see :data:`DEFAULT_ROUTE_LIMITS`),
      ``default_route_limit`` (other routes; ``None``: no limit, no headers) and
      ``route_limits_enabled`` (``False``: no per-route buckets and no ``X-RateLimit-*`` headers).
    - ``interaction_deadline`` (seconds a bot has to answer an interaction, 3 like Discord; ``None`` =
      no limit), ``heartbeat_interval_ms``.
    - ``expected_token`` (reject other tokens), ``revoked_tokens`` (see :meth:`revoke_token`).
    - ``clock``: what outages, Cloudflare bans and the invalid-request count measure time with
      (``time.monotonic``, or a :class:`ManualClock`); ``rate_clock``: the same for rate limits.
    - ``cloudflare_ban_threshold`` / ``cloudflare_ban_seconds``: that many invalid requests within 10
      minutes start a Cloudflare ban, as on Discord (default 10,000 and an hour; ``None``: never).
    - Shards: ``recommended_shards`` / ``guilds_per_recommended_shard`` (what ``GET /gateway/bot``
      recommends), ``max_guilds_per_shard`` (4011 above it), ``max_concurrency`` and ``identify_window``
      (IDENTIFYs per rate-limit key), ``session_start_total``.
    """

    _patched_by: ClassVar[FakeDiscord | None] = None

    def __init__(
        self,
        *,
        bot_user_id: int = _BOT_USER_ID,
        bot_name: str = "chartbot",
        application_id: int | None = None,
        owner_id: int = OWNER_ID,
        expected_token: str | None = None,
        heartbeat_interval_ms: int = 41_250,
        interaction_deadline: float | None = 3.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name
        self.application_id = application_id or bot_user_id
        self.owner_id = owner_id
        self.expected_token = expected_token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.clock: Callable[[], float] = clock or time.monotonic
        self.rate_clock: Callable[[], float] = time.monotonic
        """What rate-limit windows are measured with: real time, since discord.py waits them out with real
        sleeps (a test of the fake alone may swap in a :class:`ManualClock`)."""
        self.revoked_tokens: set[str] = set()
        self.last_token: str | None = None
        """The bot token last seen (REST or IDENTIFY): what :meth:`revoke_token` revokes by default."""

        self.global_limit: int | None = 50
        self.global_window = 1.0
        self._burst: float | None = None
        self._global_hits: dict[str, deque[float]] = {}
        self.route_limits: dict[str, RouteLimit] = dict(DEFAULT_ROUTE_LIMITS)
        self.default_route_limit: RouteLimit | None = DEFAULT_ROUTE_LIMIT
        self.route_limits_enabled = True
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

        self.cloudflare_ban_threshold: int | None = 10_000
        self.cloudflare_ban_seconds = 3600.0
        self._ban_until: float | None = None
        self._outage: tuple[int, float] | None = None
        self._invalid_at: list[float] = []

        self.guilds: dict[int, FakeGuild] = {}
        self.private_channels: dict[int, FakePrivateChannel] = {}
        """DMs and group DMs (see :meth:`add_dm`, :meth:`add_group_dm`)."""
        self.users: dict[int, FakeMember] = {}
        """Users known outside any guild (the recipients of private channels)."""
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.interactions: list[InteractionRecord] = []
        self.messages: dict[int, SentMessage] = {}
        self.sync_calls: list[SyncCall] = []
        self.identify_payloads: list[Json] = []
        self.gateway_connects = 0
        self.resumes = 0
        self.global_rate_limited = 0
        """How many requests were answered 429 by the global rate limit."""
        self.route_rate_limited = 0
        """How many requests were answered 429 by a per-route bucket."""
        self.cloudflare_answers = 0
        """How many requests a Cloudflare ban answered (429 without ``Via``)."""
        self.outage_answers = 0
        """How many requests an outage answered (502/503)."""
        self.crosspost_limit: RouteLimit | None = RouteLimit(10, 3600.0)
        """Publishes allowed per announcement channel: a sliding window on :attr:`clock` (``None``: no limit)."""
        self.crossposts: list[Crosspost] = []
        """Every message published (``POST /channels/{id}/messages/{id}/crosspost``), in order."""
        self.crosspost_refusals = 0
        """How many publishes the per-channel limit answered with 429."""
        self._crossposted_at: dict[int, deque[float]] = {}

        self._commands: dict[int | None, list[Json]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._failures: list[InjectedFailure] = []
        self._channel_errors: dict[int, tuple[int, int, str]] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self._connections: list[_Connection] = []
        self._sessions: dict[str, tuple[int, int]] = {}
        self._ids = itertools.count()
        self._changed = asyncio.Condition()
        self._ready = asyncio.Event()
        self._bot_tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes = self._route_table()
        self._init_shards()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel}/{id}/{name}", self._attachment)
        app.router.add_route("*", f"/api/v{API_VERSION}/{{tail:.*}}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._bot_tasks:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for conn in list(self._connections):
            await conn.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def http_base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be: ``http://127.0.0.1:PORT/api/v10``."""
        return f"{self.http_base}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    def settings_env(self) -> dict[str, str]:
        """Environment for a bot that reads its endpoints from settings."""
        return {"DISCORD_API_BASE": self.api_base, "DISCORD_GATEWAY_URL": self.gateway_url}

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this fake; restore them on exit."""
        owner = FakeDiscord._patched_by
        if owner is not None and owner is not self:
            raise RuntimeError("another FakeDiscord is patched in: use one fake per test")
        old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        FakeDiscord._patched_by = self
        try:
            yield
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
            FakeDiscord._patched_by = owner

    @contextlib.asynccontextmanager
    async def run_bot(
        self, bot: discord.Client, token: str = "fake-token", *, timeout: float = 5.0
    ) -> AsyncIterator[discord.Client]:
        """Patch discord.py, run ``bot.start(token)`` in a task and wait until the bot is ready.

        On exit the bot is closed and the task awaited; if the bot task failed, that error is raised.
        """
        with self.patch_discord():
            task: asyncio.Task[None] = asyncio.create_task(bot.start(token), name="fake-discord-bot")
            self._bot_tasks.append(task)
            try:
                await self._wait_bot_ready(bot, task, timeout)
                yield bot
            finally:
                if not bot.is_closed():
                    # bounded: a close that hangs fails the test (with the tasks still pending) instead
                    # of stalling the whole run
                    await asyncio.wait_for(bot.close(), timeout=max(timeout, 30.0))
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if not done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _wait_bot_ready(self, bot: discord.Client, task: asyncio.Task[None], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not bot.is_ready():
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise FakeDiscordTimeout(f"bot.start() ended before the bot was ready: {error!r}") from error
            if loop.time() > deadline:
                raise FakeDiscordTimeout(
                    f"bot not ready after {timeout}s (identified: {bool(self.identify_payloads)}, "
                    f"unhandled requests: {[(r.method, r.path) for r in self.unhandled]})"
                )
            await asyncio.sleep(0.005)

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until a bot has IDENTIFYed and the fake sent READY and every GUILD_CREATE.

        The bot may still be processing them: :meth:`run_bot` also waits for ``bot.is_ready()``.
        """
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise FakeDiscordTimeout(f"no IDENTIFY within {timeout}s") from None

    # -- setup -------------------------------------------------------------------------------------

    def add_guild(
        self,
        id: int,
        name: str = "Test Guild",
        *,
        channels: Iterable[FakeChannel | int] = (),
        members: Iterable[FakeMember | int] = (),
        roles: Iterable[FakeRole] = (),
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        locale: str = "en-US",
        bot_member: bool = True,
    ) -> FakeGuild:
        """Add a guild the bot is in (before starting the bot; later use :meth:`send_guild_create`).

        ``channels``/``members`` accept plain ids as shorthand. The @everyone role (id = guild id) gets
        ``everyone_permissions``; the bot joins as a member with a managed role of ``bot_permissions``.
        The owner (default :data:`OWNER_ID`, not a member) has every permission.

        ``bot_member=False``: a server the bot is not in, where only a user-installed command runs: the bot
        gets no READY entry or GUILD_CREATE for it, and its channels, members and roles answer 403 Missing
        Access (50001) over REST.
        """
        guild = FakeGuild(id=id, name=name, owner_id=self.owner_id if owner_id is None else owner_id)
        guild.locale = locale
        guild.roles[id] = FakeRole(id, "@everyone", permissions=everyone_permissions, position=0)
        for role in roles:
            guild.roles[role.id] = role
        bot_role = FakeRole(
            self.new_id(), self.bot_name, permissions=bot_permissions, bot_id=self.bot_user_id
        )
        if bot_member:
            guild.roles[bot_role.id] = bot_role
        for channel in channels:
            ch = channel if isinstance(channel, FakeChannel) else FakeChannel(channel)
            guild.channels[ch.id] = ch
        if bot_member:
            guild.members[self.bot_user_id] = FakeMember(
                self.bot_user_id, self.bot_name, [bot_role.id], bot=True
            )
        for member in members:
            m = member if isinstance(member, FakeMember) else FakeMember(member)
            guild.members[m.id] = m
        self.guilds[id] = guild
        return guild

    def new_id(self) -> int:
        """A fresh snowflake (its timestamp is now)."""
        return discord.utils.time_snowflake(datetime.now(UTC)) + next(self._ids) % 4096

    def channel(self, channel_id: int) -> tuple[FakeGuild, FakeChannel] | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild, guild.channels[channel_id]
        return None

    # -- failure injection -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 429,
        retry_after: float = 0.3,
        *,
        times: int = 1,
        is_global: bool = False,
        code: int = 0,
        message: str | None = None,
        scope: str | None = None,
    ) -> InjectedFailure:
        """Answer the next ``times`` requests matching ``method`` (or ``"*"``) and ``path_regex``
        (searched in the path after ``/api/v10``, e.g. ``r"/interactions/\\d+/[^/]+/callback"``) with
        ``status``. A 429 carries ``retry_after`` in the body, ``Retry-After``, ``X-RateLimit-Scope``
        (``scope``, default ``"global"`` or ``"user"``; ``"shared"`` is not an invalid request) and a
        ``Via`` header (without ``Via`` discord.py takes a 429 for a Cloudflare ban).
        """
        failure = InjectedFailure(
            method=method.upper(),
            path_regex=re.compile(path_regex),
            status=status,
            retry_after=retry_after,
            times=times,
            is_global=is_global,
            code=code,
            message=message or ("You are being rate limited." if status == 429 else f"HTTP {status}"),
            scope=scope,
        )
        self._failures.append(failure)
        return failure

    def forbid_channel(self, channel_id: int) -> None:
        """Writes to this channel answer 403 Missing Permissions (code 50013)."""
        self._channel_errors[channel_id] = (403, 50013, "Missing Permissions")

    def remove_channel(self, channel_id: int) -> None:
        """Every request on this channel answers 404 Unknown Channel (code 10003)."""
        self._channel_errors[channel_id] = (404, 10003, "Unknown Channel")

    def restore_channel(self, channel_id: int) -> None:
        """Undo :meth:`forbid_channel` / :meth:`remove_channel`."""
        self._channel_errors.pop(channel_id, None)

    def revoke_token(self, token: str | None = None) -> str:
        """Revoke a bot token (default: the last one seen), as a reset in the Developer Portal does:
        from now on every REST call with it answers 401 and an IDENTIFY with it is closed with 4004
        (``await fake.close_gateway(4004)`` drops the open connections too). Returns the token."""
        token = token if token is not None else self.last_token
        if token is None:
            raise RuntimeError("no bot token seen yet: pass the token to revoke")
        self.revoked_tokens.add(token)
        return token

    def token_valid(self, token: str | None) -> bool:
        """Whether Discord would accept this bot token."""
        if not token or token in self.revoked_tokens:
            return False
        return self.expected_token is None or token == self.expected_token

    def start_cloudflare_ban(self, seconds: float | None = None) -> None:
        """For ``seconds`` of :attr:`clock` (``None``: until :meth:`end_outages`), every REST call answers
        as Cloudflare does to a banned IP: 429 with an HTML body and no ``Via`` header."""
        self._ban_until = math.inf if seconds is None else self.clock() + seconds

    def start_outage(self, seconds: float | None = None, *, status: int = 503) -> None:
        """For ``seconds`` of :attr:`clock` (``None``: until :meth:`end_outages`), every REST call answers
        ``status`` (503 Service Unavailable, or 502 Bad Gateway: discord.py retries a 502 itself, with
        sleeps of 1 + 2n s, before it raises)."""
        self._outage = (status, math.inf if seconds is None else self.clock() + seconds)

    def end_outages(self) -> None:
        """End a Cloudflare ban and an outage now."""
        self._ban_until = self._outage = None

    @property
    def cloudflare_banned(self) -> bool:
        return self._ban_until is not None and self.clock() < self._ban_until

    @property
    def outage_status(self) -> int | None:
        """The status every REST call answers now because of an outage, or ``None``."""
        if self._outage is None or self.clock() >= self._outage[1]:
            return None
        return self._outage[0]

    @property
    def invalid_requests(self) -> int:
        """Invalid requests (401, 403, 429 except ``X-RateLimit-Scope: shared``) in the last 10 minutes
        of :attr:`clock`, as Discord counts them towards a Cloudflare ban."""
        now = self.clock()
        return len(self._invalid_at) - bisect.bisect_right(self._invalid_at, now - INVALID_REQUEST_WINDOW)

    @property
    def invalid_requests_total(self) -> int:
        return len(self._invalid_at)

    def peak_invalid_requests(self, window: float = INVALID_REQUEST_WINDOW) -> int:
        """The most invalid requests within any ``window`` seconds so far (on :attr:`clock`)."""
        peak, start = 0, 0
        for end, at in enumerate(self._invalid_at):
            while self._invalid_at[start] <= at - window:
                start += 1
            peak = max(peak, end - start + 1)
        return peak

    @property
    def rate_limit_per_second(self) -> float | None:
        """The global limit as a rate (``global_limit / global_window``); ``None`` = off.

        Setting it keeps a sliding window of ``rate_limit_burst`` requests (default: the rate, i.e. a
        window of one second). Interaction callbacks and interaction webhooks are exempt, as on Discord.
        """
        return None if self.global_limit is None else self.global_limit / self.global_window

    @rate_limit_per_second.setter
    def rate_limit_per_second(self, value: float | None) -> None:
        if value is None:
            self.global_limit = None
        else:
            self.global_limit = max(1, round(self._burst or value))
            self.global_window = self.global_limit / value
        self._global_hits.clear()

    @property
    def rate_limit_burst(self) -> float | None:
        """How many requests the global window holds (``None``: as many as the rate per second)."""
        return self._burst

    @rate_limit_burst.setter
    def rate_limit_burst(self, value: float | None) -> None:
        rate = self.rate_limit_per_second
        self._burst = value
        if rate is not None:
            self.rate_limit_per_second = rate

    # -- reading what the bot did ------------------------------------------------------------------

    def synced_commands(self, guild_id: int | None = None) -> list[Json]:
        """The command payloads of the last bulk sync for a guild (``None``: global), as the bot sent
        them; ``[]`` if never synced (see ``sync_calls`` to count syncs)."""
        for call in reversed(self.sync_calls):
            if call.guild_id == guild_id:
                return call.commands
        return []

    def sent_messages(self, channel_id: int, *, include_interactions: bool = False) -> list[SentMessage]:
        """Messages the bot posted in a channel (``POST /channels/{id}/messages``), oldest first."""
        kinds = ("channel", "interaction", "followup") if include_interactions else ("channel",)
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel_id and m.kind in kinds and not m.deleted
        ]

    async def wait_for_messages(
        self, channel_id: int, count: int = 1, timeout: float = 2.0
    ) -> list[SentMessage]:
        """Wait until the bot posted at least ``count`` messages in a channel; return them all."""
        await self._wait_until(
            lambda: len(self.sent_messages(channel_id)) >= count,
            timeout,
            lambda: f"{len(self.sent_messages(channel_id))} messages in channel {channel_id}, wanted {count}",
        )
        return self.sent_messages(channel_id)

    async def wait_for_request(self, method: str, path_regex: str, timeout: float = 2.0) -> RecordedRequest:
        """Wait for a REST call matching ``method`` and ``path_regex`` (searched); return the first."""
        pattern = re.compile(path_regex)

        def find() -> RecordedRequest | None:
            return next(
                (r for r in self.requests if r.method == method.upper() and pattern.search(r.path)), None
            )

        await self._wait_until(lambda: find() is not None, timeout, lambda: f"no {method} {path_regex}")
        found = find()
        assert found is not None
        return found

    async def _wait_until(
        self, predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]
    ) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise FakeDiscordTimeout(describe() + self._diagnostics()) from None

    def _diagnostics(self) -> str:
        notes = []
        for task in self._bot_tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                notes.append(f"bot task failed: {task.exception()!r}")
        if self.unhandled:
            notes.append(f"unhandled requests: {[(r.method, r.path) for r in self.unhandled]}")
        errors = [(r.method, r.path, r.status) for r in self.requests if r.status >= 400]
        if errors:
            notes.append(f"error answers: {errors[-5:]}")
        return "".join(f"\n  {n}" for n in notes)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- gateway pushes ----------------------------------------------------------------------------

    async def dispatch(self, event: str, data: Json, *, guild_id: int | None = None) -> None:
        """Send a raw gateway DISPATCH to the connection serving ``guild_id`` (``None``: every connection)."""
        conns = [self._connection_for(guild_id)] if guild_id is not None else self._identified()
        for conn in conns:
            await conn.send(0, data, event)

    async def send_guild_create(self, guild_id: int) -> None:
        """Dispatch GUILD_CREATE for a guild added after the bot connected (the bot "joins" it)."""
        await self.dispatch(
            "GUILD_CREATE", self.guilds[guild_id].payload(bot_id=self.bot_user_id), guild_id=guild_id
        )

    async def close_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (discord.py reconnects and RESUMEs on 4000)."""
        for conn in list(self._connections):
            await conn.ws.close(code=code)

    async def slash(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        guild_command: bool | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> InteractionRecord:
        """Push a slash command (INTERACTION_CREATE type 2) and return its record.

        ``command`` may hold the whole path (``"watch add"``) or use ``subcommand`` (``"add"``, or
        ``"group sub"``). Option types come from the synced command when there is one, else from the
        Python values (str, int, float, bool). User/channel/role options take ids and are resolved.
        ``guild_command``: whether the command is a guild command (default: it is if it was synced
        to that guild).

        Anywhere, as Discord allows it: ``guild_id`` ``None`` for a DM or group DM (:meth:`add_dm`,
        :meth:`add_group_dm`); a guild added with ``bot_member=False`` for a server without the bot.
        ``install``: ``"guild"`` (the server's installation; the default where the bot is) or ``"user"``
        (the user's own: the default elsewhere), giving ``authorizing_integration_owners`` and
        ``context``. A synced command is pushed only where its ``contexts`` and ``integration_types``
        offer it (else :class:`FakeDiscordRefusal`).
        """
        return await self._push(
            2,
            guild_id,
            channel_id,
            user_id,
            command,
            options or {},
            subcommand,
            None,
            guild_command,
            locale,
            install,
        )

    async def push_autocomplete(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        command: str,
        *,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        subcommand: str | None = None,
        guild_command: bool | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> InteractionRecord:
        """Push an autocomplete interaction (type 4) with ``focused`` holding ``value``; return its record."""
        opts = {**(options or {}), focused: value}
        return await self._push(
            4,
            guild_id,
            channel_id,
            user_id,
            command,
            opts,
            subcommand,
            focused,
            guild_command,
            locale,
            install,
        )

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        command: str,
        *,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        subcommand: str | None = None,
        timeout: float = 2.0,
    ) -> list[Json]:
        """Push an autocomplete interaction and return the choices (``[{"name", "value"}, …]``).

        The time to answer is on the record: ``fake.interactions[-1].answered_after``.
        """
        rec = await self.push_autocomplete(
            guild_id,
            channel_id,
            user_id,
            command,
            focused=focused,
            value=value,
            options=options,
            subcommand=subcommand,
        )
        reply = await rec.response(timeout)
        if reply.type != CALLBACK_AUTOCOMPLETE:
            raise AssertionError(f"autocomplete answered with callback type {reply.type}")
        return rec.choices or []

    async def _push(
        self,
        itype: int,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        command: str,
        options: Mapping[str, Any],
        subcommand: str | None,
        focused: str | None,
        guild_command: bool | None,
        locale: str,
        install: str | None = None,
    ) -> InteractionRecord:
        where = self._where(channel_id, user_id, install)
        guild = where.guild
        if guild_id is not None and (guild is None or guild.id != guild_id):
            raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
        path = command.split() + (subcommand.split() if subcommand else [])
        schema, scope = self._find_command(guild_id, path[0], guild_command)
        self._check_offered(schema, scope, where, path[0])
        resolved: Json = {}
        data: Json = {
            "id": str(schema["id"] if schema else self._command_id(scope, path[0], 1)),
            "name": path[0],
            "type": 1,
            "options": self._build_options(guild, channel_id, schema, path[1:], options, focused, resolved),
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        if resolved:
            data["resolved"] = resolved
        return await self._dispatch_interaction(
            itype, where, channel_id, user_id, " ".join(path), data, locale=locale
        )

    async def _dispatch_interaction(
        self,
        itype: int,
        where: _Where,
        channel_id: int,
        user_id: int,
        command: str,
        data: Json,
        *,
        locale: str,
        message: SentMessage | None = None,
    ) -> InteractionRecord:
        iid, token = self.new_id(), f"tok-{secrets.token_urlsafe(24)}"
        payload: Json = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "data": data,
            **where.fields,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = self._message_payload(message)
        guild_id = where.guild.id if where.guild else None
        conn = self._connection_for(guild_id or 0)  # DMs arrive on shard 0
        rec = InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            command=command,
            payload=payload,
            pushed_at=time.monotonic(),
            fake=self,
            context=where.context,
            install=where.install,
            message=message,
            custom_id=data.get("custom_id"),
        )
        self.interactions.append(rec)
        self._by_token[token] = rec
        await conn.send(0, payload, "INTERACTION_CREATE")
        return rec

    def _find_command(
        self, guild_id: int | None, name: str, guild_command: bool | None
    ) -> tuple[Json | None, int | None]:
        scopes: list[int | None] = {None: [guild_id, None], True: [guild_id], False: [None]}[guild_command]
        if guild_id is None:
            scopes = [None]  # a DM or a server without the bot: only global commands exist there
        for scope in scopes:
            for cmd in self._commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd, scope
        return None, guild_id if guild_command else None

    def _build_options(
        self,
        guild: FakeGuild | None,
        channel_id: int,
        schema: Json | None,
        subpath: list[str],
        values: Mapping[str, Any],
        focused: str | None,
        resolved: Json,
    ) -> list[Json]:
        if subpath:
            sub_schema = None
            if schema is not None:
                sub_schema = next((o for o in schema.get("options", []) if o["name"] == subpath[0]), None)
            kind = sub_schema["type"] if sub_schema else (OPT_GROUP if len(subpath) > 1 else OPT_SUBCOMMAND)
            inner = self._build_options(guild, channel_id, sub_schema, subpath[1:], values, focused, resolved)
            return [{"name": subpath[0], "type": kind, "options": inner}]
        out = []
        for name, value in values.items():
            opt_schema = None
            if schema is not None:
                opt_schema = next((o for o in schema.get("options", []) if o["name"] == name), None)
            kind = opt_schema["type"] if opt_schema else self._infer_type(value)
            option: Json = {"name": name, "type": kind, "value": value}
            if name == focused:
                option["focused"] = True
            elif kind in (OPT_USER, OPT_CHANNEL, OPT_ROLE, OPT_MENTIONABLE):
                option["value"] = str(value)
                self._resolve(guild, channel_id, kind, int(value), resolved)
            elif kind == OPT_INTEGER:
                option["value"] = int(value)
            elif kind == OPT_NUMBER:
                option["value"] = float(value)
            out.append(option)
        return out

    @staticmethod
    def _infer_type(value: Any) -> int:
        if isinstance(value, bool):
            return OPT_BOOLEAN
        if isinstance(value, int):
            return OPT_INTEGER
        if isinstance(value, float):
            return OPT_NUMBER
        return OPT_STRING

    def _resolve(
        self, guild: FakeGuild | None, channel_id: int, kind: int, target: int, resolved: Json
    ) -> None:
        if guild is None:  # a private channel: users only, without member data
            if kind in (OPT_USER, OPT_MENTIONABLE) and target in self.users:
                resolved.setdefault("users", {})[str(target)] = self.users[target].user_payload()
            return
        if kind in (OPT_USER, OPT_MENTIONABLE) and target in guild.members:
            member = guild.members[target]
            resolved.setdefault("users", {})[str(target)] = member.user_payload()
            member_data = {k: v for k, v in member.payload().items() if k != "user"}
            member_data["permissions"] = str(guild.permissions_in(target, channel_id))
            resolved.setdefault("members", {})[str(target)] = member_data
        elif kind in (OPT_ROLE, OPT_MENTIONABLE) and target in guild.roles:
            resolved.setdefault("roles", {})[str(target)] = guild.roles[target].payload()
        elif kind == OPT_CHANNEL and target in guild.channels:
            ch = guild.channels[target]
            resolved.setdefault("channels", {})[str(target)] = {
                **ch.payload(guild.id),
                "permissions": str(guild.permissions_in(self.bot_user_id, target)),
            }

    def _identified(self) -> list[_Connection]:
        return [c for c in self._connections if c.identified]

    # -- shards ------------------------------------------------------------------------------------

    def _init_shards(self) -> None:
        self.recommended_shards: int | None = None
        """What ``GET /gateway/bot`` recommends (``None``: one shard per ``guilds_per_recommended_shard``
        servers, at least one, as Discord does)."""
        self.guilds_per_recommended_shard = 1000
        self.max_guilds_per_shard: int | None = 2500
        """An IDENTIFY whose shard would hold more servers is closed with 4011 (``None``: no limit)."""
        self.max_concurrency = 1
        """``session_start_limit.max_concurrency``: IDENTIFYs of one rate-limit key (``shard_id %
        max_concurrency``) are allowed once per ``identify_window`` seconds (on ``rate_clock``)."""
        self.identify_window = 0.0  # Discord: 5 s; off by default here, so a test may restart a bot at once
        self.session_start_total = 1000
        self.identifies: list[IdentifyRecord] = []
        """Every IDENTIFY with its shard and outcome (``identify_payloads`` holds the raw payloads)."""
        self.shard_close_codes: list[int] = []
        """The close codes of the shards the fake refused (4010 invalid shard, 4011 sharding required)."""
        self._last_identify: dict[tuple[str, int], float] = {}

    def recommended_shard_count(self) -> int:
        """The shard count ``GET /gateway/bot`` answers now."""
        if self.recommended_shards is not None:
            return self.recommended_shards
        return max(1, math.ceil(len(self.guilds) / self.guilds_per_recommended_shard))

    def guilds_on_shard(self, shard_id: int, shard_count: int) -> list[int]:
        """The ids of the servers a shard serves (in the order they were added)."""
        return [g for g in self.guilds if shard_of(g, shard_count) == shard_id]

    @property
    def identify_violations(self) -> list[IdentifyRecord]:
        """IDENTIFYs that came too soon after another of the same rate-limit key (``max_concurrency``)."""
        return [r for r in self.identifies if r.outcome == "too-soon"]

    def connected_shards(self) -> list[tuple[int, int]]:
        """``(shard_id, shard_count)`` of every identified gateway connection, sorted."""
        return sorted((c.shard_id, c.shard_count) for c in self._identified())

    def _connection_for(self, guild_id: int) -> _Connection:
        """The connection of the shard that serves ``guild_id`` (the newest, if a shard is connected
        twice): interactions and guild events go out there, never on another bot process's shard."""
        for conn in reversed(self._identified()):
            if shard_of(guild_id, conn.shard_count) == conn.shard_id:
                return conn
        raise RuntimeError(
            f"no gateway connection serves guild {guild_id} (connected shards: {self.connected_shards()}): "
            "is the bot running (fake.run_bot), with the shard that holds this guild?"
        )

    # -- anywhere: DMs, group DMs, servers without the bot; button presses ----------------------------

    def in_guild(self, guild_id: int) -> bool:
        """Whether the bot is a member of this fake guild."""
        guild = self.guilds.get(guild_id)
        return guild is not None and self.bot_user_id in guild.members

    def add_user(self, user: FakeMember | int) -> FakeMember:
        """A user known outside any guild (for DMs and group DMs)."""
        found = user if isinstance(user, FakeMember) else FakeMember(user)
        self.users[found.id] = found
        return found

    def add_dm(self, user: FakeMember | int, channel_id: int | None = None) -> FakePrivateChannel:
        """The bot's DM with a user: interactions there have context 1 (a guild install answers there too)."""
        person = self._known_user(user)
        dm = FakePrivateChannel(channel_id or self.new_id(), [person.id, self.bot_user_id], type=1)
        self.private_channels[dm.id] = dm
        return dm

    def add_group_dm(
        self, users: Iterable[FakeMember | int], name: str | None = None, channel_id: int | None = None
    ) -> FakePrivateChannel:
        """A group DM of users, without the bot: context 2, where only a user-installed command runs."""
        people = [self._known_user(u) for u in users]
        group = FakePrivateChannel(
            channel_id or self.new_id(), [p.id for p in people], type=3, name=name, owner_id=people[0].id
        )
        self.private_channels[group.id] = group
        return group

    def _known_user(self, user: FakeMember | int) -> FakeMember:
        if isinstance(user, FakeMember):
            return self.add_user(user)
        for guild in self.guilds.values():
            if user in guild.members:
                return guild.members[user]
        return self.users.get(user) or self.add_user(user)

    def _where(self, channel_id: int, user_id: int, install: str | None) -> _Where:
        """The fields of an interaction that say where it happens and who acts, as Discord fills them."""
        if install not in (None, "guild", "user"):
            raise ValueError(f"install must be 'guild' or 'user', not {install!r}")
        found = self.channel(channel_id)
        if found is not None:
            guild, channel = found
            bot_in = self.in_guild(guild.id)
            install = install or ("guild" if bot_in else "user")
            if install == "guild" and not bot_in:
                raise FakeDiscordRefusal(
                    f"the bot is not in guild {guild.id}: only a user-installed command runs there (install='user')"
                )
            member = guild.members.get(user_id)
            if member is None:
                raise FakeDiscordRefusal(f"user {user_id} is not a member of guild {guild.id}")
            owner = {"0": str(guild.id)} if install == "guild" else {"1": str(user_id)}
            app_permissions = (
                guild.permissions_in(self.bot_user_id, channel_id) if bot_in else USER_APP_PERMISSIONS
            )
            fields: Json = {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
                "channel_id": str(channel_id),
                "channel": channel.payload(guild.id),
                "member": {**member.payload(), "permissions": str(guild.permissions_in(user_id, channel_id))},
                "app_permissions": str(app_permissions),
                "guild_locale": guild.locale,
                "authorizing_integration_owners": owner,
                "context": CONTEXT_GUILD,
            }
            return _Where(guild, CONTEXT_GUILD, INSTALL_GUILD if install == "guild" else INSTALL_USER, fields)
        private = self.private_channels.get(channel_id)
        if private is None:
            raise ValueError(f"unknown channel {channel_id}: add it with add_guild, add_dm or add_group_dm")
        if user_id not in private.recipients:
            raise FakeDiscordRefusal(f"user {user_id} is not in the private channel {channel_id}")
        bot_dm = private.type == 1 and self.bot_user_id in private.recipients
        context = CONTEXT_BOT_DM if bot_dm else CONTEXT_PRIVATE_CHANNEL
        install = install or ("guild" if bot_dm else "user")
        if install == "guild" and not bot_dm:
            raise FakeDiscordRefusal("only a user-installed command runs in a group DM (install='user')")
        users = {u: self._known_user(u).user_payload() for u in private.recipients if u != self.bot_user_id}
        app_permissions = USER_APP_PERMISSIONS | (USE_EXTERNAL_EMOJIS if bot_dm else 0)
        fields = {
            "channel_id": str(channel_id),
            "channel": private.payload(users, bot_id=self.bot_user_id),
            "user": users[user_id],
            "app_permissions": str(app_permissions),
            # A guild install answering in the bot's DM is authorized by "guild 0", as Discord writes it.
            "authorizing_integration_owners": {"0": "0"} if install == "guild" else {"1": str(user_id)},
            "context": context,
        }
        return _Where(None, context, INSTALL_GUILD if install == "guild" else INSTALL_USER, fields)

    @staticmethod
    def _check_offered(schema: Json | None, scope: int | None, where: _Where, name: str) -> None:
        """Discord offers a command only where it may run: a guild command in its guild (server install);
        a global one where its ``integration_types`` (default: server install) and ``contexts`` (default:
        all three) allow. An unsynced command is not checked."""
        if schema is None:
            return
        if scope is not None:
            if where.guild is None or where.guild.id != scope or where.install != INSTALL_GUILD:
                raise FakeDiscordRefusal(f"/{name} is a command of guild {scope} only")
            return
        installs = schema.get("integration_types") or [INSTALL_GUILD]
        contexts = schema.get("contexts")
        contexts = [CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL] if contexts is None else contexts
        if where.install not in installs:
            kind = "a user" if where.install == INSTALL_USER else "a server"
            raise FakeDiscordRefusal(
                f"/{name} cannot be run from {kind} install (integration_types {installs})"
            )
        if where.context not in contexts:
            raise FakeDiscordRefusal(
                f"/{name} is not offered in context {where.context} (contexts {contexts})"
            )

    async def press(
        self,
        message: SentMessage | int,
        custom_id: str,
        user_id: int,
        *,
        locale: str = "en-US",
        force: bool = False,
    ) -> InteractionRecord:
        """Press a button of a message the bot sent: push a component interaction (type 3) carrying the
        ``custom_id``, ``component_type`` and the message as it is now; return its record (``response()``
        waits for the answer: ``UPDATE_MESSAGE`` edits ``rec.message``).

        Like a Discord client, it refuses (:class:`FakeDiscordRefusal`) a button the message does not show
        or shows disabled, and an ephemeral message pressed by someone it was not shown to; ``force=True``
        presses anyway, as a client showing an older version of the message would (discord.py itself
        ignores a press whose button the message no longer carries). The press happens where the message
        is, authorized by the installation that sent the message.
        """
        msg = message if isinstance(message, SentMessage) else self.messages[message]
        button = msg.button(custom_id)
        if not force and (msg.deleted or button is None or button.get("disabled")):
            state = "not on" if button is None else "disabled on"
            raise FakeDiscordRefusal(f"button {custom_id!r} is {state} message {msg.id}")
        origin = self._interaction_by_id(msg.interaction_id)
        if msg.ephemeral and origin is not None and user_id != origin.user_id and not force:
            raise FakeDiscordRefusal(f"message {msg.id} is ephemeral: only user {origin.user_id} sees it")
        install = None if origin is None else ("user" if origin.install == INSTALL_USER else "guild")
        where = self._where(msg.channel_id, user_id, install)
        if origin is not None:  # authorized by the installation that made the message, whoever presses
            owners = origin.payload["authorizing_integration_owners"]
            where = _Where(
                where.guild,
                where.context,
                where.install,
                {**where.fields, "authorizing_integration_owners": owners},
            )
        data = {"custom_id": custom_id, "component_type": (button or {}).get("type", COMPONENT_BUTTON)}
        return await self._dispatch_interaction(
            INTERACTION_COMPONENT,
            where,
            msg.channel_id,
            user_id,
            f"button {custom_id}",
            data,
            locale=locale,
            message=msg,
        )

    def _interaction_by_id(self, interaction_id: int | None) -> InteractionRecord | None:
        if interaction_id is None:
            return None
        return next((r for r in self.interactions if r.id == interaction_id), None)

    async def _close_gateway_connection(self, conn: _Connection, code: int, reason: str) -> None:
        self.shard_close_codes.append(code)
        await conn.ws.close(code=code, message=reason.encode())

    async def _admit_shard(self, conn: _Connection, data: Json) -> list[FakeGuild] | None:
        """Check an IDENTIFY's ``shard`` as Discord does; return the shard's servers, or ``None`` when it
        was refused (closed 4010 or 4011, or answered INVALID_SESSION for breaking ``max_concurrency``)."""
        token = data.get("token")
        shard = data.get("shard") or [0, 1]
        whole = isinstance(shard, list) and len(shard) == 2
        whole = whole and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
        shard_id, shard_count = shard if whole else (-1, 0)
        now = self.rate_clock()
        record = IdentifyRecord(shard_id, shard_count, token=token, at=now)
        self.identifies.append(record)
        if not 0 <= shard_id < shard_count:
            record.outcome = "invalid-shard"
            await self._close_gateway_connection(conn, CLOSE_INVALID_SHARD, "Invalid shard.")
            return None
        key = (token or "", shard_id % max(1, self.max_concurrency))
        last = self._last_identify.get(key)
        record.since_last = None if last is None else now - last
        if record.since_last is not None and record.since_last < self.identify_window:
            record.outcome = "too-soon"
            await conn.send(9, False)  # INVALID_SESSION, not resumable: the client identifies again
            return None
        guilds = [
            g for g in self.guilds.values() if self.in_guild(g.id) and shard_of(g.id, shard_count) == shard_id
        ]
        if self.max_guilds_per_shard is not None and len(guilds) > self.max_guilds_per_shard:
            record.outcome = "sharding-required"
            await self._close_gateway_connection(conn, CLOSE_SHARDING_REQUIRED, "Sharding required.")
            return None
        self._last_identify[key] = now
        conn.shard_id, conn.shard_count = shard_id, shard_count
        return guilds

    async def _get_gateway_bot(self, rec: RecordedRequest) -> Json:
        used = sum(1 for r in self.identifies if r.outcome == "ready" and r.token == rec.token)
        return {
            "url": self.gateway_url,
            "shards": self.recommended_shard_count(),
            "session_start_limit": {
                "total": self.session_start_total,
                "remaining": max(0, self.session_start_total - used),
                "reset_after": 86_400_000 if used else 0,
                "max_concurrency": self.max_concurrency,
            },
        }

    # -- gateway -----------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws=ws)
        self._connections.append(conn)
        self.gateway_connects += 1
        try:
            await conn.send(10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._on_gateway_message(conn, json.loads(msg.data))
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self._connections.remove(conn)
        return ws

    async def _on_gateway_message(self, conn: _Connection, msg: Json) -> None:
        op, data = msg.get("op"), msg.get("d")
        if op == 1:  # HEARTBEAT
            await conn.send(11, None)
        elif op == 2:  # IDENTIFY
            await self._identify(conn, data)
        elif op == 6:  # RESUME
            if not self.token_valid(data.get("token")):
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            shard = self._sessions.get(data.get("session_id", ""))
            if shard is None:
                await conn.send(9, False)  # INVALID_SESSION, not resumable: the client IDENTIFYs again
                return
            conn.session_id = data["session_id"]
            conn.shard_id, conn.shard_count = shard
            conn.seq = data.get("seq") or 0
            conn.identified = True
            self.resumes += 1
            await conn.send(0, {}, "RESUMED")
            await self._notify()
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            guild = self.guilds.get(int(data["guild_id"]))
            members = [m.payload() for m in guild.members.values()] if guild else []
            chunk = {
                "guild_id": data["guild_id"],
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "nonce": data.get("nonce"),
            }
            await conn.send(0, chunk, "GUILD_MEMBERS_CHUNK")

    async def _identify(self, conn: _Connection, data: Json) -> None:
        self.identify_payloads.append(data)
        self.last_token = data.get("token") or self.last_token
        if not self.token_valid(data.get("token")):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        guilds = await self._admit_shard(conn, data)
        if guilds is None:  # refused: closed (4010, 4011) or told to identify again later (op 9)
            return
        conn.session_id = secrets.token_hex(16)
        self._sessions[conn.session_id] = (conn.shard_id, conn.shard_count)
        ready = {
            "v": API_VERSION,
            "user": self._bot_user(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": conn.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [conn.shard_id, conn.shard_count],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
        }
        await conn.send(0, ready, "READY")
        for guild in guilds:
            await conn.send(0, guild.payload(bot_id=self.bot_user_id), "GUILD_CREATE")
        conn.identified = True
        self._ready.set()
        await self._notify()

    # -- REST --------------------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        table: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user),
            ("GET", r"/(?:oauth2/)?applications/@me", self._get_application),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("PUT", r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild_id>\d+))?/commands", self._put_commands),
            ("GET", r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild_id>\d+))?/commands", self._get_commands),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._followup),
            (
                "*",
                r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
                self._webhook_msg,
            ),
            ("GET", r"/channels/(?P<cid>\d+)", self._get_channel),
            ("POST", r"/channels/(?P<cid>\d+)/messages", self._post_message),
            ("GET", r"/channels/(?P<cid>\d+)/messages", self._history),
            ("*", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._channel_msg),
            ("POST", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/crosspost", self._crosspost),
            ("POST", r"/channels/(?P<cid>\d+)/typing", self._typing),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_guild_roles),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_member),
        ]
        return [(m, re.compile(p + "$"), h) for m, p, h in table]

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        token = _bot_token(request.headers.get("Authorization"))
        rec = RecordedRequest(request.method, path, dict(request.query), body, files, time.monotonic())
        rec.token = token
        self.requests.append(rec)
        if token:
            self.last_token = token
        response = self._edge(request.method)
        if response is None:
            response = await self._api(request, rec)
            self._count_invalid(response)
        rec.status = response.status
        await self._notify()
        return response

    async def _api(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        """What Discord's API answers (behind Cloudflare): injected failures, 401, the global limit, the
        route's bucket, then the route; every answer carries the bucket's ``X-RateLimit-*`` headers."""
        bucket = self._bucket(rec)
        try:
            response = self._injected(rec.method, rec.path)
            if response is None:
                self._check_token(request, rec)
                response = self._global_limit(rec) or self._route_limit(bucket)
            if response is None:
                response = await self._route(request, rec)
        except _HTTPError as e:
            error: Json = {"message": e.message, "code": e.code}
            if e.errors:
                error["errors"] = e.errors
            response = _json_response(error, e.status)
        if bucket is not None:
            for name, value in bucket.headers(self.rate_clock()).items():
                response.headers.setdefault(name, value)
        return response

    def _edge(self, method: str) -> web.Response | None:
        """Cloudflare in front of the API: a ban (429 without ``Via``) or an outage (502/503)."""
        if self.cloudflare_banned:
            self.cloudflare_answers += 1
            headers = {"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare"}
            if self._ban_until is not None and self._ban_until != math.inf:
                headers["Retry-After"] = str(max(1, math.ceil(self._ban_until - self.clock())))
            return web.Response(body=_CLOUDFLARE_BAN_PAGE.encode(), status=429, headers=headers)
        status = self.outage_status
        if status is not None:
            self.outage_answers += 1
            if status == 502:
                page, kind = _BAD_GATEWAY_PAGE, "text/html"
            else:
                page, kind = "upstream connect error or disconnect/reset before headers", "text/plain"
            return web.Response(body=page.encode(), status=status, headers={"Content-Type": kind})
        return None

    def _count_invalid(self, response: web.Response) -> None:
        status = response.status
        if status in (401, 403) or (status == 429 and response.headers.get("X-RateLimit-Scope") != "shared"):
            self._invalid_at.append(self.clock())
            threshold = self.cloudflare_ban_threshold
            if threshold is not None and not self.cloudflare_banned and self.invalid_requests >= threshold:
                self.start_cloudflare_ban(self.cloudflare_ban_seconds)

    def _check_token(self, request: web.Request, rec: RecordedRequest) -> None:
        """401 for a bad or revoked bot token on any route; interaction callbacks and webhooks need none."""
        header = request.headers.get("Authorization")
        if header is None and rec.path.startswith(("/interactions/", "/webhooks/")):
            return
        if not self.token_valid(rec.token):
            raise _HTTPError(401, 0, "401: Unauthorized")

    async def _route(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        for method, pattern, handler in self._routes:
            match = pattern.match(rec.path)
            if match and method in ("*", rec.method):
                result = await handler(rec, **match.groupdict())
                if isinstance(result, web.Response):
                    return result
                return web.Response(status=204) if result is None else _json_response(result)
        self.unhandled.append(rec)
        raise _HTTPError(404, 0, "404: Not Found")

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[SentFile]]:
        if not request.can_read_body:
            return None, []
        if request.content_type == "multipart/form-data":
            form = await request.post()
            payload = json.loads(str(form.get("payload_json", "null")))
            files: list[SentFile] = []
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    index = re.search(r"\d+", name)
                    files.append(
                        SentFile(
                            id=int(index.group()) if index else len(files),
                            filename=value.filename,
                            data=value.file.read(),
                            content_type=value.content_type,
                        )
                    )
            return payload, files
        raw = await request.read()
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []

    def _injected(self, method: str, path: str) -> web.Response | None:
        for failure in self._failures:
            if failure.matches(method, path):
                failure.hits += 1
                if failure.status == 429:
                    return _too_many(failure.retry_after, is_global=failure.is_global, scope=failure.scope)
                return _json_response({"message": failure.message, "code": failure.code}, failure.status)
        return None

    def _global_limit(self, rec: RecordedRequest) -> web.Response | None:
        """A sliding window of ``global_limit`` requests per ``global_window`` seconds per bot token."""
        limit = self.global_limit
        if not limit or rec.path.startswith(("/interactions/", "/webhooks/")):
            return None
        now = self.rate_clock()
        hits = self._global_hits.setdefault(rec.token or "", deque())
        while hits and hits[0] <= now - self.global_window:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now)
            return None
        self.global_rate_limited += 1
        return _too_many(max(0.001, hits[0] + self.global_window - now), is_global=True)

    def _bucket(self, rec: RecordedRequest) -> _Bucket | None:
        if not self.route_limits_enabled:
            return None
        key, major = route_key(rec.method, rec.path)
        limit = self.route_limits.get(key, self.default_route_limit)
        if limit is None:
            return None
        bucket_hash = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        bucket = self._buckets.get((rec.token or "", bucket_hash, major))
        if bucket is None or bucket.limit != limit:
            bucket = self._buckets[(rec.token or "", bucket_hash, major)] = _Bucket(bucket_hash, limit)
        return bucket

    def _route_limit(self, bucket: _Bucket | None) -> web.Response | None:
        now = self.rate_clock()
        if bucket is None or bucket.take(now):
            return None
        self.route_rate_limited += 1
        return _too_many(bucket.reset_at - now, is_global=False, headers=bucket.headers(now))

    # -- REST handlers -----------------------------------------------------------------------------

    def _bot_user(self) -> Json:
        return {
            "id": str(self.bot_user_id),
            "username": self.bot_name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
        }

    async def _get_me(self, rec: RecordedRequest) -> Json:
        return self._bot_user()

    async def _get_user(self, rec: RecordedRequest, user_id: str) -> Json:
        for guild in self.guilds.values():
            if int(user_id) in guild.members:
                return guild.members[int(user_id)].user_payload()
        if int(user_id) in self.users:
            return self.users[int(user_id)].user_payload()
        raise _HTTPError(404, 10013, "Unknown User")

    async def _get_application(self, rec: RecordedRequest) -> Json:
        return {
            "id": str(self.application_id),
            "name": self.bot_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": FakeMember(self.owner_id, "owner").user_payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "rpc_origins": [],
            "interactions_endpoint_url": None,
            "bot": self._bot_user(),
        }

    async def _get_gateway(self, rec: RecordedRequest) -> Json:
        return {"url": self.gateway_url}

    def _check_app(self, app: str) -> None:
        if int(app) != self.application_id:
            raise _HTTPError(403, 50001, "Missing Access")

    def _command_id(self, scope: int | None, name: str, kind: int) -> int:
        return self._command_ids.setdefault((scope, name, kind), self.new_id())

    async def _put_commands(self, rec: RecordedRequest, app: str, guild_id: str | None) -> list[Json]:
        self._check_app(app)
        scope = int(guild_id) if guild_id else None
        if scope is not None and not self.in_guild(scope):
            raise _HTTPError(403, 50001, "Missing Access")
        commands = rec.json or []
        self.sync_calls.append(SyncCall(scope, commands, rec.at))
        echoed = []
        for cmd in commands:
            kind = cmd.get("type", 1)
            perms = cmd.get("default_member_permissions")  # discord.py sends an int, Discord answers a string
            echoed.append(
                {
                    "options": [],
                    "dm_permission": True,
                    "nsfw": False,
                    **cmd,
                    "id": str(self._command_id(scope, cmd["name"], kind)),
                    "application_id": str(self.application_id),
                    "type": kind,
                    "version": str(self.new_id()),
                    "default_member_permissions": None if perms is None else str(perms),
                    **({"guild_id": str(scope)} if scope is not None else {}),
                }
            )
        self._commands[scope] = echoed
        return echoed

    async def _get_commands(self, rec: RecordedRequest, app: str, guild_id: str | None) -> list[Json]:
        self._check_app(app)
        return self._commands.get(int(guild_id) if guild_id else None, [])

    def _interaction(self, app: str, token: str) -> InteractionRecord:
        rec = self._by_token.get(token)
        if rec is None or int(app) != self.application_id:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        return rec

    async def _callback(self, rec: RecordedRequest, iid: str, token: str) -> Json | None:
        interaction = self._by_token.get(token)
        if interaction is None or interaction.id != int(iid):
            raise _HTTPError(404, 10062, "Unknown interaction")
        if (
            self.interaction_deadline is not None
            and rec.at - interaction.pushed_at > self.interaction_deadline
        ):
            raise _HTTPError(404, 10062, "Unknown interaction")
        if interaction.callbacks:
            raise _HTTPError(400, 40060, "Interaction has already been acknowledged.")
        body: Json = rec.json or {}
        kind = int(body.get("type", 0))
        data: Json = body.get("data") or {}
        if kind == CALLBACK_AUTOCOMPLETE:
            self._validate_choices(data.get("choices", []))
        elif kind == CALLBACK_MESSAGE:
            self._validate_message(data)
        elif kind in (CALLBACK_UPDATE_MESSAGE, CALLBACK_DEFERRED_UPDATE):
            self._check_update(interaction, kind, data)
        interaction.callbacks.append(body)
        interaction.answered_at = rec.at
        if kind in (CALLBACK_UPDATE_MESSAGE, CALLBACK_DEFERRED_UPDATE):
            self._update_pressed(interaction, kind, data, rec.files)
        flags = int(data.get("flags", 0))
        if kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            if kind == CALLBACK_DEFERRED_MESSAGE:
                flags |= LOADING
                data = {"content": "", "flags": flags}
            interaction.original = self._store_message(
                interaction.channel_id, "interaction", data, rec.files, flags=flags, interaction=interaction
            )
        response: Json = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": str(interaction.original.id) if interaction.original else None,
                "response_message_loading": kind == CALLBACK_DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            }
        }
        if interaction.original is not None:
            response["resource"] = {"type": kind, "message": self._message_payload(interaction.original)}
        return response if rec.query.get("with_response") in ("1", "true", "True") else None

    async def _followup(self, rec: RecordedRequest, app: str, token: str) -> Json | None:
        interaction = self._interaction(app, token)
        if not interaction.callbacks:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        body: Json = rec.json or {}
        self._validate_message(body)
        original = interaction.original
        if (
            interaction.callback_type == CALLBACK_DEFERRED_MESSAGE
            and original is not None
            and not original.deleted
            and original.flags & LOADING
        ):
            # Discord's deprecated behaviour: the first followup after a deferral edits the "thinking…"
            # message (keeping its visibility: an ephemeral flag on the followup changes nothing).
            interaction.followup_edited_original = True
            edit = {k: v for k, v in body.items() if k != "flags"}
            self._apply_edit(original, edit, rec.files)
            msg = original
        else:
            flags = int(body.get("flags", 0))
            msg = self._store_message(interaction.channel_id, "followup", body, rec.files, flags, interaction)
            interaction.followups.append(msg)
        return self._message_payload(msg) if rec.query.get("wait") in ("1", "true", "True") else None

    async def _webhook_msg(self, rec: RecordedRequest, app: str, token: str, mid: str) -> Json | None:
        interaction = self._interaction(app, token)
        if mid == "@original":
            msg = interaction.original
        else:
            msg = next((m for m in interaction.followups if m.id == int(mid)), None)
        if msg is None or msg.deleted:
            raise _HTTPError(404, 10008, "Unknown Message")
        answer = self._message_op(rec, msg)
        if rec.method == "PATCH" and mid == "@original":
            interaction.edits.append(rec.json or {})
        return answer

    def _message_op(self, rec: RecordedRequest, msg: SentMessage, body: Json | None = None) -> Json | None:
        if rec.method == "GET":
            return self._message_payload(msg)
        if rec.method == "DELETE":
            msg.deleted = True
            return None
        if rec.method == "PATCH":
            body = (rec.json or {}) if body is None else body
            self._validate_message(body, partial=True)
            self._apply_edit(msg, body, rec.files)
            return self._message_payload(msg)
        raise _HTTPError(405, 0, "405: Method Not Allowed")

    def _channel_checked(self, cid: str, *, write: bool) -> tuple[FakeGuild, FakeChannel]:
        error = self._channel_errors.get(int(cid))
        if error is not None and (write or error[0] == 404):
            raise _HTTPError(*error)
        found = self.channel(int(cid))
        if found is None:
            if int(cid) in self.private_channels:  # a DM or group DM: reached through interactions only
                raise _HTTPError(403, 50001, "Missing Access")
            raise _HTTPError(404, 10003, "Unknown Channel")
        guild, _ = found
        if not self.in_guild(guild.id) or not guild.permissions_in(self.bot_user_id, int(cid)) & VIEW_CHANNEL:
            raise _HTTPError(403, 50001, "Missing Access")
        return found

    async def _get_channel(self, rec: RecordedRequest, cid: str) -> Json:
        guild, channel = self._channel_checked(cid, write=False)
        return channel.payload(guild.id)

    def _bot_permissions(self, guild: FakeGuild, cid: str) -> int:
        return guild.permissions_in(self.bot_user_id, int(cid))

    def _as_permitted(self, rec: RecordedRequest, perms: int) -> Json:
        """The body as Discord takes it from a bot with ``perms``: files need Attach Files (403 50013);
        without Embed Links the embeds are dropped."""
        if rec.files and not perms & ATTACH_FILES:
            raise _HTTPError(403, 50013, "Missing Permissions")
        body: Json = rec.json or {}
        if body.get("embeds") and not perms & EMBED_LINKS:
            body = {k: v for k, v in body.items() if k != "embeds"}
        return body

    async def _post_message(self, rec: RecordedRequest, cid: str) -> Json:
        guild, _ = self._channel_checked(cid, write=True)
        perms = self._bot_permissions(guild, cid)
        if not perms & SEND_MESSAGES:
            raise _HTTPError(403, 50013, "Missing Permissions")
        body = self._as_permitted(rec, perms)
        self._validate_message(body, has_files=bool(rec.files))
        msg = self._store_message(int(cid), "channel", body, rec.files, int(body.get("flags", 0)))
        return self._message_payload(msg)

    async def _history(self, rec: RecordedRequest, cid: str) -> list[Json]:
        """``GET /channels/{id}/messages`` (``limit``, ``before``, ``after``), newest first. Without Read
        Message History Discord answers an empty list, not an error. Messages read back carry no nonce."""
        guild, _ = self._channel_checked(cid, write=False)
        if not self._bot_permissions(guild, cid) & READ_MESSAGE_HISTORY:
            return []
        limit = max(1, min(int(rec.query.get("limit", 50)), 100))
        messages = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel_id == int(cid) and not m.deleted and not m.ephemeral
            ),
            key=lambda m: m.id,
        )
        if "after" in rec.query:
            after = int(rec.query["after"])
            chosen = [m for m in messages if m.id > after][:limit]
        else:
            before = int(rec.query.get("before", 2**63))
            chosen = [m for m in messages if m.id < before][-limit:]
        return [self._message_payload(m) for m in reversed(chosen)]

    async def _channel_msg(self, rec: RecordedRequest, cid: str, mid: str) -> Json | None:
        guild, _ = self._channel_checked(cid, write=rec.method != "GET")
        perms = self._bot_permissions(guild, cid)
        if rec.method == "GET" and not perms & READ_MESSAGE_HISTORY:
            raise _HTTPError(403, 50001, "Missing Access")
        msg = self.messages.get(int(mid))
        if msg is None or msg.deleted or msg.channel_id != int(cid) or msg.ephemeral:
            raise _HTTPError(404, 10008, "Unknown Message")
        body = self._as_permitted(rec, perms) if rec.method == "PATCH" else None
        return self._message_op(rec, msg, body)

    async def _typing(self, rec: RecordedRequest, cid: str) -> None:
        self._channel_checked(cid, write=True)

    def _guild(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise _HTTPError(404, 10004, "Unknown Guild")
        if not self.in_guild(guild.id):
            raise _HTTPError(403, 50001, "Missing Access")
        return guild

    async def _get_guild(self, rec: RecordedRequest, guild_id: str) -> Json:
        payload = self._guild(guild_id).payload(bot_id=self.bot_user_id)
        for key in ("members", "channels", "threads", "presences", "voice_states"):
            payload.pop(key)
        return payload

    async def _get_guild_channels(self, rec: RecordedRequest, guild_id: str) -> list[Json]:
        guild = self._guild(guild_id)
        return [c.payload(guild.id) for c in guild.channels.values()]

    async def _get_guild_roles(self, rec: RecordedRequest, guild_id: str) -> list[Json]:
        return [r.payload() for r in self._guild(guild_id).roles.values()]

    async def _get_member(self, rec: RecordedRequest, guild_id: str, user_id: str) -> Json:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise _HTTPError(404, 10007, "Unknown Member")
        return member.payload()

    async def _attachment(self, request: web.Request) -> web.Response:
        msg_file = next(
            (f for m in self.messages.values() for f in m.files if str(f.id) == request.match_info["id"]),
            None,
        )
        if msg_file is None:
            return web.Response(status=404)
        return web.Response(
            body=msg_file.data, content_type=msg_file.content_type or "application/octet-stream"
        )

    # -- component answers -------------------------------------------------------------------------

    def _check_update(self, interaction: InteractionRecord, kind: int, data: Json) -> None:
        """``UPDATE_MESSAGE`` (7) and ``DEFERRED_UPDATE_MESSAGE`` (6) answer a press only, and edit a message
        that still exists, within Discord's limits."""
        if interaction.type != INTERACTION_COMPONENT or interaction.message is None:
            raise _HTTPError(
                400, 50035, "Invalid Form Body", {"type": [f"callback type {kind} answers a component only"]}
            )
        if interaction.message.deleted:
            raise _HTTPError(404, 10008, "Unknown Message")
        if kind == CALLBACK_UPDATE_MESSAGE:
            self._validate_message(data, partial=True)

    def _update_pressed(
        self, interaction: InteractionRecord, kind: int, data: Json, files: list[SentFile]
    ) -> None:
        """The pressed message becomes the interaction's original; ``UPDATE_MESSAGE`` edits it now."""
        target = interaction.message
        assert target is not None
        if kind == CALLBACK_UPDATE_MESSAGE:
            self._apply_edit(target, data, files)
            interaction.edits.append(data)
        interaction.original = target

    def _interaction_metadata(self, origin: InteractionRecord) -> Json:
        """A message's ``interaction_metadata``: who ran the command (or pressed) that made it, and which
        installation authorized it."""
        user = origin.payload.get("user") or origin.payload["member"]["user"]
        return {
            "id": str(origin.id),
            "type": origin.type,
            "user": user,
            "authorizing_integration_owners": origin.payload["authorizing_integration_owners"],
        }

    # -- messages ----------------------------------------------------------------------------------

    @staticmethod
    def _validate_choices(choices: list[Json]) -> None:
        problems = [] if len(choices) <= 25 else ["Must be 25 or fewer in length."]
        for choice in choices:
            if not 1 <= len(str(choice.get("name", ""))) <= 100 or len(str(choice.get("value", ""))) > 100:
                problems.append(f"bad choice (name 1-100, value <= 100 characters): {choice!r}")
        if problems:
            raise _HTTPError(400, 50035, "Invalid Form Body", {"data": {"choices": problems}})

    @staticmethod
    def _validate_message(body: Json, *, partial: bool = False, has_files: bool = False) -> None:
        """The limits Discord enforces with 400 Invalid Form Body (code 50035)."""
        problems = []
        content = body.get("content") or ""
        embeds = body.get("embeds") or []
        if len(content) > 2000:
            problems.append("content: Must be 2000 or fewer in length.")
        if len(embeds) > 10:
            problems.append("embeds: Must be 10 or fewer in length.")
        for i, embed in enumerate(embeds):
            fields = embed.get("fields") or []
            sizes = {
                "title": (len(embed.get("title") or ""), 256),
                "description": (len(embed.get("description") or ""), 4096),
                "fields": (len(fields), 25),
            }
            problems += [f"embeds.{i}.{k}: {n} > {limit}" for k, (n, limit) in sizes.items() if n > limit]
            total = sum(len(embed.get(k) or "") for k in ("title", "description"))
            total += len((embed.get("footer") or {}).get("text") or "")
            total += len((embed.get("author") or {}).get("name") or "")
            total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
            if total > 6000:
                problems.append(f"embeds.{i}: {total} characters > 6000")
        every_embed = sum(_embed_size(embed) for embed in embeds)
        if len(embeds) > 1 and every_embed > 6000:
            problems.append(f"embeds: {every_embed} characters in all > 6000")
        if body.get("components") is not None:
            problems += component_problems(body["components"])
        if problems:
            raise _HTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})
        other_parts = ("components", "attachments", "sticker_ids", "poll")
        if not (partial or has_files or content or embeds or any(body.get(k) for k in other_parts)):
            raise _HTTPError(400, 50006, "Cannot send an empty message")

    def _store_message(
        self,
        channel_id: int,
        kind: str,
        body: Json,
        files: list[SentFile],
        flags: int = 0,
        interaction: InteractionRecord | None = None,
    ) -> SentMessage:
        files = self._name_files(body, files)
        msg = SentMessage(
            id=self.new_id(),
            channel_id=channel_id,
            kind=kind,
            payload=dict(body),
            files=files,
            flags=flags,
            created_at=time.monotonic(),
            history=[body],
            interaction_id=interaction.id if interaction else None,
        )
        self.messages[msg.id] = msg
        return msg

    def _name_files(self, body: Json, files: list[SentFile]) -> list[SentFile]:
        """Give uploaded files real ids and pick up ``attachments[].description`` from the payload."""
        described = {str(a.get("id")): a for a in body.get("attachments") or []}
        for f in files:
            meta = described.get(str(f.id), {})
            f.description = meta.get("description")
            f.filename = meta.get("filename") or f.filename
            f.id = self.new_id()
        return files

    def _apply_edit(self, msg: SentMessage, body: Json, files: list[SentFile]) -> None:
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or []}
            msg.files = [f for f in msg.files if str(f.id) in keep]
        msg.files += self._name_files(body, files)
        msg.payload.update(body)
        msg.history.append(body)
        msg.flags &= ~LOADING
        if "flags" in body and body["flags"] is not None:
            msg.flags = (msg.flags & EPHEMERAL) | int(body["flags"])

    def _message_payload(self, msg: SentMessage) -> Json:
        found = self.channel(msg.channel_id)
        payload: Json = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": 0 if msg.kind == "channel" else 20,
            "author": self._bot_user(),
            "content": msg.content,
            "embeds": msg.embeds,
            "components": msg.payload.get("components") or [],
            "attachments": [
                {
                    "id": str(f.id),
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": f"{self.http_base}/attachments/{msg.channel_id}/{f.id}/{f.filename}",
                    "proxy_url": f"{self.http_base}/attachments/{msg.channel_id}/{f.id}/{f.filename}",
                    "content_type": f.content_type,
                    "description": f.description,
                }
                for f in msg.files
            ],
            "timestamp": _now_iso(),
            "edited_timestamp": _now_iso() if msg.edited else None,
            "tts": False,
            "mention_everyone": msg.mentions_everyone,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "flags": msg.flags,
        }
        if found is not None:
            payload["guild_id"] = str(found[0].id)
        if msg.kind != "channel":
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            origin = self._interaction_by_id(msg.interaction_id)
            if origin is not None:
                payload["interaction_metadata"] = self._interaction_metadata(origin)
        return payload

    # -- announcement channels and permission changes ------------------------------------------------

    async def _crosspost(self, rec: RecordedRequest, cid: str, mid: str) -> Json | web.Response:
        """``POST /channels/{id}/messages/{id}/crosspost``: publish a message of an announcement channel
        (type 5) to the servers that Follow it. Discord allows a few per channel an hour
        (:attr:`crosspost_limit`, on :attr:`clock`): beyond, 429 with the ``retry_after`` until the
        oldest publish of the window ages out. A message already published answers 400 (40033)."""
        guild, channel = self._channel_checked(cid, write=True)
        if channel.type != 5:
            raise _HTTPError(400, 50068, "Invalid message type")  # only announcement channels publish
        if not self._bot_permissions(guild, cid) & SEND_MESSAGES:
            raise _HTTPError(403, 50013, "Missing Permissions")
        msg = self.messages.get(int(mid))
        if msg is None or msg.deleted or msg.channel_id != int(cid):
            raise _HTTPError(404, 10008, "Unknown Message")
        if msg.flags & CROSSPOSTED:
            raise _HTTPError(400, 40033, "This message has already been crossposted.")
        limit, now = self.crosspost_limit, self.clock()
        if limit is not None:
            window = self._crossposted_at.setdefault(int(cid), deque())
            while window and window[0] <= now - limit.per:
                window.popleft()
            if len(window) >= limit.limit:
                self.crosspost_refusals += 1
                return _too_many(window[0] + limit.per - now, is_global=False)
            window.append(now)
        msg.flags |= CROSSPOSTED
        self.crossposts.append(Crosspost(int(cid), msg.id, now))
        return self._message_payload(msg)

    def crossposted(self, channel_id: int) -> list[SentMessage]:
        """The bot's messages in a channel that were published, in the order they were published."""
        return [self.messages[c.message_id] for c in self.crossposts if c.channel_id == channel_id]

    async def send_channel_update(self, guild_id: int, channel_id: int) -> None:
        """Dispatch CHANNEL_UPDATE with the channel as it is now (after changing its ``overwrites``)."""
        channel = self.guilds[guild_id].channels[channel_id]
        await self.dispatch("CHANNEL_UPDATE", channel.payload(guild_id), guild_id=guild_id)

    async def send_role_update(self, guild_id: int, role_id: int) -> None:
        """Dispatch GUILD_ROLE_UPDATE with the role as it is now (after changing its ``permissions``)."""
        role = self.guilds[guild_id].roles[role_id]
        await self.dispatch(
            "GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": role.payload()}, guild_id=guild_id
        )

    async def send_member_update(self, guild_id: int, user_id: int) -> None:
        """Dispatch GUILD_MEMBER_UPDATE with the member as it is now (after changing its ``roles``)."""
        member = self.guilds[guild_id].members[user_id]
        await self.dispatch(
            "GUILD_MEMBER_UPDATE", {**member.payload(), "guild_id": str(guild_id)}, guild_id=guild_id
        )

    def bot_role(self, guild_id: int) -> FakeRole:
        """The bot's managed role in a guild (its permissions are the bot's, with @everyone's)."""
        return next(r for r in self.guilds[guild_id].roles.values() if r.bot_id == self.bot_user_id)
