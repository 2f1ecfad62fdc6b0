"""Shared fixtures: the database engines, and a chart database loaded from the real Netflix files in
tests/data, built once per engine.

`engine` is "sqlite" unless a test (or module) asks for both with `@both_engines` (tests/engines.py):
then it runs once per engine, and every database fixture below gives it a database of that engine.
PostgreSQL comes from tests/postgres.py (a server from CHARTBOT_TEST_POSTGRES, or a throwaway
cluster); without one, those runs are skipped with the reason, or fail when CHARTBOT_REQUIRE_POSTGRES=1.

Ingesting the files takes about a second, so each history is built once per session into a template
(a SQLite file, a PostgreSQL template database); each test gets its own copy (a file copy, or
`CREATE DATABASE … TEMPLATE`: milliseconds, or a tenth of a second) and may change or break it freely.
"""

from __future__ import annotations

import inspect
import itertools
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from postgres import NoPostgres, PostgresServer, postgres_server, required, run

from bot.ingest import ingest
from bot.model import Snapshot
from bot.sources.files import read_file
from bot.store import MEMORY, Store, open_store

DATA = Path(__file__).parent / "data"
NETFLIX_FILES = sorted((DATA / "netflix").glob("*.tsv"))

# how a template is filled: an async function of the open store, or a function of its location
Build = Callable[[Store], Awaitable[object]] | Callable[[str], object]


# --- engines -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (skipped, or failed when required, if there is none)."""
    context = postgres_server()
    try:
        server = context.__enter__()
    except NoPostgres as reason:
        if required():
            pytest.fail(f"PostgreSQL is required (CHARTBOT_REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {reason}")
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine this test runs on: "sqlite", or each of ENGINES under `@both_engines`."""
    name = getattr(request, "param", "sqlite")
    if name == "postgresql":
        request.getfixturevalue("postgres")
    return name


class Templates:
    """Databases built once per session and name, per engine: a SQLite file or a template database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[tuple[str, str], str] = {}

    def get(self, name: str, engine: str, build: Build | None, server: PostgresServer | None) -> str:
        key = (name, engine)
        if key not in self.built:
            if engine == "sqlite":
                target = str(self.folder / f"{name}.sqlite3")
            else:
                assert server is not None
                base = None if name == "empty" else self.get("empty", engine, None, server)
                target = server.database_url(server.create(name, base))

            async def make() -> None:
                async with await open_store(target) as store:
                    if build is not None and inspect.iscoroutinefunction(build):
                        await build(store)

            run(make)
            if build is not None and not inspect.iscoroutinefunction(build):
                build(target)  # a command line run, say, on the database's location
            self.built[key] = target if engine == "sqlite" else target.rsplit("/", 1)[1]
            if server is not None:
                server.freeze(self.built[key])
        return self.built[key]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def from_template(
    engine: str, templates: Templates, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str, Build | None], str]]:
    """`make(name, build)`: this test's own copy of the session's database `name` (built by `build`
    once per engine), as a SQLite path or a PostgreSQL URL. Dropped after the test."""
    server: PostgresServer | None = request.getfixturevalue("postgres") if engine == "postgresql" else None
    made: list[str] = []
    count = itertools.count()

    def make(name: str, build: Build | None) -> str:
        template = templates.get(name, engine, build, server)
        if server is None:
            path = tmp_path / f"{name}-{next(count)}.sqlite3"
            shutil.copyfile(template, path)
            return str(path)
        database = server.create(name, template)
        made.append(database)
        return server.database_url(database)

    yield make
    for database in made:
        assert server is not None
        server.drop(database)


@pytest.fixture
def new_db(from_template: Callable[[str, Build | None], str], engine: str) -> Callable[..., str]:
    """`new_db()`: a fresh, empty database of the test's engine each call (SQLite: in memory, or a file
    with `file=True` when the test opens it more than once; PostgreSQL: a new database)."""

    def make(*, file: bool = False) -> str:
        if engine == "sqlite" and not file:
            return MEMORY
        return from_template("empty", None)

    return make


@pytest.fixture
def db_target(new_db: Callable[..., str]) -> str:
    """One fresh, empty database of the test's engine, which the test may open several times."""
    return new_db(file=True)


# --- the real Netflix history ------------------------------------------------------------------------------


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


@pytest.fixture
def chart_db(
    from_template: Callable[[str, Build | None], str], netflix_snapshots: list[Snapshot]
) -> str | Path:
    """This test's own copy of a database holding the real Netflix history, with its milestones
    (a Path for SQLite, a URL for PostgreSQL)."""

    async def build(store: Store) -> None:
        await ingest(store, netflix_snapshots)

    target = from_template("netflix", build)
    return target if "://" in target else Path(target)


@pytest.fixture
async def chart_store(chart_db: str | Path) -> AsyncIterator[Store]:
    async with await open_store(chart_db) as store:
        yield store
