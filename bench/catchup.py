"""Catch-up speed: a first poll of Netflix's real country file from a local server, against
`chartbot import` of the same file, each into a fresh database, in one run.

    python bench/catchup.py [--file PATH] [--runs 3]

The file defaults to ../shared/data/netflix_official_top10_later/all-weeks-countries_2022-11-13.tsv
(72 weeks, 94 countries). Target: the first poll takes at most 1.5× the import (both store the file in
one transaction, in chunks of dates; the poll also downloads it, checks what is stored and judges the
newest week's country aggregates).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.cli import main as cli
from bot.poller import Poller, make_http_client
from bot.settings import Settings
from bot.store import open_store

DEFAULT = (
    Path(__file__).resolve().parents[2]
    / "shared/data/netflix_official_top10_later/all-weeks-countries_2022-11-13.tsv"
)


def import_once(path: Path, folder: Path) -> float:
    db = folder / "import.sqlite3"
    started = time.perf_counter()
    assert cli(["import", str(path), "--db", str(db)]) == 0
    return time.perf_counter() - started


async def poll_once(body: bytes, folder: Path) -> tuple[float, int]:
    async def handler(request: web.Request) -> web.Response:
        if request.match_info["name"] != "all-weeks-countries.tsv":
            return web.Response(status=404)
        return web.Response(body=body, content_type="text/tab-separated-values")

    app = web.Application()
    app.router.add_get("/top10/data/{name}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}/top10/data/"
        settings = Settings(db_path=str(folder / "poll.sqlite3"), netflix_url=url, sources=("netflix",))
        async with await open_store(settings.db_path) as store, make_http_client(settings, store) as http:
            poller = Poller(store, http, settings, progress=lambda *_: None)
            started = time.perf_counter()
            report = await poller.poll_source("netflix")
            elapsed = time.perf_counter() - started
        return elapsed, report.entries
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.file.is_file():
        sys.exit(f"no file at {args.file}: give one with --file")
    body = args.file.read_bytes()
    imports, polls, entries = [], [], 0
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            imports.append(import_once(args.file, Path(folder)))
        with tempfile.TemporaryDirectory() as folder:
            elapsed, entries = asyncio.run(poll_once(body, Path(folder)))
            polls.append(elapsed)
    imported, polled = statistics.median(imports), statistics.median(polls)
    print(f"file: {args.file.name}, {len(body) / 1e6:.1f} MB, {entries:,} entries")
    print(f"chartbot import: {imported:.2f} s ({entries / imported:,.0f} entries/s), runs {imports}")
    print(f"first poll:      {polled:.2f} s ({entries / polled:,.0f} entries/s), runs {polls}")
    print(f"first poll / import: {polled / imported:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
