"""The bot as a separate process, for the crash tests (and the bot the announcement tests build).

    DISCORD_API_BASE=... DISCORD_GATEWAY_URL=... python tests/announce_worker.py DB [--kill-after-posts N]

Runs ChartBot with the watch and announce cogs against the given database until the announcer has
nothing left to do (with `--until-blocked`: nothing but deliveries of channels blocked by a missing
permission), then exits 0. With `--kill-after-posts N` (or CHARTBOT_KILL_AFTER_POSTS=N) the
process SIGKILLs itself right after the N-th message POST returns, before the announcer can record it:
the crash between "sent" and "marked" that must never cause a second post.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import discord

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.announcer.engine import AnnouncerConfig
from bot.client import ChartBot
from bot.settings import Settings

HERE = Path(__file__).resolve()  # run as a process of its own by `run_worker`

FAST = AnnouncerConfig(
    interval=0.05,
    hold=0.0,
    digest_hold=0.3,
    flush_every=0.05,
    retry_base=0.05,
    retry_cap=0.2,
    pause_base=0.05,
    pause_cap=0.2,
)


def make_bot(
    db: Path | str,
    *,
    config: AnnouncerConfig | None = None,
    dev_guild: int | None = None,
    api_base: str | None = None,
    gateway_url: str | None = None,
) -> ChartBot:
    """ChartBot on `db` with the rank, watch and announce cogs, quick to start, no poller."""
    settings = Settings(
        db_path=str(db), dev_guild=dev_guild, api_base=api_base, gateway_url=gateway_url, poll_in_bot=False
    )
    bot = ChartBot(settings, guild_ready_timeout=0.05)
    bot.announce_config = config or FAST  # type: ignore[attr-defined]
    return bot


def kill_after_posts(count: int) -> None:
    """SIGKILL this process right after the `count`-th message POST has been answered."""
    original = discord.http.HTTPClient.send_message
    posts = 0

    async def send_message(self: discord.http.HTTPClient, channel_id: Any, **kwargs: Any) -> Any:
        nonlocal posts
        data = await original(self, channel_id, **kwargs)
        posts += 1
        if posts >= count:
            os.kill(os.getpid(), signal.SIGKILL)
        return data

    discord.http.HTTPClient.send_message = send_message  # type: ignore[method-assign]


BLOCKED_WORK = (
    "SELECT count(*) FROM deliveries d JOIN channel_health h USING (guild_id, channel_id) "
    "WHERE h.blocked IS NOT NULL AND d.state IN ('planned', 'sending')"
)


async def run(db: str, limit: float, until_blocked: bool = False) -> int:
    env = os.environ
    bot = make_bot(db, api_base=env["DISCORD_API_BASE"], gateway_url=env["DISCORD_GATEWAY_URL"])
    async with bot:
        task = asyncio.create_task(bot.start("fake-token"))
        await bot.wait_until_ready()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        store = await bot.get_store()
        announcer = bot.announcer
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            if not announcer.rounds or announcer.busy:
                continue
            left = await store.deliveries.open_work()
            if until_blocked and left:
                left -= (await store.fetch_all(BLOCKED_WORK))[0][0]
            if left == 0:
                break
        else:
            print("announcer still busy at the deadline", file=sys.stderr)
            return 3
        await bot.close()
        await task
    return 0


async def run_worker(fake: Any, db: str | Path, *args: str) -> tuple[int, str]:
    """Run this worker as a process of its own against `fake` (a FakeDiscord); (exit code, its log).
    An exit other than 0 or a SIGKILL (`--kill-after-posts`) fails with the log's end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        str(db),
        *args,
        env={**os.environ, **fake.settings_env()},
        cwd=HERE.parent.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    log = output.decode(errors="replace")
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(log[-3000:])
    return process.returncode, log  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db", help="a SQLite path or a PostgreSQL URL")
    parser.add_argument(
        "--kill-after-posts", type=int, default=int(os.environ.get("CHARTBOT_KILL_AFTER_POSTS", 0))
    )
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--until-blocked", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="worker %(levelname)s %(name)s: %(message)s")
    if args.kill_after_posts:
        kill_after_posts(args.kill_after_posts)
    return asyncio.run(run(args.db, args.timeout, args.until_blocked))


if __name__ == "__main__":
    sys.exit(main())
