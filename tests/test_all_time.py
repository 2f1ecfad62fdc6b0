"""Netflix's all-time lists (most-popular.tsv): the parser, the `all-time` period, and the detectors
replayed over every real version of the file, 2021-11-17 … 2026-07-22 (tests/data/netflix_most_popular)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest
from engines import both_engines

from bot.cli import build_parser, read_all
from bot.milestones import KINDS, AllTimeChange, Listing, detect_all_time, listings, rebased
from bot.model import (
    ALL_TIME,
    PERIOD_NAMES,
    PERIODS,
    WORLD,
    ChartError,
    ChartKey,
    Entry,
    InputError,
    Milestone,
    Snapshot,
    make_snapshot,
)
from bot.render import chart_name, milestone_text, period_text
from bot.sources.files import FORMATS, detect_format, parse_bytes, read_file
from bot.sources.netflix import MOST_POPULAR_COLUMNS, parse_most_popular_tsv

DATA = Path(__file__).parent / "data" / "netflix_most_popular"
VERSIONS = sorted(DATA.glob("most-popular_*.tsv"))
HTML = DATA / "most-popular_2023-06-01T132840_2e3af1728e.tsv"
FIRST = DATA / "most-popular_2021-11-17T011549_38fd39e8f8.tsv"
LAST_28 = DATA / "most-popular_2023-05-31T132450_e87563e993.tsv"
FIRST_91 = DATA / "most-popular_2023-07-26T062023_2a711e4b25.tsv"
CATEGORIES = {"movies-english", "movies-non-english", "tv-english", "tv-non-english"}


def day_of(path: Path) -> date:
    """A version is dated by when it was read: here, the day the scraper committed it."""
    return date.fromisoformat(path.name.split("_")[1][:10])


def by_category(snapshots: list[Snapshot]) -> dict[str, Snapshot]:
    return {s.key.category: s for s in snapshots}


# --- the parser -----------------------------------------------------------------------------------


def test_the_28_day_layout() -> None:
    lists = by_category(parse_most_popular_tsv(FIRST.read_bytes(), date(2021, 11, 17)))
    assert set(lists) == CATEGORIES
    for snapshot in lists.values():
        key = snapshot.key
        assert (key.source, key.service, key.region, key.period, key.date) == (
            "netflix",
            "netflix",
            WORLD,
            ALL_TIME,
            date(2021, 11, 17),
        )
        assert snapshot.complete
    squid = lists["tv-non-english"].entries[0]
    assert (squid.rank, squid.title, squid.season, squid.hours, squid.views, squid.window_days) == (
        1,
        "Squid Game",
        "Season 1",
        1_650_450_000,
        None,
        28,
    )
    assert lists["movies-english"].entries[0].title == "Bird Box"


def test_the_91_day_layout() -> None:
    lists = by_category(parse_most_popular_tsv(FIRST_91.read_bytes(), date(2023, 7, 26)))
    red_notice = lists["movies-english"].entries[0]
    assert (red_notice.title, red_notice.hours, red_notice.views, red_notice.runtime) == (
        "Red Notice",
        454_200_000,
        230_900_000,
        1.9667,
    )
    assert red_notice.window_days == 91
    # ranked by views since 2023: Netflix's rank is kept, and it follows views, not hours
    tv = lists["tv-english"].entries
    assert [e.title for e in tv[:2]] == ["Wednesday", "Stranger Things"]
    assert tv[0].views > tv[1].views and tv[0].hours < tv[1].hours
    assert [e.rank for e in tv] == list(range(1, 11))


def test_every_real_version_parses() -> None:
    assert len(VERSIONS) == 197
    layouts = set()
    for path in VERSIONS:
        if path == HTML:
            continue
        snapshots = parse_most_popular_tsv(path.read_bytes(), day_of(path))
        assert {s.key.category for s in snapshots} == CATEGORIES and all(s.complete for s in snapshots)
        layouts.add(snapshots[0].entries[0].window_days)
    assert layouts == {28, 91}


def test_columns_are_read_by_name() -> None:
    lines = FIRST_91.read_text().split("\n")
    order = [6, 3, 0, 5, 2, 4, 1]  # every column moved
    shuffled = "\n".join("\t".join(line.split("\t")[i] for i in order) for line in lines)
    assert parse_most_popular_tsv(shuffled, date(2023, 7, 26)) == parse_most_popular_tsv(
        FIRST_91.read_bytes(), date(2023, 7, 26)
    )
    with_more = "\n".join(line + ("\tnew_column" if n == 0 else "\tx") for n, line in enumerate(lines))
    assert parse_most_popular_tsv(with_more, date(2023, 7, 26))[0].entries[0].views == 230_900_000


def test_the_moved_permanently_body_is_refused() -> None:
    with pytest.raises(
        InputError, match=r"^line 1: this is a web page, not a table \('<a href=\"https://www"
    ):
        parse_most_popular_tsv(HTML.read_bytes(), date(2023, 6, 1))
    with pytest.raises(
        InputError, match=r"most-popular_2023-06-01.*: line 1: this is a web page, not a table"
    ):
        read_file(HTML, day=date(2023, 6, 1))


HEADER = "category\trank\tshow_title\tseason_title\thours_viewed_first_28_days"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "line 1: the file is empty"),
        ("null", "line 1: missing column(s) 'category', 'rank', 'show_title': 'null' is not the header"),
        (
            "category\trank\tshow_title\n",
            "line 1: missing column 'hours_viewed_first_28_days' or 'hours_viewed_first_91_days'",
        ),
        (HEADER + "\tviews_first_91_days\n", "line 1: figures for more than one window (28 and 91 days)"),
        (HEADER + "\nFilms (Klingon)\t1\tA\tN/A\t5\n", "line 2: category 'Films (Klingon)' is not one of"),
        (HEADER + "\nFilms (English)\tfirst\tA\tN/A\t5\n", "line 2: rank 'first' is not a whole number"),
        (HEADER + "\nFilms (English)\t11\tA\tN/A\t5\n", "line 2: rank 11 is outside 1..10"),
        (
            HEADER + "\nFilms (English)\t1\tA\tN/A\t5\nFilms (English)\t1\tB\tN/A\t4\n",
            "line 3: rank 1 is repeated",
        ),
        (HEADER + "\nFilms (English)\t1\tA\tN/A\t-5\n", "line 2: hours_viewed_first_28_days '-5' must not"),
        (HEADER + "\nFilms (English)\t1\tA\tN/A\n", "line 2: expected 5 fields, found 4"),
        (HEADER + "\n", "line 1: the file has no chart rows"),
    ],
)
def test_bad_files(body: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_most_popular_tsv(body.encode(), date(2024, 1, 1))
    assert str(raised.value).startswith(message)


# --- import: format detection, dating, the generic format ------------------------------------------


def test_detected_by_its_header_and_dated_by_the_caller(tmp_path: Path) -> None:
    assert "netflix-most-popular" in FORMATS
    for path in (FIRST, FIRST_91):
        assert detect_format(path.read_text().split("\n", 1)[0]) == "netflix-most-popular"
    assert {s.key.date for s in read_file(FIRST, day=date(2021, 11, 17))} == {date(2021, 11, 17)}
    assert {s.key.date for s in parse_bytes(FIRST.read_bytes())} == {date.today()}
    forced = parse_bytes(FIRST.read_bytes(), "netflix-most-popular", day=date(2022, 1, 2))
    assert forced == read_file(FIRST, day=date(2022, 1, 2))
    assert MOST_POPULAR_COLUMNS == ("category", "rank", "show_title")
    with pytest.raises(InputError, match="line 1: this is a web page"):
        detect_format("<!DOCTYPE html>")


def test_import_takes_a_date() -> None:
    args = build_parser().parse_args(["import", "--date", "2025-08-27", str(FIRST)])
    assert args.date == date(2025, 8, 27)
    assert build_parser().parse_args(["import", str(FIRST)]).date is None
    (snapshots,) = read_all([FIRST], None, args.date)
    assert {s.key.date for s in snapshots} == {date(2025, 8, 27)}
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["import", "--date", "27/08/2025", str(FIRST)])
    assert raised.value.code == 2


def test_the_generic_format_takes_all_time() -> None:
    text = (
        "date,region,category,rank,title,period,views\n"
        "2025-08-27,world,movies-english,1,KPop Demon Hunters,all-time,236000000\n"
        "2025-08-27,world,movies-english,2,Red Notice,all-time,230900000\n"
    )
    (snapshot,) = parse_bytes(text.encode())
    assert (snapshot.key.period, snapshot.key.date) == (ALL_TIME, date(2025, 8, 27))  # a Wednesday
    assert snapshot.entries[0].views == 236_000_000
    with pytest.raises(InputError, match="period 'forever' is not one of day, week, all-time"):
        parse_bytes(text.replace("all-time", "forever").encode())


def test_all_time_is_a_period_without_a_step() -> None:
    assert PERIOD_NAMES == ("day", "week", "all-time") and ALL_TIME not in PERIODS
    key = ChartKey("netflix", "netflix", WORLD, "tv-english", ALL_TIME, date(2025, 1, 1))
    assert make_snapshot(key, [Entry.make(1, "Wednesday", window_days=91)]).entries[0].window_days == 91
    with pytest.raises(ValueError, match="period 'all-time' has no step between periods"):
        _ = key.step
    assert ChartKey("netflix", "netflix", "us", "tv", "day", date(2025, 1, 1)).step.days == 1
    with pytest.raises(ChartError, match="period must be one of day, week, all-time"):
        make_snapshot(dataclasses.replace(key, period="month"), [Entry.make(1, "A")])
    assert Entry(1, "A", "a").window_days is None  # older callers build entries as before


# --- the detectors, replaying every real version ----------------------------------------------------


def replay(paths: list[Path]) -> tuple[list[Milestone], list[tuple[date, str]]]:
    """Each version against the last one read of the same list, in date order, as a store would."""
    found: list[Milestone] = []
    rebasings: list[tuple[date, str]] = []
    last: dict[str, dict] = {}
    for path in paths:
        try:
            snapshots = read_file(path, day=day_of(path))
        except InputError:
            continue  # the HTML body: nothing stored, the list before stays the one to compare with
        for snapshot in snapshots:
            change = AllTimeChange(snapshot.key, listings(snapshot), last.get(snapshot.key.category))
            if rebased(change):
                rebasings.append((snapshot.key.date, snapshot.key.category))
            found.extend(detect_all_time(change))
            last[snapshot.key.category] = change.listed
    return found, rebasings


@pytest.fixture(scope="module")
def history() -> tuple[list[Milestone], list[tuple[date, str]]]:
    return replay(VERSIONS)


def test_the_new_no1s_of_the_real_history(history) -> None:
    found, _ = history
    no1 = [
        (m.chart.date.isoformat(), m.chart.category, m.title, m.context["season"])
        for m in found
        if m.kind == "all_time_no1"
    ]
    assert no1 == [
        ("2021-12-01", "movies-english", "Red Notice", None),
        ("2022-04-20", "tv-english", "Bridgerton", "Season 2"),
        ("2022-06-15", "tv-english", "Stranger Things", "4"),
        ("2022-12-14", "movies-non-english", "Troll", None),
        ("2025-08-27", "movies-english", "KPop Demon Hunters", None),
    ]


def test_red_notice_passes_bird_box(history) -> None:
    found, _ = history
    (m,) = [m for m in found if m.kind == "all_time_no1" and m.title == "Red Notice"]
    assert (m.value, m.previous, m.chart.period) == (1, 2, ALL_TIME)
    assert {k: m.context[k] for k in ("measure", "figure", "window_days", "passed", "passed_figure")} == {
        "measure": "hours",
        "figure": 328_800_000,
        "window_days": 28,
        "passed": "Bird Box",
        "passed_figure": 282_020_000,
    }
    assert milestone_text(m) == (
        "Red Notice is now Netflix's most-watched English film ever: 328.8M hours in its first 28 days, "
        "passing Bird Box (282.0M)"
    )
    entered = [x for x in found if x.kind == "entered_all_time" and x.title == "Red Notice"]
    assert [(x.chart.date.isoformat(), x.value) for x in entered] == [("2021-11-24", 2)]


def test_kpop_demon_hunters_passes_red_notice(history) -> None:
    found, _ = history
    (m,) = [m for m in found if m.kind == "all_time_no1" and m.title == "KPop Demon Hunters"]
    assert (m.chart.date, m.chart.category, m.value, m.previous) == (
        date(2025, 8, 27),
        "movies-english",
        1,
        2,
    )
    assert (m.context["figure"], m.context["passed"], m.context["passed_figure"]) == (
        236_000_000,
        "Red Notice",
        230_900_000,
    )
    # by views, although Red Notice has more hours (454.2M against 393.3M)
    assert milestone_text(m) == (
        "KPop Demon Hunters is now Netflix's most-watched English film ever: 236.0M views in its first "
        "91 days, passing Red Notice (230.9M)"
    )
    assert m.key == "2025-08-27|all_time_no1|netflix|world|movies-english|all-time|kpop demon hunters"
    (entered,) = [x for x in found if x.kind == "entered_all_time" and x.title == "KPop Demon Hunters"]
    assert (entered.chart.date, entered.value) == (date(2025, 8, 6), 4)


def test_seasons_are_titles_of_their_own(history) -> None:
    found, _ = history
    (m,) = [m for m in found if m.kind == "all_time_no1" and m.title == "Bridgerton"]
    assert (m.context["passed"], m.context["passed_season"]) == ("Bridgerton", "Season 1")
    assert milestone_text(m) == (
        "Bridgerton: Season 2 is now Netflix's most-watched English series ever: 627.1M hours in its "
        "first 28 days, passing Bridgerton: Season 1 (625.5M)"
    )
    assert m.key.endswith("|bridgerton|season 2")
    stranger = [m for m in found if m.title == "Stranger Things"]
    assert {m.context["season"] for m in stranger} == {"4", "5"}


def test_the_first_version_is_a_baseline(history) -> None:
    found, _ = history
    assert min(m.chart.date for m in found) == date(2021, 11, 24)
    assert replay([FIRST]) == ([], [])


def test_the_2023_rebasing_is_no_flood(history) -> None:
    found, rebasings = history
    assert rebasings == [(date(2023, 7, 26), c) for c in sorted(CATEGORIES)]
    assert [m for m in found if m.chart.date == date(2023, 7, 26)] == []
    # what a naive comparison would have announced: ten "new" titles and a new No. 1 (Wednesday)
    old = by_category(read_file(LAST_28, day=day_of(LAST_28)))
    new = by_category(read_file(FIRST_91, day=day_of(FIRST_91)))
    appeared = sum(len(listings(new[c]).keys() - listings(old[c]).keys()) for c in CATEGORIES)
    assert appeared == 10
    naive = detect_all_time(
        AllTimeChange(
            new["tv-english"].key,
            strip_yardstick(listings(new["tv-english"])),
            strip_yardstick(listings(old["tv-english"])),
        )
    )
    assert ("all_time_no1", "Wednesday") in {(m.kind, m.title) for m in naive}
    # the first versions after it are compared with it, on the new yardstick
    after = [m for m in found if date(2023, 7, 26) < m.chart.date <= date(2023, 8, 23)]
    assert [(m.kind, m.title, m.value) for m in after] == [("entered_all_time", "Extraction 2", 10)]


def strip_yardstick(listed: dict) -> dict:
    return {ref: dataclasses.replace(item, window_days=None, views=None) for ref, item in listed.items()}


def test_no_flood_anywhere(history) -> None:
    """Every version changes a few places at most; keys are unique; the same news keeps its key."""
    found, _ = history
    per_version: dict[date, int] = {}
    for m in found:
        per_version[m.chart.date] = per_version.get(m.chart.date, 0) + 1
    assert max(per_version.values()) <= 3
    assert len({m.key for m in found}) == len(found) == 68
    again, _ = replay(VERSIONS)
    assert [m.key for m in again] == [m.key for m in found]
    assert {m.kind for m in found} == {"entered_all_time", "all_time_no1"} <= set(KINDS)


def test_the_same_version_read_again_is_no_news() -> None:
    first, later = day_of(FIRST_91), date(2023, 8, 1)
    (old,) = [s for s in read_file(FIRST_91, day=first) if s.key.category == "movies-english"]
    (new,) = [s for s in read_file(FIRST_91, day=later) if s.key.category == "movies-english"]
    assert detect_all_time(AllTimeChange(new.key, listings(new), listings(old))) == []


def listing(
    rank: int, title: str, views: int | None, window: int | None = 91
) -> tuple[tuple[str, str], Listing]:
    key = title.lower()
    return (key, ""), Listing(rank, key, title, None, views and views * 2, views, window)


def test_rebasing_rules() -> None:
    chart = ChartKey("netflix", "netflix", WORLD, "movies-english", ALL_TIME, date(2025, 1, 1))
    before = dict([listing(1, "A", 10), listing(2, "B", 9)])
    swapped = dict([listing(1, "B", 11), listing(2, "A", 10)])
    assert not rebased(AllTimeChange(chart, swapped, before))
    assert [m.kind for m in detect_all_time(AllTimeChange(chart, swapped, before))] == ["all_time_no1"]
    views_appear = dict([listing(1, "B", 11), listing(2, "A", 10)])
    hours_only = {ref: dataclasses.replace(item, views=None) for ref, item in before.items()}
    assert rebased(AllTimeChange(chart, views_appear, hours_only))
    other_window = dict([listing(1, "B", 11, 182), listing(2, "A", 10, 182)])
    assert rebased(AllTimeChange(chart, other_window, before))
    assert detect_all_time(AllTimeChange(chart, other_window, before)) == []
    assert not rebased(AllTimeChange(chart, before, None))


def test_a_title_entering_at_no1() -> None:
    chart = ChartKey("netflix", "netflix", WORLD, "movies-english", ALL_TIME, date(2025, 1, 1))
    before = dict([listing(1, "A", 10), listing(2, "B", 9)])
    after = dict([listing(1, "New", 12), listing(2, "A", 10), listing(3, "B", 9)])
    found = detect_all_time(AllTimeChange(chart, after, before))
    assert [(m.kind, m.value, m.previous) for m in found] == [
        ("entered_all_time", 1, None),
        ("all_time_no1", 1, None),
    ]
    assert milestone_text(found[1]) == (
        "New is now Netflix's most-watched English film ever: 12 views in its first 91 days, passing A (10)"
    )
    no_figures = {
        ref: dataclasses.replace(item, views=None, hours=None, window_days=None)
        for ref, item in after.items()
    }
    plain = detect_all_time(
        AllTimeChange(
            chart,
            no_figures,
            {r: dataclasses.replace(i, views=None, hours=None, window_days=None) for r, i in before.items()},
        )
    )
    assert [milestone_text(m) for m in plain] == [
        "New joins Netflix's all-time most popular English films at No. 1",
        "New is now Netflix's most-watched English film ever, passing A",
    ]


def test_all_time_chart_names() -> None:
    assert (
        chart_name("netflix", WORLD, "movies-english", ALL_TIME)
        == "🌍 Netflix all-time Top 10 · film (English)"
    )
    assert chart_name("disney", WORLD, "movies", ALL_TIME) == "🌍 Disney+ all-time Top 10 · film"
    assert (
        chart_name("netflix", WORLD, "movies-english", "week") == "🌍 Netflix global Top 10 · film (English)"
    )
    assert period_text(date(2025, 8, 27), ALL_TIME) == "as of Aug 27, 2025"
    assert period_text(date(2022, 2, 27), "week") == "week ending Feb 27, 2022"


@both_engines
def test_replaying_the_real_versions_through_the_store(capsys: pytest.CaptureFixture[str], new_db) -> None:
    """`chartbot replay` of every real version, each dated by its file name: the news the store keeps."""
    from bot.cli import main

    readable = [str(p) for p in VERSIONS if p != HTML]
    db = new_db(file=True)
    assert main(["replay", *readable, "--json", "--db", db]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    no1 = [(m["date"], m["title"], m["category"]) for m in found if m["kind"] == "all_time_no1"]
    assert ("2021-12-01", "Red Notice", "movies-english") in no1
    assert ("2025-08-27", "KPop Demon Hunters", "movies-english") in no1
    kpop = next(m for m in found if m["kind"] == "all_time_no1" and m["title"] == "KPop Demon Hunters")
    assert kpop["text"] == (
        "KPop Demon Hunters is now Netflix's most-watched English film ever: 236.0M views in its first "
        "91 days, passing Red Notice (230.9M)"
    )
    rebasing = [m for m in found if m["date"] == "2023-07-26"]
    assert rebasing == []  # Netflix restated its lists: no flood of "entered"
    assert len({m["key"] for m in found}) == len(found)
    # the newest version of a list, with its moves against the version before it (no fixed step)
    assert main(["top", "--category", "movies-english", "--period", "all-time", "--json", "--db", db]) == 0
    chart = json.loads(capsys.readouterr().out)
    assert chart["period"] == "all-time" and chart["entries"][0]["title"] == "KPop Demon Hunters"
    assert chart["entries"][0]["previous_rank"] is not None
