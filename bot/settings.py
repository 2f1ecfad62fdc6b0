"""Settings from the environment (and a `.env` file when one is present). See `.env.example`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.model import InputError

NETFLIX_TOP10_URL = "https://www.netflix.com/tudum/top10/data/"
FLIXPATROL_URL = "https://flixpatrol.com/"
KNOWN_SOURCES = ("netflix", "flixpatrol")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            value = text(name)
            if value is None:
                return default
            try:
                result = float(value)
            except ValueError:
                raise InputError(f"{name} must be a number of seconds, not {value!r}") from None
            if result <= 0:
                raise InputError(f"{name} must be positive, not {value!r}")
            return result

        def names(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            value = text(name)
            if value is None:
                return default
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())

        guild = text("DISCORD_DEV_GUILD")
        if guild is not None and not guild.isdigit():
            raise InputError(f"DISCORD_DEV_GUILD must be a server id (digits), not {guild!r}")
        sources = names("CHARTBOT_SOURCES", cls.sources)
        unknown = [s for s in sources if s not in KNOWN_SOURCES]
        if unknown:
            raise InputError(
                f"CHARTBOT_SOURCES: unknown source {unknown[0]!r} (known: {', '.join(KNOWN_SOURCES)})"
            )
        return cls(
            db_path=text("CHARTBOT_DB") or cls.db_path,
            log_level=(text("CHARTBOT_LOG_LEVEL") or cls.log_level).upper(),
            discord_token=text("DISCORD_TOKEN"),
            dev_guild=int(guild) if guild else None,
            api_base=text("DISCORD_API_BASE"),
            gateway_url=text("DISCORD_GATEWAY_URL"),
            poll_in_bot=(text("CHARTBOT_POLL") or "on").lower() not in ("0", "off", "false", "no"),
            sources=sources,
            netflix_url=text("NETFLIX_TOP10_URL") or cls.netflix_url,
            flixpatrol_url=text("FLIXPATROL_URL") or cls.flixpatrol_url,
            flixpatrol_services=names("FLIXPATROL_SERVICES", cls.flixpatrol_services),
            flaresolverr_url=text("FLARESOLVERR_URL"),
            poll_interval=number("CHARTBOT_POLL_INTERVAL", cls.poll_interval),
        )


def load_dotenv(path: Path = Path(".env")) -> None:
    """Read KEY=VALUE lines into the environment; variables already set win."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))
