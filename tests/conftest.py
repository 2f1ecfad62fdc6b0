"""Shared fixtures: a chart database loaded from the real Netflix files in tests/data, built once.

Ingesting the files takes about a second, so the database is built once per session into a file;
each test gets its own copy (a file copy takes milliseconds) and may change or break it freely.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.ingest import ingest
from bot.model import Snapshot
from bot.sources.files import read_file
from bot.store import Store, open_store

DATA = Path(__file__).parent / "data"
NETFLIX_FILES = sorted((DATA / "netflix").glob("*.tsv"))


@pytest.fixture(autouse=True)
def english_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line writes in the environment's language (`LC_ALL`, `LC_MESSAGES`, `LANG`): every
    test starts from a neutral one, whatever the machine running them speaks."""
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture(scope="session")
def netflix_snapshots() -> list[Snapshot]:
    """Every chart of the real Netflix files (weekly: 94 countries and the four global lists)."""
    snapshots: list[Snapshot] = []
    for path in NETFLIX_FILES:
        snapshots.extend(read_file(path))
    return snapshots


@pytest.fixture(scope="session")
def chart_db_template(tmp_path_factory: pytest.TempPathFactory, netflix_snapshots: list[Snapshot]) -> Path:
    """A database file holding the real Netflix history, with its milestones. Do not modify: copy."""
    path = tmp_path_factory.mktemp("charts") / "template.sqlite3"

    async def build() -> None:
        async with await open_store(path) as store:
            await ingest(store, netflix_snapshots)

    asyncio.run(build())
    return path


@pytest.fixture
def chart_db(tmp_path: Path, chart_db_template: Path) -> Path:
    """This test's own copy of the real-data database."""
    path = tmp_path / "chartbot.sqlite3"
    shutil.copyfile(chart_db_template, path)
    return path


@pytest.fixture
async def chart_store(chart_db: Path) -> AsyncIterator[Store]:
    async with await open_store(chart_db) as store:
        yield store
