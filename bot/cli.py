"""The `chartbot` command (also `python -m bot`). A stable contract: scripts and tests rely on it.

User errors print one line to stderr and exit 2; nothing is half-written (each import is one
transaction, parsed in full before anything is stored).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn, TextIO

from bot import terminal
from bot.ingest import Ingester
from bot.milestones import KINDS
from bot.model import CATEGORIES, PERIODS, WORLD, InputError, Milestone, Snapshot, parse_date, title_key
from bot.regions import resolve_region
from bot.settings import Settings, load_dotenv
from bot.sources import files
from bot.store import MEMORY, SchemaError, Store, StoreError, is_postgres_url, open_store
from bot.titles import TitleIndex
from bot.views import Series

EXIT_USAGE = 2
Command = Callable[[argparse.Namespace, TextIO], Awaitable[int]]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        COMMANDS[name] = func
        return func

    return register


# --- arguments ------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not argparse's usage block: `chartbot rank: argument --date: … (see --help)`."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="chartbot", description="Streaming chart history and milestones.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--db", help="database file (default: $CHARTBOT_DB, else ./chartbot.sqlite3)")
        return p

    add("demo", "replay the sample history shipped with chartbot and show what the bot would post")

    p = add("import", "ingest chart files (format detected from the header)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--format", choices=files.FORMATS, help="force a format instead of detecting it")
    p.add_argument(
        "--date",
        type=date_argument,
        metavar="YYYY-MM-DD",
        help="the day an undated list was read (Netflix's most-popular.tsv; default: today)",
    )

    p = add("replay", "ingest files period by period and print every milestone detected")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--format", choices=files.FORMATS, help="force a format instead of detecting it")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--kinds", type=kinds_argument, help=f"comma list of kinds ({', '.join(KINDS)})")
    p.add_argument("--title", help="only milestones of this title")

    p = add("rank", "where a title stands, as /rank shows it")
    p.add_argument("title")
    chart_filters(p, service=False)
    p.add_argument("--json", action="store_true")

    p = add("top", "a chart, as /top shows it")
    chart_filters(p, service=True)
    p.add_argument("--json", action="store_true")

    p = add("milestones", "milestones recorded in the database, oldest first")
    p.add_argument("--title", help="only milestones of this title")
    p.add_argument("--since", type=date_argument, metavar="YYYY-MM-DD")
    p.add_argument("--kinds", type=kinds_argument, help="comma list of kinds")
    p.add_argument("--json", action="store_true")
    add("run", "the Discord bot (needs DISCORD_TOKEN; polls the sources too unless CHARTBOT_POLL=off)")
    add("sync", "publish the slash commands to every server (Discord limits how often: not on every start)")
    p = add("poll", "poll the enabled sources without Discord; milestones are printed as they are found")
    p.add_argument("--once", action="store_true", help="one cycle of each source, then exit")
    p = add("status", "each source's health: last success, failing charts, held-back aggregates")
    p.add_argument("--all", dest="every_chart", action="store_true", help="list every chart")
    p = add("parse", "what the parser reads from a saved page (for layout changes)")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--source", choices=("flixpatrol",), default="flixpatrol")
    p.add_argument("--json", action="store_true")
    return parser


def chart_filters(p: argparse.ArgumentParser, *, service: bool) -> None:
    p.add_argument("--region", type=region_argument, help="world, a country code or name (us, 'South Korea')")
    p.add_argument("--category", choices=CATEGORIES)
    if service:
        p.add_argument("--service", help="netflix (default), disney, hbo-max, …")
        p.add_argument("--period", choices=PERIODS)
    p.add_argument(
        "--date", type=date_argument, metavar="YYYY-MM-DD", help="as of this date (default: latest)"
    )


def date_argument(text: str) -> date:
    try:
        return parse_date(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def region_argument(text: str) -> str:
    try:
        return resolve_region(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def kinds_argument(text: str) -> frozenset[str]:
    chosen = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    return chosen


# --- helpers ----------------------------------------------------------------------------------------


def db_path(args: argparse.Namespace) -> str:
    return args.db or Settings.from_env().db_path


async def open_existing(args: argparse.Namespace) -> Store:
    """The database a read command asks about; a missing file is a user error, not an empty history."""
    path = db_path(args)
    if path != MEMORY and not is_postgres_url(path) and not Path(path).is_file():
        raise InputError(f"no chart history at {path}: run `chartbot import FILE…` first, or set CHARTBOT_DB")
    return await open_store(path)


def read_all(paths: Sequence[Path], fmt: str | None, day: date | None = None) -> list[list[Snapshot]]:
    """Parse every file before storing anything: one bad file stops the whole command. `day` dates
    the undated lists (most-popular.tsv); without it, they are dated today."""
    parsed = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        parsed.append(files.read_file(path, fmt, day))
    return parsed


def milestone_json(m: Milestone) -> str:
    from bot.render import milestone_text

    return json.dumps(m.as_json(milestone_text(m)), ensure_ascii=False)


def milestone_line(m: Milestone) -> str:
    from bot.render import milestone_text

    return f"{m.chart.date.isoformat()}  {m.kind:<15}  {milestone_text(m)}"


async def resolve_title(store: Store, text: str) -> tuple[str, str]:
    return TitleIndex(await store.charts.title_catalog()).resolve(text)


# --- commands ---------------------------------------------------------------------------------------


@command("import")
async def import_files(args: argparse.Namespace, out: TextIO) -> int:
    parsed = read_all(args.files, args.format, args.date)
    async with await open_store(db_path(args)) as store:
        ingester = Ingester(store)
        for path, snapshots in zip(args.files, parsed, strict=True):
            report = await ingester.ingest(snapshots, news=False)
            out.write(
                f"{path.name}: {len(snapshots):,} charts ({report.entries:,} entries stored) — "
                f"{report.added:,} new, {report.replaced:,} revised, {report.unchanged:,} unchanged\n"
            )
    return 0


def periods_in_order(parsed: list[list[Snapshot]]) -> list[list[Snapshot]]:
    """All charts of one date together, dates in order: how the history unfolded."""
    by_date: dict[date, list[Snapshot]] = defaultdict(list)
    for snapshots in parsed:
        for snapshot in snapshots:
            by_date[snapshot.key.date].append(snapshot)
    return [by_date[day] for day in sorted(by_date)]


async def replay_into(store: Store, parsed: list[list[Snapshot]], emit: Callable[[Milestone], None]) -> int:
    """Ingest period by period with detection on; `emit` each milestone. Returns how many."""
    count = 0
    # A replay is a batch: it allocates in bulk, and almost nothing it makes is cyclic garbage. So the
    # parsed files it holds to the end are frozen (left out of every full pass of the collector), and
    # the collector runs every 50,000 new objects rather than every 700. Together that was 7% of a
    # year's replay. Objects still die when nothing refers to them; all is as it was at the end.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, *thresholds[1:])
    ingester = Ingester(store)
    try:
        for period in periods_in_order(parsed):
            report = await ingester.ingest(period, news=True)
            for milestone in report.milestones:
                emit(milestone)
                count += 1
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return count


@command("replay")
async def replay(args: argparse.Namespace, out: TextIO) -> int:
    parsed = read_all(args.files, args.format)
    wanted_title = None
    if args.title:
        rows = {(e.title_key, e.title) for snaps in parsed for s in snaps for e in s.entries}
        wanted_title = TitleIndex((key, name, 0) for key, name in rows).resolve(args.title)[0]

    def emit(m: Milestone) -> None:
        if args.kinds and m.kind not in args.kinds:
            return
        if wanted_title and m.title_key != wanted_title:
            return
        out.write((milestone_json(m) if args.json else milestone_line(m)) + "\n")

    async with await open_store(args.db or MEMORY) as store:
        await replay_into(store, parsed, emit)
    return 0


@command("rank")
async def rank(args: argparse.Namespace, out: TextIO) -> int:
    async with await open_existing(args) as store:
        key, _ = await resolve_title(store, args.title)
        report = await store.charts.title_report(key, args.date)
    assert report is not None
    standings = [
        s
        for s in report.standings
        if (args.region is None or s.region == args.region)
        and (args.category is None or s.category == args.category)
    ]
    countries = [c for c in report.countries if args.category is None or c.category == args.category]
    if args.region not in (None, WORLD):
        countries = []
    report = type(report)(report.title, report.title_key, standings, countries, report.last_seen)
    if args.json:
        out.write(json.dumps(report.as_json(), ensure_ascii=False) + "\n")
    else:
        out.write(terminal.format_title_report(report, args.date) + "\n")
    return 0


def pick_series(candidates: list[Series], args: argparse.Namespace) -> Series:
    """The chart `top` means when the user left parts out: prefer overall, then TV; daily over weekly."""
    if not candidates:
        asked = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("service", args.service),
                ("region", args.region),
                ("category", args.category),
                ("period", args.period),
            )
            if value
        )
        raise InputError(f"no chart stored for {asked or 'any chart'}; see `chartbot import`")
    order = list(CATEGORIES)
    return min(candidates, key=lambda s: (order.index(s.category), s.period != "day", s.service != "netflix"))


@command("top")
async def top(args: argparse.Namespace, out: TextIO) -> int:
    async with await open_existing(args) as store:
        region = args.region or WORLD
        candidates = await store.charts.find_series(
            service=args.service, region=region, category=args.category, period=args.period
        )
        if not candidates and args.category is None and args.region is None:
            candidates = await store.charts.find_series(service=args.service, period=args.period)
        if not candidates and args.category:
            others = await store.charts.find_series(service=args.service, region=region)
            if others:
                choices = ", ".join(sorted({s.category for s in others}))
                raise InputError(f"no {args.category} chart for {region}; it has: {choices}")
        series = pick_series(candidates, args)
        view = await store.charts.chart_view(series, args.date)
    if view is None:
        raise InputError(f"no {series.region} {series.category} chart on or just before {args.date}")
    if args.json:
        out.write(json.dumps(view.as_json(), ensure_ascii=False) + "\n")
    else:
        out.write(terminal.format_chart(view) + "\n")
    return 0


@command("milestones")
async def list_milestones(args: argparse.Namespace, out: TextIO) -> int:
    async with await open_existing(args) as store:
        key = (await resolve_title(store, args.title))[0] if args.title else None
        stored = await store.charts.milestones(title_key=key, since=args.since)
    for item in stored:
        m = item.milestone
        if args.kinds and m.kind not in args.kinds:
            continue
        out.write((milestone_json(m) if args.json else milestone_line(m)) + "\n")
    return 0


DEMO_TITLE = "All of Us Are Dead"
DEMO_KINDS = frozenset(
    {"reached_no1", "lost_no1", "no1_streak", "no1_countries", "top10_countries", "record"}
)


@command("demo")
async def demo(args: argparse.Namespace, out: TextIO) -> int:
    """Replay the shipped sample: the posts a server following it would have seen, then a rank card."""
    from bot.data import sample_files

    parsed = read_all(sample_files(), None)
    out.write("chartbot demo — replaying Netflix's Top 10 from Jan 20 to Feb 20, 2022 (real data)\n\n")

    def emit(m: Milestone) -> None:
        headline = m.chart.region in (WORLD, "us") or m.kind in ("no1_countries", "record")
        if m.kind in DEMO_KINDS and headline:
            out.write(milestone_line(m) + "\n")

    async with await open_store(args.db or MEMORY) as store:
        await replay_into(store, parsed, emit)
        key = title_key(DEMO_TITLE)
        report = await store.charts.title_report(key, date(2022, 2, 6))
    assert report is not None
    out.write('\n$ chartbot rank "all of us are dead" --date 2022-02-06\n')
    top_rows = [s for s in report.standings if s.region in (WORLD, "us", "kr")]
    shown = type(report)(report.title, key, top_rows, report.countries, None)
    out.write(terminal.format_title_report(shown, date(2022, 2, 6)))
    out.write(f"\n  … and {len(report.standings) - len(top_rows)} more country charts\n")
    return 0


# --- the bot and the poller ----------------------------------------------------------------------


def poller_settings(args: argparse.Namespace) -> Settings:
    return dataclasses.replace(Settings.from_env(), db_path=db_path(args))


@command("run")
async def run(args: argparse.Namespace, out: TextIO) -> int:
    from bot.client import serve, setup_logging

    settings = poller_settings(args)
    setup_logging(settings)
    await serve(settings)
    return 0


@command("sync")
async def sync(args: argparse.Namespace, out: TextIO) -> int:
    from bot.client import setup_logging, sync

    settings = poller_settings(args)
    setup_logging(settings)
    synced = await sync(settings)
    out.write(f"synced {len(synced)} commands globally: {', '.join('/' + c.name for c in synced)}\n")
    return 0


@command("poll")
async def poll(args: argparse.Namespace, out: TextIO) -> int:
    return await poll_main(poller_settings(args), once=args.once, out=out, err=sys.stderr)


async def poll_main(settings: Settings, *, once: bool, out: TextIO, err: TextIO | None = None) -> int:
    """Milestones to `out` as found, one line each; problems to `err`.

    With --once: 0 when every read worked, 1 when some failed (they are listed)."""
    from bot.poller import Poller, make_http_client

    def show(found: list[Milestone]) -> None:
        for m in found:
            out.write(milestone_line(m) + "\n")
        out.flush()

    async with await open_store(settings.db_path) as store, make_http_client(settings, store) as http:
        poller = Poller(store, http, settings, on_milestones=show)
        if not once:
            await poller.run_forever()
            return 0
        report = await poller.run_once()
    if err is not None:
        for error in report.errors:
            err.write(f"chartbot poll: {error.message}\n")
    return 1 if report.errors else 0


@command("status")
async def status(args: argparse.Namespace, out: TextIO) -> int:
    return await status_main(poller_settings(args), out, every_chart=args.every_chart)


async def status_main(settings: Settings, out: TextIO, *, every_chart: bool = False) -> int:
    """Each source's health, then the charts that fail (all of them with `every_chart`), then whether
    the bot posts (stopped for a rejected token, and what waits)."""
    path = settings.db_path
    if path != MEMORY and not is_postgres_url(path) and not Path(path).is_file():
        raise InputError(f"no chart history at {path}: run `chartbot poll` first, or set CHARTBOT_DB")
    async with await open_store(path) as store:
        rows = await store.sources.health()
        halt = await store.deliveries.halted()
        waiting = await store.deliveries.open_work()
        blocked = len(await store.guilds.blocked_everywhere())
    out.write(terminal.format_status(rows, settings.sources, every_chart=every_chart))
    out.write("\n" + terminal.format_posting(halt, waiting, blocked))
    return 0


@command("parse")
async def parse(args: argparse.Namespace, out: TextIO) -> int:
    from bot.sources.flixpatrol import parse_main

    return parse_main(args.file, args.source, args.json, out)


# --- entry point --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_dotenv()
        settings = Settings.from_env()  # every setting checked at start: a bad one is one line, exit 2
        # The command line is quiet unless asked (WARNING); `run` and `sync` log at settings.log_level.
        asked = os.environ.get("CHARTBOT_LOG_LEVEL", "").strip()
        logging.basicConfig(
            level=settings.log_level if asked else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return asyncio.run(COMMANDS[args.command](args, sys.stdout))
    except InputError as error:
        print(f"chartbot {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as error:
        print(f"chartbot {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"chartbot {args.command}: the database cannot be used: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
