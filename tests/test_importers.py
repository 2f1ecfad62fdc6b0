"""File importers on real Netflix data (tests/data, see SOURCE.md there) and on small broken files."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.data import sample_files
from bot.model import InputError, Snapshot
from bot.sources import files, netflix
from bot.sources.files import FORMATS, detect_format, parse_bytes, read_file

DATA = Path(__file__).parent / "data"
COUNTRIES = DATA / "netflix" / "all-weeks-countries_cut.tsv"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
US_DAILY = DATA / "netflix_us_daily" / "netflix_daily_top_10.csv"
AOUAD = "all of us are dead"


@pytest.fixture(scope="module")
def countries() -> list[Snapshot]:
    return netflix.parse_countries_tsv(COUNTRIES.read_bytes())


@pytest.fixture(scope="module")
def world() -> list[Snapshot]:
    return netflix.parse_global_tsv(GLOBAL.read_bytes())


@pytest.fixture(scope="module")
def us_daily() -> list[Snapshot]:
    return read_file(US_DAILY)


def charts_on(snapshots: list[Snapshot], day: str, category: str) -> list[Snapshot]:
    return [s for s in snapshots if s.key.date == date.fromisoformat(day) and s.key.category == category]


def ranks_of(snapshots: list[Snapshot], key: str) -> Counter[int]:
    """How many charts have the title at each rank."""
    return Counter(s.best_ranks()[key] for s in snapshots if key in s.best_ranks())


def error_of(data: bytes | str, format: str | None = None, name: str = "bad.csv") -> str:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(InputError) as info:
        parse_bytes(raw, format, name=name)
    return str(info.value)


# --- Netflix countries TSV ---------------------------------------------------------------------


def test_countries_cut_has_every_chart(countries: list[Snapshot]) -> None:
    # 94 countries: TV only for the 7 weeks of the first window, TV and films for the 8 of the second.
    assert len(countries) == 94 * 7 + 94 * 8 * 2
    assert all(s.complete for s in countries)
    assert len({s.key.region for s in countries}) == 94
    weeks = sorted({s.key.date for s in countries})
    assert len(weeks) == 15
    assert weeks[0] == date(2021, 8, 29) and weeks[-1] == date(2022, 2, 27)
    assert all(day.isoweekday() == 7 for day in weeks)
    per_category = Counter(s.key.category for s in countries)
    assert per_category == {"tv": 94 * 15, "movies": 94 * 8}


def test_countries_chart_keys(countries: list[Snapshot]) -> None:
    key = countries[0].key
    assert (key.source, key.service, key.period) == ("netflix", "netflix", "week")
    regions = {s.key.region for s in countries}
    assert {"us", "kr", "gb", "re"} <= regions  # Réunion's code, lower-cased
    assert all(re.fullmatch("[a-z]{2}", r) for r in regions)


def test_countries_sorted_by_date_service_region_category(countries: list[Snapshot]) -> None:
    order = [(s.key.date, s.key.service, s.key.region, s.key.category) for s in countries]
    assert order == sorted(order)


@pytest.mark.parametrize(
    ("week", "no1", "top10"),
    [("2022-01-30", 29, 91), ("2022-02-06", 63, 94), ("2022-02-13", 35, 94), ("2022-02-20", 9, 89)],
)
def test_all_of_us_are_dead_in_countries(countries: list[Snapshot], week: str, no1: int, top10: int) -> None:
    charts = charts_on(countries, week, "tv")
    assert len(charts) == 94
    ranks = ranks_of(charts, AOUAD)
    assert ranks[1] == no1
    assert ranks.total() == top10


def test_squid_game_no1_in_93_countries(countries: list[Snapshot]) -> None:
    charts = charts_on(countries, "2021-10-03", "tv")
    assert ranks_of(charts, "squid game")[1] == 93


def test_countries_entries(countries: list[Snapshot]) -> None:
    us = next(s for s in charts_on(countries, "2022-02-06", "tv") if s.key.region == "us")
    entry = next(e for e in us.entries if e.title_key == AOUAD)
    assert entry.season == "Season 1"
    assert entry.weeks_reported == 2
    assert (entry.hours, entry.views, entry.runtime, entry.points) == (None, None, None, None)
    films = charts_on(countries, "2022-02-06", "movies")
    assert all(e.season is None for s in films for e in s.entries)  # "N/A"


def test_countries_reads_columns_by_name() -> None:
    text = (
        "week\tweekly_views\tcategory\tcountry_name\tshow_title\tweekly_rank\tcountry_iso2\textra\n"
        "2023-07-02\t1200000\tTV\tKorea\tSquid Game\t1\tKR\tx\n"
    )
    [snapshot] = netflix.parse_countries_tsv(text)
    assert snapshot.key.region == "kr" and snapshot.key.category == "tv"
    assert snapshot.entries[0].views == 1_200_000
    assert snapshot.entries[0].season is None and snapshot.entries[0].weeks_reported is None


# --- Netflix global TSV ------------------------------------------------------------------------


def test_global_2022_layout(world: list[Snapshot]) -> None:
    assert len(world) == 35 * 4
    assert {s.key.region for s in world} == {"world"}
    assert {s.key.category for s in world} == {
        "movies-english",
        "movies-non-english",
        "tv-english",
        "tv-non-english",
    }
    [chart] = charts_on(world, "2022-02-06", "tv-non-english")
    top = chart.entries[0]
    assert (top.rank, top.title, top.season, top.hours) == (1, "All of Us Are Dead", "Season 1", 236_230_000)
    assert (top.views, top.runtime) == (None, None)


@pytest.mark.parametrize(
    ("week", "hours"),
    [("2022-01-30", 124_790_000), ("2022-02-13", 113_240_000), ("2022-02-27", 38_860_000)],
)
def test_global_hours(world: list[Snapshot], week: str, hours: int) -> None:
    [chart] = charts_on(world, week, "tv-non-english")
    assert (chart.entries[0].title_key, chart.entries[0].hours) == (AOUAD, hours)


GLOBAL_2023 = (
    "week\tcategory\tweekly_rank\tshow_title\tseason_title\tweekly_hours_viewed\truntime\t"
    "cumulative_weeks_in_top_10\tweekly_views\tis_staggered_launch\n"
    "2023-07-02\tTV (English)\t1\tThe Witcher\tThe Witcher: Season 3\t92100000\t5.9667\t1\t15400000\tNo\n"
    "2023-07-02\tTV (English)\t2\tNever Have I Ever\tNever Have I Ever: Season 4\t14500000\t"
    "3.9\t4\t3700000\tNo\n"
    "2022-02-27\tTV (Non-English)\t1\tAll of Us Are Dead\tAll of Us Are Dead: Season 1\t38860000\t\t5\t\t\n"
)


def test_global_2023_layout_keeps_views_and_runtime() -> None:
    old, new = netflix.parse_global_tsv(GLOBAL_2023)  # sorted by date
    witcher, never = new.entries
    assert (witcher.title, witcher.season, witcher.hours) == ("The Witcher", "Season 3", 92_100_000)
    assert (witcher.views, witcher.runtime, witcher.weeks_reported) == (15_400_000, 5.9667, 1)
    assert (never.views, never.runtime) == (3_700_000, 3.9)
    assert (old.entries[0].views, old.entries[0].runtime, old.entries[0].hours) == (None, None, 38_860_000)
    assert not new.complete  # a partial chart is kept; completeness is the poller's call


# --- Netflix U.S. daily CSV -------------------------------------------------------------------


def test_us_daily(us_daily: list[Snapshot]) -> None:
    assert len(us_daily) == 710
    assert all(s.complete for s in us_daily)
    assert {s.key.series for s in us_daily} == {("netflix", "us", "overall", "day")}
    assert {s.key.source for s in us_daily} == {"file"}
    assert (us_daily[0].key.date, us_daily[-1].key.date) == (date(2020, 4, 1), date(2022, 3, 11))


def test_us_daily_all_of_us_are_dead(us_daily: list[Snapshot]) -> None:
    by_day = {s.key.date.isoformat(): s for s in us_daily}
    debut = next(e for e in by_day["2022-01-29"].entries if e.title_key == AOUAD)
    assert (debut.rank, debut.points, debut.weeks_reported) == (3, 8, 1)
    days_at_no1 = [d for d, s in by_day.items() if s.entries[0].title_key == AOUAD]
    assert days_at_no1 == ["2022-02-04"]


def test_us_daily_repairs_mojibake_and_keeps_ellipsis(us_daily: list[Snapshot]) -> None:
    assert "Dâ\x80\x99Elia".encode() in US_DAILY.read_bytes()
    titles = {e.title for s in us_daily for e in s.entries}
    assert "Chris D'Elia: No Pain" in titles
    assert not any("â" in t for t in titles)
    assert "Tiger King: Murder, Mayhem …" in titles
    assert us_daily[0].entries[0].title == "Tiger King: Murder, Mayhem …"


# --- the generic format -----------------------------------------------------------------------

GENERIC = """date,region,category,rank,title,season,points,hours,views,notes
2022-02-06,kr,tv,2,Our Blues,,,,,ignored
2022-02-06,kr,tv,1,All of Us Are Dead,Season 1,9.5,1000,20,
2022-02-06,world,movies,1,The Tinder Swindler,,,,,
"""


def test_generic_csv() -> None:
    tv, movies = parse_bytes(GENERIC.encode())  # sorted: region 'kr' < 'world'
    assert tv.key == movies.key.__class__("file", "netflix", "kr", "tv", "day", date(2022, 2, 6))
    first = tv.entries[0]
    assert (first.title, first.season, first.points, first.hours, first.views) == (
        "All of Us Are Dead",
        "Season 1",
        9.5,
        1000,
        20,
    )
    assert tv.entries[1].season is None
    assert movies.key.region == "world"


def test_generic_csv_optional_columns_and_crlf() -> None:
    text = "Title,Rank,Category,Region,Date,Period,Service\r\nSquid Game,1,TV,KR,2021-10-03,week,Netflix"
    [chart] = parse_bytes(text.encode())
    assert chart.key.series == ("netflix", "kr", "tv", "week")
    assert chart.entries[0].title == "Squid Game"


def test_jsonl() -> None:
    lines = [
        {"date": "2022-02-06", "region": "us", "category": "tv", "rank": 1, "title": "Ozark", "extra": [1]},
        {"date": "2022-02-06", "region": "us", "category": "tv", "rank": "2", "title": 1917, "hours": 5.0},
        {
            "date": "2022-02-06",
            "region": "us",
            "category": "tv",
            "rank": 3.0,
            "title": "X",
            "service": "hbo-max",
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    hbo_chart, netflix_chart = parse_bytes(text.encode())  # sorted by service
    assert [e.title for e in netflix_chart.entries] == ["Ozark", "1917"]
    assert netflix_chart.entries[1].hours == 5
    assert hbo_chart.key.service == "hbo-max"


entry_rows = st.lists(
    st.tuples(
        st.sampled_from(["us", "kr", "world"]),
        st.sampled_from(["tv", "movies"]),
        st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20),
    ),
    min_size=1,
    max_size=30,
)


@given(entry_rows)
@settings(max_examples=50, deadline=None)
def test_generic_csv_round_trip(rows: list[tuple[str, str, str]]) -> None:
    """Whatever valid charts are written as CSV come back, rank for rank."""
    ranks: Counter[tuple[str, str]] = Counter()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "region", "category", "rank", "title"])
    expected: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for region, category, title in rows:
        if ranks[region, category] == 10:
            continue
        ranks[region, category] += 1
        writer.writerow(["2022-02-06", region, category, ranks[region, category], title])
        expected.setdefault((region, category), []).append((ranks[region, category], title))
    got = {
        (s.key.region, s.key.category): [(e.rank, e.title) for e in s.entries]
        for s in parse_bytes(out.getvalue().encode())
    }
    assert got == expected


# --- detection, encodings, forced formats, samples --------------------------------------------


@pytest.mark.parametrize(
    ("path", "format"),
    [(COUNTRIES, "netflix-countries"), (GLOBAL, "netflix-global"), (US_DAILY, "netflix-us-daily")],
)
def test_detect_real_files(path: Path, format: str) -> None:
    first_line = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert detect_format(first_line) == format


@pytest.mark.parametrize(
    ("line", "format"),
    [
        ("date,region,category,rank,title", "generic-csv"),
        ("\ufeffTitle, Rank ,date,region,category,notes\r", "generic-csv"),
        ('  {"date": "2022-02-06"}', "jsonl"),
        (GLOBAL_2023.split("\n", 1)[0], "netflix-global"),
    ],
)
def test_detect_format(line: str, format: str) -> None:
    assert detect_format(line) == format
    assert format in FORMATS


@pytest.mark.parametrize(
    "line",
    [
        "category\tposition\tshow_title\tseason_title\thours_viewed_first_28_days",
        "date,region,rank,title",
        "",
    ],
)
def test_detect_unknown_header(line: str) -> None:
    with pytest.raises(
        InputError, match=r"^line 1: unrecognised header .* expected one of: netflix-countries"
    ):
        detect_format(line)


def test_bom_and_no_trailing_newline() -> None:
    data = b"\xef\xbb\xbf" + GENERIC.strip().encode()
    assert len(parse_bytes(data)) == 2
    tsv = b"\xef\xbb\xbf" + GLOBAL.read_bytes()
    assert len(parse_bytes(tsv)) == 140


def test_forced_format() -> None:
    line = '{"date": "2022-02-06", "region": "us", "category": "tv", "rank": 1, "title": "Ozark"}\n'
    assert len(parse_bytes(line.encode(), format="jsonl")) == 1
    message = error_of(GLOBAL.read_bytes(), format="netflix-countries", name="global.tsv")
    assert message == "global.tsv: line 1: missing column(s) 'country_iso2'"
    with pytest.raises(InputError, match="unknown format 'xls'; expected one of netflix-countries"):
        parse_bytes(b"", format="xls")


def test_read_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "netflix_daily.csv"
    path.write_text("As of,Rank,Title\n2022-01-01,1,A\n2022-01-01,x,B\n")
    with pytest.raises(InputError) as info:
        read_file(path)
    assert str(info.value) == f"{path}: line 3: Rank 'x' is not a whole number"
    with pytest.raises(InputError, match="cannot read the file"):
        read_file(tmp_path / "missing.csv")


def test_sample_files() -> None:
    paths = sample_files()
    assert [p.name for p in paths] == ["us_daily_sample.csv", "countries_sample.tsv", "global_sample.tsv"]
    us, countries, world = (read_file(p) for p in paths)
    assert len(us) == 32 and len(countries) == 94 * 4 and len(world) == 4 * 6
    assert all(p.stat().st_size < 300_000 for p in paths)
    feb6 = charts_on(countries, "2022-02-06", "tv")
    assert ranks_of(feb6, AOUAD)[1] == 63


# --- every error names its line -----------------------------------------------------------------


def test_truncated_tsv() -> None:
    data = COUNTRIES.read_bytes()
    cut = data[: data.rindex(b"\t", 0, len(data) - 3)]  # the last row loses its last two fields
    assert error_of(cut, name="countries.tsv") == (
        "countries.tsv: line 21621: expected 8 fields, found 6 (a truncated row?)"
    )


def test_truncated_us_daily() -> None:
    data = US_DAILY.read_bytes()
    assert data.endswith(b'\r\n2022-03-11,10,10,-,Shrek,Movie,,"May 1, 2018",7,12\r\n')
    cut = data[: data.rindex(b",Movie,")]  # the last row keeps its first five fields
    assert error_of(cut, name="netflix_daily.csv") == (
        "netflix_daily.csv: line 7101: expected 10 fields, found 5 (a truncated row?)"
    )
    inside_quotes = data[: data.rindex(b'"May 1') + 6]
    assert error_of(inside_quotes, name="netflix_daily.csv") == (
        "netflix_daily.csv: line 7101: a quoted field is not closed (a truncated row?)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("\r\n  \n", "line 1: the file is empty"),
        ("date,region,category,rank,title\n", "line 1: the file has no chart rows"),
        ("date,region,category,rank\n2022-02-06,us,tv,1\n", "line 1: unrecognised header"),
        ("date,region,category,rank,title\n2022-02-06,us,tv,11,A\n", "line 2: rank 11 is outside 1..10"),
        ("date,region,category,rank,title\n2022-02-06,us,tv,0,A\n", "line 2: rank 0 is outside 1..10"),
        ("date,region,category,rank,title\n2022-02-06,us,tv,x,A\n", "line 2: rank 'x' is not a whole number"),
        (
            "date,region,category,rank,title\n2022-02-06,us,tv,1.5,A\n",
            "line 2: rank '1.5' is not a whole number",
        ),
        (
            "date,region,category,rank,title\n2022-02-06,us,tv,1,A\n\n2022-02-06,us,tv,1,B\n",
            "line 4: rank 1 is repeated in chart netflix/us/tv/day/2022-02-06 (first on line 2)",
        ),
        (
            "date,region,category,rank,title\n2022-02-30,us,tv,1,A\n",
            "line 2: date '2022-02-30' is not a date",
        ),
        ("date,region,category,rank,title\nyesterday,us,tv,1,A\n", "line 2: date 'yesterday' is not a date"),
        (
            "date,region,category,rank,title\n2022-02-06,usa,tv,1,A\n",
            "line 2: region 'usa' is not 'world' or",
        ),
        (
            "date,region,category,rank,title\n2022-02-06,us,anime,1,A\n",
            "line 2: category 'anime' is not one of",
        ),
        ("date,region,category,rank,title,period\n2022-02-06,us,tv,1,A,month\n", "line 2: period 'month'"),
        (
            "date,region,category,rank,title,period\n2022-02-07,us,tv,1,A,week\n",
            "line 2: date '2022-02-07' is a Monday; a week is dated by its last day, a Sunday",
        ),
        (
            "date,region,category,rank,title,service\n2022-02-06,us,tv,1,A,HBO Max\n",
            "line 2: service 'HBO Max'",
        ),
        ("date,region,category,rank,title\n2022-02-06,us,tv,1,  \n", "line 2: title is empty"),
        (
            "date,region,category,rank,title,hours\n2022-02-06,us,tv,1,A,-3\n",
            "line 2: hours '-3' must not be",
        ),
        (
            "date,region,category,rank,title\n2022-02-06,us,tv,1,A,extra\n",
            "line 2: expected 5 fields, found 6",
        ),
        ("date,region,category,rank,title,rank\n", "line 1: column(s) 'rank' appear more than once"),
    ],
)
def test_generic_csv_errors(text: str, message: str) -> None:
    assert error_of(text).startswith(f"bad.csv: {message}")


JSON_OK = '{"date": "2022-02-06", "region": "us", "category": "tv", "rank": 1, "title": "A"}'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([JSON_OK, "", '{"date": "2022-02-06", "region": "us",'], "line 3: not valid JSON: Expecting"),
        ([JSON_OK, "[1, 2]"], "line 2: expected a JSON object, found an array"),
        (
            [JSON_OK, '{"date": "2022-02-06", "region": "us", "rank": 2}'],
            "line 2: missing field(s) 'category', 'title'",
        ),
        (
            [JSON_OK, JSON_OK.replace('"rank": 1', '"rank": true')],
            "line 2: rank must be text or a number, not true/false",
        ),
        (
            [JSON_OK, JSON_OK.replace('"A"', '{"en": "A"}')],
            "line 2: title must be text or a number, not an object",
        ),
        (
            [JSON_OK, JSON_OK],
            "line 2: rank 1 is repeated in chart netflix/us/tv/day/2022-02-06 (first on line 1)",
        ),
    ],
)
def test_jsonl_errors(lines: list[str], message: str) -> None:
    assert error_of("\n".join(lines), name="bad.jsonl").startswith(f"bad.jsonl: {message}")


COUNTRIES_HEADER = (
    "country_name\tcountry_iso2\tweek\tcategory\tweekly_rank\tshow_title\tseason_title\t"
    "cumulative_weeks_in_top_10\n"
)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["Korea\tKR\t2022-02-06\tGames\t1\tA\tN/A\t1"],
            "line 2: category 'Games' is not one of 'Films', 'TV'",
        ),
        (["Korea\tKR\t2022-02-06\tTV\tx\tA\tN/A\t1"], "line 2: weekly_rank 'x' is not a whole number"),
        (["Korea\tKR\t2022-02-06\tTV\t1\tA\tN/A\tmany"], "line 2: cumulative_weeks_in_top_10 'many'"),
        (["Korea\tKR\t2022-02-31\tTV\t1\tA\tN/A\t1"], "line 2: week '2022-02-31' is not a date"),
        (["Korea\tKR\t2022-02-05\tTV\t1\tA\tN/A\t1"], "line 2: week '2022-02-05' is a Saturday"),
        (["Korea\tKOR\t2022-02-06\tTV\t1\tA\tN/A\t1"], "line 2: country_iso2 'KOR' is not"),
        (
            [
                "Korea\tKR\t2022-02-06\tTV\t1\tA\tN/A\t1",
                "Korea\tKR\t2022-02-06\tFilms\t1\tB\tN/A\t1",
                "Korea\tKR\t2022-02-06\tTV\t1\tC\tN/A\t1",
            ],
            "line 4: rank 1 is repeated in chart netflix/kr/tv/week/2022-02-06 (first on line 2)",
        ),
        (["Korea\tKR\t2022-02-06\tTV\t12\tA\tN/A\t1"], "line 2: rank 12 is outside 1..10"),
        (["Korea\tKR\t2022-02-06\tTV\t1\t\tN/A\t1"], "line 2: empty title"),
    ],
)
def test_countries_errors(rows: list[str], message: str) -> None:
    text = COUNTRIES_HEADER + "\n".join(rows)
    assert error_of(text, name="c.tsv").startswith(f"c.tsv: {message}")
    with pytest.raises(InputError, match=f"^{re.escape(message)}"):
        netflix.parse_countries_tsv(text)


def test_global_errors() -> None:
    header = "week\tcategory\tweekly_rank\tshow_title\n"
    assert error_of(header + "2022-02-06\tTV\t1\tA", name="g.tsv").startswith(
        "g.tsv: line 2: category 'TV' is not one of 'Films (English)'"
    )
    assert error_of("week\tcategory\tshow_title\n", format="netflix-global", name="g.tsv") == (
        "g.tsv: line 1: missing column(s) 'weekly_rank'"
    )


def test_bad_utf8_names_the_line() -> None:
    data = b"date,region,category,rank,title\n2022-02-06,us,tv,1,A\n2022-02-06,us,tv,2,Caf\xe9\n"
    assert error_of(data) == "bad.csv: line 3: byte 0xe9 is not valid UTF-8 (save the file as UTF-8)"


def test_nothing_partial_is_returned() -> None:
    """A file whose only bad row is the last still raises: no chart of it is returned."""
    good = GLOBAL.read_bytes()
    with pytest.raises(InputError, match="line 1402: weekly_rank 'x'"):
        parse_bytes(good + b"\n2022-03-06\tTV (English)\tx\tA\tN/A\t1\t1")


def test_files_module_exports() -> None:
    assert files.FORMATS == (
        "netflix-countries",
        "netflix-global",
        "netflix-most-popular",
        "netflix-us-daily",
        "generic-csv",
        "jsonl",
    )
