"""The fetch side of the sources against local servers (127.0.0.1 only, never the internet).

Netflix: the real TSVs of tests/data/netflix. FlixPatrol: SYNTHETIC pages from tests/flixpatrol_pages.py
and tests/data/flixpatrol, served by `FakeFlixPatrol`, which test_poller.py and its faults reuse.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from flixpatrol_pages import ERAS, render_page
from local_servers import Sleeps, app_servers, base

from bot.model import InputError
from bot.regions import code_to_slug, slug_to_code
from bot.sources import flixpatrol, netflix
from bot.sources.flixpatrol import PageError, fetch_page, page_url, parse_main
from bot.sources.http import ChallengeError, FetchError, HttpClient, NotFoundError

DATA = Path(__file__).parent / "data"
NETFLIX = DATA / "netflix"
PAGES = DATA / "flixpatrol"
COUNTRIES_TSV = NETFLIX / "all-weeks-countries_cut.tsv"
GLOBAL_TSV = NETFLIX / "all-weeks-global_2022-03-02.tsv"
DAY = date(2026, 8, 2)


def tsv_weeks(path: Path, weeks: set[str] | None = None, countries: set[str] | None = None) -> bytes:
    """A cut of a real TSV: the header and the rows of these weeks (and countries); whole rows only."""
    lines = path.read_bytes().split(b"\n")
    header = lines[0].decode().split("\t")
    week, country = header.index("week"), header.index("country_iso2") if "country_iso2" in header else None
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.decode().split("\t")
        if weeks is not None and fields[week] not in weeks:
            continue
        if countries is not None and country is not None and fields[country] not in countries:
            continue
        kept.append(line)
    return b"\n".join(kept)


# --- a fake FlixPatrol ------------------------------------------------------------------------------

FAULTS = (
    "slow",  # answers after the client's timeout, every time
    "reset",  # hangs up twice, then answers
    "500",  # HTTP 500, every time
    "flaky-500",  # HTTP 500 once, then answers
    "429",  # 429 with Retry-After: 7 once, then answers
    "challenge",  # 403 + cf-mitigated: challenge, the "Just a moment..." page
    "challenge-200",  # the challenge page with HTTP 200 (what a proxy may pass on)
    "not-found",  # 200 "Page Not Found"
    "seven-rows",  # a chart with 7 rows
    "layout",  # a changed layout: no section the parser knows
    "repeated-rank",  # a rank twice
    "other-day",  # the page of another day (FlixPatrol redirected)
)


def titles(kind: str, region: str, day: date, shift: int = 0) -> list[str]:
    """Ten titles for a chart: the pool slides by one a day, so titles climb, enter and leave."""
    k = day.toordinal() + shift
    return [f"{kind} {(k + i) % 16:02d}" for i in range(10)]


class FakeFlixPatrol:
    """/top10/{service}/{slug}/{YYYY-MM-DD}/ pages in the newest layout, with injectable faults.

    `faults[(service, region)]` names a fault from FAULTS; `shift[(service, region)]` changes a page's
    content (the page is still filling); `hits` counts requests per (service, region, day)."""

    def __init__(self, era: str = "2025-11", delay: float = 0.0) -> None:
        self.era = era
        self.delay = delay
        self.faults: dict[tuple[str, str], str] = {}
        self.shift: dict[tuple[str, str], int] = {}
        self.hits: Counter[tuple[str, str, date]] = Counter()
        self.cache: dict[tuple[str, str, date, int], bytes] = {}

    def page(self, service: str, region: str, day: date, rows: int = 10) -> bytes:
        shift = self.shift.get((service, region), 0)
        key = (service, region, day, shift * 100 + rows)
        if key not in self.cache:
            html = render_page(
                self.era,
                region=region,
                date=day,
                movies=titles("Film", region, day, shift)[:rows],
                tv=titles("Show", region, day, shift)[:rows],
                points=True,
                service=service,
            )
            self.cache[key] = html.encode()
        return self.cache[key]

    async def handler(self, request: web.Request) -> web.StreamResponse:
        service, slug = request.match_info["service"], request.match_info["slug"]
        day = date.fromisoformat(request.match_info["day"])
        region = slug_to_code(slug)
        self.hits[(service, region, day)] += 1
        hit = self.hits[(service, region, day)]
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self.faults.get((service, region))
        html = "text/html"
        if fault == "slow":
            await asyncio.sleep(2)
        elif fault == "reset" and hit <= 2:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        elif fault == "500" or (fault == "flaky-500" and hit == 1):
            return web.Response(status=500, text="Internal Server Error")
        elif fault == "429" and hit == 1:
            return web.Response(status=429, headers={"Retry-After": "7"})
        elif fault == "challenge":
            body = (PAGES / "cloudflare-challenge.html").read_bytes()
            return web.Response(
                status=403, body=body, headers={"cf-mitigated": "challenge"}, content_type=html
            )
        elif fault == "challenge-200":
            return web.Response(body=(PAGES / "cloudflare-challenge.html").read_bytes(), content_type=html)
        elif fault == "not-found":
            return web.Response(body=(PAGES / "page-not-found.html").read_bytes(), content_type=html)
        elif fault == "seven-rows":
            return web.Response(body=self.page(service, region, day, rows=7), content_type=html)
        elif fault == "layout":
            return web.Response(body=(PAGES / "changed-layout.html").read_bytes(), content_type=html)
        elif fault == "repeated-rank":
            return web.Response(body=(PAGES / "repeated-rank.html").read_bytes(), content_type=html)
        elif fault == "other-day":
            return web.Response(body=self.page(service, region, date(2020, 1, 1)), content_type=html)
        return web.Response(body=self.page(service, region, day), content_type=html)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/top10/{service}/{slug}/{day}/", self.handler)
        return app


def flaresolverr_for(
    site: FakeFlixPatrol, calls: list[str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A local FlareSolverr stand-in (POST /v1) that 'browses' to the fake FlixPatrol in-process."""

    async def handler(request: web.Request) -> web.Response:
        payload = await request.json()
        calls.append(payload["url"])
        parts = payload["url"].rstrip("/").split("/")
        service, slug, day = parts[-3], parts[-2], date.fromisoformat(parts[-1])
        page = site.page(service, slug_to_code(slug), day).decode()
        solution = {"url": payload["url"], "status": 200, "headers": {}, "response": page}
        return web.json_response({"status": "ok", "message": "Challenge not detected!", "solution": solution})

    return handler


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[TestServer]]]:
    async with app_servers() as start:
        yield start


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http(sleeps: Sleeps) -> AsyncIterator[HttpClient]:
    async with HttpClient(sleep=sleeps, random=lambda: 1.0, total_timeout=0.3, max_attempts=3) as client:
        yield client


# --- Netflix ----------------------------------------------------------------------------------------


def netflix_app(files: dict[str, bytes], seen: list[tuple[str, str | None]]) -> web.Application:
    """Serves the two files with an ETag; answers 304 to a matching If-None-Match."""

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            return web.Response(status=404)
        etag = f'"{hash(files[name]) & 0xFFFFFFFF:x}"'
        seen.append((name, request.headers.get("If-None-Match")))
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=files[name], headers={"ETag": etag}, content_type="text/tab-separated-values"
        )

    app = web.Application()
    app.router.add_get("/top10/data/{name}", handler)
    return app


async def test_netflix_file_is_fetched_and_parsed(serve, http) -> None:
    seen: list[tuple[str, str | None]] = []
    files = {"all-weeks-global.tsv": GLOBAL_TSV.read_bytes()}
    server = await serve(netflix_app(files, seen))
    fetched = await netflix.fetch_file(http, base(server) + "top10/data", "global")
    assert fetched.name == "global" and fetched.result.status == 200
    assert fetched.snapshots is not None and len(fetched.snapshots) == 1400 // 10
    assert {s.key.region for s in fetched.snapshots} == {"world"}
    assert netflix.file_url("https://example.test/top10/data/", "countries") == (
        "https://example.test/top10/data/all-weeks-countries.tsv"
    )


async def test_netflix_304_skips_parsing_and_validators_wait_for_the_caller(serve, http, monkeypatch) -> None:
    seen: list[tuple[str, str | None]] = []
    body = tsv_weeks(COUNTRIES_TSV, {"2022-02-27"})
    server = await serve(netflix_app({"all-weeks-countries.tsv": body}, seen))
    parses: list[int] = []
    original = netflix.FILES["countries"]

    def counting_parse(data: bytes | str) -> list:
        parses.append(len(data))
        return original[1](data)

    monkeypatch.setitem(netflix.FILES, "countries", (original[0], counting_parse))
    url = base(server) + "top10/data/"
    first = await netflix.fetch_file(http, url, "countries")
    again = await netflix.fetch_file(http, url, "countries")  # not remembered yet: a full answer
    await http.remember(again.result)  # as the poller does once the charts are stored
    third = await netflix.fetch_file(http, url, "countries")
    assert first.snapshots is not None and len(first.snapshots) == 188
    assert again.snapshots is not None
    assert third.snapshots is None and third.result.not_modified
    assert len(parses) == 2  # the 304 cost no parsing
    assert [inm for _, inm in seen] == [None, None, third.result.headers["ETag"]]


async def test_netflix_unreadable_file_is_an_input_error_naming_the_file(serve, http) -> None:
    body = tsv_weeks(COUNTRIES_TSV, {"2022-02-27"})[:-40]  # a truncated last row
    server = await serve(netflix_app({"all-weeks-countries.tsv": body}, []))
    with pytest.raises(InputError, match=r"^all-weeks-countries\.tsv: line \d+: expected 8 fields"):
        await netflix.fetch_file(http, base(server) + "top10/data/", "countries")


async def test_netflix_missing_file_is_not_found(serve, http, sleeps) -> None:
    server = await serve(netflix_app({}, []))
    with pytest.raises(NotFoundError):
        await netflix.fetch_file(http, base(server) + "top10/data/", "global")
    assert sleeps == []


# --- FlixPatrol ---------------------------------------------------------------------------------------


def test_page_url_uses_flixpatrol_slugs() -> None:
    assert page_url("https://flixpatrol.com/", "netflix", "kr", DAY) == (
        "https://flixpatrol.com/top10/netflix/south-korea/2026-08-02/"
    )
    assert page_url("http://127.0.0.1:8080", "hbo-max", "world", DAY).endswith(
        "/top10/hbo-max/world/2026-08-02/"
    )
    assert all(code_to_slug(code) for code in flixpatrol.DEFAULT_REGIONS)
    assert len(flixpatrol.DEFAULT_REGIONS) == 95 and flixpatrol.DEFAULT_REGIONS[0] == "world"


@pytest.mark.parametrize("era", [e for e in ERAS if e != "streaming"])
@pytest.mark.parametrize("region", ["world", "kr"])
async def test_page_of_every_era_is_fetched_and_read(serve, http, era, region) -> None:
    site = FakeFlixPatrol(era)
    server = await serve(site.app())
    page = await fetch_page(http, base(server), "netflix", region, DAY)
    assert page.snapshots is not None and page.rows == 20
    assert [(s.key.region, s.key.category, s.key.date) for s in page.snapshots] == [
        (region, "movies", DAY),
        (region, "tv", DAY),
    ]
    assert [e.title for e in page.snapshots[0].entries] == titles("Film", region, DAY)
    assert site.hits == {("netflix", region, DAY): 1}


@pytest.mark.parametrize(
    ("fault", "error", "reason", "words"),
    [
        ("challenge", ChallengeError, None, "set FLARESOLVERR_URL"),
        ("challenge-200", PageError, "cloudflare", "Set FLARESOLVERR_URL"),
        ("not-found", PageError, "not-found", "Page Not Found"),
        ("seven-rows", PageError, "row-count", "has 7 ranked rows instead of 10"),
        ("layout", PageError, "layout", "layout may have changed"),
        ("repeated-rank", PageError, "repeated-rank", "is repeated"),
        ("other-day", PageError, "mismatch", "the page is for date 2020-01-01 but 2026-08-02 was asked for"),
        ("500", FetchError, None, "failed after 3 attempts: HTTP 500"),
        ("slow", FetchError, None, "within 0.3 s (timed out)"),
    ],
)
async def test_a_page_without_a_whole_chart_is_refused(serve, http, fault, error, reason, words) -> None:
    site = FakeFlixPatrol()
    site.faults[("netflix", "us")] = fault
    server = await serve(site.app())
    with pytest.raises(error) as caught:
        await fetch_page(http, base(server), "netflix", "us", DAY)
    assert words in str(caught.value)
    if reason:
        assert caught.value.reason == reason


@pytest.mark.parametrize(("fault", "hits"), [("reset", 3), ("flaky-500", 2), ("429", 2)])
async def test_transient_faults_are_retried(serve, http, sleeps, fault, hits) -> None:
    site = FakeFlixPatrol()
    site.faults[("netflix", "us")] = fault
    server = await serve(site.app())
    page = await fetch_page(http, base(server), "netflix", "us", DAY)
    # aiohttp itself silently retries a connection closed before any answer once
    assert page.rows == 20 and page.result.attempts == 2 and len(sleeps) == 1
    assert site.hits[("netflix", "us", DAY)] == hits
    if fault == "429":
        assert sleeps == [7.0]  # Retry-After, not the backoff


async def test_pages_go_through_flaresolverr_when_asked(serve, sleeps) -> None:
    site = FakeFlixPatrol()
    calls: list[str] = []
    app = web.Application()
    app.router.add_post("/v1", flaresolverr_for(site, calls))
    solver = await serve(app)
    async with HttpClient(sleep=sleeps, flaresolverr_url=base(solver)) as client:
        page = await fetch_page(client, "https://flixpatrol.test/", "netflix", "gb", DAY, browser=True)
    assert calls == ["https://flixpatrol.test/top10/netflix/united-kingdom/2026-08-02/"]
    assert page.snapshots is not None and page.snapshots[0].key.region == "gb"


# --- chartbot parse FILE --source flixpatrol ---------------------------------------------------------------


def test_parse_main_shows_what_the_parser_reads() -> None:
    out = io.StringIO()
    assert parse_main(PAGES / "2021-2023_country.html", "flixpatrol", False, out) == 0
    text = out.getvalue()
    assert "https://flixpatrol.com/top10/netflix/south-korea/2022-02-06/" in text
    assert "service netflix · region kr · date 2022-02-06" in text
    assert "TOP 10 TV Shows  [tv]" in text
    assert "   1. All of Us Are Dead" in text and "/title/all-of-us-are-dead/" in text


def test_parse_main_json() -> None:
    out = io.StringIO()
    parse_main(PAGES / "2025-11_world.html", "flixpatrol", True, out)
    document: dict[str, Any] = json.loads(out.getvalue())
    assert [c["category"] for c in document["charts"]] == ["movies", "tv"]
    assert document["charts"][0]["entries"][0]["points"] == 1217
    assert document["url"].endswith("/top10/netflix/world/2025-11-30/")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("seven-rows.html", "has 7 ranked rows"),
        ("cloudflare-challenge.html", "FLARESOLVERR_URL"),
        ("page-not-found.html", "Page Not Found"),
        ("no-such-file.html", "no such file"),
    ],
)
def test_parse_main_refuses_with_the_parsers_message(name, words) -> None:
    with pytest.raises(InputError, match=words):
        parse_main(PAGES / name, "flixpatrol", False, io.StringIO())
