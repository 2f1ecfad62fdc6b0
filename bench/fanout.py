"""Fan-out speed: one milestone to N subscribed channels through the real client, the announcer and a
fake Discord that enforces Discord's global rate limit (50 requests per second).

    python bench/fanout.py [--channels 10000] [--per-guild 50] [--rate 50]

The fake runs in a child process so that its CPU is not counted; this process runs the bot. Printed:
posts per second (overall and sustained, i.e. after the first second), the 429s the fake answered
(global and per route), and this process's CPU time from the milestone to its last recorded post (CPU,
not waits). Unless --no-baseline, the same number of posts is then made twice more, paced by the same
REST budget and as many at once: bare discord.py POSTs through the same client, and bare aiohttp
POSTs of one prepared body. The announcer's own CPU is the difference to the bare discord.py POSTs.
Targets: 0 x 429, >= 45 posts/s sustained, the announcer's own CPU <= 25% of the bare POSTs' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiohttp  # noqa: E402
import discord  # noqa: E402

from bot import compat  # noqa: E402
from bot.announcer.engine import AnnouncerConfig  # noqa: E402
from bot.announcer.pacing import WindowBudget  # noqa: E402
from bot.client import ChartBot  # noqa: E402
from bot.ingest import ingest  # noqa: E402
from bot.model import ChartKey, Entry, make_snapshot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import open_store  # noqa: E402

GUILD_BASE = 900_000_000_000_000_000
CHANNEL_BASE = 910_000_000_000_000_000
WEEK1, WEEK2 = date(2022, 1, 30), date(2022, 2, 6)
TITLE = "All of Us Are Dead"


# --- the fake, in its own process -------------------------------------------------------------------


async def serve_fake(channels: int, per_guild: int, rate: float) -> None:
    from fake_discord import FakeChannel, FakeDiscord

    async with FakeDiscord() as fake:
        for g in range(0, channels, per_guild):
            ids = range(CHANNEL_BASE + g, CHANNEL_BASE + min(g + per_guild, channels))
            fake.add_guild(
                GUILD_BASE + g, f"guild {g}", channels=[FakeChannel(c, f"c{c % 10_000}") for c in ids]
            )
        fake.rate_limit_per_second = rate
        print(json.dumps(fake.settings_env()), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent is done
        bare = [m for m in fake.messages.values() if str(m.payload.get("nonce")).startswith("bare")]
        posts = [
            m
            for m in fake.messages.values()
            if m.kind == "channel" and not str(m.payload.get("nonce")).startswith("bare")
        ]
        stamps = sorted(m.created_at for m in posts)
        print(
            json.dumps(
                {
                    "posts": len(posts),
                    "bare": len(bare),
                    "channels": len({m.channel_id for m in posts}),
                    "rate_limited": fake.global_rate_limited,
                    "route_limited": fake.route_rate_limited,
                    "span": stamps[-1] - stamps[0] if stamps else 0.0,
                    "sustained": _sustained(stamps),
                }
            ),
            flush=True,
        )


def _sustained(stamps: list[float]) -> float:
    """Posts per second after the first second (the burst) up to the last post."""
    if len(stamps) < 3:
        return 0.0
    start = stamps[0] + 1.0
    later = [s for s in stamps if s >= start]
    return (len(later) - 1) / (later[-1] - later[0]) if len(later) > 1 and later[-1] > later[0] else 0.0


# --- the bot, here -----------------------------------------------------------------------------------


def chart(day: date, titles: list[str]) -> list:
    key = ChartKey("netflix", "netflix", "world", "tv-non-english", "week", day)
    return [make_snapshot(key, [Entry.make(rank, title) for rank, title in enumerate(titles, 1)])]


OTHERS = [f"Show {n}" for n in range(10)]


async def prepare(db: Path, channels: int, per_guild: int) -> None:
    """History (no news) and one watch per channel; the news comes once the bot runs (`the_news`)."""
    async with await open_store(db) as store:
        await ingest(store, chart(WEEK1, OTHERS), news=False)
        for g in range(0, channels, per_guild):
            guild = GUILD_BASE + g
            await store.guilds.update_settings(guild, events=frozenset({"reached_no1"}))
            for c in range(CHANNEL_BASE + g, CHANNEL_BASE + min(g + per_guild, channels)):
                await store.guilds.add_watch(guild, "all of us are dead", TITLE, c)


async def the_news(db: Path) -> None:
    """The week that makes one milestone for every watch: the title reaches No. 1 (as the poller would)."""
    async with await open_store(db) as store:
        report = await ingest(store, chart(WEEK2, [TITLE, *OTHERS[:9]]))
    wanted = [m.kind for m in report.milestones if m.title_key == "all of us are dead"]
    assert "reached_no1" in wanted, wanted


async def run_bot(
    db: Path, env: dict[str, str], channels: int, baseline: bool, stub: bool = False
) -> dict[str, float]:
    settings = Settings(
        db_path=str(db),
        api_base=env["DISCORD_API_BASE"],
        gateway_url=env["DISCORD_GATEWAY_URL"],
        poll_in_bot=False,
    )
    bot = ChartBot(settings, guild_ready_timeout=0.5, extensions=("cogs.announce",))
    config = AnnouncerConfig(interval=3600.0, hold=0.0)
    if stub:  # no Discord at all, no pacing: what the announcer itself costs per post
        config = AnnouncerConfig(interval=3600.0, hold=0.0, rate=1e9)
        ids = itertools.count(1)

        async def send_message(
            self: object, channel_id: int, *, params: object = None, **kwargs: object
        ) -> dict[str, str]:
            return {"id": str(next(ids))}  # the signature bot.compat checks for its prepared sends

        discord.http.HTTPClient.send_message = send_message  # type: ignore[method-assign, assignment]
    bot.announce_config = config  # type: ignore[attr-defined]
    async with bot:
        task = asyncio.create_task(bot.start("fake-token"))
        await bot.wait_until_ready()
        store = await bot.get_store()
        announcer = bot.announcer
        await asyncio.sleep(1.1)  # the first (idle) round passes; the news comes a second after the watches
        await the_news(db)
        invalid = bot.invalid_requests.total
        cpu, wall, loop_cpu = time.process_time(), time.perf_counter(), time.thread_time()
        bot.dispatch("milestones", [])  # what the poller hook does after an ingest
        while True:
            await asyncio.sleep(0.5)
            if announcer.sent >= channels and not announcer.busy and await store.deliveries.open_work() == 0:
                break
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        loop_cpu = time.thread_time() - loop_cpu
        invalid = bot.invalid_requests.total - invalid
        budget = announcer.budget
        releases = budget.releases if isinstance(budget, WindowBudget) else 0
        result = {
            "sent": announcer.sent,
            "cpu": cpu,
            "wall": wall,
            "releases": releases,
            "invalid": invalid,
            "rounds": announcer.rounds,
            "loop_cpu": loop_cpu,
        }
        await bot.close()
        await task
    if baseline:
        gc.collect()
        await asyncio.sleep(1.1)  # each run starts with a window of its own
        result["baseline"] = await bare_client_sends(settings, channels)
        await asyncio.sleep(1.1)
        result["aiohttp"] = await bare_aiohttp_posts(env["DISCORD_API_BASE"], channels)
    return result


async def bare_client_sends(settings: Settings, channels: int) -> float:
    """The bare discord.py POSTs through a client of their own, as fresh as the announcer's was (its
    per-channel rate-limit buckets made as it goes, swept as bot.compat sweeps them), no cog loaded."""
    bot = ChartBot(settings, guild_ready_timeout=0.5, extensions=())
    async with bot:
        task = asyncio.create_task(bot.start("fake-token"))
        await bot.wait_until_ready()
        compat.amortize_bucket_sweep(bot.http)  # as the announcer does: discord.py's own sweep is quadratic
        bot.rest_gate.budget = None  # paced once, by `paced_cpu`'s budget, as the announcer's posts are
        cpu = await bare_sends(bot, channels)
        await bot.close()
        await task
    return cpu


async def paced_cpu(channels: int, post: Callable[[int], Awaitable[object]]) -> float:
    """CPU of `post(n)` for every channel, paced and as concurrent as the announcer's posts."""
    config = AnnouncerConfig()
    budget = WindowBudget.per_second(config.rate, step=config.step)
    gate = asyncio.Semaphore(config.workers)

    async def one(n: int) -> None:
        async with gate, budget.permit():
            await post(n)

    cpu, loop_cpu = time.process_time(), time.thread_time()
    await asyncio.gather(*(one(n) for n in range(channels)))
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    print(f"  ({post.__qualname__.split('.')[0]}: event-loop thread {loop_cpu:.2f} s of {cpu:.2f} s)")
    return cpu


async def bare_sends(bot: ChartBot, channels: int) -> float:
    """As many bare discord.py message POSTs: what discord.py, aiohttp and the kernel cost whatever the
    announcer does (the same client: its HTTP trace included)."""
    embed = discord.Embed(title=TITLE, description=f"{TITLE} is No. 1 worldwide for the first time")

    async def send(n: int) -> None:
        message = compat.prepare_message(
            content=None, embed=embed, nonce=f"bare{n}", allowed_mentions=discord.AllowedMentions.none()
        )
        await compat.send_prepared(bot, CHANNEL_BASE + n, message)

    return await paced_cpu(channels, send)


async def bare_aiohttp_posts(api_base: str, channels: int) -> float:
    """The same posts with aiohttp alone (one prepared body, no discord.py): the HTTP client's own floor."""
    headers = {"Authorization": "Bot fake-token", "Content-Type": "application/json"}
    body = json.dumps({"content": f"{TITLE} is No. 1 worldwide", "nonce": "bare-aiohttp"}).encode()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(n: int) -> None:
            async with session.post(f"{api_base}/channels/{CHANNEL_BASE + n}/messages", data=body) as answer:
                await answer.read()

        return await paced_cpu(channels, post)


async def main_async(args: argparse.Namespace) -> None:
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve-fake",
        "--channels",
        str(args.channels),
        "--per-guild",
        str(args.per_guild),
        "--rate",
        str(args.rate),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert fake.stdout is not None and fake.stdin is not None
    env = json.loads(await fake.stdout.readline())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "fanout.sqlite3"
            started = time.perf_counter()
            await prepare(db, args.channels, args.per_guild)
            print(f"prepared {args.channels} watches in {time.perf_counter() - started:.1f} s")
            if args.stub_http:
                stub = await run_bot(db, env, args.channels, False, stub=True)
                print(
                    f"announcer alone (Discord calls stubbed, no pacing): {stub['sent']:.0f} posts in "
                    f"{stub['wall']:.1f} s, CPU {stub['cpu']:.2f} s ({stub['cpu'] / max(stub['sent'], 1) * 1e6:.0f} µs per post), "
                    f"{stub['rounds']} rounds"
                )
                fake.stdin.close()
                await fake.wait()
                return
            bot = await run_bot(db, env, args.channels, args.baseline)
    finally:
        fake.stdin.close()
    seen = json.loads(await fake.stdout.readline())
    await fake.wait()
    posts = max(bot["sent"], 1)
    print(f"channels {args.channels} ({args.per_guild} per server), fake global limit {args.rate:g}/s")
    print(
        f"posts made {seen['posts']} in {seen['channels']} channels; the announcer counted {bot['sent']:.0f}"
    )
    print(
        f"wall {bot['wall']:.1f} s; posts/s overall {seen['posts'] / bot['wall']:.1f}, sustained {seen['sustained']:.1f}"
    )
    print(f"invalid answers (401/403/429) to the announcer's fan-out: {bot['invalid']:.0f}")
    print(f"429 answers in all runs: {seen['rate_limited']} global, {seen['route_limited']} per route")
    print(
        f"REST budget released waiting workers {bot['releases']:.0f} times (one wake-up each); "
        f"{bot['rounds']} rounds of planning and loading"
    )
    print(
        f"bot CPU {bot['cpu']:.2f} s for the whole fan-out ({bot['cpu'] / posts * 1e6:.0f} µs per post); "
        f"event-loop thread {bot['loop_cpu']:.2f} s, SQLite's threads {bot['cpu'] - bot['loop_cpu']:.2f} s"
    )
    if "baseline" in bot:
        floor, own = bot["baseline"], bot["cpu"] - bot["baseline"]
        print(
            f"  bare paced discord.py POSTs, as many: {floor:.2f} s ({floor / posts * 1e6:.0f} µs per post)"
        )
        print(
            f"  the announcer's own share (the difference): {own:.2f} s ({own / posts * 1e6:.0f} µs per post), "
            f"{own / floor:.0%} of the bare POSTs' CPU"
        )
        plain = bot["aiohttp"]
        print(f"  the same posts with bare aiohttp: {plain:.2f} s ({plain / posts * 1e6:.0f} µs per post)")
        print(f"  (the fake received {seen['bare']} bare posts in all)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--per-guild", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument(
        "--stub-http",
        action="store_true",
        help="only the announcer's own CPU: Discord calls stubbed, no pacing",
    )
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the bare discord.py POSTs comparison",
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve_fake:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.run(serve_fake(args.channels, args.per_guild, args.rate))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
