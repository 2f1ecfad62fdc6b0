"""How fast and when: the REST budget that keeps the bot under Discord's global limit, the breaker
that pauses all posting while Discord is down, the count of invalid requests, the backoff between
retries, and what an HTTP error on a post means for its channel. No Discord, no SQL.

Discord allows a bot 50 requests per second, counted as a sliding window of one second, and bans its
IP for a while after 10,000 invalid requests (401, 403, 429) in 10 minutes (notes: discord-at-scale).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# --- what an error means ---------------------------------------------------------------------------

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


def is_invalid(status: int, scope: str | None = None) -> bool:
    """Whether Discord counts an answer towards a Cloudflare ban: 401, 403, and 429 unless its scope
    is `shared` (a limit shared with other bots, not this bot's fault)."""
    return status in (401, 403) or (status == 429 and scope != "shared")


def backoff(
    attempts: int, *, base: float = 5.0, cap: float = 900.0, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number `attempts` (1-based): doubling from `base`, at most `cap`, jittered."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rng() / 2)


# --- the REST budget --------------------------------------------------------------------------------


class RateBudget(Protocol):
    """Where the announcer gets a permit for each REST call it makes. `async with budget.permit():` is
    held from just before the call until its answer is in (or it failed).

    `WindowBudget` keeps one process under its budget; an implementation shared by several processes
    (one bot token, many shards) can stand in for it without the announcer knowing."""

    def permit(self) -> _Permit: ...


class _Permit(Protocol):
    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc: object) -> None: ...


class SlidingWindow:
    """At most `limit` calls in any `window` seconds, wherever Discord draws the window.

    A call reaches Discord at some moment between taking its permit and getting its answer (discord.py
    may hold it back on a per-route limit first, a network may delay it), so it is counted from its
    permit until `window` seconds after its answer: a permit is free only when fewer than `limit` calls
    are in flight or answered less than `window` ago. Then no window of Discord's holds more than
    `limit` of them, however late or early each one arrived. (Proof: take the last of the calls that
    reached Discord inside one window; when it took its permit, every other one had either not been
    answered yet or been answered after the window's start, i.e. less than `window` before.)

    Pure bookkeeping on a clock the caller passes in; `WindowBudget` adds the waiting. An answer is
    kept a microsecond longer than `window`: at the very boundary `t - window` and `answer + window`
    round differently in floating point, and Discord's side of the boundary must never be the wrong one.
    """

    MARGIN = 1e-6

    def __init__(self, limit: int, window: float = 1.0) -> None:
        if limit < 1 or not window > 0:
            raise ValueError("a sliding window needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.span = window + self.MARGIN
        self.in_flight = 0
        self.answered: deque[float] = deque()  # answer times of the last `span` seconds, oldest first

    def _forget(self, now: float) -> None:
        answered, span = self.answered, self.span
        while answered and answered[0] + span <= now:
            answered.popleft()

    def free(self, now: float) -> int:
        """Permits that may be taken now."""
        self._forget(now)
        return self.limit - self.in_flight - len(self.answered)

    def free_at(self, now: float, count: int) -> float:
        """When `count` permits will be free (now, or later as answers age; `inf` when calls in flight
        must be answered first)."""
        missing = count - self.free(now)
        if missing <= 0:
            return now
        if missing > len(self.answered):
            return math.inf
        return self.answered[missing - 1] + self.span

    def take(self) -> None:
        self.in_flight += 1

    def give_back(self) -> None:
        """A permit taken but not used (its call was never made)."""
        self.in_flight -= 1

    def answered_at(self, now: float) -> None:
        self.in_flight -= 1
        self.answered.append(now)


class WindowBudget:
    """The announcer's REST budget in one process: a `SlidingWindow` of `limit` calls per `window`
    seconds, with waiting callers released `step` at a time.

    A caller that finds a permit free and nobody waiting goes on at once. Otherwise it queues; the
    queue is released when `step` permits are free (or as many as are waiting), all at one instant: a
    paced fan-out wakes up once per step rather than once per call, and on a virtual machine a
    wake-up costs more CPU than the request itself (bench/wakeup.py, bench/fanout.py).
    """

    def __init__(
        self, limit: int, window: float = 1.0, *, step: int = 1, clock: Clock = time.monotonic
    ) -> None:
        self.core = SlidingWindow(limit, window)
        self.step = max(1, min(step, limit))
        self.clock = clock
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.releases = 0  # times a queue of waiting callers was released (each is one wake-up)

    @classmethod
    def per_second(cls, rate: float, *, step: int = 1, clock: Clock = time.monotonic) -> WindowBudget:
        """`rate` calls a second: a window of one second holding `rate` calls (below 1 a second: one call
        per 1/rate seconds; 5.5 a second: 5 per 0.91 s)."""
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError("a rate must be a positive number")
        limit = max(1, math.floor(rate))
        return cls(limit, limit / rate, step=step, clock=clock)

    @property
    def limit(self) -> int:
        return self.core.limit

    @property
    def window(self) -> float:
        return self.core.window

    def permit(self) -> WindowBudget:
        return self

    async def __aenter__(self) -> WindowBudget:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    async def acquire(self) -> None:
        """Take a permit, waiting for one if need be."""
        if not self._waiting and self.core.free(self.clock()) > 0:
            self.core.take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._schedule()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.core.give_back()  # granted as it was cancelled: the permit goes to the next caller
            else:
                future.cancel()
            self._schedule()
            raise

    def release(self) -> None:
        """The call holding a permit was answered (or failed)."""
        self.core.answered_at(self.clock())
        if self._waiting:
            self._schedule()

    def _schedule(self) -> None:
        """Release the queue if a step is free; else be woken when one will be."""
        waiting = self._waiting
        while waiting and waiting[0].done():  # cancelled
            waiting.popleft()
        if not waiting:
            self._cancel_timer()
            return
        now = self.clock()
        at = self.core.free_at(now, min(self.step, len(waiting)))
        if at <= now:
            self._release(now)
            return
        if at != self._timer_at:
            self._cancel_timer()
            if at != math.inf:  # else: an answer calls `_schedule` again
                self._timer = asyncio.get_running_loop().call_later(at - now, self._on_timer)
                self._timer_at = at

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._schedule()

    def _release(self, now: float) -> None:
        free = self.core.free(now)
        granted = 0
        while self._waiting and free > 0:
            future = self._waiting.popleft()
            if future.done():
                continue
            self.core.take()
            future.set_result(None)
            free -= 1
            granted += 1
        if granted:
            self.releases += 1
        if self._waiting:
            self._schedule()
        else:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, math.inf


class RestGate:
    """Every REST call of one discord.py client, paced by one budget: Discord's global limit counts all
    of a bot's calls, not only its posts (a sample post of `/settings test`, a fetch, the command sync
    at start). Installed on the client's aiohttp session (`attach`, through the public `http_trace`):
    a call takes a permit just before aiohttp sends it (after discord.py's own per-route waits) and
    gives it back with its answer. Calls Discord does not count against the global limit go by:
    interaction callbacks and webhooks (followups), the gateway, anything outside the API.

    `budget` may be set (or replaced) after the client is made; None lets every call go at once.
    """

    def __init__(self, budget: RateBudget | None = None) -> None:
        self.budget = budget

    @staticmethod
    def counted(url: object) -> bool:
        path = getattr(url, "path", "") or ""
        return "/api/" in path and "/interactions/" not in path and "/webhooks/" not in path

    def attach(self, trace: aiohttp.TraceConfig) -> None:
        async def on_start(
            session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
        ) -> None:
            budget = self.budget
            if budget is None or not self.counted(params.url):
                return
            permit = budget.permit()
            await permit.__aenter__()
            context.rest_permit = permit  # type: ignore[attr-defined]

        async def on_done(session: aiohttp.ClientSession, context: object, params: object) -> None:
            permit = getattr(context, "rest_permit", None)
            if permit is not None:
                context.rest_permit = None  # type: ignore[attr-defined]
                await permit.__aexit__(None, None, None)

        trace.on_request_start.append(on_start)
        trace.on_request_end.append(on_done)
        trace.on_request_exception.append(on_done)


# --- pauses: outages and the invalid-request budget -------------------------------------------------


class Breaker:
    """A circuit breaker the workers share: Discord down (5xx, a Cloudflare ban, no connection) pauses
    every call, not each delivery on its own, and costs no delivery an attempt.

    `wait()` returns at once while Discord answers. After `trip()` it holds every caller for a pause
    (doubling from `base` to `cap`, jittered; at least what Discord asked for), then lets one call
    through as a probe: its answer closes the breaker (`ok()`), its failure trips it again for longer.
    Calls that were already under way when it tripped (they carry an older ticket) do not lengthen the
    pause. `hold(until)` holds every caller too, without a probe (the invalid-request budget).

    Time comes from `clock` and passes with `sleep` (tests pass a simulated pair); only one caller
    sleeps, the others wait for it.
    """

    def __init__(
        self,
        *,
        base: float = 5.0,
        cap: float = 300.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base, self.cap = base, cap
        self.clock, self.sleep, self.rng = clock, sleep, rng
        self.paused_until: float | None = None  # an outage: None while Discord answers
        self.held_until = 0.0
        self.failures = 0  # trips since Discord last answered
        self.trips = 0  # every trip, for the log and the tests
        self.reason = ""
        self._ticket = 0
        self._probing = False
        self._sleeping = False
        self._changed = asyncio.Event()

    @property
    def open(self) -> bool:
        return self.paused_until is not None

    async def wait(self) -> int:
        """Wait until a call may be made; returns the ticket to pass to `trip()` and `done()`."""
        while True:
            now = self.clock()
            until = self.held_until
            if until <= now:
                if self.paused_until is None:
                    return self._ticket
                until = self.paused_until
                if until <= now and not self._probing:
                    self._probing = True
                    return self._ticket
            if until <= now or self._sleeping:
                await self._next_change()
                continue
            self._sleeping = True
            nap = asyncio.ensure_future(self.sleep(until - now))
            change = asyncio.ensure_future(self._changed.wait())  # e.g. the probe's answer came
            try:
                await asyncio.wait((nap, change), return_when=asyncio.FIRST_COMPLETED)
            finally:
                nap.cancel()
                change.cancel()
                self._sleeping = False
                self._notify()

    def trip(self, ticket: int, reason: str, at_least: float = 0.0) -> float:
        """An outage answer: pause every call (longer each time the probe fails). Returns the pause."""
        now = self.clock()
        if ticket != self._ticket and self.paused_until is not None:
            self.paused_until = max(self.paused_until, now + at_least)  # a call from before the pause
            return self.paused_until - now
        self._ticket += 1
        self._probing = False
        self.failures += 1
        self.trips += 1
        self.reason = reason
        pause = max(at_least, backoff(self.failures, base=self.base, cap=self.cap, rng=self.rng))
        self.paused_until = now + pause
        log.warning("Discord is not answering (%s): all posting paused for %.0f s", reason, pause)
        self._notify()
        return pause

    def ok(self) -> None:
        """Discord answered a call (whatever it said): the outage is over."""
        if self.paused_until is None and not self._probing:
            return  # the usual case, once per call: nothing changes
        if self.paused_until is not None:
            log.info("Discord answers again after %d pause(s): posting resumes", self.failures)
        self.paused_until = None
        self.failures = 0
        self._probing = False
        self._notify()

    def passable(self) -> bool:
        """Whether `wait()` would return at once without a probe (checked without awaiting it)."""
        return self.paused_until is None and self.held_until <= self.clock()

    @property
    def ticket(self) -> int:
        return self._ticket

    def done(self, ticket: int) -> None:
        """A call let through is over without `ok()` or `trip()` (cancelled, or it never reached Discord):
        another caller may probe."""
        if ticket == self._ticket and self._probing:
            self._probing = False
            self._notify()

    def hold(self, until: float) -> None:
        """Hold every call until then (no probe needed after)."""
        if until > self.held_until:
            self.held_until = until
            self._notify()

    async def _next_change(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class InvalidRequests:
    """Invalid requests (401, 403, 429 but shared-scope ones) of this process in the last `window` s.

    Fed by `trace_config()` (an aiohttp trace given to discord.py's client: every REST answer is seen,
    including the 429s discord.py retries by itself), or by `note()` when no trace is installed.
    """

    WINDOW = 600.0

    def __init__(self, *, window: float = WINDOW, clock: Clock = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.traced = False
        self.total = 0
        self._at: deque[float] = deque()

    def note(self, status: int, scope: str | None = None) -> None:
        if is_invalid(status, scope):
            self._at.append(self.clock())
            self.total += 1

    def count(self) -> int:
        horizon = self.clock() - self.window
        at = self._at
        while at and at[0] <= horizon:
            at.popleft()
        return len(at)

    def below_at(self, count: int) -> float:
        """When fewer than `count` invalid requests will be left in the window (now, or later)."""
        over = self.count() - count
        if over < 0:
            return self.clock()
        return self._at[over] + self.window

    def trace_config(self, trace: aiohttp.TraceConfig | None = None) -> aiohttp.TraceConfig:
        """For `discord.Client(http_trace=...)`: `trace`, or a new one, now counting every answer."""

        async def on_request_end(
            session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
        ) -> None:
            status = params.response.status
            if status in (401, 403, 429):
                self.note(status, params.response.headers.get("X-RateLimit-Scope"))

        trace = trace or aiohttp.TraceConfig()
        trace.on_request_end.append(on_request_end)
        self.traced = True
        return trace
