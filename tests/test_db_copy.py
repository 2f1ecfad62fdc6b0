"""`chartbot db copy` and `chartbot db status`, as a user runs them: a SQLite history moved to
PostgreSQL and back answers `rank --json` and `top --json` byte for byte the same; a target that holds
charts is refused without --replace; a failure or a SIGKILL leaves the target as it was."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from postgres import PostgresServer

from bot import copying
from bot.cli import main
from bot.ingest import ingest
from bot.model import Snapshot
from bot.store import TABLES, DatabaseUnavailable, open_store

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    ["rank", "all of us are dead", "--date", "2022-02-06", "--json"],
    ["rank", "squid game", "--json"],
    ["top", "--region", "kr", "--category", "tv", "--date", "2022-02-06", "--json"],
    ["top", "--json"],
    ["milestones", "--title", "all of us are dead", "--json"],
]


def answers(capsys: pytest.CaptureFixture[str], db: str) -> list[str]:
    found = []
    for argv in QUESTIONS:
        assert main([*argv, "--db", db]) == 0
        found.append(capsys.readouterr().out)
    return found


async def counts(target: str) -> dict[str, int]:
    async with await open_store(target) as store:
        return dict((await store.status()).counts)


def test_a_sqlite_history_copied_to_postgresql_and_back_answers_the_same(
    capsys: pytest.CaptureFixture[str], chart_db: Path, postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_url("copy")
    back = tmp_path / "back.sqlite3"
    expected = answers(capsys, str(chart_db))
    assert main(["db", "copy", str(chart_db), url]) == 0
    said = capsys.readouterr().out
    assert said.startswith("copied ") and "every table's count checked" in said
    assert answers(capsys, url) == expected
    assert json.loads(expected[0])["countries"][0]["no1"] == 63
    assert main(["db", "copy", url, str(back)]) == 0
    capsys.readouterr()
    assert answers(capsys, str(back)) == expected
    assert asyncio.run(counts(str(back))) == asyncio.run(counts(str(chart_db)))


def test_db_status_prints_the_engine_the_schema_and_the_rows(
    capsys: pytest.CaptureFixture[str], chart_db: Path
) -> None:
    assert main(["db", "status", "--db", str(chart_db)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "engine:  sqlite"
    assert "schema:  version" in out and "entries" in out and "23,020" in out


def test_a_target_holding_charts_is_refused_without_replace(
    capsys: pytest.CaptureFixture[str], chart_db: Path, tmp_path: Path, netflix_snapshots: list[Snapshot]
) -> None:
    other = tmp_path / "other.sqlite3"
    asyncio.run(_store_some(other, netflix_snapshots[:40]))
    before = asyncio.run(counts(str(other)))
    assert main(["db", "copy", str(chart_db), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds 40 charts: add --replace" in err
    assert asyncio.run(counts(str(other))) == before
    assert main(["db", "copy", str(chart_db), str(other), "--replace"]) == 0
    assert asyncio.run(counts(str(other))) == asyncio.run(counts(str(chart_db)))


async def _store_some(path: Path, snapshots: list[Snapshot]) -> None:
    async with await open_store(path) as store:
        await ingest(store, snapshots, news=False)


@pytest.mark.parametrize("target_engine", ["sqlite", "postgresql"])
def test_a_failure_during_the_copy_leaves_the_target_as_it_was(
    capsys: pytest.CaptureFixture[str],
    chart_db: Path,
    tmp_path: Path,
    netflix_snapshots: list[Snapshot],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    target_engine: str,
) -> None:
    if target_engine == "postgresql":
        target = request.getfixturevalue("postgres").create_url("failing")
    else:
        target = str(tmp_path / "target.sqlite3")
    asyncio.run(_store_some_at(target, netflix_snapshots[:40]))
    before = asyncio.run(counts(target))
    real = copying.copy_store

    async def fails_half_way(source, target_store, **options):  # type: ignore[no-untyped-def]
        def progress(table: str, done: int, total: int) -> None:
            if table == "outbox":
                raise DatabaseUnavailable("the database cannot be used: disk I/O error")

        return await real(source, target_store, replace=True, progress=progress)

    monkeypatch.setattr("bot.cli.copy_store", fails_half_way)
    assert main(["db", "copy", str(chart_db), target, "--replace"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk I/O error" in err
    assert asyncio.run(counts(target)) == before


async def _store_some_at(target: str, snapshots: list[Snapshot]) -> None:
    async with await open_store(target) as store:
        await ingest(store, snapshots, news=False)


@pytest.mark.parametrize("target_engine", ["sqlite", "postgresql"])
async def test_a_copy_killed_half_way_leaves_the_target_whole(
    chart_db: Path, tmp_path: Path, request: pytest.FixtureRequest, target_engine: str
) -> None:
    """SIGKILL while the copy writes: the target holds what it held, never part of the copy."""
    if target_engine == "postgresql":
        target = request.getfixturevalue("postgres").create_url("killed")
    else:
        target = str(tmp_path / "target.sqlite3")
    source = await counts(str(chart_db))
    before = await counts(target)
    for delay in (0.3, 0.6, 1.0):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "copy", str(chart_db), target, "--replace", cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(delay)
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
        after = await counts(target)
        assert after in (before, source), (delay, after)  # all of the copy or none of it
        before = after
    assert set(source) == {t.name for t in TABLES}
