"""Settings from the environment (and a `.env` file when one is present). See `.env.example`.

Every setting is checked when it is read: a bad value is an InputError whose one line names the
setting, so a start-up mistake is one clear line and exit 2, never a traceback or a silent default.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dotenv
from yarl import URL

from bot.model import InputError
from bot.shards import parse_shard_ranges

NETFLIX_TOP10_URL = "https://www.netflix.com/tudum/top10/data/"
FLIXPATROL_URL = "https://flixpatrol.com/"
KNOWN_SOURCES = ("netflix", "flixpatrol")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_ANNOUNCE_RATE = 50.0  # Discord's global limit for a bot: 50 requests per second
MEGABYTE = 1_000_000

_HTTP = ("http", "https")
_WEBSOCKET = ("ws", "wss")
_ON = ("1", "on", "true", "yes")
_OFF = ("0", "off", "false", "no")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Settings:
    db_path: str = "chartbot.sqlite3"
    log_level: str = "INFO"
    discord_token: str | None = field(default=None, repr=False)  # never printed, never logged
    dev_guild: int | None = None
    api_base: str | None = None
    gateway_url: str | None = None
    poll_in_bot: bool = True
    sources: tuple[str, ...] = ("netflix",)
    netflix_url: str = NETFLIX_TOP10_URL
    flixpatrol_url: str = FLIXPATROL_URL
    flixpatrol_services: tuple[str, ...] = ("netflix",)
    flaresolverr_url: str | None = None
    poll_interval: float = 3600.0
    announce_rate: float = 48.0  # the announcer's requests per second (Discord allows 50 in all)
    announce_workers: int = 24  # channels the announcer serves at once
    announce_hold: float = 30.0  # seconds a post waits after its latest news for more of the same
    max_download_mb: float = 200.0  # a downloaded file's size cap, after decompression
    shard_count: int | None = None  # None: the count Discord recommends (GET /gateway/bot)
    shards: tuple[int, ...] | None = None  # the shards this process runs (None: all of them)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * MEGABYTE)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every setting; raise InputError naming the first bad one."""
        read = _Reader(os.environ if env is None else env)
        shard_count = read.whole("CHARTBOT_SHARD_COUNT", 0, low=1) or None
        return cls(
            db_path=read.text("CHARTBOT_DB") or cls.db_path,
            log_level=read.choice("CHARTBOT_LOG_LEVEL", LOG_LEVELS, cls.log_level),
            discord_token=read.text("DISCORD_TOKEN"),
            dev_guild=read.server_id("DISCORD_DEV_GUILD"),
            api_base=read.url("DISCORD_API_BASE", _HTTP),
            gateway_url=read.url("DISCORD_GATEWAY_URL", _WEBSOCKET),
            poll_in_bot=read.switch("CHARTBOT_POLL", cls.poll_in_bot),
            sources=read.sources("CHARTBOT_SOURCES", cls.sources),
            netflix_url=read.url("NETFLIX_TOP10_URL", _HTTP) or cls.netflix_url,
            flixpatrol_url=read.url("FLIXPATROL_URL", _HTTP) or cls.flixpatrol_url,
            flixpatrol_services=read.slugs("FLIXPATROL_SERVICES", cls.flixpatrol_services),
            flaresolverr_url=read.url("FLARESOLVERR_URL", _HTTP),
            poll_interval=read.number(
                "CHARTBOT_POLL_INTERVAL", cls.poll_interval, low=1.0, unit="seconds", what="at least 1"
            ),
            announce_rate=read.number(
                "CHARTBOT_ANNOUNCE_RATE",
                cls.announce_rate,
                low=0.0,
                low_included=False,
                high=MAX_ANNOUNCE_RATE,
                unit="requests per second",
                what=f"more than 0 and at most {MAX_ANNOUNCE_RATE:g} (Discord's limit)",
            ),
            announce_workers=read.whole("CHARTBOT_ANNOUNCE_WORKERS", cls.announce_workers, low=1),
            announce_hold=read.number(
                "CHARTBOT_ANNOUNCE_HOLD",
                cls.announce_hold,
                low=0.0,
                high=3600.0,
                unit="seconds",
                what="0 to 3600",
            ),
            max_download_mb=read.number(
                "CHARTBOT_MAX_DOWNLOAD_MB",
                cls.max_download_mb,
                low=0.0,
                low_included=False,
                unit="megabytes",
                what="more than 0",
            ),
            shard_count=shard_count,
            shards=shard_selection(read.text("CHARTBOT_SHARDS"), shard_count, "CHARTBOT_SHARDS"),
        )


class _Reader:
    """Reads settings from a mapping; each method checks one kind of value and names the setting."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def number(
        self,
        name: str,
        default: float,
        *,
        low: float,
        low_included: bool = True,
        high: float = math.inf,
        unit: str,
        what: str,
    ) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            result = float(value)
        except ValueError:
            result = math.nan
        in_range = (result >= low if low_included else result > low) and result <= high
        if not (math.isfinite(result) and in_range):
            raise InputError(f"{name} must be a number of {unit}, {what}; not {value!r}")
        return result

    def whole(self, name: str, default: int, *, low: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()) or int(value) < low:
            raise InputError(f"{name} must be a whole number of at least {low}, not {value!r}")
        return int(value)

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name)
        if value is None:
            return default
        if value.upper() not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value.upper()

    def switch(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in _ON + _OFF:
            raise InputError(f"{name} must be on or off, not {value!r}")
        return value.lower() in _ON

    def server_id(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()):
            raise InputError(f"{name} must be a server id (digits), not {value!r}")
        return int(value)

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        """An absolute URL with one of `schemes` and a host."""
        value = self.text(name)
        if value is None:
            return None
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        try:
            url = URL(value)
        except ValueError:  # e.g. a port that is not a number, or out of range
            url = None
        if url is None or url.scheme not in schemes or not url.host or any(c.isspace() for c in value):
            raise InputError(
                f"{name} must be an absolute URL starting with {expected} and a host, not {value!r}"
            )
        return value

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.text(name)
        if value is None:
            return default
        names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
        if not names:
            raise InputError(f"{name} names nothing: {value!r}")
        return names

    def sources(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        sources = self.names(name, default)
        unknown = [s for s in sources if s not in KNOWN_SOURCES]
        if unknown:
            raise InputError(f"{name}: unknown source {unknown[0]!r} (known: {', '.join(KNOWN_SOURCES)})")
        return sources

    def slugs(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        slugs = self.names(name, default)
        bad = [s for s in slugs if not _SLUG.fullmatch(s)]
        if bad:
            raise InputError(
                f"{name}: {bad[0]!r} is not a service slug like 'netflix' or 'hbo-max' (comma separated)"
            )
        return slugs


def shard_selection(text: str | None, shard_count: int | None, name: str) -> tuple[int, ...] | None:
    """The shards `text` names (``"0-3"``, ``"0,2,4"``, ``"4-7"``), each below `shard_count`; `name` is
    what the user wrote it as (``CHARTBOT_SHARDS`` or ``--shards``), for the one-line error.

    A selection needs the count: every process of one bot must use the same count, so it is never taken
    from Discord's recommendation, which can change between one process's start and the next's.
    """
    if text is None or not text.strip():
        return None
    try:
        ranges = parse_shard_ranges(text)
    except ValueError:
        raise InputError(
            f"{name} must be shard numbers or ranges like 0-3 or 0,2,4 (numbered from 0), not {text!r}"
        ) from None
    if shard_count is None:
        raise InputError(
            f"{name} {text.strip()} needs CHARTBOT_SHARD_COUNT, the bot's total number of shards, the same "
            "in every process (e.g. CHARTBOT_SHARD_COUNT=8, then shards 0-3 in one process and 4-7 in another)"
        )
    highest = max(high for _, high in ranges)
    if highest >= shard_count:
        raise InputError(
            f"{name} names shard {highest}, but CHARTBOT_SHARD_COUNT={shard_count} numbers them 0 to "
            f"{shard_count - 1}"
        )
    shards: set[int] = set()
    for low, high in ranges:
        named = range(low, high + 1)
        twice = next((shard for shard in named if shard in shards), None)
        if twice is not None:
            raise InputError(f"{name} names shard {twice} twice: {text!r}")
        shards.update(named)
    return tuple(sorted(shards))


def load_dotenv(path: Path = Path(".env")) -> None:
    """Read `path` (if it exists) into the environment with python-dotenv; variables already set win.

    python-dotenv reads comments after values, `export KEY=...`, quoted values with escaped quotes and
    multi-line values. The file is decoded here so that a file that is not UTF-8 is one InputError.
    """
    if not path.is_file():
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not valid UTF-8 (save the file as UTF-8)"
        ) from None
    dotenv.load_dotenv(stream=io.StringIO(text), override=False)
