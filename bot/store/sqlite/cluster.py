"""The cluster of an engine that serves one bot process (SQLite): that process is all of it.

It holds every job (polling, planning) and hears no notices: every change is its own, and it wakes its
own parts itself. `chartbot status` lists no cluster (its sources' health says how the one process fares).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.store.interfaces import JOBS, MemberReport, MemberStatus, Notice


class SoleProcess:
    """`ClusterLink` of the only process: every job, always."""

    member_id: int | None = None

    def __init__(self) -> None:
        self._held: set[str] = set()

    async def hold(self, job: str) -> bool:
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}")
        self._held.add(job)
        return True

    async def release(self, job: str) -> None:
        self._held.discard(job)

    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    async def heartbeat(self, report: MemberReport) -> None:
        del report

    def subscribe(self, callback: Notice) -> None:
        del callback

    def on_lost(self, callback: Callable[[], None]) -> None:
        del callback

    async def close(self) -> None:
        self._held.clear()


class SqliteClusterBook:
    async def members(self) -> list[MemberStatus]:
        return []
