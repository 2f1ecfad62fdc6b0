"""The announcer's pacing without Discord: the REST budget against Discord's sliding window, the breaker
that pauses all posting during an outage, and the count of invalid requests."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.announcer.pacing import (
    Breaker,
    InvalidRequests,
    RestGate,
    SlidingWindow,
    WindowBudget,
    backoff,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A simulated sleep: time passes at once."""
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def refusals(arrivals: list[float], limit: int, window: float) -> int:
    """What Discord's global limit refuses of these requests: as the fake does, a request is refused when
    `limit` requests arrived in the `window` seconds before it, (t - window, t]."""
    seen: deque[float] = deque()
    refused = 0
    for t in sorted(arrivals):
        while seen and seen[0] <= t - window:
            seen.popleft()
        if len(seen) < limit:
            seen.append(t)
        else:
            refused += 1
    return refused


@dataclass
class Call:
    asks: float  # when the caller asks for a permit
    delay: float  # from its permit to reaching Discord (discord.py waiting on a route, the network)
    latency: float  # from reaching Discord to the answer being in


def simulate(calls: list[Call], limit: int, window: float, *, grant_based: bool = False) -> list[float]:
    """Run calls through a SlidingWindow (or, `grant_based`, a window over permit times only: the naive
    limiter), first come first served; returns when each call reached Discord."""
    core = SlidingWindow(limit, window)
    granted: deque[float] = deque()  # the naive limiter's permit times

    def free_at(now: float) -> float:
        if not grant_based:
            return core.free_at(now, 1)
        while granted and granted[0] <= now - window:
            granted.popleft()
        return now if len(granted) < limit else granted[0] + window

    events: list[tuple[float, int, str]] = [(call.asks, i, "ask") for i, call in enumerate(calls)]
    heapq.heapify(events)
    waiting: deque[int] = deque()
    arrivals: list[float] = []
    now, order = 0.0, len(calls)
    while events or waiting:
        wake = free_at(now) if waiting else math.inf
        if events and events[0][0] <= wake:
            now, i, kind = heapq.heappop(events)
            if kind == "ask":
                waiting.append(i)
            else:
                core.answered_at(now)
        else:
            assert wake != math.inf, "nobody can be served and nothing is in flight"
            now = wake
        while waiting and free_at(now) <= now:
            i = waiting.popleft()
            core.take()
            granted.append(now)
            arrival = now + calls[i].delay
            arrivals.append(arrival)
            order += 1
            heapq.heappush(events, (arrival + calls[i].latency, order, "answer"))
    return arrivals


call_patterns = st.lists(
    st.builds(
        Call,
        asks=st.floats(0, 5, allow_nan=False),
        delay=st.one_of(st.just(0.0), st.floats(0, 3, allow_nan=False)),
        latency=st.floats(0, 0.5, allow_nan=False),
    ),
    min_size=1,
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(calls=call_patterns, limit=st.integers(1, 60), window=st.sampled_from([0.1, 1.0, 2.5]))
def test_the_sliding_window_is_never_refused_whatever_the_calls(
    calls: list[Call], limit: int, window: float
) -> None:
    arrivals = simulate(calls, limit, window)
    assert len(arrivals) == len(calls)  # everyone is served
    assert refusals(arrivals, limit, window) == 0


def test_a_window_over_permit_times_alone_is_refused_when_calls_arrive_late() -> None:
    """The control: counting permits only (what a token bucket or a plain rate does) draws 429s as soon as
    some calls reach Discord later than others - so the property above is not true of any limiter."""
    rng = random.Random(7)
    calls = [Call(asks=0.0, delay=rng.choice([0.0, 0.9]), latency=0.01) for _ in range(400)]
    assert refusals(simulate(calls, 48, 1.0, grant_based=True), 48, 1.0) > 0
    assert refusals(simulate(calls, 48, 1.0), 48, 1.0) == 0


def test_a_fan_out_keeps_close_to_the_rate() -> None:
    """With quick answers the budget is nearly all used: 48 a second, less the answers' time."""
    calls = [Call(asks=0.0, delay=0.0, latency=0.02) for _ in range(2000)]
    arrivals = sorted(simulate(calls, 48, 1.0))
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 45 < rate <= 48


def test_per_second_budgets() -> None:
    assert (WindowBudget.per_second(48).limit, WindowBudget.per_second(48).window) == (48, 1.0)
    slow = WindowBudget.per_second(0.5)
    assert (slow.limit, slow.window) == (1, 2.0)
    odd = WindowBudget.per_second(5.5)
    assert odd.limit == 5 and odd.limit / odd.window == pytest.approx(5.5)
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError):
            WindowBudget.per_second(bad)


async def test_the_budget_holds_real_calls_under_their_window() -> None:
    """Real tasks, real timers: whenever each call happens between its permit and its end, no window of
    the budget's holds more than its limit."""
    budget = WindowBudget(5, 0.05, step=3)
    rng = random.Random(3)
    loop = asyncio.get_running_loop()
    happened: list[float] = []

    async def call() -> None:
        await asyncio.sleep(rng.random() * 0.05)
        async with budget.permit():
            await asyncio.sleep(rng.random() * 0.01)
            happened.append(loop.time())
            await asyncio.sleep(rng.random() * 0.01)

    await asyncio.gather(*(call() for _ in range(60)))
    assert len(happened) == 60 and refusals(happened, 5, 0.05) == 0
    assert budget.core.in_flight == 0


async def test_waiting_callers_are_released_a_step_at_a_time() -> None:
    budget = WindowBudget(24, 0.2, step=24)
    done: list[int] = []

    async def call(n: int) -> None:
        async with budget.permit():
            done.append(n)

    await asyncio.gather(*(call(n) for n in range(24)))  # the first 24 go at once
    assert budget.releases == 0
    await asyncio.gather(*(call(n) for n in range(24, 96)))
    assert sorted(done) == list(range(96))
    assert budget.releases <= 72 // 24 + 1  # one wake-up per step, not per call


async def test_a_caller_cancelled_while_waiting_takes_no_permit() -> None:
    budget = WindowBudget(1, 0.05)
    async with budget.permit():
        waiting = asyncio.create_task(budget.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert budget.core.in_flight == 0
    async with budget.permit():  # the next caller is served
        assert budget.core.in_flight == 1


# --- the breaker ----------------------------------------------------------------------------------


async def test_the_breaker_pauses_everyone_then_probes_with_one_call() -> None:
    clock = Clock()
    breaker = Breaker(base=5, cap=300, clock=clock, sleep=clock.sleep, rng=lambda: 1.0)
    first = await breaker.wait()
    assert first == await breaker.wait()  # closed: everyone passes
    assert breaker.trip(first, "503") == 5
    assert breaker.trip(first, "503") == 5  # a call from before the pause: no longer pause
    passed: list[tuple[float, int]] = []

    async def caller() -> None:
        ticket = await breaker.wait()
        passed.append((clock(), ticket))

    callers = [asyncio.create_task(caller()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert len(passed) == 1 and passed[0][0] == 5  # after the pause, one probe
    probe = passed[0][1]
    assert breaker.trip(probe, "503") == 10  # the probe failed: twice as long
    await asyncio.sleep(0.01)
    assert len(passed) == 2 and passed[1][0] == 15
    breaker.ok()  # the second probe was answered
    await asyncio.gather(*callers)
    assert [at for at, _ in passed][2:] == [15] and not breaker.open


async def test_the_breaker_waits_at_least_what_discord_asked() -> None:
    clock = Clock()
    breaker = Breaker(base=5, cap=300, clock=clock, sleep=clock.sleep, rng=lambda: 1.0)
    breaker.trip(await breaker.wait(), "Cloudflare", at_least=1800)
    await breaker.wait()
    assert clock() == 1800


async def test_a_cancelled_probe_lets_another_caller_probe() -> None:
    clock = Clock()
    breaker = Breaker(base=5, clock=clock, sleep=clock.sleep, rng=lambda: 1.0)
    breaker.trip(await breaker.wait(), "503")
    probe = await breaker.wait()
    breaker.done(probe)  # its call never reached Discord
    assert await asyncio.wait_for(breaker.wait(), 1) == probe


async def test_a_hold_pauses_without_a_probe() -> None:
    clock = Clock()
    breaker = Breaker(clock=clock, sleep=clock.sleep)
    breaker.hold(600)
    results = await asyncio.gather(*(breaker.wait() for _ in range(5)))
    assert clock() == 600 and len(results) == 5


def test_backoff_of_the_breaker_is_capped() -> None:
    assert [backoff(n, base=5, cap=300, rng=lambda: 1.0) for n in range(1, 10)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        300,
        300,
        300,
    ]


# --- invalid requests -----------------------------------------------------------------------------


def test_invalid_requests_are_counted_over_ten_minutes() -> None:
    clock = Clock()
    invalid = InvalidRequests(clock=clock)
    for status, scope in (
        (401, None),
        (403, None),
        (429, "user"),
        (429, "global"),
        (429, "shared"),
        (404, None),
    ):
        invalid.note(status, scope)
    assert invalid.count() == 4  # 404 is not invalid; a shared 429 is not the bot's
    clock.now = 300
    invalid.note(403)
    assert invalid.below_at(6) == 300 and invalid.below_at(5) == 600 and invalid.below_at(1) == 900
    clock.now = 600
    assert invalid.count() == 1 and invalid.total == 5


async def test_the_trace_counts_every_answer_of_a_client() -> None:
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        headers = {"X-RateLimit-Scope": request.query["scope"]} if "scope" in request.query else {}
        return web.Response(status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/{status}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    invalid = InvalidRequests()
    try:
        async with aiohttp.ClientSession(trace_configs=[invalid.trace_config()]) as session:
            for path in ("200", "401", "403", "429?scope=user", "429?scope=shared", "404", "503"):
                async with session.get(f"http://127.0.0.1:{port}/{path}") as response:
                    await response.read()
    finally:
        await runner.cleanup()
    assert invalid.traced and invalid.count() == 3


async def test_the_gate_paces_every_api_call_of_a_client_but_interactions_and_webhooks() -> None:
    """Two permits: two API calls in flight hold them, a third waits for one; an interaction callback,
    a followup (webhook) and a call outside the API go by. The server answers only when told to."""
    arrived: list[str] = []
    answer_now, five_arrived = asyncio.Event(), asyncio.Event()

    async def answer(request: web.Request) -> web.Response:
        arrived.append(request.path)
        if len(arrived) == 5:
            five_arrived.set()
        await answer_now.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    budget = WindowBudget(2, 60.0)  # two calls a minute: the third waits for as long as the test runs
    gate = RestGate(budget)
    trace = aiohttp.TraceConfig()
    gate.attach(trace)

    async def post(session: aiohttp.ClientSession, path: str) -> int:
        async with session.post(base + path) as response:
            return response.status

    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            api = [asyncio.create_task(post(session, f"/api/v10/channels/{n}/messages")) for n in (1, 2, 3)]
            free = [
                asyncio.create_task(post(session, path))
                for path in ("/api/v10/interactions/9/tok/callback", "/api/v10/webhooks/8/tok", "/cdn/x")
            ]

            await asyncio.wait_for(five_arrived.wait(), 5)
            await asyncio.sleep(0.1)  # the third API call would have arrived by now if it could
            free_paths = {"/api/v10/interactions/9/tok/callback", "/api/v10/webhooks/8/tok", "/cdn/x"}
            assert free_paths <= set(arrived)
            assert len([p for p in arrived if "/channels/" in p]) == 2  # the third one waits
            assert budget.core.in_flight == 2
            answer_now.set()
            assert await asyncio.gather(*free) == [204, 204, 204]
            done, waiting = await asyncio.wait(api, timeout=0.5)
            assert len(done) == 2 and len(waiting) == 1  # answered: yet the window still holds them
            assert budget.core.in_flight == 0 and len(budget.core.answered) == 2
            for task in waiting:
                task.cancel()
    finally:
        await runner.cleanup()
    assert budget.core.in_flight == 0  # the cancelled call gave its place back
