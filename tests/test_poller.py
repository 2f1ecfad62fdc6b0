"""The poller against local servers (127.0.0.1 only): schedules, catch-up, faults, health, the loop.

Netflix: cuts of the real TSVs (tests/data/netflix). FlixPatrol: SYNTHETIC pages (tests/flixpatrol_pages.py)
served by test_sources_fetch.FakeFlixPatrol, whose faults each end as designed: retried, reported or
refused, with no partial chart stored, no false `left_top10`, and the loop still running.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from engines import both_engines
from local_servers import Sleeps, base
from test_sources_fetch import (
    COUNTRIES_TSV,
    GLOBAL_TSV,
    FakeFlixPatrol,
    flaresolverr_for,
    netflix_app,
    serve,  # noqa: F401  (a fixture)
    tsv_weeks,
)

from bot import milestones as detector
from bot import poller as poller_module
from bot.cli import poll_main, status_main
from bot.model import InputError, Milestone
from bot.poller import Poller, chart_day, make_http_client
from bot.settings import Settings
from bot.sources.http import HttpClient
from bot.store import Store, StoreBusy, open_store
from bot.terminal import format_status

D = date(2026, 8, 2)  # a Sunday; the FlixPatrol chart day of most tests
MOST_POPULAR = {  # versions of Netflix's all-time lists, by the day they were read
    path.name[13:23]: path.read_bytes()
    for path in sorted((COUNTRIES_TSV.parent.parent / "netflix_most_popular").glob("most-popular_*.tsv"))
}
REGIONS = ("world", "us", "gb", "de", "fr", "kr", "jp", "br", "mx", "in", "es", "it")
COUNTRIES = REGIONS[1:]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, day: date, hour: int) -> Clock:
        self.now = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        return self


@pytest.fixture
async def store(new_db) -> AsyncIterator[Store]:
    async with await open_store(new_db()) as s:
        yield s


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http(sleeps: Sleeps) -> AsyncIterator[HttpClient]:
    async with HttpClient(sleep=sleeps, random=lambda: 1.0, total_timeout=0.3, max_attempts=2) as client:
        yield client


def fp_settings(server: Any, **changes: Any) -> Settings:
    return Settings(db_path=":memory:", sources=("flixpatrol",), flixpatrol_url=base(server), **changes)


def fp_poller(store: Store, http: HttpClient, settings: Settings, clock: Clock, **options: Any) -> Poller:
    return Poller(store, http, settings, clock=clock, regions=REGIONS, **options)


async def charts_on(store: Store, day: date) -> dict[tuple[str, str], int]:
    rows = await store.fetch_all(
        "SELECT s.region, s.category, count(e.rank) FROM charts c JOIN series s ON s.id = c.series_id "
        "JOIN entries e ON e.chart_id = c.id WHERE c.date = ? GROUP BY c.id, s.region, s.category",
        (day.isoformat(),),
    )
    return {(region, category): n for region, category, n in rows}


async def outbox(store: Store, **where: str) -> list[tuple[str, str, str]]:
    """(kind, region, date) of every milestone in the outbox, filtered by those fields."""
    stored = await store.charts.milestones(statuses=("pending", "sent", "skipped", "retracted"))
    rows = [(i.milestone.kind, i.milestone.chart.region, i.milestone.chart.date.isoformat()) for i in stored]
    fields = {"kind": 0, "region": 1, "date": 2}
    return [r for r in rows if all(r[fields[k]] == v for k, v in where.items())]


async def two_reads(p: Poller, clock: Clock, day: date, hour: int = 13) -> None:
    """The chart day is stored once two reads agree: two cycles an hour apart."""
    for h in (hour, hour + 1):
        clock.at(day, h)
        await p.poll_source("flixpatrol")


# --- Netflix --------------------------------------------------------------------------------------


@both_engines
async def test_poll_once_twice_prints_newest_week_then_nothing(serve, db_target) -> None:  # noqa: F811
    seen: list[tuple[str, str | None]] = []
    files = {"all-weeks-countries.tsv": COUNTRIES_TSV.read_bytes()}
    server = await serve(netflix_app(files, seen))
    settings = Settings(db_path=db_target, netflix_url=base(server) + "top10/data/")
    out, err = io.StringIO(), io.StringIO()
    assert await poll_main(settings, once=True, out=out, err=err) == 1  # the global file is missing
    lines = out.getvalue().splitlines()
    assert "all-weeks-global.tsv" in err.getvalue() and "404" in err.getvalue()
    assert lines and all(line.startswith("2022-02-27  ") for line in lines)
    kinds = Counter(line.split()[1] for line in lines)
    assert kinds["no1_countries"] >= 1 and kinds["reached_no1"] > 50
    async with await open_store(settings.db_path) as store:
        charts = await store.fetch_all("SELECT count(*), count(DISTINCT date) FROM charts")
        assert charts == [(2162, 15)]  # every week of the file
        before = await store.fetch_all("SELECT count(*) FROM outbox")
    out2, err2 = io.StringIO(), io.StringIO()
    await poll_main(settings, once=True, out=out2, err=err2)
    assert out2.getvalue() == ""
    assert [inm is not None for name, inm in seen if name == "all-weeks-countries.tsv"] == [False, True]
    async with await open_store(settings.db_path) as store:
        assert await store.fetch_all("SELECT count(*) FROM outbox") == before
        assert await store.fetch_all("SELECT count(*) FROM http_validators") == [(1,)]


@both_engines
async def test_unchanged_content_without_validators_ingests_nothing(serve, store, http) -> None:  # noqa: F811
    body = tsv_weeks(COUNTRIES_TSV, {"2022-02-13", "2022-02-20"})

    async def plain(request: web.Request) -> web.Response:  # no ETag, no Last-Modified
        if request.match_info["name"] != "all-weeks-countries.tsv":
            return web.Response(status=404)
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/data/{name}", plain)
    server = await serve(app)
    p = Poller(store, http, Settings(netflix_url=base(server) + "data/"))
    first = await p.poll_source("netflix")
    second = await p.poll_source("netflix")
    assert first.added == 376 and first.milestones
    assert (second.added, second.unchanged, second.milestones) == (0, 376, [])


@both_engines
async def test_catch_up_only_the_newest_week_is_news(serve, store, http) -> None:  # noqa: F811
    weeks = ["2022-01-30", "2022-02-06", "2022-02-13"]
    files = {"all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, set(weeks))}
    server = await serve(netflix_app(files, []))
    found: list[Milestone] = []
    p = Poller(store, http, Settings(netflix_url=base(server) + "top10/data/"), on_milestones=found.extend)
    report = await p.poll_source("netflix")
    assert report.added == 3 * 188
    assert {m.chart.date.isoformat() for m in found} == {"2022-02-13"}
    assert {d for _, _, d in await outbox(store)} == {"2022-02-13"}
    # a week later the file holds one more week: only it is stored, only it is news
    files["all-weeks-countries.tsv"] = tsv_weeks(COUNTRIES_TSV, {*weeks, "2022-02-20"})
    found.clear()
    report = await p.poll_source("netflix")
    assert (report.added, report.unchanged) == (188, 3 * 188)
    assert {m.chart.date.isoformat() for m in found} == {"2022-02-20"}
    assert "netflix/tv/week/2022-02-20: aggregates from 94 regions" in report.aggregates


@both_engines
async def test_region_drop_holds_aggregates_and_marks_unhealthy(serve, store, http) -> None:  # noqa: F811
    countries_all = {line.split(b"\t")[1].decode() for line in COUNTRIES_TSV.read_bytes().split(b"\n")[1:]}
    few = set(sorted(countries_all)[:40])  # 40 of 94 report the newest week
    body = (
        tsv_weeks(COUNTRIES_TSV, {"2022-01-30"})
        + b"\n"
        + tsv_weeks(COUNTRIES_TSV, {"2022-02-06"}, few).split(b"\n", 1)[1]
    )
    server = await serve(netflix_app({"all-weeks-countries.tsv": body}, []))
    p = Poller(store, http, Settings(netflix_url=base(server) + "top10/data/"))
    report = await p.poll_source("netflix")
    assert report.healthy is False and len(report.held) == 2
    assert "40 regions reported, fewer than 80% of the 94 of the period before" in report.held[0]
    kinds = {k for k, _, _ in await outbox(store)}
    assert "reached_no1" in kinds  # per-chart news from whole charts still goes out
    assert not kinds & {"no1_countries", "top10_countries", "record"}
    out = io.StringIO()
    rows = await store.sources.health()
    out.write(format_status(rows, ["netflix"]))
    text = out.getvalue()
    assert "netflix  UNHEALTHY" in text and "aggregate milestones are held back" in text
    # the next cycle costs a 304 and keeps the flag
    again = await p.poll_source("netflix")
    assert again.not_modified == 1 and again.healthy is None
    assert [r.healthy for r in await store.sources.health("netflix") if r.chart == "*"] == [False]


@both_engines
async def test_bad_file_is_reported_stores_nothing_and_is_read_again(serve, store, http) -> None:  # noqa: F811
    good = tsv_weeks(COUNTRIES_TSV, {"2022-02-20"})
    files = {"all-weeks-countries.tsv": good[:-30]}  # a truncated last row
    seen: list[tuple[str, str | None]] = []
    server = await serve(netflix_app(files, seen))
    p = Poller(store, http, Settings(netflix_url=base(server) + "top10/data/"))
    report = await p.poll_source("netflix")
    assert [(e.chart, e.kind) for e in report.errors] == [
        ("countries", "page"),
        ("global", "not-found"),
        ("most-popular", "not-found"),
    ]
    assert "all-weeks-countries.tsv: line" in report.errors[0].message
    assert await store.fetch_all("SELECT count(*) FROM charts") == [(0,)]
    assert await store.fetch_all("SELECT count(*) FROM http_validators") == [(0,)]
    assert report.healthy is False  # every read failed
    files["all-weeks-countries.tsv"] = good
    report = await p.poll_source("netflix")
    assert report.added == 188 and report.healthy is True


@pytest.mark.parametrize("failure", ["locked", "crash"])
@both_engines
async def test_validators_are_saved_only_after_the_country_news_is_stored(
    serve,  # noqa: F811
    store,
    http,
    monkeypatch,
    failure,
) -> None:
    """The file's validators are kept only once everything it led to is stored, country counts and
    their news included: a lock or a crash at that last step stores nothing, and the next poll (a full
    GET again) brings the week's "No. 1 in N countries" news after all."""
    files = {"all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, {"2022-02-13", "2022-02-20"})}
    seen: list[tuple[str, str | None]] = []
    server = await serve(netflix_app(files, seen))
    p = Poller(store, http, Settings(netflix_url=base(server) + "top10/data/"))
    real = detector.detect_countries
    calls = []

    def fails_once(change: Any) -> Any:
        calls.append(change)
        if len(calls) == 1:
            raise StoreBusy("database is locked") if failure == "locked" else RuntimeError("killed")
        return real(change)

    monkeypatch.setattr(detector, "detect_countries", fails_once)
    report = await p.poll_source("netflix")
    assert {e.kind for e in report.errors} == {
        "ingest",
        "not-found",
    } and report.aggregates == []  # no global file here
    assert await store.fetch_all("SELECT count(*) FROM charts") == [(0,)]  # nothing of the file
    assert await store.fetch_all("SELECT count(*) FROM http_validators") == [(0,)]
    report = await p.poll_source("netflix")  # a full GET again: no validator was kept
    assert report.added == 376 and len(report.aggregates) == 2
    assert any(m.kind == "no1_countries" for m in report.milestones)
    assert await store.fetch_all("SELECT count(*) FROM http_validators") == [(1,)]
    report = await p.poll_source("netflix")
    assert report.not_modified == 1
    assert [inm is None for name, inm in seen if name == "all-weeks-countries.tsv"] == [True, True, False]


async def test_the_all_time_lists_are_read_with_the_weekly_files_dated_by_the_day_read(
    serve,  # noqa: F811
    store,
    http,
) -> None:
    """most-popular.tsv carries no date: a version is dated by the poll's day; an unchanged list read
    on a later day is not a new version; a new No. 1 is news."""
    files = {"most-popular.tsv": MOST_POPULAR["2021-11-24"]}
    server = await serve(netflix_app(files, []))
    clock = Clock(datetime(2021, 11, 24, 15, tzinfo=UTC))
    p = Poller(store, http, Settings(netflix_url=base(server) + "top10/data/"), clock=clock)
    first = await p.poll_source("netflix")
    assert first.added == 4 and first.milestones == []  # the first version is the baseline
    (films,) = await store.charts.find_series(category="movies-english", period="all-time")
    assert films.latest_date == date(2021, 11, 24)
    clock.at(date(2021, 11, 25), 15)
    await http.forget(base(server) + "top10/data/most-popular.tsv")  # read in full again, unchanged
    again = await p.poll_source("netflix")
    assert (again.added, again.unchanged) == (0, 4)
    files["most-popular.tsv"] = MOST_POPULAR["2021-12-01"]
    clock.at(date(2021, 12, 1), 15)
    news = await p.poll_source("netflix")
    no1 = [m for m in news.milestones if m.kind == "all_time_no1"]
    assert [(m.title, m.chart.date, m.context["passed"]) for m in no1] == [
        ("Red Notice", date(2021, 12, 1), "Bird Box")
    ]


# --- FlixPatrol -----------------------------------------------------------------------------------


def test_chart_day_is_yesterday_until_noon_utc() -> None:
    assert chart_day(datetime(2026, 8, 2, 11, 59, tzinfo=UTC)) == date(2026, 8, 1)
    assert chart_day(datetime(2026, 8, 2, 12, 0, tzinfo=UTC)) == date(2026, 8, 2)
    assert chart_day(datetime(2026, 8, 2, 23, 0, tzinfo=UTC), settle_hour=6) == date(2026, 8, 2)


@both_engines
async def test_todays_pages_are_stored_once_two_reads_agree(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 2, 13, tzinfo=UTC))
    p = fp_poller(store, http, fp_settings(server), clock)
    site.shift[("netflix", "us")] = 1
    first = await p.poll_source("flixpatrol")
    assert (first.items, first.pending, first.added) == (12, 12, 0)
    assert await charts_on(store, D) == {}
    site.shift[("netflix", "us")] = 2  # the U.S. page is still filling
    clock.at(D, 14)
    second = await p.poll_source("flixpatrol")
    assert (second.pending, second.added) == (1, 22)
    assert ("us", "tv") not in await charts_on(store, D)
    clock.at(D, 15)
    third = await p.poll_source("flixpatrol")  # agrees with the second read; the others are done
    assert (third.items, third.added) == (1, 2)
    assert len(await charts_on(store, D)) == 24
    assert third.aggregates == [
        "netflix/movies/day/2026-08-02: aggregates from 11 regions",
        "netflix/tv/day/2026-08-02: aggregates from 11 regions",
    ]
    clock.at(D, 16)
    assert (await p.poll_source("flixpatrol")).items == 0  # nothing left to read today


@both_engines
async def test_before_noon_the_chart_day_is_yesterday(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    p = fp_poller(store, http, fp_settings(server), Clock(datetime(2026, 8, 3, 9, tzinfo=UTC)))
    await p.poll_source("flixpatrol")
    assert {day for _, _, day in site.hits} == {D}


@both_engines
async def test_pending_reads_survive_a_restart(serve, store, http) -> None:  # noqa: F811
    """`chartbot poll --once` from cron: every run is a new poller, the first read is in the store."""
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 2, 13, tzinfo=UTC))
    await fp_poller(store, http, fp_settings(server), clock).poll_source("flixpatrol")
    clock.at(D, 14)
    report = await fp_poller(store, http, fp_settings(server), clock).poll_source("flixpatrol")
    assert report.added == 24


@both_engines
async def test_a_read_left_pending_is_read_once_more_when_its_day_is_over(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 2, 23, tzinfo=UTC))
    found: list[Milestone] = []
    p = fp_poller(store, http, fp_settings(server), clock, on_milestones=found.extend)
    assert (await p.poll_source("flixpatrol")).pending == 12  # one read of the 2nd, late in the day
    clock.at(D + timedelta(days=1), 13)  # the 3rd is the chart day now: the 2nd is over, one read is final
    report = await p.poll_source("flixpatrol")
    assert report.added == 24 and report.pending == 12 and found == []
    assert {day for _, _, day in site.hits} == {D, D + timedelta(days=1)}
    assert len(await charts_on(store, D)) == 24


@both_engines
async def test_faults_end_as_designed_and_the_loop_goes_on(serve, store, http, sleeps) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 1, 13, tzinfo=UTC))
    p = fp_poller(store, http, fp_settings(server), clock)
    await two_reads(p, clock, D - timedelta(days=1))  # a whole day before: the baseline
    assert len(await charts_on(store, D - timedelta(days=1))) == 24
    faults = {
        "us": "slow",
        "gb": "reset",
        "de": "500",
        "fr": "429",
        "kr": "challenge",
        "jp": "not-found",
        "br": "seven-rows",
        "mx": "layout",
    }
    for region, fault in faults.items():
        site.faults[("netflix", region)] = fault
    sleeps.clear()
    await two_reads(p, clock, D)
    report = p.last_reports["flixpatrol"]
    stored = {region for region, _ in await charts_on(store, D)}
    assert stored == {"world", "gb", "fr", "in", "es", "it"}  # retried: reset, 429; whole pages
    errors = {e.chart: e for e in report.errors}
    assert set(errors) == {f"netflix/{r}" for r in ("us", "de", "kr", "jp", "br", "mx")}
    assert errors["netflix/us"].kind == "fetch" and "timed out" in errors["netflix/us"].message
    assert errors["netflix/de"].kind == "fetch" and "HTTP 500" in errors["netflix/de"].message
    assert errors["netflix/kr"].kind == "challenge" and "set FLARESOLVERR_URL" in errors["netflix/kr"].message
    assert errors["netflix/jp"].kind == "not-found" and "Page Not Found" in errors["netflix/jp"].message
    assert errors["netflix/br"].kind == "page" and "7 ranked rows" in errors["netflix/br"].message
    assert errors["netflix/mx"].kind == "page" and "layout" in errors["netflix/mx"].message
    assert 7.0 in sleeps  # Retry-After was honoured
    # nothing partial, nobody falsely "left" a chart whose page broke
    counts = await charts_on(store, D)
    assert set(counts.values()) == {10}
    left = {region for kind, region, _ in await outbox(store, date=D.isoformat()) if kind == "left_top10"}
    assert left <= {"world", "gb", "fr", "in", "es", "it"}
    assert report.waiting == [
        "netflix/movies/day/2026-08-02: 5 of 11 regions so far",
        "netflix/tv/day/2026-08-02: 5 of 11 regions so far",
    ]
    # settle time, still 5 of 11 countries: fewer than 80% of yesterday's 11, so the aggregates are
    # held back rather than posted wrong
    clock.at(D, 18)
    report = await p.poll_source("flixpatrol")
    assert report.items == 6 and report.healthy is False and len(report.held) == 2
    assert "5 regions reported, fewer than 80% of the 11 of the period before" in (report.note or "")
    assert not {k for k, _, _ in await outbox(store, region="world", date=D.isoformat())} & {
        "no1_countries",
        "top10_countries",
    }
    # the faults clear: the next cycles read only what is missing, and the loop is still running
    site.faults.clear()
    clock.at(D, 19)
    await p.poll_source("flixpatrol")
    clock.at(D, 20)
    final = await p.poll_source("flixpatrol")
    assert len(await charts_on(store, D)) == 24
    assert final.healthy is True and len(final.aggregates) == 2


@both_engines
async def test_pages_that_parse_to_nothing_make_the_source_unhealthy(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 1, 13, tzinfo=UTC))
    p = fp_poller(store, http, fp_settings(server), clock)
    await two_reads(p, clock, D - timedelta(days=1))
    for region in REGIONS:
        site.faults[("netflix", region)] = "layout"
    await two_reads(p, clock, D)
    report = p.last_reports["flixpatrol"]
    assert report.healthy is False and "no page of 2026-08-02 could be read" in (report.note or "")
    assert report.held and report.added == 0
    out = io.StringIO()
    await status_main_on(store, out)
    assert "flixpatrol  UNHEALTHY" in out.getvalue()
    assert "netflix/us" in out.getvalue() and "layout may have changed" in out.getvalue()


async def status_main_on(store: Store, out: io.StringIO) -> None:
    out.write(format_status(await store.sources.health(), ["flixpatrol"]))


@both_engines
async def test_aggregates_wait_for_the_regions_then_settle(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 8, 1, 13, tzinfo=UTC))
    p = fp_poller(store, http, fp_settings(server), clock)
    await two_reads(p, clock, D - timedelta(days=1))
    site.faults[("netflix", "it")] = "500"
    await two_reads(p, clock, D)
    report = p.last_reports["flixpatrol"]
    assert report.aggregates == [] and report.waiting == [
        "netflix/movies/day/2026-08-02: 10 of 11 regions so far",
        "netflix/tv/day/2026-08-02: 10 of 11 regions so far",
    ]
    clock.at(D, 18)  # six hours after the day opened: settle with what came in
    report = await p.poll_source("flixpatrol")
    assert report.aggregates == [
        "netflix/movies/day/2026-08-02: aggregates from 10 of 11 regions",
        "netflix/tv/day/2026-08-02: aggregates from 10 of 11 regions",
    ]
    found = [m for m in report.milestones if m.kind == "no1_countries"]
    assert found and all(m.context["reporting"] == 10 for m in found)
    clock.at(D, 19)
    assert (await p.poll_source("flixpatrol")).aggregates == []  # detected once


@both_engines
async def test_catch_up_after_downtime_stores_missed_days_as_history(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    server = await serve(site.app())
    clock = Clock(datetime(2026, 7, 29, 13, tzinfo=UTC))
    found: list[Milestone] = []
    p = fp_poller(store, http, fp_settings(server), clock, on_milestones=found.extend)
    await two_reads(p, clock, D - timedelta(days=4))
    found.clear()
    clock.at(D, 13)  # back after three days away
    report = await p.poll_source("flixpatrol")
    assert {day for _, _, day in site.hits} == {D - timedelta(days=n) for n in range(5)}
    assert report.added == 3 * 24 and report.pending == 12 and found == []  # history, no news
    clock.at(D, 14)
    report = await p.poll_source("flixpatrol")
    assert report.added == 24 and found
    assert {m.chart.date for m in found} == {D}


@both_engines
async def test_services_and_flaresolverr(serve, store, http) -> None:  # noqa: F811
    site = FakeFlixPatrol()
    calls: list[str] = []
    app = web.Application()
    app.router.add_post("/v1", flaresolverr_for(site, calls))
    solver = await serve(app)
    settings = Settings(
        sources=("flixpatrol",),
        flixpatrol_url="https://flixpatrol.test/",  # only ever sent to the local FlareSolverr as data
        flixpatrol_services=("netflix", "disney"),
        flaresolverr_url=base(solver) + "v1",
    )
    async with make_http_client(settings, store, sleep=Sleeps()) as client:
        assert client.flaresolverr_url == base(solver).rstrip("/")
        clock = Clock(datetime(2026, 8, 2, 13, tzinfo=UTC))
        p = Poller(store, client, settings, clock=clock, regions=("world", "us"))
        await two_reads(p, clock, D)
    assert len(calls) == 8 and "https://flixpatrol.test/top10/disney/united-states/2026-08-02/" in calls
    services = await store.fetch_all("SELECT DISTINCT service FROM series ORDER BY 1")
    assert services == [("disney",), ("netflix",)]


# --- the loop --------------------------------------------------------------------------------------


@both_engines
async def test_the_loop_survives_any_exception_and_stops_cleanly(serve, store, http, monkeypatch) -> None:  # noqa: F811
    files = {"all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, {"2022-02-20"})}
    server = await serve(netflix_app(files, []))
    cycles: list[str] = []
    real_run = poller_module.NetflixCycle.run

    async def sometimes_broken(self: Any) -> None:
        cycles.append("run")
        if len(cycles) == 1:
            raise ZeroDivisionError("a bug in a cycle")
        if len(cycles) == 2:
            raise KeyError("another one")
        await real_run(self)

    monkeypatch.setattr(poller_module.NetflixCycle, "run", sometimes_broken)
    waits: list[float] = []
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) >= 3:
            done.set()
        await asyncio.sleep(0)

    settings = Settings(netflix_url=base(server) + "top10/data/", poll_interval=900)
    p = Poller(store, http, settings, sleep=sleep)
    task = p.start()
    await asyncio.wait_for(done.wait(), 10)
    await p.stop()
    assert task.cancelled() and len(cycles) >= 3 and waits[:3] == [900, 900, 900]
    assert len(await charts_on(store, date(2022, 2, 20))) == 188  # the third cycle worked


@both_engines
async def test_callbacks_that_fail_do_not_stop_anything(serve, store, http) -> None:  # noqa: F811
    files = {"all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, {"2022-02-13", "2022-02-20"})}
    server = await serve(netflix_app(files, []))
    stored: list[int] = []

    def boom(found: list[Milestone]) -> None:
        raise RuntimeError("a channel is gone")

    async def on_stored(report: Any) -> None:
        stored.append(report.added)

    p = Poller(
        store,
        http,
        Settings(netflix_url=base(server) + "top10/data/"),
        on_milestones=boom,
        on_stored=on_stored,
    )
    report = await p.run_once()
    assert report.added == 376 and report.milestones and stored == [376]


@both_engines
async def test_status_prints_a_readable_table(serve, db_target) -> None:  # noqa: F811
    files = {
        "all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, {"2022-02-20"}),
        "all-weeks-global.tsv": tsv_weeks(GLOBAL_TSV, {"2022-02-20"}),
        "most-popular.tsv": MOST_POPULAR["2022-02-23"],
    }
    server = await serve(netflix_app(files, []))
    settings = Settings(db_path=db_target, netflix_url=base(server) + "top10/data/")
    await poll_main(settings, once=True, out=io.StringIO())
    out = io.StringIO()
    assert await status_main(settings, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["SOURCE", "STATE", "LAST", "SUCCESS", "CHARTS", "FAILING", "NOTE"]
    assert lines[1].split()[:2] == ["netflix", "ok"]
    assert any(line.split()[:3] == ["netflix", "countries", "1880"] for line in lines)
    assert any(line.split()[:3] == ["netflix", "global", "40"] for line in lines)


# --- the command line, in-process -------------------------------------------------------------------


async def run_cli(argv: list[str]) -> tuple[int, str]:
    from bot import cli

    args = cli.build_parser().parse_args(argv)
    out = io.StringIO()
    return await cli.COMMANDS[args.command](args, out), out.getvalue()


@both_engines
async def test_cli_poll_once_twice_then_status(serve, db_target, monkeypatch) -> None:  # noqa: F811
    weeks = {"2022-02-06", "2022-02-13", "2022-02-20"}
    files = {
        "all-weeks-countries.tsv": tsv_weeks(COUNTRIES_TSV, weeks),
        "all-weeks-global.tsv": tsv_weeks(GLOBAL_TSV, weeks),
        "most-popular.tsv": MOST_POPULAR["2022-02-23"],
    }
    server = await serve(netflix_app(files, []))
    monkeypatch.setenv("NETFLIX_TOP10_URL", base(server) + "top10/data/")
    monkeypatch.delenv("CHARTBOT_SOURCES", raising=False)
    db = db_target
    code, first = await run_cli(["poll", "--once", "--db", db])
    assert code == 0 and first
    assert {line[:10] for line in first.splitlines()} == {"2022-02-20"}
    assert "No. 1" in first  # the rendered sentences, not a debug dump
    code, second = await run_cli(["poll", "--once", "--db", db])
    assert (code, second) == (0, "")
    code, status = await run_cli(["status", "--db", db])
    assert code == 0 and status.splitlines()[1].split()[:2] == ["netflix", "ok"]


async def test_cli_status_without_a_database_is_a_user_error(tmp_path) -> None:
    with pytest.raises(InputError, match="no chart history at"):
        await run_cli(["status", "--db", str(tmp_path / "none.sqlite3")])


async def test_cli_parse_a_saved_page() -> None:
    page = COUNTRIES_TSV.parent.parent / "flixpatrol" / "2023-2024_world.html"
    code, text = await run_cli(["parse", str(page), "--source", "flixpatrol"])
    assert code == 0 and "region world · date 2024-01-01" in text
    code, text = await run_cli(["parse", str(page), "--json"])
    assert code == 0 and text.startswith('{"charts": [')
