"""The `chartbot` command (also `python -m bot`). A stable contract: scripts and tests rely on it.

User errors print one line to stderr and exit 2; nothing is half-written (each import is one
transaction, parsed in full before anything is stored). What `rank`, `top`, `milestones`, `replay` and
`demo` print (the JSON's `text` too; its keys stay English) is in the language of `--lang`, by default
the environment's (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English. Long work (`import`, `replay`, `poll --once`)
shows progress bars on stderr when it is a terminal, and nothing else anywhere.
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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn, TextIO

from bot import terminal
from bot.charts import top_charts
from bot.copying import copy_store
from bot.i18n import DISCORD_LOCALES, ENGLISH, SOURCE, Messages, locale_for, translator
from bot.i18n import formats as local
from bot.ingest import Ingester, IngestReport
from bot.milestones import KINDS
from bot.model import CATEGORIES, PERIOD_NAMES, WORLD, InputError, Milestone, Snapshot, parse_date, title_key
from bot.regions import resolve_region
from bot.settings import Settings, load_dotenv, shard_selection
from bot.sources import files
from bot.sources.tables import Charts
from bot.store import (
    MEMORY,
    SchemaError,
    Store,
    StoreError,
    StoreInUse,
    is_postgres_url,
    open_store,
    redact,
)
from bot.titles import TitleIndex, TitleNotFound

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
        p.add_argument(
            "--db",
            metavar="PATH_OR_URL",
            help="a SQLite file or a postgresql://user:password@host:5432/dbname URL "
            "(default: $CHARTBOT_DB, else ./chartbot.sqlite3)",
        )
        return p

    p = add("demo", "replay the sample history shipped with chartbot and show what the bot would post")
    language_option(p)

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
    language_option(p)

    p = add("rank", "where a title stands, as /rank shows it")
    p.add_argument("title")
    chart_filters(p, service=False)
    p.add_argument("--json", action="store_true")
    language_option(p)

    p = add("top", "a chart, as /top shows it")
    chart_filters(p, service=True)
    p.add_argument("--json", action="store_true")
    language_option(p)

    p = add("milestones", "milestones recorded in the database, oldest first")
    p.add_argument("--title", help="only milestones of this title")
    p.add_argument("--since", type=date_argument, metavar="YYYY-MM-DD")
    p.add_argument("--kinds", type=kinds_argument, help="comma list of kinds")
    p.add_argument("--json", action="store_true")
    language_option(p)
    p = add("run", "the Discord bot (needs DISCORD_TOKEN; polls the sources too unless CHARTBOT_POLL=off)")
    p.add_argument(
        "--shards",
        metavar="IDS",
        help="run only these shards, e.g. 0-3 or 0,2,4 (default: $CHARTBOT_SHARDS, else all; "
        "needs CHARTBOT_SHARD_COUNT and PostgreSQL)",
    )
    add("sync", "publish the slash commands to every server (Discord limits how often: not on every start)")
    p = add("poll", "poll the enabled sources without Discord; milestones are printed as they are found")
    p.add_argument("--once", action="store_true", help="one cycle of each source, then exit")
    p = add(
        "status",
        "each source's health: last success, failing charts, held-back aggregates; and, on PostgreSQL, "
        "each live bot process: its shards, which one polls and plans, its queue, last post and error",
    )
    p.add_argument("--all", dest="every_chart", action="store_true", help="list every chart")
    p = add("parse", "what the parser reads from a saved page (for layout changes)")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--source", choices=("flixpatrol",), default="flixpatrol")
    p.add_argument("--json", action="store_true")
    db = sub.add_parser("db", help="the database itself: copy it between engines, show what it holds")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION", parser_class=Parser)
    p = db_sub.add_parser("copy", help="copy a whole database into another (SQLite file <-> PostgreSQL URL)")
    p.add_argument("source", metavar="SOURCE", help="a SQLite file or a postgresql:// URL")
    p.add_argument("target", metavar="TARGET", help="a SQLite file or a postgresql:// URL")
    p.add_argument("--replace", action="store_true", help="overwrite a target that already holds charts")
    p = db_sub.add_parser("status", help="the database's engine, schema version and row counts")
    p.add_argument("--db", metavar="PATH_OR_URL", help="default: $CHARTBOT_DB, else ./chartbot.sqlite3")
    return parser


def chart_filters(p: argparse.ArgumentParser, *, service: bool) -> None:
    p.add_argument("--region", type=region_argument, help="world, a country code or name (us, 'South Korea')")
    p.add_argument("--category", choices=CATEGORIES)
    if service:
        p.add_argument("--service", help="netflix (default), disney, hbo-max, …")
        p.add_argument(
            "--period", choices=PERIOD_NAMES, help="day, week, or all-time (Netflix's most-watched lists)"
        )
    p.add_argument(
        "--date", type=date_argument, metavar="YYYY-MM-DD", help="as of this date (default: latest)"
    )


LANGUAGE_ENV = ("LC_ALL", "LC_MESSAGES", "LANG")
"""Where the default of `--lang` comes from, the first one set (as gettext reads them)."""


def language_option(p: argparse.ArgumentParser) -> None:
    codes = ", ".join(DISCORD_LOCALES)
    p.add_argument(
        "--lang",
        metavar="LANG",
        help=f"the language to write in: {codes} (default: $LC_ALL, $LC_MESSAGES or $LANG, else English)",
    )


def environment_language(environ: Mapping[str, str] | None = None) -> str:
    """Our language for the environment's locale (`ko_KR.UTF-8`), else English."""
    environ = os.environ if environ is None else environ
    for name in LANGUAGE_ENV:
        value = environ.get(name, "").strip()
        if value:
            return locale_for(value)
    return SOURCE


def language(args: argparse.Namespace) -> Messages:
    """The texts of `--lang`, else of the environment's locale. A `--lang` chartbot does not write is
    refused (InputError); the environment's falls back to English."""
    asked = getattr(args, "lang", None)
    if asked is None:
        return translator(environment_language())
    chosen = locale_for(asked)
    if chosen == SOURCE and asked.strip().lower().replace("_", "-").split("-")[0] != "en":
        tr = translator(environment_language())
        raise InputError(
            tr.gettext("cli.unknown_language", language=repr(asked), languages=", ".join(DISCORD_LOCALES))
        )
    return translator(chosen)


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
    """The database to use: a SQLite path, or a PostgreSQL URL."""
    return args.db or Settings.from_env().db_path


async def open_existing(args: argparse.Namespace) -> Store:
    """The database a read command asks about; a missing file is a user error, not an empty history
    (a URL names a server's database: it is opened, and an empty one has no history)."""
    path = db_path(args)
    if path != MEMORY and not is_postgres_url(path) and not Path(path).is_file():
        raise InputError(f"no chart history at {path}: run `chartbot import FILE…` first, or set CHARTBOT_DB")
    return await open_store(path)


def read_all(
    paths: Sequence[Path], fmt: str | None, day: date | None = None, progress: terminal.Progress | None = None
) -> list[Charts]:
    """Parse every file before storing anything: one bad file stops the whole command. `day` dates
    the undated lists (most-popular.tsv); without it, they are dated today. Each file is read as it
    comes into a compact table of charts (`files.read_charts`): a large file is never whole in memory."""
    parsed = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        reading = None
        if progress is not None:
            reading = progress.tracker(f"{path.name}: reading", path.stat().st_size, unit="B")
        parsed.append(files.read_charts(path, fmt, day, progress=reading))
    return parsed


async def store_charts(
    ingester: Ingester, charts: Charts, progress: Callable[[int], None] | None = None
) -> IngestReport:
    """One file's charts in one transaction, oldest first, a chunk at a time (no news: history only).
    A failure at any chunk stores nothing of the file. `progress(done)`: charts stored so far."""
    stored = 0
    async with ingester.batch() as batch:
        for chunk in charts.chunks():
            await batch.add(chunk, news=False, progress=_counted_from(stored, progress))
            stored += len(chunk)
    return batch.report


def _counted_from(base: int, progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    return None if progress is None else lambda done: progress(base + done)


def milestone_json(m: Milestone, tr: Messages = ENGLISH) -> str:
    from bot.render import milestone_text

    return json.dumps(m.as_json(milestone_text(m, tr=tr)), ensure_ascii=False)


def milestone_line(m: Milestone, tr: Messages = ENGLISH) -> str:
    from bot.render import milestone_text

    return f"{m.chart.date.isoformat()}  {m.kind:<15}  {milestone_text(m, tr=tr)}"


async def resolve_title(store: Store, text: str, tr: Messages = ENGLISH) -> tuple[str, str]:
    return resolve_in(TitleIndex(await store.charts.title_catalog()), text, tr)


def resolve_in(index: TitleIndex, text: str, tr: Messages = ENGLISH) -> tuple[str, str]:
    """(title_key, title) of a typed title, or InputError in `tr`'s language naming the closest."""
    try:
        return index.resolve(text)
    except TitleNotFound as exc:
        raise InputError(exc.text(tr)) from None


# --- commands ---------------------------------------------------------------------------------------


@command("import")
async def import_files(args: argparse.Namespace, out: TextIO) -> int:
    with terminal.Progress() as progress:
        parsed = read_all(args.files, args.format, args.date, progress)
        async with await open_store(db_path(args)) as store:
            ingester = Ingester(store)
            for path, charts in zip(args.files, parsed, strict=True):
                report = await store_charts(ingester, charts, progress.tracker(path.name, len(charts)))
                progress.write(
                    out,
                    f"{path.name}: {len(charts):,} charts ({report.entries:,} entries stored) — "
                    f"{report.added:,} new, {report.replaced:,} revised, {report.unchanged:,} unchanged\n",
                )
    return 0


class Periods:
    """All charts of one date together, dates in order: how the history unfolded. Each period's
    charts are made when it comes (from tables of charts, or from lists of snapshots)."""

    def __init__(self, parsed: Sequence[Charts | Sequence[Snapshot]]) -> None:
        self.tables = [p if isinstance(p, Charts) else _Listed(p) for p in parsed]
        self.dates = sorted({day for table in self.tables for day in table.dates()})

    def __len__(self) -> int:
        return len(self.dates)

    def __iter__(self) -> Iterator[list[Snapshot]]:
        for day in self.dates:
            yield [snapshot for table in self.tables for snapshot in table.on(day)]


class _Listed:
    def __init__(self, snapshots: Sequence[Snapshot]) -> None:
        self.by_date: dict[date, list[Snapshot]] = defaultdict(list)
        for snapshot in snapshots:
            self.by_date[snapshot.key.date].append(snapshot)

    def dates(self) -> Iterable[date]:
        return self.by_date.keys()

    def on(self, day: date) -> list[Snapshot]:
        return self.by_date.get(day, [])


def periods_in_order(parsed: Sequence[Charts | Sequence[Snapshot]]) -> Periods:
    return Periods(parsed)


async def replay_into(
    store: Store,
    parsed: Sequence[Charts | Sequence[Snapshot]],
    emit: Callable[[Milestone], None],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Ingest period by period with detection on; `emit` each milestone. Returns how many.
    `progress(done, total)`: periods stored so far."""
    count = 0
    # A replay is a batch: it allocates in bulk, and almost nothing it makes is cyclic garbage. So the
    # parsed files it holds to the end are frozen (left out of every full pass of the collector), and
    # the collector runs every 50,000 new objects rather than every 700. Together that was 7% of a
    # year's replay. Objects still die when nothing refers to them; all is as it was at the end.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, *thresholds[1:])
    ingester = Ingester(store)
    periods = periods_in_order(parsed)
    try:
        for done, period in enumerate(periods, start=1):
            report = await ingester.ingest(period, news=True)
            for milestone in report.milestones:
                emit(milestone)
                count += 1
            if progress is not None:
                progress(done, len(periods))
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return count


@command("replay")
async def replay(args: argparse.Namespace, out: TextIO) -> int:
    tr = language(args)
    with terminal.Progress() as progress:
        parsed = read_all(args.files, args.format, progress=progress)
        wanted_title = None
        if args.title:
            rows = {pair for charts in parsed for pair in charts.titles()}
            wanted_title = resolve_in(TitleIndex((key, name, 0) for key, name in rows), args.title, tr)[0]

        def emit(m: Milestone) -> None:
            if args.kinds and m.kind not in args.kinds:
                return
            if wanted_title and m.title_key != wanted_title:
                return
            progress.write(out, (milestone_json(m, tr) if args.json else milestone_line(m, tr)) + "\n")

        def shown(done: int, total: int) -> None:
            progress.update("replay", done, total, unit="periods")

        async with await open_store(args.db or MEMORY) as store:
            await replay_into(store, parsed, emit, shown)
    return 0


@command("rank")
async def rank(args: argparse.Namespace, out: TextIO) -> int:
    tr = language(args)
    async with await open_existing(args) as store:
        key, _ = await resolve_title(store, args.title, tr)
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
        out.write(terminal.format_title_report(report, args.date, tr) + "\n")
    return 0


@command("top")
async def top(args: argparse.Namespace, out: TextIO) -> int:
    tr = language(args)
    async with await open_existing(args) as store:
        views = await top_charts(
            store.charts,
            region=args.region,
            category=args.category,
            service=args.service,
            period=args.period,
            on=args.date,
            tr=tr,
        )
    for view in views:
        out.write(
            (json.dumps(view.as_json(), ensure_ascii=False) if args.json else terminal.format_chart(view, tr))
            + "\n"
        )
    return 0


@command("milestones")
async def list_milestones(args: argparse.Namespace, out: TextIO) -> int:
    tr = language(args)
    async with await open_existing(args) as store:
        key = (await resolve_title(store, args.title, tr))[0] if args.title else None
        stored = await store.charts.milestones(title_key=key, since=args.since)
    for item in stored:
        m = item.milestone
        if args.kinds and m.kind not in args.kinds:
            continue
        out.write((milestone_json(m, tr) if args.json else milestone_line(m, tr)) + "\n")
    return 0


DEMO_TITLE = "All of Us Are Dead"
DEMO_KINDS = frozenset(
    {"reached_no1", "lost_no1", "no1_streak", "no1_countries", "top10_countries", "record"}
)


@command("demo")
async def demo(args: argparse.Namespace, out: TextIO) -> int:
    """Replay the shipped sample: the posts a server following it would have seen, then a rank card."""
    from bot.data import sample_files
    from bot.render import date_text

    tr = language(args)
    parsed = read_all(sample_files(), None)
    start, end = date(2022, 1, 20), date(2022, 2, 20)
    start_text = f"{start:%b} {start.day}" if tr.locale == SOURCE else local.date_part(start, "MMMMd", tr)
    out.write(tr.gettext("cli.demo.intro", start=start_text, end=date_text(end, tr)) + "\n\n")

    def emit(m: Milestone) -> None:
        headline = m.chart.region in (WORLD, "us") or m.kind in ("no1_countries", "record")
        if m.kind in DEMO_KINDS and headline:
            out.write(milestone_line(m, tr) + "\n")

    async with await open_store(args.db or MEMORY) as store:
        await replay_into(store, parsed, emit)
        key = title_key(DEMO_TITLE)
        report = await store.charts.title_report(key, date(2022, 2, 6))
    assert report is not None
    out.write('\n$ chartbot rank "all of us are dead" --date 2022-02-06\n')
    top_rows = [s for s in report.standings if s.region in (WORLD, "us", "kr")]
    shown = type(report)(report.title, key, top_rows, report.countries, None)
    out.write(terminal.format_title_report(shown, date(2022, 2, 6), tr))
    more = len(report.standings) - len(top_rows)
    out.write("\n  " + tr.ngettext("cli.demo.more", more, n=more) + "\n")
    return 0


# --- the bot and the poller ----------------------------------------------------------------------


def poller_settings(args: argparse.Namespace) -> Settings:
    return dataclasses.replace(Settings.from_env(), db_path=db_path(args))


@command("run")
async def run(args: argparse.Namespace, out: TextIO) -> int:
    from bot.client import serve, setup_logging

    settings = poller_settings(args)
    if args.shards is not None:
        shards = shard_selection(args.shards, settings.shard_count, "--shards")
        settings = dataclasses.replace(settings, shards=shards)
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

    progress = terminal.Progress(err)  # bars for a long catch-up, when `err` is a terminal

    def show(found: list[Milestone]) -> None:
        for m in found:
            progress.write(out, milestone_line(m) + "\n")
        out.flush()

    async with await open_store(settings.db_path) as store, make_http_client(settings, store) as http:
        bars = progress.update if once and progress.shown else None  # else the log's progress line
        poller = Poller(store, http, settings, on_milestones=show, progress=bars)
        if not once:
            await poller.run_forever()
            return 0
        with progress:
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
        members = await store.cluster.members()
    out.write(terminal.format_status(rows, settings.sources, every_chart=every_chart))
    out.write("\n" + terminal.format_posting(halt, waiting, blocked))
    if members:  # several bot processes share a PostgreSQL database
        out.write("\n" + terminal.format_cluster(members))
    return 0


@command("db")
async def database(args: argparse.Namespace, out: TextIO) -> int:
    if args.db_command == "status":
        async with await open_existing(args) as store:
            out.write(terminal.format_store_status(await store.status()) + "\n")
        return 0
    source_path, target_path = args.source, args.target
    if source_path == target_path:
        raise InputError("SOURCE and TARGET are the same database")
    if not is_postgres_url(source_path) and not Path(source_path).is_file():
        raise InputError(f"no database at {source_path}")
    async with await open_store(source_path) as source, await open_store(target_path) as target:
        with terminal.Progress() as progress:
            report = await copy_store(source, target, replace=args.replace, progress=progress.update)
    out.write(
        f"copied {report.rows:,} rows in {len(report.counts)} tables from {redact(source_path)} "
        f"to {redact(target_path)}; every table's count checked\n"
    )
    return 0


@command("parse")
async def parse(args: argparse.Namespace, out: TextIO) -> int:
    from bot.sources.flixpatrol import parse_main

    return parse_main(args.file, args.source, args.json, out)


# --- entry point --------------------------------------------------------------------------------------


def command_name(args: argparse.Namespace) -> str:
    """ "rank", "db copy": how the command was called, for its error lines."""
    return " ".join(filter(None, (args.command, getattr(args, "db_command", None))))


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
        print(f"chartbot {command_name(args)}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (SchemaError, StoreInUse) as error:
        print(f"chartbot {command_name(args)}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"chartbot {command_name(args)}: the database cannot be used: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
