"""A cluster's fan-out and takeover: `chartbot run` processes on one PostgreSQL database splitting the
bot's shards, one milestone for N subscribed channels, the fake Discord enforcing Discord's global limit
(50 requests per second for the bot as a whole, across every process).

    python bench/cluster.py [--channels 10000] [--processes 2] [--shards 4] [--per-guild 25] [--db URL]

Without --db, a throwaway PostgreSQL server is started (initdb, pg_ctl; as the `postgres` user when run
as root) and removed at the end. The fake runs in this process, the bots in their own. Printed: the
posts made and their combined rate (overall, and sustained after the first second), the global 429s the
fake answered, and the seconds between SIGKILL of the polling process and another one holding the job.
Targets: >= 45 posts/s combined, 0 global 429s, takeover <= 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from aiohttp import web  # noqa: E402

from bot.ingest import ingest  # noqa: E402
from bot.model import ChartKey, Entry, make_snapshot  # noqa: E402
from bot.store import POLL, open_store  # noqa: E402

GUILD_BASE = 4_000_000
WEEK1, WEEK2 = date(2022, 1, 30), date(2022, 2, 6)
TITLE, KEY = "All of Us Are Dead", "all of us are dead"
OTHERS = [f"Show {n}" for n in range(10)]
POLL_INTERVAL = 60.0  # the promise: another process polls within min(poll interval, 60 s)


def guild(n: int) -> int:
    return (GUILD_BASE + n) << 22  # consecutive n: spread evenly over the shards


def channel(n: int, c: int) -> int:
    return guild(n) + 1 + c


def chart(day: date, titles: list[str]) -> list:
    key = ChartKey("netflix", "netflix", "world", "tv-non-english", "week", day)
    return [make_snapshot(key, [Entry.make(rank, title) for rank, title in enumerate(titles, 1)])]


async def prepare(url: str, guilds: int, per_guild: int) -> None:
    """History (no news) and one watch per channel; the news comes once the bots run."""
    async with await open_store(url) as store:
        await ingest(store, chart(WEEK1, OTHERS), news=False)
        for n in range(guilds):
            await store.guilds.update_settings(guild(n), events=frozenset({"reached_no1"}))
            for c in range(per_guild):
                await store.guilds.add_watch(guild(n), KEY, TITLE, channel(n, c))


async def the_news(url: str) -> None:
    """The week that makes one milestone for every watch (as the polling process would store it)."""
    async with await open_store(url) as store:
        await ingest(store, chart(WEEK2, [TITLE, *OTHERS[:9]]))


async def poll_holder(url: str) -> int | None:
    """The pid of the process that polls now."""
    async with await open_store(url) as store:
        for member in await store.cluster.members():
            if POLL in member.jobs:
                return int(member.name.rsplit(":", 1)[1])
    return None


async def run(args: argparse.Namespace, url: str, folder: Path) -> None:
    from fake_discord import FakeChannel, FakeDiscord

    guilds = -(-args.channels // args.per_guild)
    started = time.perf_counter()
    await prepare(url, guilds, args.per_guild)
    print(
        f"prepared {guilds * args.per_guild} watches in {guilds} servers in {time.perf_counter() - started:.1f} s"
    )
    nowhere = web.Application()  # the sources: nothing there (the bench's news is stored by hand)
    runner = web.AppRunner(nowhere)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with FakeDiscord() as fake:
        fake.max_concurrency = args.shards
        for n in range(guilds):
            ids = [channel(n, c) for c in range(args.per_guild)]
            fake.add_guild(
                guild(n), f"guild {n}", channels=[FakeChannel(c, f"c{i}") for i, c in enumerate(ids)]
            )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CHARTBOT_", "DISCORD_"))},
            **fake.settings_env(),
            "DISCORD_TOKEN": "bench-token",
            "CHARTBOT_DB": url,
            "CHARTBOT_SHARD_COUNT": str(args.shards),
            "CHARTBOT_SOURCES": "netflix",
            "NETFLIX_TOP10_URL": f"http://127.0.0.1:{port}/top10/data/",
            "CHARTBOT_POLL_INTERVAL": str(POLL_INTERVAL),
            "CHARTBOT_ANNOUNCE_HOLD": "0",
            "CHARTBOT_LOG_LEVEL": "WARNING",
        }
        per = args.shards // args.processes
        bots = []
        for p in range(args.processes):
            shards = (
                f"{p * per}-{(p + 1) * per - 1}" if p < args.processes - 1 else f"{p * per}-{args.shards - 1}"
            )
            with (folder / f"bot-{p}.log").open("wb") as log:
                bots.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        "run",
                        "--shards",
                        shards,
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=log,
                    )
                )
        try:
            while len(fake.connected_shards()) < args.shards:  # noqa: ASYNC110 -- other processes connect
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # the processes' first rounds pass
            print(f"{args.processes} processes connected {args.shards} shards; storing the news")
            await the_news(url)
            news_at = time.monotonic()
            channels = guilds * args.per_guild
            while True:
                posts = [m for m in fake.messages.values() if m.kind == "channel"]
                if len(posts) >= channels or time.monotonic() - news_at > 3 * channels / 40 + 60:
                    break
                await asyncio.sleep(0.5)
            stamps = sorted(m.created_at for m in posts)
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            later = [s for s in stamps if s >= stamps[0] + 1.0] if stamps else []
            sustained = (len(later) - 1) / (later[-1] - later[0]) if len(later) > 1 else 0.0
            print(f"posts made {len(posts)} in {len({m.channel_id for m in posts})} of {channels} channels")
            print(
                f"first post {stamps[0] - news_at if stamps else float('nan'):.1f} s after the news was stored"
            )
            print(
                f"combined posts/s {len(posts) / span if span else 0:.1f} overall, {sustained:.1f} sustained"
            )
            print(f"global 429s {fake.global_rate_limited}; other 429s {fake.route_rate_limited}")
            holder = await poll_holder(url)
            victim = next((b for b in bots if b.pid == holder), None)
            if victim is None:
                print("no process polls: takeover not measured")
                return
            victim.kill()
            killed = time.monotonic()
            await victim.wait()
            while (await poll_holder(url)) in (None, holder):
                if time.monotonic() - killed > 120:
                    print("no takeover within 120 s")
                    return
                await asyncio.sleep(0.1)
            print(
                f"poller takeover {time.monotonic() - killed:.1f} s after SIGKILL (poll interval {POLL_INTERVAL:g} s)"
            )
        finally:
            for bot in bots:
                if bot.returncode is None:
                    bot.send_signal(signal.SIGTERM)
            for bot in bots:
                try:
                    await asyncio.wait_for(bot.wait(), 30)
                except TimeoutError:
                    bot.kill()
    await runner.cleanup()


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            await run(args, args.db, Path(tmp))
            return
        from postgres import postgres_server

        with postgres_server() as server:
            await run(args, server.create_url("bench"), Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--per-guild", type=int, default=25)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--db", help="a PostgreSQL URL (a new database); default: a throwaway server")
    args = parser.parse_args()
    if args.shards < args.processes:
        parser.error("--shards must be at least --processes")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
