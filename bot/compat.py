"""Every use of discord.py's private API, each behind one small function with a public fallback.

discord.py promises none of these; a release may rename or change any of them. `check_discord_version()`
(called once at start, from `ChartBot.login`) probes each one and logs a WARNING naming the installed
discord.py for every shortcut that cannot be applied; the functions below then take the public path.
The canary tests (tests/test_compat.py) fail as soon as a release changes what is relied on here.

- **The rate-limit bucket sweep** (`HTTPClient._try_clear_expired_ratelimits`, `HTTPClient._buckets`):
  made amortized O(1) by `amortize_bucket_sweep`. Without it: discord.py's own sweep, correct but
  quadratic in a fan-out to thousands of new channels.
- **Prepared messages** (`discord.http.handle_message_parameters`, `MultipartParameters`,
  `HTTPClient.send_message(channel_id, params=...)`): a post's JSON is made once per fan-out
  (`prepare_message`) and sent without building a `discord.Message` from each answer (`send_prepared`).
  Without them: the body is built with `Embed.to_dict` / `AllowedMentions.to_dict` and sent with
  `Messageable.send`.
- **Endpoints** (`discord.http.Route.BASE`, `DiscordWebSocket.DEFAULT_GATEWAY`): where a REST or gateway
  proxy (or the tests' fake Discord) stands in for discord.com (`point_at` / `restore_endpoints`). No
  fallback: a setting that cannot be applied is a start-up error, never a silent switch to discord.com.
- **The bot's gateway** (`HTTPClient.get_bot_gateway`): Discord's recommended shard count and the
  IDENTIFY concurrency in one request, before the shards connect (`bot_gateway`). Without it: the
  concurrency from the public `fetch_session_start_limits`, and discord.py asks for the count itself.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import discord
import discord.http
import yarl
from discord.gateway import DiscordWebSocket

from bot.model import InputError

log = logging.getLogger(__name__)

SUPPORTED = "discord.py>=2.5,<3"


@dataclass(frozen=True, slots=True)
class Shortcuts:
    """Which uses of discord.py's internals work with the installed version."""

    bucket_sweep: bool
    prepared_send: bool
    endpoints: bool
    bot_gateway: bool


_FALLBACKS = {
    "bucket_sweep": "HTTPClient._try_clear_expired_ratelimits(self) is gone or changed: discord.py's own "
    "rate-limit bucket sweep is kept (a fan-out to thousands of new channels costs more CPU)",
    "prepared_send": "handle_message_parameters / MultipartParameters / HTTPClient.send_message(params=) "
    "changed: posts go through Messageable.send (a Message is built from every answer)",
    "endpoints": "Route.BASE / DiscordWebSocket.DEFAULT_GATEWAY are gone: DISCORD_API_BASE and "
    "DISCORD_GATEWAY_URL cannot be applied",
    "bot_gateway": "HTTPClient.get_bot_gateway is gone: without CHARTBOT_SHARD_COUNT, discord.py asks for "
    "the shard count itself and connects to the gateway Discord names (DISCORD_GATEWAY_URL is not used)",
}

_found: Shortcuts | None = None


def check_discord_version() -> Shortcuts:
    """Probe what this module relies on; log a WARNING naming discord.py's version for each shortcut that
    cannot be applied (the code then takes the public path). Call once at start."""
    global _found
    found = Shortcuts(
        bucket_sweep=_bucket_sweep_works(),
        prepared_send=_prepared_send_works(),
        endpoints=_endpoints_work(),
        bot_gateway=_bot_gateway_works(),
    )
    for name, works in (
        ("bucket_sweep", found.bucket_sweep),
        ("prepared_send", found.prepared_send),
        ("endpoints", found.endpoints),
        ("bot_gateway", found.bot_gateway),
    ):
        if not works:
            log.warning(
                "discord.py %s: %s (chartbot is tested with %s)",
                discord.__version__,
                _FALLBACKS[name],
                SUPPORTED,
            )
    _found = found
    return found


def shortcuts() -> Shortcuts:
    """What `check_discord_version` found (it is run now if it has not been yet)."""
    return _found if _found is not None else check_discord_version()


# --- probes -----------------------------------------------------------------------------------------


def _bucket_sweep_works() -> bool:
    http = discord.http.HTTPClient
    sweep = getattr(http, "_try_clear_expired_ratelimits", None)
    if not callable(sweep) or not callable(getattr(http, "get_ratelimit", None)):
        return False
    try:
        return list(inspect.signature(sweep).parameters) == ["self"]
    except (TypeError, ValueError):
        return False


def _prepared_send_works() -> bool:
    try:
        send = discord.http.HTTPClient.send_message
        if "params" not in inspect.signature(send).parameters:
            return False
        if discord.http.MultipartParameters._fields[:3] != ("payload", "multipart", "files"):
            return False
        with discord.http.handle_message_parameters(
            content="probe",
            embed=discord.Embed(title="probe"),
            nonce="probe",
            allowed_mentions=discord.AllowedMentions.none(),
        ) as params:
            payload = params.payload
        return (
            isinstance(payload, dict)
            and payload.get("content") == "probe"
            and payload.get("nonce") == "probe"
            and payload.get("enforce_nonce") is True
            and [e.get("title") for e in payload.get("embeds", [])] == ["probe"]
            and payload.get("allowed_mentions") == {"parse": []}
            and not params.files
        )
    except Exception:  # anything at all: the shortcut is not safe to take
        return False


def _endpoints_work() -> bool:
    return isinstance(getattr(discord.http.Route, "BASE", None), str) and isinstance(
        getattr(DiscordWebSocket, "DEFAULT_GATEWAY", None), yarl.URL
    )


def _bot_gateway_works() -> bool:
    return inspect.iscoroutinefunction(getattr(discord.http.HTTPClient, "get_bot_gateway", None))


# --- the bucket sweep ---------------------------------------------------------------------------------


def amortize_bucket_sweep(http: object, floor: int = 256) -> bool:
    """Make discord.py's rate-limit bucket sweep O(1) amortized instead of O(buckets) per new bucket.

    discord.py (2.x) keeps one bucket per channel and, once it holds 256, scans all of them each time it
    creates another. A fan-out to N new channels then costs O(N²): 22 s of CPU for 10,000 channels,
    measured with bench/fanout.py. Sweeping only when the count has doubled since the last sweep keeps
    memory within twice the live buckets and the whole fan-out O(N). Returns False (and changes
    nothing) when the installed discord.py has no such sweep.
    """
    if not shortcuts().bucket_sweep:
        return False
    sweep = getattr(type(http), "_try_clear_expired_ratelimits", None)
    if sweep is None or not isinstance(getattr(http, "_buckets", None), dict):
        return False
    threshold = floor

    def amortized() -> None:
        nonlocal threshold
        if len(http._buckets) < threshold:  # type: ignore[attr-defined]
            return
        sweep(http)
        threshold = max(floor, 2 * len(http._buckets))  # type: ignore[attr-defined]

    http._try_clear_expired_ratelimits = amortized  # type: ignore[attr-defined]
    return True


# --- prepared messages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message's JSON body, as `Messageable.send` would send it (with ``nonce`` and ``enforce_nonce``)."""

    payload: dict[str, Any]


def prepare_message(
    *,
    content: str | None,
    embed: discord.Embed,
    nonce: str,
    allowed_mentions: discord.AllowedMentions,
) -> PreparedMessage:
    """The body of a post, made once: `send_prepared` sends copies of it to many channels."""
    if shortcuts().prepared_send:
        with discord.http.handle_message_parameters(
            content=content, embed=embed, nonce=nonce, allowed_mentions=allowed_mentions
        ) as params:
            return PreparedMessage(dict(params.payload or {}))
    payload: dict[str, Any] = {
        "embeds": [embed.to_dict()],
        "content": content,
        "nonce": nonce,
        "enforce_nonce": True,
        "tts": False,
        "allowed_mentions": allowed_mentions.to_dict(),
    }
    return PreparedMessage(payload)


async def send_prepared(client: discord.Client, channel_id: int, message: PreparedMessage) -> int:
    """Post a prepared message in a channel; returns the new message's id.

    Raises what `Messageable.send` raises (`discord.HTTPException` and its kinds).
    """
    if shortcuts().prepared_send:
        params = discord.http.MultipartParameters(message.payload, None, None)
        data = await client.http.send_message(channel_id, params=params)
        return int(data["id"])
    payload = message.payload
    channel = client.get_partial_messageable(channel_id)
    sent = await channel.send(
        content=payload.get("content"),
        embeds=[discord.Embed.from_dict(e) for e in payload.get("embeds") or []],
        nonce=payload.get("nonce"),
        allowed_mentions=_allowed_mentions(payload.get("allowed_mentions")),
    )
    return sent.id


def _allowed_mentions(data: dict[str, Any] | None) -> discord.AllowedMentions | None:
    """The `AllowedMentions` whose `to_dict()` is `data`."""
    if data is None:
        return None
    parse = set(data.get("parse") or ())

    def chosen(kind: str) -> bool | list[discord.Object]:
        if kind in parse:
            return True
        return [discord.Object(int(i)) for i in data[kind]] if kind in data else False

    return discord.AllowedMentions(
        everyone="everyone" in parse,
        users=chosen("users"),
        roles=chosen("roles"),
        replied_user=bool(data.get("replied_user", False)),
    )


# --- endpoints ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where discord.py sent its REST calls and gateway connections before `point_at`."""

    api_base: str
    gateway: yarl.URL


def point_at(api_base: str | None, gateway: str | None) -> Endpoints | None:
    """Aim discord.py at another REST base (``…/api/v10``) and/or gateway URL, process-wide.

    Returns what `restore_endpoints` puts back, or None when both are None (nothing changed). Raises
    InputError when the installed discord.py cannot be aimed elsewhere.
    """
    if not (api_base or gateway):
        return None
    if not shortcuts().endpoints:
        raise InputError(
            f"discord.py {discord.__version__} cannot be pointed at DISCORD_API_BASE / DISCORD_GATEWAY_URL "
            f"(Route.BASE or DiscordWebSocket.DEFAULT_GATEWAY is gone): install {SUPPORTED}"
        )
    saved = Endpoints(discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return saved


def current_endpoints() -> tuple[str, str]:
    """(REST base, gateway URL) discord.py uses now."""
    return discord.http.Route.BASE, str(DiscordWebSocket.DEFAULT_GATEWAY)


def restore_endpoints(saved: Endpoints) -> None:
    """Undo `point_at`."""
    discord.http.Route.BASE = saved.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = saved.gateway


# --- the bot's gateway ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotGateway:
    """What `GET /gateway/bot` says: the recommended shard count (``None``: not asked, discord.py will)
    and how many shards may IDENTIFY at once (`max_concurrency`, per 5 seconds)."""

    shards: int | None
    max_concurrency: int


async def bot_gateway(client: discord.AutoShardedClient) -> BotGateway:
    """Discord's shard recommendation and IDENTIFY concurrency for this bot (one REST call; the client
    must be logged in). Raises `discord.GatewayNotFound` when Discord does not answer."""
    if shortcuts().bot_gateway:
        shards, _url, limits = await client.http.get_bot_gateway()
        return BotGateway(int(shards), max(1, int(limits["max_concurrency"])))
    limits = await client.fetch_session_start_limits()
    return BotGateway(None, max(1, limits.max_concurrency))
