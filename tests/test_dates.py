"""Chart dates: before 2000-01-01 or more than 7 days after today is bad input, with its line, in every
importer, in `parse_date` (CLI `--date`, Discord `date` options) and on FlixPatrol pages."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from flixpatrol_pages import render_page

from bot.cli import main
from bot.model import InputError, check_date, parse_date, utc_today
from bot.sources import files, netflix
from bot.sources.flixpatrol import PageError, parse_page
from cogs.rank import parse_day

DATA = Path(__file__).parent / "data"
COUNTRIES = DATA / "netflix" / "all-weeks-countries_cut.tsv"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
US_DAILY = DATA / "netflix_us_daily" / "netflix_daily_top_10.csv"
TODAY = date(2024, 3, 6)  # a Wednesday; the injected "today" of most tests here


def next_sunday_after(day: date, days: int) -> date:
    """The first Sunday at least `days` days after `day`."""
    day += timedelta(days=days)
    return day + timedelta(days=(6 - day.weekday()) % 7)


# --- parse_date and check_date --------------------------------------------------------------------


def test_parse_date_range_with_an_injected_today() -> None:
    assert parse_date("2000-01-01", today=TODAY) == date(2000, 1, 1)
    assert parse_date("2024-03-13", today=TODAY) == date(2024, 3, 13)  # 7 days ahead: time zones, early files
    with pytest.raises(InputError) as caught:
        parse_date("2024-03-14", today=TODAY)
    assert str(caught.value) == "2024-03-14 is more than 7 days in the future (today is 2024-03-06)"
    with pytest.raises(InputError) as caught:
        parse_date("1999-12-31", today=TODAY)
    assert str(caught.value) == "1999-12-31 is before 2000-01-01: no chart is that old"


@pytest.mark.parametrize("text", ["0001-01-01", "1000-06-15", "1999-12-31", "2202-01-01", "9999-12-31"])
def test_parse_date_refuses_far_dates_with_the_real_today(text: str) -> None:
    with pytest.raises(InputError, match=r"(before 2000-01-01|days in the future)"):
        parse_date(text)


def test_default_today_is_the_utc_date() -> None:
    today = utc_today()
    assert parse_date((today - timedelta(days=1)).isoformat()) == today - timedelta(days=1)
    with pytest.raises(InputError, match="more than 7 days in the future"):
        parse_date((today + timedelta(days=30)).isoformat())
    assert check_date(today) == today


def test_discord_date_option_uses_the_same_rule() -> None:
    with pytest.raises(InputError, match=r"^0001-01-01 is before 2000-01-01"):
        parse_day("0001-01-01")
    with pytest.raises(InputError, match=r"^9999-12-31 is more than 7 days in the future"):
        parse_day("9999-12-31")


# --- the command line: --date and --since ------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("dates") / "chart.sqlite3"
    assert main(["import", str(GLOBAL), "--db", str(path)]) == 0
    return str(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["rank", "all of us are dead", "--date", "0001-01-01"],
        ["rank", "all of us are dead", "--date", "9999-12-31"],
        ["top", "--date", "0001-01-01"],
        ["top", "--region", "world", "--date", "2202-01-01"],
        ["milestones", "--since", "0001-01-01"],
    ],
)
def test_cli_dates_out_of_range_are_one_line(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--db", db])
    assert exit.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"chartbot {argv[0]}: argument --")
    assert ("before 2000-01-01" in err) or ("more than 7 days in the future" in err)


def test_replay_of_a_year_one_chart_is_bad_input_not_an_overflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "year1.csv"
    rows = "".join(f"0001-01-01,us,tv,{rank},Title {rank}\n" for rank in range(1, 11))
    path.write_text("date,region,category,rank,title\n" + rows, encoding="utf-8")
    assert main(["replay", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == f"chartbot replay: {path}: line 2: date 0001-01-01 is before 2000-01-01: no chart is that old\n"
    )


def test_import_of_a_2202_chart_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = GLOBAL.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = next_sunday_after(date(2202, 1, 1), 0).isoformat()
    lines[57] = bad + lines[57][len("2022-02-20") :]
    path = tmp_path / "global.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    db_path = tmp_path / "c.sqlite3"
    assert main(["import", str(path), "--db", str(db_path)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"chartbot import: {path}: line 58: week {bad} is more than 7 days in the future")
    assert not db_path.exists()  # every file is parsed before the database is opened


# --- every importer -------------------------------------------------------------------------------


def generic_rows(day: str, *, period: str = "day") -> str:
    return "".join(f"{day},us,tv,{rank},Show {rank},{period}\n" for rank in range(1, 11))


def test_generic_csv(tmp_path: Path) -> None:
    good = "date,region,category,rank,title,period\n" + generic_rows("2024-03-13")
    assert [s.key.date for s in files.parse_generic_csv(good, today=TODAY)] == [date(2024, 3, 13)]
    bad = good + generic_rows("2024-03-14")
    with pytest.raises(InputError) as caught:
        files.parse_generic_csv(bad, today=TODAY)
    assert (
        str(caught.value)
        == "line 12: date 2024-03-14 is more than 7 days in the future (today is 2024-03-06)"
    )
    old = "date,region,category,rank,title,period\n" + generic_rows("1999-12-26", period="week")
    with pytest.raises(InputError, match=r"^line 2: date 1999-12-26 is before 2000-01-01"):
        files.parse_generic_csv(old, today=TODAY)


def test_jsonl() -> None:
    def line(day: str, rank: int) -> str:
        return json.dumps(
            {"date": day, "region": "kr", "category": "movies", "rank": rank, "title": f"M{rank}"}
        )

    good = "\n".join(line("2024-03-01", r) for r in range(1, 11))
    assert len(files.parse_jsonl(good, today=TODAY)) == 1
    with pytest.raises(InputError, match=r"^line 11: date 2202-01-01 is more than 7 days in the future"):
        files.parse_jsonl(good + "\n" + line("2202-01-01", 1), today=TODAY)


def test_us_daily() -> None:
    text = US_DAILY.read_text(encoding="utf-8").splitlines(keepends=True)[:41]  # four days
    assert len(files.parse_us_daily("".join(text), today=TODAY)) == 4
    text[37] = text[37].replace("2020-04-04", "2220-04-04", 1)
    with pytest.raises(InputError, match=r"^line 38: As of 2220-04-04 is more than 7 days in the future"):
        files.parse_us_daily("".join(text), today=TODAY)
    # the real file, as of a "today" inside it: its later days are refused with their line
    with pytest.raises(InputError, match=r"^line 12: As of 2020-04-02 is more than 7 days in the future"):
        files.parse_us_daily(US_DAILY.read_bytes(), today=date(2020, 3, 25))


def test_netflix_tsvs_with_an_injected_today() -> None:
    """The real files: fine today; refused, with the first line of a too-new week, before they were made."""
    assert len(netflix.parse_global_tsv(GLOBAL.read_bytes(), today=TODAY)) == 140
    with pytest.raises(InputError, match=r"^line 2: week 2022-02-27 is more than 7 days in the future"):
        netflix.parse_global_tsv(GLOBAL.read_bytes(), today=date(2022, 2, 19))
    assert netflix.parse_global_tsv(GLOBAL.read_bytes(), today=date(2022, 2, 20))  # 2022-02-27 is 7 days on
    countries = COUNTRIES.read_bytes()
    assert netflix.parse_countries_tsv(countries, today=TODAY)
    with pytest.raises(InputError, match=r"^line 2: week 2022-02-27 is more than 7 days in the future"):
        netflix.parse_countries_tsv(countries, today=date(2022, 2, 1))


def test_netflix_tsv_dated_2202() -> None:
    lines = COUNTRIES.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = next_sunday_after(date(2202, 2, 20), 0).isoformat()
    lines[5] = lines[5].replace("2022-02-27", bad, 1)
    with pytest.raises(InputError, match=rf"^line 6: week {bad} is more than 7 days in the future"):
        netflix.parse_countries_tsv("".join(lines))


def test_read_file_and_parse_bytes_pass_today_on(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("date,region,category,rank,title,period\n" + generic_rows("2024-03-14"), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}: line 2: date 2024-03-14 is more than 7 days"):
        files.read_file(path, today=TODAY)
    assert files.read_file(path, today=date(2024, 3, 7))
    with pytest.raises(InputError, match=r"^<data>: line 2: date 2024-03-14 is more than 7 days"):
        files.parse_bytes(path.read_bytes(), "generic-csv", today=TODAY)


# --- FlixPatrol pages -----------------------------------------------------------------------------


def page(day: date, *, canonical: bool = True) -> str:
    titles = [f"Film {n}" for n in range(1, 11)]
    return render_page(
        "2023-2024", region="us", date=day, movies=titles, tv=titles, points=False, canonical=canonical
    )


def test_flixpatrol_page_dated_too_far_ahead() -> None:
    assert parse_page(page(date(2024, 3, 10)), service="netflix", today=TODAY)
    with pytest.raises(PageError) as caught:
        parse_page(page(date(2024, 3, 20)), service="netflix", today=TODAY)
    assert caught.value.reason == "bad-date"
    assert str(caught.value) == (
        "the chart's date 2024-03-20 is more than 7 days in the future (today is 2024-03-06); nothing was stored"
    )


def test_flixpatrol_page_dated_by_the_caller() -> None:
    """A page that does not say its date takes the caller's, which is checked too."""
    undated = page(date(1999, 5, 1), canonical=False).replace("May 1, 1999", "")
    with pytest.raises(PageError, match=r"before 2000-01-01") as caught:
        parse_page(undated, service="netflix", region="us", date=date(1999, 5, 1), today=TODAY)
    assert caught.value.reason == "bad-date"
