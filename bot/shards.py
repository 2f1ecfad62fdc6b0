"""Shards: which of the bot's gateway shards a process runs, and how fast they may IDENTIFY.

Discord routes a server to shard ``(guild_id >> 22) % shard_count``. A process runs every shard
(the default) or the ones `CHARTBOT_SHARDS` names, so several processes can split a large bot.
IDENTIFYs are rate limited per key ``shard_id % max_concurrency``: one per 5 seconds each
(`IdentifyPacer`); Discord answers a faster one with an invalid session.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable

IDENTIFY_WINDOW = 5.0
"""Seconds between two IDENTIFYs of one rate-limit key (Discord: `max_concurrency` per 5 s)."""

_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that serves a server."""
    return (guild_id >> 22) % shard_count


def parse_shard_ranges(text: str) -> list[tuple[int, int]]:
    """``"0-3,6"`` -> ``[(0, 3), (6, 6)]``; ValueError for anything else (an empty part, ``3-1``)."""
    ranges = []
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise ValueError(part)
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(part)
        ranges.append((low, high))
    return ranges


def describe_shards(shard_ids: Iterable[int], shard_count: int) -> str:
    """``"shards 0-3 of 6"``, ``"shards 0, 2, 4 of 6"``, ``"shard 0 of 1"``: for log lines."""
    ids = sorted(set(shard_ids))
    runs: list[list[int]] = []
    for shard in ids:
        if runs and shard == runs[-1][1] + 1:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"{'shard' if len(ids) == 1 else 'shards'} {text} of {shard_count}"


class IdentifyPacer:
    """Spaces IDENTIFYs as Discord asks: shards whose ids are equal modulo `max_concurrency` share a
    rate-limit key, and each key allows one IDENTIFY per `window` seconds. Shards of different keys go
    at once, so a start with `max_concurrency` 16 connects 16 shards per window, not one.

    Only this process's IDENTIFYs are paced: processes that split a bot's shards between them must not
    start shards of one key within the same window (see the README on running several processes).
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        window: float = IDENTIFY_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def key(self, shard_id: int) -> int:
        return shard_id % max(1, self.max_concurrency)

    async def wait(self, shard_id: int) -> float:
        """Return once `shard_id` may IDENTIFY (and count it as done now); returns the seconds waited."""
        key = self.key(shard_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            waited = 0.0
            last = self._last.get(key)
            if last is not None:
                waited = max(0.0, last + self.window - self._clock())
                if waited:
                    await self._sleep(waited)
            self._last[key] = self._clock()
            return waited


def rate_share(total: float, shard_ids: Iterable[int] | None, shard_count: int | None) -> float:
    """This process's part of the bot's REST budget (`total` requests per second for the whole bot):
    in proportion to the shards it runs, since its servers are those shards' servers. A process that
    runs every shard (`shard_ids` None) has all of it."""
    if shard_ids is None or not shard_count:
        return total
    return total * len(set(shard_ids)) / shard_count
