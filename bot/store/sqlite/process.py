"""One bot process per SQLite file: an exclusive `flock` on ``<database>.lock``, held while the bot runs.

A lock the operating system holds for the process, not a row in the database: it goes when the process
does, however it ends (SIGKILL, a crash, a power cut), so a stale claim never blocks a restart. The
lock file stays (its content is the holder's pid, for the message): removing it on release would let a
starting process lock a file that a third one is about to replace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from bot.store.interfaces import DatabaseUnavailable, StoreInUse
from bot.store.sqlite.connection import MEMORY

LOCK_SUFFIX = ".lock"
USE_POSTGRES = "use PostgreSQL (CHARTBOT_DB=postgresql://…) to run several bot processes"


class SqliteProcessClaim:
    """The held lock (``fd`` is ``None`` for an in-memory database, which no other process can open)."""

    def __init__(self, lock_path: str | None, fd: int | None) -> None:
        self.lock_path = lock_path
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lock_path(path: str) -> str:
    return path + LOCK_SUFFIX


def claim_process(path: str, *, shard_subset: bool = False) -> SqliteProcessClaim:
    """Claim the SQLite database at `path` for this bot process (see `bot.store.interfaces.ProcessClaim`).

    Raises StoreInUse when another process holds it, or for a process that runs only some shards.
    """
    if shard_subset:
        raise StoreInUse(
            f"{path} is a SQLite database, which one bot process serves with every shard: to split the "
            f"shards (--shards, CHARTBOT_SHARDS), {USE_POSTGRES}"
        )
    if path == MEMORY:
        return SqliteProcessClaim(None, None)
    where = lock_path(path)
    try:
        fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DatabaseUnavailable(f"{where}: cannot open the lock file ({exc.strerror or exc})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StoreInUse(
            f"another chartbot run{f' (pid {holder})' if holder else ''} is serving {path}: SQLite serves "
            f"one bot process at a time; stop that one, or {USE_POSTGRES}"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise DatabaseUnavailable(f"{where}: cannot lock the file ({exc.strerror or exc})") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return SqliteProcessClaim(where, fd)


def _holder(fd: int) -> str:
    """The pid the holder wrote, or "" (it may not have written it yet)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return ""
