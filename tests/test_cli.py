"""The command line contract: outputs, JSON shapes, and one clear line + exit 2 for every user error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from engines import both_engines

from bot.cli import main
from bot.store import open_store

DATA = Path(__file__).parent / "data"
COUNTRIES = DATA / "netflix" / "all-weeks-countries_cut.tsv"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
US_DAILY = DATA / "netflix_us_daily" / "netflix_daily_top_10.csv"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse refusing an argument
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def import_both(target: str) -> None:
    assert main(["import", str(COUNTRIES), str(GLOBAL), "--db", target]) == 0


@pytest.fixture
def db(from_template) -> str:
    """The real weeks imported with `chartbot import` (once per engine), this test's own copy."""
    return from_template("cli-import", import_both)


@both_engines
def test_import_reports_what_it_stored(db_target, capsys):
    db = db_target
    code, out, _ = run(capsys, "import", str(GLOBAL), "--db", db)
    assert code == 0 and "140 charts (1,400 entries stored) — 140 new, 0 revised, 0 unchanged" in out
    code, out, _ = run(capsys, "import", str(GLOBAL), "--db", db)
    assert "0 new, 0 revised, 140 unchanged" in out


@both_engines
def test_rank_json_on_the_day_of_63_countries(db, capsys):
    code, out, _ = run(capsys, "rank", "all of us are dead", "--date", "2022-02-06", "--db", db, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["title"] == "All of Us Are Dead" and report["title_key"] == "all of us are dead"
    assert report["countries"] == [
        {
            "service": "netflix",
            "category": "tv",
            "period": "week",
            "date": "2022-02-06",
            "no1": 63,
            "top10": 94,
            "reporting": 94,
        }
    ]
    world = [s for s in report["standings"] if s["region"] == "world"]
    assert [(s["category"], s["rank"], s["hours"]) for s in world] == [("tv-non-english", 1, 236230000)]
    assert set(world[0]) == {
        "service",
        "region",
        "category",
        "period",
        "date",
        "rank",
        "peak",
        "peak_date",
        "periods_in_top10",
        "no1_streak",
        "periods_at_no1",
        "points",
        "hours",
        "views",
        "season",
        "previous_rank",
        "longest_no1_run",
    }


@both_engines
def test_rank_human_output_reads_well(db, capsys):
    code, out, _ = run(
        capsys, "rank", "ALL OF US ARE DED", "--date", "2022-02-06", "--region", "South Korea", "--db", db
    )
    assert code == 0
    assert "All of Us Are Dead — on Feb 6, 2022" in out
    assert "🇰🇷 South Korea" in out and "No. 1" in out
    assert "No. 1 in 63 of 94 countries" not in out  # a country was asked for: no world counts
    code, out, _ = run(capsys, "rank", "all of us are dead", "--date", "2022-02-06", "--db", db)
    assert "No. 1 in 63 of 94 countries · in the top 10 of 94" in out


@both_engines
def test_top_json_and_movement(db, capsys):
    code, out, _ = run(
        capsys, "top", "--region", "kr", "--category", "tv", "--date", "2022-02-06", "--db", db, "--json"
    )
    chart = json.loads(out)
    assert code == 0 and (chart["region"], chart["category"], chart["period"], chart["date"]) == (
        "kr",
        "tv",
        "week",
        "2022-02-06",
    )
    first = chart["entries"][0]
    assert (first["rank"], first["title"], first["previous_rank"]) == (1, "All of Us Are Dead", 1)
    assert set(first) == {
        "rank",
        "title",
        "title_key",
        "season",
        "points",
        "hours",
        "views",
        "previous_rank",
        "periods_in_top10",
    }
    assert [e["rank"] for e in chart["entries"]] == list(range(1, 11))
    code, out, _ = run(
        capsys, "top", "--region", "world", "--category", "tv-non-english", "--date", "2022-02-06", "--db", db
    )
    assert code == 0 and "236,230,000" in out and "Netflix global Top 10 · TV (Non-English)" in out


def test_replay_us_daily_json(capsys):
    code, out, _ = run(
        capsys,
        "replay",
        str(US_DAILY),
        "--json",
        "--title",
        "All of Us Are Dead",
        "--kinds",
        "reached_no1,lost_no1",
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(m["kind"], m["date"], m["value"]) for m in lines] == [
        ("reached_no1", "2022-02-04", 1),
        ("lost_no1", "2022-02-05", 2),
    ]
    lost = lines[1]
    assert set(lost) == {
        "kind",
        "title",
        "title_key",
        "service",
        "region",
        "category",
        "period",
        "date",
        "value",
        "previous",
        "key",
        "text",
    }
    assert lost["text"].startswith(
        "All of Us Are Dead slipped to No. 2 on the 🇺🇸 U.S. daily Top 10 after 1 day at No. 1;"
    )


@both_engines
def test_milestones_recorded_in_the_database(db_target, capsys):
    db = db_target
    assert run(capsys, "replay", str(US_DAILY), "--db", db)[0] == 0
    code, out, _ = run(
        capsys, "milestones", "--title", "all of us are dead", "--since", "2022-02-01", "--db", db, "--json"
    )
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert code == 0 and "reached_no1" in kinds and "lost_no1" in kinds


def test_demo_runs_offline(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "All of Us Are Dead is No. 1 in 63 countries this week (of 94 reporting) — up from 29" in out
    assert "All of Us Are Dead slipped to No. 2 on the 🇺🇸 U.S. daily Top 10" in out


BAD_FILES = {
    "truncated": ("date,region,category,rank,title\n2022-01-01,us,tv,1,Show A\n2022-01-01,us,tv,2", "line 3"),
    "wrong header": ("when,where,what\n2022-01-01,us,tv\n", "line 1: unrecognised header"),
    "rank outside": ("date,region,category,rank,title\n2022-01-01,us,tv,11,Show A\n", "line 2"),
    "rank repeated": (
        "date,region,category,rank,title\n2022-01-01,us,tv,1,A\n2022-01-01,us,tv,1,B\n",
        "line 3",
    ),
    "not a date": ("date,region,category,rank,title\n2022-13-01,us,tv,1,Show A\n", "line 2"),
    "empty": ("", "empty"),
}


@both_engines
@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_exit_2_with_the_line_and_store_nothing(name, engine, db_target, tmp_path, capsys):
    content, expected = BAD_FILES[name]
    good = tmp_path / "good.csv"
    good.write_text("date,region,category,rank,title\n2022-01-01,us,tv,1,Show A\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    db = str(tmp_path / "d.sqlite3") if engine == "sqlite" else db_target
    code, out, err = run(capsys, "import", str(good), str(bad), "--db", db)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "bad.csv" in err and expected in err and "Traceback" not in err
    # parsed in full before anything is stored: no file made, no chart written
    if engine == "sqlite":
        assert not Path(db).exists()
    else:
        assert asyncio.run(count_charts(db)) == 0


async def count_charts(db: str) -> int:
    async with await open_store(db) as store:
        return (await store.fetch_all("SELECT count(*) FROM charts"))[0][0]


@both_engines
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["rank", "Zzyzx Road Movie"], "No title called “Zzyzx Road Movie”"),
        (["rank", "the"], "matches several titles"),
        (["rank", "all of us are dead", "--date", "yesterday"], "is not a date"),
        (["rank", "all of us are dead", "--region", "Atlantis"], "Atlantis"),
        (
            ["top", "--region", "kr", "--category", "tv-english"],
            "No TV (English) chart in 🇰🇷 South Korea; available: TV, film.",
        ),
    ],
)
def test_user_errors_are_one_line(db, capsys, argv, expected):
    code, out, err = run(capsys, *argv, "--db", db)
    assert (code, out) == (2, "")
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_database_is_a_user_error(tmp_path, capsys):
    code, _, err = run(capsys, "rank", "squid game", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "no chart history at" in err and "chartbot import" in err
