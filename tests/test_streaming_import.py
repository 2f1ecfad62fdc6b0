"""`chartbot import` streams its file: read a block at a time into a compact table of charts, stored
oldest first in one transaction per file; and long work shows progress bars, on a terminal only.

The real files are those of tests/data (see SOURCE.md there); the large generic files are generated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sys
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from engines import both_engines
from local_servers import base
from test_sources_fetch import COUNTRIES_TSV, netflix_app, serve  # noqa: F401  (serve: a fixture)

from bot import terminal
from bot.cli import main, poll_main, store_charts
from bot.ingest import Ingester
from bot.model import InputError
from bot.settings import Settings
from bot.sources import files, netflix
from bot.sources.tables import BLOCK, Charts, Text
from bot.store import open_store
from bot.store.catalog import TABLES

DATA = Path(__file__).parent / "data"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
US_DAILY = DATA / "netflix_us_daily" / "netflix_daily_top_10.csv"
REGIONS = ("world", "us", "gb", "de", "fr", "kr", "jp", "br", "mx", "in")
CATEGORIES = ("tv", "movies", "overall")
START = date(2022, 1, 1)


def generic_csv(days: int, *, newest_first: bool = False, regions: tuple[str, ...] = REGIONS) -> str:
    """A generic CSV of daily charts: every region and category, ranks 1..10, titles that move."""
    order = range(days - 1, -1, -1) if newest_first else range(days)
    rows = ["date,region,category,rank,title"]
    for d in order:
        day = (START + timedelta(days=d)).isoformat()
        for r, region in enumerate(regions):
            for category in CATEGORIES:
                for rank in range(1, 11):
                    rows.append(
                        f"{day},{region},{category},{rank},Show {(d + rank * (r + 1)) % 97} {category}"
                    )
    return "\n".join(rows) + "\n"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in a shell."""

    def isatty(self) -> bool:
        return True


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dump(target: str) -> dict[str, list[tuple]]:
    """Every row of every table, on either engine."""

    async def rows() -> dict[str, list[tuple]]:
        async with await open_store(target) as store, store.read_tables() as tables:
            return {t.name: [r async for batch in tables.rows(t.name) for r in batch] for t in TABLES}

    return asyncio.run(rows())


# --- reading a block at a time -----------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 4096])
def test_small_blocks_read_as_the_whole_file(block: int) -> None:
    """Quoted fields, CRLF, a BOM, mojibake, a lone CR: the same charts whatever the block size."""
    data = b"\xef\xbb\xbf" + US_DAILY.read_bytes()[:40_000].rsplit(b"\r\n", 1)[0] + b"\r\n"
    whole = files.parse_bytes(data)
    assert files.read_us_daily(Text(io.BytesIO(data), block=block)).snapshots() == whole
    odd = 'date,region,category,rank,title\r2022-02-06,us,tv,1,"A\r\nB"\r\n2022-02-06,us,tv,2,C'
    assert files.read_generic_csv(Text(io.BytesIO(odd.encode()), block=block)).snapshots() == (
        files.parse_bytes(odd.encode())
    )


@pytest.mark.parametrize("block", [64, 4096, BLOCK])
def test_netflix_files_in_blocks(block: int) -> None:
    data = GLOBAL.read_bytes()
    assert netflix.read_global_tsv(Text(io.BytesIO(data), block=block)).snapshots() == (
        netflix.parse_global_tsv(data.decode())
    )


@pytest.mark.parametrize("block", range(1, 40))
def test_a_bad_byte_names_its_line_in_any_block(block: int) -> None:
    data = b"\xef\xbb\xbfdate,region,category,rank,title\n2022-02-06,us,tv,1,A\n2022-02-06,us,tv,2,Caf\xe9\n"
    with pytest.raises(InputError) as info:
        files.read_generic_csv(Text(io.BytesIO(data), block=block))
    assert str(info.value) == "line 3: byte 0xe9 is not valid UTF-8 (save the file as UTF-8)"


def test_a_bad_byte_far_into_a_file_names_its_line(tmp_path: Path) -> None:
    text = generic_csv(60)  # 18,000 rows, several blocks of 64 KiB
    lines = text.split("\n")
    lines[17_000] = lines[17_000].replace("Show", "Sh\xf6w")
    path = tmp_path / "latin1.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(InputError) as info:
        files.read_charts(path)
    assert str(info.value) == f"{path}: line 17001: byte 0xf6 is not valid UTF-8 (save the file as UTF-8)"


@pytest.mark.parametrize("block", [1, 5, 4096])
def test_json_lines_in_blocks(block: int) -> None:
    """JSON Lines split on "\\n" only: a U+2028 inside a string is no line break; errors keep their line."""
    rows = [
        {"date": "2022-02-06", "region": "us", "category": "tv", "rank": 1, "title": "A\u2028B"},
        {"date": "2022-02-06", "region": "us", "category": "tv", "rank": 2, "title": "C"},
    ]
    data = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n").encode()
    [chart] = files.read_jsonl(Text(io.BytesIO(data), block=block)).snapshots()
    assert [e.rank for e in chart.entries] == [1, 2]
    with pytest.raises(InputError, match=r"^line 4: not valid JSON"):
        files.read_jsonl(Text(io.BytesIO(data + b'{"date": '), block=block))


def test_a_blank_start_is_read_past_only_as_far_as_needed() -> None:
    text = Text(io.BytesIO(b"\n \r\n" + b"date,region,category,rank,title\n"), block=2)
    assert not text.is_blank()
    assert text.first_line() == ""
    assert text.start().endswith("date,region,category,rank,title\n")
    assert Text(io.BytesIO(b" \n\t\r\n"), block=2).is_blank() and Text(b"").is_blank()
    with pytest.raises(InputError, match=r"^x: line 1: the file is empty$"):
        files.parse_charts(io.BytesIO(b"\n  \n"), name="x")


class CountingReads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def test_the_file_is_never_read_whole() -> None:
    data = generic_csv(130).encode()  # 39,000 rows, about 1.6 MB: more than one block
    stream = CountingReads(data)
    charts = files.parse_charts(stream, name="big.csv")
    assert len(charts) == 130 * len(REGIONS) * len(CATEGORIES) and charts.entries == 39_000
    assert len(data) > BLOCK and stream.sizes and all(0 < size <= BLOCK for size in stream.sizes)


def test_reading_keeps_no_object_per_row() -> None:
    """A row costs a few bytes in the table (title numbers and lines in arrays), not an Entry: at the
    peak of reading 39,000 rows, under 64 bytes a row (about 50; a list of Entry objects took 420)."""
    data = generic_csv(130).encode()
    files.read_generic_csv(data[:5000].rsplit(b"\n", 1)[0])  # warm the title cache and the imports
    tracemalloc.start()
    try:
        charts = files.read_generic_csv(Text(io.BytesIO(data), block=1 << 16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert charts.entries == 39_000
    assert peak / charts.entries < 64


# --- the table of charts --------------------------------------------------------------------------------


def test_charts_come_oldest_first_a_chunk_at_a_time() -> None:
    """Files may be newest first (Netflix's are): charts are handed out in date order all the same."""
    charts = files.parse_charts(generic_csv(20, newest_first=True).encode())
    whole = files.parse_bytes(generic_csv(20).encode())
    chunks = list(charts.chunks(size=70))
    assert all(len(chunk) <= 70 for chunk in chunks) and sum(map(len, chunks)) == len(charts) == 600
    assert [s for chunk in chunks for s in chunk] == whole == list(charts) == charts.snapshots()
    assert charts.dates() == [START + timedelta(days=d) for d in range(20)]
    assert charts.on(START + timedelta(days=3)) == [
        s for s in whole if s.key.date == START + timedelta(days=3)
    ]
    assert charts.on(date(2030, 1, 1)) == []


def test_a_title_is_kept_once() -> None:
    charts = files.parse_charts(generic_csv(20).encode())
    assert len(set(charts.titles())) == 97 * len(CATEGORIES)
    snapshots = charts.snapshots()
    show = [e for s in snapshots for e in s.entries if e.title == "Show 5 tv"]
    assert len({id(e.title) for e in show}) == 1  # one string, not one per row


def test_figures_are_kept_and_absent_ones_are_none() -> None:
    text = (
        "date,region,category,rank,title,points,hours,views\n"
        "2022-02-06,us,tv,1,A,9.5,,20\n"
        "2022-02-06,us,tv,2,B,,99999999999999999999999,\n"  # too big for a 64-bit array: kept all the same
        "2022-02-06,us,tv,3,C,,,\n"
    )
    [chart] = files.parse_charts(text.encode()).snapshots()
    figures = [(e.points, e.hours, e.views) for e in chart.entries]
    assert figures == [(9.5, None, 20), (None, 99999999999999999999999, None), (None, None, None)]


def test_adding_after_reading_still_finds_the_charts() -> None:
    charts = files.parse_charts(generic_csv(2).encode())
    first = charts.snapshots()[0].key
    with pytest.raises(
        InputError, match=rf"^rank 1 is repeated in chart {first.label()} \(first on line \d+\)$"
    ):
        charts.add(charts.chart(first), 1, charts.title("X"), 99)
    charts.add(charts.chart(dataclasses.replace(first, region="it")), 1, charts.title("X"), 99)
    assert len(charts) == 2 * len(REGIONS) * len(CATEGORIES) + 1 and charts.snapshots()[0].key == first


def test_a_chart_of_no_rows_is_refused() -> None:
    with pytest.raises(InputError, match=r"^line 1: the file has no chart rows$"):
        Charts().checked()


# --- storing: oldest first, one transaction per file -------------------------------------------------


async def stats_of(target: str) -> list[tuple[Any, ...]]:
    async with await open_store(target) as store:
        return await store.fetch_all(
            "SELECT t.title_key, s.region, s.category, st.first_date, st.last_date, st.last_rank, st.peak, "
            "st.periods_in_top10, st.longest_no1_run, st.top10_run FROM title_stats st "
            "JOIN titles t ON t.id = st.title_id JOIN series s ON s.id = st.series_id "
            "ORDER BY t.title_key, s.region, s.category"
        )


@both_engines
async def test_a_newest_first_file_is_stored_oldest_first(new_db) -> None:
    reports = {}
    targets = {"newest": new_db(file=True), "oldest": new_db(file=True)}
    for order, newest_first in (("newest", True), ("oldest", False)):
        charts = files.parse_charts(generic_csv(30, newest_first=newest_first).encode())
        async with await open_store(targets[order]) as store:
            seen: list[int] = []
            reports[order] = await store_charts(Ingester(store), charts, seen.append)
        assert seen[-1] == len(charts) == 900 and seen == sorted(seen)
    newest = reports["newest"]
    assert (newest.added, newest.backfilled, newest.replaced) == (900, 0, 0)  # no chart took the late path
    assert await stats_of(targets["newest"]) == await stats_of(targets["oldest"])


@both_engines
def test_a_bad_row_at_the_end_of_a_large_file_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_target: str
) -> None:
    db = db_target
    assert run(capsys, "import", str(GLOBAL), "--db", db)[0] == 0
    before = dump(db)
    text = generic_csv(150)  # 45,000 rows; the last is bad
    path = tmp_path / "big.csv"
    path.write_text(text + "2022-05-30,us,tv,11,Too Low\n", encoding="utf-8")
    code, out, err = run(capsys, "import", str(path), "--db", db)
    assert (code, out) == (2, "")
    assert err == f"chartbot import: {path}: line 45002: rank 11 is outside 1..10\n"
    assert dump(db) == before


@both_engines
def test_a_failure_while_storing_keeps_nothing_of_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_target: str
) -> None:
    """Each file is one transaction: the file before is kept, nothing of the one that failed."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(generic_csv(3), encoding="utf-8")
    second.write_text(generic_csv(100, regions=("us", "gb", "kr")), encoding="utf-8")  # 900 charts
    chunks = Charts.chunks
    calls = []

    def failing(self: Charts, size: int = 2_000) -> Any:
        calls.append(len(self))
        for number, chunk in enumerate(chunks(self, 400)):
            if len(self) == 900 and number == 2:  # the second file, after two chunks went in
                raise InputError("line 9: the disk said no")
            yield chunk

    monkeypatch.setattr(Charts, "chunks", failing)
    db = db_target
    code, out, err = run(capsys, "import", str(first), str(second), "--db", db)
    assert code == 2 and calls == [90, 900]
    assert out.startswith("first.csv: 90 charts (900 entries stored)") and "second.csv" not in out
    assert err == "chartbot import: line 9: the disk said no\n"

    async def charts() -> list[tuple]:
        async with await open_store(db) as store:
            return await store.fetch_all("SELECT count(*), count(DISTINCT date) FROM charts")

    assert asyncio.run(charts()) == [(90, 3)]


# --- progress --------------------------------------------------------------------------------------------


def test_no_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "c.db")
    code, out, err = run(capsys, "import", str(GLOBAL), "--db", db)
    assert (code, err) == (0, "") and out.count("\n") == 1
    code, out, err = run(capsys, "replay", str(GLOBAL), "--json")
    assert (code, err) == (0, "") and all(json.loads(line) for line in out.splitlines())


def test_import_shows_progress_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", screen)
    path = tmp_path / "big.csv"
    path.write_text(generic_csv(100), encoding="utf-8")  # 3,000 charts: two chunks
    assert main(["import", str(path), "--db", str(tmp_path / "c.db")]) == 0
    out = capsys.readouterr().out
    assert out == "big.csv: 3,000 charts (30,000 entries stored) — 3,000 new, 0 revised, 0 unchanged\n"
    shown = screen.getvalue()
    assert "big.csv: 100%" in shown and "3000/3000" in shown and "charts" in shown
    assert "big.csv: reading: 100%" in shown and "B/s" in shown  # the bytes read, then the charts stored


def test_replay_shows_periods_on_a_terminal_and_json_stays_clean(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["replay", str(GLOBAL), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(json.loads(line)["kind"] for line in lines)
    assert (
        "replay: 100%" in screen.getvalue()
        and "35/35" in screen.getvalue()
        and "periods" in screen.getvalue()
    )


async def test_poll_once_shows_the_catch_up_on_a_terminal(serve, tmp_path: Path) -> None:  # noqa: F811
    server = await serve(netflix_app({"all-weeks-countries.tsv": COUNTRIES_TSV.read_bytes()}, []))
    settings = Settings(db_path=str(tmp_path / "c.db"), netflix_url=base(server) + "top10/data/")
    out, screen = io.StringIO(), FakeTerminal()
    assert await poll_main(settings, once=True, out=out, err=screen) == 1  # the other files are missing
    shown = screen.getvalue()
    older = 2162 - 94 * 2  # every week of the file but the newest: history, stored in chunks
    assert "netflix: countries: 100%" in shown and f"{older}/{older}" in shown
    assert out.getvalue() and "%|" not in out.getvalue()

    settings = Settings(db_path=str(tmp_path / "d.db"), netflix_url=base(server) + "top10/data/")
    err = io.StringIO()
    assert await poll_main(settings, once=True, out=io.StringIO(), err=err) == 1
    assert "%|" not in err.getvalue() and "chartbot poll: " in err.getvalue()


def test_progress_helper() -> None:
    quiet = terminal.Progress(io.StringIO())
    assert not quiet.shown and quiet.tracker("x", 10) is None
    quiet.update("x", 5, 10)
    out = io.StringIO()
    quiet.write(out, "line\n")
    assert (quiet.stream.getvalue(), out.getvalue()) == ("", "line\n")

    screen = FakeTerminal()
    with terminal.Progress(screen) as progress:
        step = progress.tracker("work", 4, unit="steps")
        assert step is not None
        step(1)
        printed = FakeTerminal()
        progress.write(printed, "a milestone\n")  # around the bar, not into it
        step(4)
        progress.update("never finished", 1, 9)
    assert "a milestone\n" in printed.getvalue()
    assert "work: 100%" in screen.getvalue() and "4/4" in screen.getvalue()
    assert "never finished:  11%" in screen.getvalue() and not progress._bars  # closed on the way out


def test_broken_stream_is_no_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    assert not terminal.is_terminal(closed) and not terminal.is_terminal(object())  # type: ignore[arg-type]
