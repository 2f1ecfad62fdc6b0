"""Command latency: the real ChartBot against the fake Discord over a 5-year synthetic daily history.

    python bench/commands.py [--days 1826] [--regions 95] [--db PATH] [--rebuild] [--runs 200]
                             [--locales en-US,ko]

Builds (once, cached at --db) a history of `regions` × 2 categories × `days` daily Top 10s with
store.ingest(news=False), in a child process so that building does not count in this process's
memory. Then starts the fake Discord and ChartBot (only settings differ from production) and
measures, from the interaction push to the reply:
  - /rank (standing card + rank-history PNG, deferred: push -> followup with the picture),
  - title autocomplete (push -> choices),
and the peak RSS of this process (bot + fake + DB cache). Not a test: it prints figures and ratios.
Targets: /rank p99 ≤ 250 ms, autocomplete p99 ≤ 20 ms, peak RSS ≤ 150 MB.

Each interaction carries a user's locale (`--locales`, Discord's codes; default English and Korean):
the same titles and queries are asked in each, in turn, so that a slower moment of a shared machine
falls on every language alike; each language after the first is compared with the first (target: its
p99 within 10% of the first's).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from fake_discord import FakeDiscord, Reply  # noqa: E402  (tests/fake_discord.py)

from bot.client import ChartBot  # noqa: E402
from bot.ingest import ingest  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import open_store  # noqa: E402

GUILD, CHANNEL, FAN = 830_000_000_000_000_001, 830_000_000_000_000_010, 830_000_000_000_001_000
TARGETS = {"rank_p99_ms": 250.0, "autocomplete_p99_ms": 20.0, "rss_mb": 150.0}
SAME_AS_FIRST = 1.10  # another language's p99 / the first language's
CHUNK_DAYS = 7


# --- the history ----------------------------------------------------------------------------------


async def build(path: Path, days: int, regions: int) -> None:
    from synthetic import history

    started = time.perf_counter()
    entries = 0
    async with await open_store(path) as store:
        chunk: list = []
        for day, charts in enumerate(history(days, regions), start=1):
            chunk.extend(charts)
            if day % CHUNK_DAYS == 0 or day == days:
                await ingest(store, chunk, news=False)
                entries += sum(len(s.entries) for s in chunk)
                chunk = []
            if day % 365 == 0:
                print(
                    f"  built {day} days, {entries:,} entries, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
    print(f"  built {days} days × {regions} regions × 2 categories: {entries:,} entries "
          f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip


def ensure_history(path: Path, days: int, regions: int, rebuild: bool) -> None:
    stamp = path.with_suffix(".built")
    wanted = f"{days} {regions}"
    if not rebuild and path.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        print(f"history: reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"history: building {path} (a few minutes)…", flush=True)
    command = [sys.executable, __file__, "--build-only", "--db", str(path), "--days", str(days)]
    subprocess.run([*command, "--regions", str(regions)], check=True)
    stamp.write_text(wanted)


# --- measuring ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(name: str, values_ms: list[float], target: float) -> str:
    p50, p99 = percentile(values_ms, 50), percentile(values_ms, 99)
    return (
        f"{name:<18} n={len(values_ms):<4} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {max(values_ms):7.1f} ms  "
        f"target p99 ≤ {target:.0f} ms  ratio {p99 / target:.2f}"
    )


def answered_at(fake: FakeDiscord, token: str, reply: Reply) -> float:
    """When the answer with the picture arrived: /rank defers at once, then edits its "thinking…"
    message with the standing and the picture (the edit's request is the answer)."""
    edits = [
        r.at for r in fake.requests if r.method == "PATCH" and f"/{token}/messages/@original" in f"/{r.path}"
    ]
    assert reply.message is not None
    return max(edits, default=reply.message.created_at)


def forget(fake: FakeDiscord) -> None:
    """Drop what the fake recorded (every reply and its picture): harness memory, not the bot's."""
    fake.messages.clear()
    fake.requests.clear()
    fake.interactions.clear()
    fake._by_token.clear()


async def measure(path: Path, runs: int, seed: int, locales: Sequence[str] = ("en-US",)) -> dict[str, float]:
    rng = random.Random(seed)
    async with FakeDiscord(interaction_deadline=None) as fake:
        fake.add_guild(GUILD, "Bench", channels=[CHANNEL], members=[FAN])
        env = {
            **fake.settings_env(),
            "CHARTBOT_DB": str(path),
            "DISCORD_DEV_GUILD": str(GUILD),
            "CHARTBOT_POLL": "off",
        }
        # freeze_gc=True: as `chartbot run` (bot.client.serve) runs it.
        bot = ChartBot(Settings.from_env(env), guild_ready_timeout=0.05, freeze_gc=True)
        started = time.perf_counter()
        async with fake.run_bot(bot, timeout=120):
            ready_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"bot ready in {time.perf_counter() - started:.1f} s with {len(bot.titles):,} titles; "
                f"peak RSS so far {ready_mb:.0f} MB"
            )
            titles = sorted(bot.titles.titles, key=lambda t: -t.weight)
            popular, everyone = titles[:100], titles
            picks = [rng.choice(popular if i % 2 else everyone).title for i in range(runs)]

            for title in picks[:5]:  # warm-up: first render, caches, each language's catalogue and font
                for locale in locales:
                    rec = await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": title}, locale=locale)
                    await rec.response(timeout=30)

            rank_ms: dict[str, list[float]] = {locale: [] for locale in locales}
            sizes = []
            for title in picks:
                for locale in locales:
                    rec = await fake.slash(GUILD, CHANNEL, FAN, "rank", {"title": title}, locale=locale)
                    reply = await rec.response(timeout=30)
                    assert reply.message is not None and reply.files, f"/rank {title}: no picture"
                    rank_ms[locale].append((answered_at(fake, rec.token, reply) - rec.pushed_at) * 1000)
                    sizes.append(len(reply.files[0].data))
                    forget(fake)

            queries = []
            for i in range(runs):
                title = rng.choice(everyone).title.lower()
                cut = title[: rng.randint(1, min(12, len(title)))]
                if i % 4 == 0 and len(cut) > 3:  # a typo
                    j = rng.randrange(len(cut) - 1)
                    cut = cut[:j] + cut[j + 1] + cut[j] + cut[j + 2 :]
                queries.append(cut)
            complete_ms: dict[str, list[float]] = {locale: [] for locale in locales}
            for query in queries:
                for locale in locales:
                    rec = await fake.push_autocomplete(
                        GUILD, CHANNEL, FAN, "rank", focused="title", value=query, locale=locale
                    )
                    await rec.response(timeout=10)
                    assert rec.answered_after is not None
                    complete_ms[locale].append(rec.answered_after * 1000)
                    forget(fake)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    figures: dict[str, float] = {"rss_mb": rss_mb}
    for name, measured, target in (
        ("rank", rank_ms, TARGETS["rank_p99_ms"]),
        ("autocomplete", complete_ms, TARGETS["autocomplete_p99_ms"]),
    ):
        first = locales[0]
        for locale in locales:
            label = f"/{name}" if name == "rank" else name
            print(describe(f"{label} {locale}", measured[locale], target))
            figures[f"{name}_p50_ms_{locale}"] = percentile(measured[locale], 50)
            figures[f"{name}_p99_ms_{locale}"] = percentile(measured[locale], 99)
            if locale != first:
                ratio = figures[f"{name}_p99_ms_{locale}"] / figures[f"{name}_p99_ms_{first}"]
                verdict = "ok" if ratio <= SAME_AS_FIRST else "SLOWER"
                print(
                    f"{'':<18} p99 {locale} / {first}: {ratio:.2f} (target ≤ {SAME_AS_FIRST:.2f}) {verdict}"
                )
        if name == "rank":
            print(f"{'':<18} picture: median {statistics.median(sizes) / 1024:.0f} KiB")
    print(
        f"peak RSS           {rss_mb:7.1f} MB  target ≤ {TARGETS['rss_mb']:.0f} MB  ratio {rss_mb / TARGETS['rss_mb']:.2f}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=5 * 365 + 1)
    parser.add_argument("--regions", type=int, default=95)
    parser.add_argument(
        "--db", type=Path, default=Path(tempfile.gettempdir()) / "chartbot-bench-commands.sqlite3"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--locales",
        default="en-US,ko",
        help="the users' Discord locales, comma-separated; the first is the one compared with (default: en-US,ko)",
    )
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        asyncio.run(build(args.db, args.days, args.regions))
        return
    ensure_history(args.db, args.days, args.regions, args.rebuild)
    locales = [locale.strip() for locale in args.locales.split(",") if locale.strip()]
    asyncio.run(measure(args.db, args.runs, args.seed, locales or ["en-US"]))


if __name__ == "__main__":
    main()
