"""How fast and how often: the token bucket that keeps every post under Discord's global limit, the
backoff between retries, and what an HTTP error on a post means for its channel. No Discord, no SQL."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# --- failures and pacing --------------------------------------------------------------------------

BROKEN, RETRY, FAILED = "broken", "retry", "failed"
# Discord error codes: 10003 Unknown Channel, 50001 Missing Access, 50013 Missing Permissions.
_CHANNEL_CODES = {
    10003: "the channel no longer exists",
    50001: "missing access",
    50013: "missing permissions",
}


def classify(status: int, code: int = 0) -> str:
    """What an HTTP error on a post means: the channel is broken for good, try again later, or give up
    on this one message (a 400: the message itself is wrong; retrying would fail the same way)."""
    if status == 403 or (status == 404 and code == 10003) or code in _CHANNEL_CODES:
        return BROKEN
    if status == 429 or status >= 500 or status == 0:
        return RETRY
    return FAILED


def broken_reason(status: int, code: int, text: str = "") -> str:
    if code in _CHANNEL_CODES:
        return _CHANNEL_CODES[code]
    return text or ("missing permissions" if status == 403 else "the channel no longer exists")


def backoff(
    attempts: int, *, base: float = 5.0, cap: float = 900.0, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number `attempts` (1-based): doubling from `base`, at most `cap`, jittered."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rng() / 2)


@dataclass
class TokenBucket:
    """`rate` requests per second with bursts of `burst`, refilled `step` tokens at a time.

    `take()` reserves the next slot and says how long to wait for it, so concurrent callers queue up
    fairly without a lock or a polling loop. With `step` > 1 the callers of one refill wait for the same
    instant: a paced fan-out wakes once per step rather than once per request, and for a bot a wake-up
    costs more CPU than the request itself (bench/fanout.py).
    """

    rate: float
    burst: float = 1.0
    step: int = 1
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)  # when the last refill was due

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or not 1 <= self.step <= self.burst:
            raise ValueError("a token bucket needs rate > 0, burst >= 1 and 1 <= step <= burst")
        self.tokens = self.burst
        self.stamp = self.clock()

    def take(self) -> float:
        now, period = self.clock(), self.step / self.rate
        refills = int((now - self.stamp) / period + 1e-9)  # the epsilon: a caller that slept exactly
        if refills > 0:
            self.tokens += refills * self.step
            self.stamp += refills * period
            if self.tokens >= self.burst:  # a full bucket saves nothing up: the next refill is a period away
                self.tokens, self.stamp = self.burst, now
        self.tokens -= 1
        if self.tokens >= 0:
            return 0.0
        return self.stamp + math.ceil(-self.tokens / self.step) * period - now

    async def acquire(self) -> None:
        delay = self.take()
        if delay > 0:
            await asyncio.sleep(delay)
