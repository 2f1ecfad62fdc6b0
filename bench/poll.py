"""A FlixPatrol poll cycle against a slow local server, and the parser's CPU time per page.

A server on 127.0.0.1 (in its own thread and event loop, so serving costs the poller nothing) answers
each SYNTHETIC page (tests/flixpatrol_pages.py, newest layout) after `--latency` seconds: 95 regions
(world + Netflix's 94 countries) × 2 services. Figures:

- cycle wall time, and its ratio to the bound ceil(pages / per-host limit) × latency: the HTTP client
  lets `per-host limit` requests run at once, so no cycle can be faster. The chart day needs two
  agreeing reads: cycle 1 reads every page, cycle 2 reads them again, stores 380 charts and detects
  the aggregates.
- parse CPU time per page: `parse_page` (lxml) next to BeautifulSoup's `html.parser` doing the same
  minimal extraction (headings, first table after each, rank, title) on the same pages.

    python bench/poll.py [--latency 0.2] [--limit 4]
Targets: ratio ≤ 1.2; parse ≤ 15 ms per page and ≥ 3× faster than html.parser.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from flixpatrol_pages import render_page  # noqa: E402

from bot.poller import Poller  # noqa: E402
from bot.regions import slug_to_code  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.sources.flixpatrol import DEFAULT_REGIONS, parse_page  # noqa: E402
from bot.sources.http import HttpClient  # noqa: E402
from bot.store import open_store  # noqa: E402

DAY = date(2026, 8, 2)
SERVICES = ("netflix", "disney")


def build_pages() -> dict[tuple[str, str], bytes]:
    pages = {}
    for s, service in enumerate(SERVICES):
        for r, region in enumerate(DEFAULT_REGIONS):
            shift = (s * 7 + r) % 4  # a few different No. 1s across countries
            movies = [f"{service} film {(shift + i) % 14}" for i in range(10)]
            tv = [f"{service} show {(shift + i) % 14}" for i in range(10)]
            html = render_page(
                "2025-11", region=region, date=DAY, movies=movies, tv=tv, points=True, service=service
            )
            pages[(service, region)] = html.encode()
    return pages


class SlowServer:
    """The pages, each after `latency` seconds, from a server in its own thread."""

    def __init__(self, pages: dict[tuple[str, str], bytes], latency: float) -> None:
        self.pages, self.latency = pages, latency
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _handler(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency)
        key = (request.match_info["service"], slug_to_code(request.match_info["slug"]))
        return web.Response(body=self.pages[key], content_type="text/html")

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/top10/{service}/{slug}/{day}/", self._handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> SlowServer:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()


async def poll_cycles(url: str, latency: float, limit: int) -> None:
    settings = Settings(sources=("flixpatrol",), flixpatrol_url=url, flixpatrol_services=SERVICES)
    pages = len(SERVICES) * len(DEFAULT_REGIONS)
    bound = math.ceil(pages / limit) * latency
    with tempfile.TemporaryDirectory() as folder:
        async with (
            await open_store(Path(folder) / "bench.sqlite3") as store,
            HttpClient(per_host_limit=limit) as http,
        ):
            now = datetime(2026, 8, 2, 13, tzinfo=UTC)
            poller = Poller(store, http, settings, clock=lambda: now)
            print(f"{pages} pages, {latency * 1000:.0f} ms each, per-host limit {limit}: bound {bound:.2f} s")
            for n, what in ((1, "read every page"), (2, "read again, store, aggregates")):
                started = time.perf_counter()
                report = await poller.poll_source("flixpatrol")
                wall = time.perf_counter() - started
                assert not report.errors, report.errors[:3]
                print(
                    f"cycle {n} ({what}): {wall:.2f} s, ratio {wall / bound:.3f}; "
                    f"{report.items} read, {report.pending} waiting, {report.added} charts stored, "
                    f"{len(report.milestones)} milestones"
                )
                now = now.replace(hour=14)


_HEADING = re.compile(r"^TOP(?: 10)? (Movies|TV Shows|Overall)$", re.IGNORECASE)
_TITLE = re.compile(r"^/title/")


def bs4_extract(html: bytes) -> list[list[tuple[str, str]]]:
    """The same minimal reading with BeautifulSoup (html.parser): sections, ranks and titles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    sections = []
    for heading in soup.find_all(["h2", "h3"]):
        if not _HEADING.match(" ".join(heading.get_text(" ").split())):
            continue
        table = heading.find_next("table")
        rows = []
        for tr in table.find_all("tr") if table else ():
            cells = tr.find_all("td")
            link = tr.find("a", href=_TITLE)
            if cells and link:
                rows.append((cells[0].get_text(strip=True), link.get_text(" ", strip=True)))
        sections.append(rows)
    return sections


def parse_times(pages: dict[tuple[str, str], bytes], rounds: int = 3) -> None:
    items = list(pages.items())
    for (service, region), html in items[:3]:  # both readers see the same charts
        ours = [
            [(f"{e.rank}.", e.title) for e in s.entries]
            for s in parse_page(html, service=service, region=region)
        ]
        assert ours == bs4_extract(html), (service, region)

    def best(fn) -> float:
        times = []
        for _ in range(rounds):
            started = time.process_time()
            for (service, region), html in items:
                fn(service, region, html)
            times.append((time.process_time() - started) / len(items))
        return min(times)

    lxml_ms = best(lambda s, r, h: parse_page(h, service=s, region=r)) * 1000
    soup_ms = best(lambda s, r, h: bs4_extract(h)) * 1000
    size = sum(len(h) for h in pages.values()) / len(pages) / 1024
    print(
        f"parse CPU per page ({len(pages)} pages, {size:.0f} KB on average): parse_page {lxml_ms:.2f} ms, "
        f"BeautifulSoup html.parser {soup_ms:.2f} ms: {soup_ms / lxml_ms:.1f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer (default 0.2)")
    parser.add_argument("--limit", type=int, default=4, help="per-host concurrency limit (default 4)")
    args = parser.parse_args()
    pages = build_pages()
    with SlowServer(pages, args.latency) as server:
        asyncio.run(poll_cycles(server.url, args.latency, args.limit))
    parse_times(pages)


if __name__ == "__main__":
    main()
