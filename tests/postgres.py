"""A PostgreSQL server for the tests, and a fresh database for each test.

The server is the one `CHARTBOT_TEST_POSTGRES` names (a URL of a role that may create databases),
or else a throwaway cluster: `initdb` into a temporary folder, started on a free port of 127.0.0.1
(as the `postgres` user when we are root: initdb refuses root), stopped and removed at the end. It
starts in about a second. Without either, PostgreSQL tests are skipped with a one-line reason, unless
`CHARTBOT_REQUIRE_POSTGRES=1` (CI), which makes them fail instead.

Each test gets its own database, made from a template (`CREATE DATABASE … TEMPLATE …`, tens of
milliseconds): an empty migrated one, or one holding a history built once per session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")
URL_VARIABLE = "CHARTBOT_TEST_POSTGRES"
REQUIRE_VARIABLE = "CHARTBOT_REQUIRE_POSTGRES"


class NoPostgres(Exception):
    """No server can be had here; the message says why, in one line."""


def required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "").strip() not in ("", "0", "false", "no")


_RUNNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-admin")


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run an admin coroutine on a thread of its own: callable from sync code and from async tests alike."""
    return _RUNNER.submit(lambda: asyncio.run(coro_factory())).result()  # type: ignore[arg-type]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@dataclass
class PostgresServer:
    """A server we may create databases on. `url`: a URL of its maintenance database."""

    url: str
    prefix: str = field(default_factory=lambda: f"chartbot_test_{os.getpid()}_")
    made: list[str] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)

    def name(self, label: str = "t") -> str:
        return f"{self.prefix}{label}_{secrets.token_hex(4)}"

    async def _execute(self, *statements: str, database: str | None = None) -> None:
        url = self.database_url(database) if database else self.url
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def create(self, label: str = "t", template: str | None = None) -> str:
        """A new database (a copy of `template`, if given); returns its name."""
        name = self.name(label)
        source = f' TEMPLATE "{template}"' if template else " TEMPLATE template0"
        run(lambda: self._execute(f'CREATE DATABASE "{name}"{source}'))
        self.made.append(name)
        return name

    def freeze(self, name: str) -> None:
        """Settle a template once it is built (hint bits set, rows frozen): its copies are made faster."""
        run(lambda: self._execute("VACUUM (FREEZE, ANALYZE)", "CHECKPOINT", database=name))

    def create_url(self, label: str = "t", template: str | None = None) -> str:
        return self.database_url(self.create(label, template))

    def drop(self, name: str) -> None:
        run(lambda: self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with contextlib.suppress(ValueError):
            self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self.made)):
            with contextlib.suppress(Exception):
                self.drop(name)


# --- a throwaway cluster ------------------------------------------------------------------------------


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: `pg_config --bindir`, else the newest Debian install."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
            )
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_of, reverse=True)
    candidates += [os.path.dirname(p) for p in (shutil.which("initdb"),) if p]
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _version_of(folder: str) -> tuple[int, ...]:
    part = Path(folder).parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit()) or (0,)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl in a temporary folder; `stop()` removes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_user: list[str] = []
        self.owner: int | None = None
        if os.geteuid() == 0:  # initdb refuses root: run the server as `postgres`
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise NoPostgres("running as root and there is no `postgres` user to run a server") from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise NoPostgres("running as root without `runuser` to start a server as `postgres`")
            self.as_user = [runuser, "-u", "postgres", "--"]
            self.owner = account.pw_uid
        # as root, in /tmp: the `postgres` user may not reach a private TMPDIR
        shared = "/tmp" if self.owner is not None and os.path.isdir("/tmp") else None
        self.folder = Path(tempfile.mkdtemp(prefix="chartbot-pg-", dir=shared))
        if self.owner is not None:
            os.chown(self.folder, self.owner, -1)
        self.data = self.folder / "data"
        self.port = 0
        self.options = ""

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            raise NoPostgres(f"{Path(command[0]).name} failed: {tail[0]}")

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            *(
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ),
        )
        for _ in range(5):  # a port taken between finding and binding it: another one
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            self.options = options
            try:
                self.resume()
                return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            except NoPostgres:
                time.sleep(0.1)
        raise NoPostgres(f"the throwaway server did not start (see {self.folder / 'server.log'})")

    def pause(self) -> None:
        """Stop the server (its clients' connections end), keeping its data: `resume()` starts it again."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again), on the same port."""
        self._run(
            str(self.bindir / "pg_ctl"),
            *("-D", str(self.data), "-o", self.options, "-l", str(self.folder / "server.log"), "-w", "start"),
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The server for this session (raises NoPostgres with the reason when there is none)."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if url:
        server = PostgresServer(url)
        try:
            run(lambda: server._execute("SELECT 1"))
        except Exception as exc:
            raise NoPostgres(f"{URL_VARIABLE} is set but its server cannot be used: {exc}") from exc
        try:
            yield server
        finally:
            server.drop_all()
        return
    bindir = server_binaries()
    if bindir is None:
        raise NoPostgres("no PostgreSQL server binaries here (initdb, pg_ctl) and no CHARTBOT_TEST_POSTGRES")
    cluster = Cluster(bindir)
    try:
        server = PostgresServer(cluster.start())
        yield server
    finally:
        cluster.stop()
