"""The shared HTTP client against small local aiohttp servers (127.0.0.1 only, never the internet)."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from local_servers import Sleeps, app_servers

from bot.sources.http import (
    DEFAULT_USER_AGENT,
    ChallengeError,
    FetchError,
    HttpClient,
    NotFoundError,
    parse_retry_after,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Never contacted: only ever sent as data to the local FlareSolverr fake (.test is a reserved TLD).
REMOTE_PAGE = "https://flixpatrol.test/top10/netflix/world/2026-08-01/"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    """Start a local server with one handler on `path`; all are closed after the test."""
    async with app_servers() as start_app:

        async def start(handler: Handler, path: str = "/", method: str = "GET") -> TestServer:
            app = web.Application()
            app.router.add_route(method, path, handler)
            return await start_app(app)

        yield start


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_client(sleeps: Sleeps) -> AsyncIterator[Callable[..., HttpClient]]:
    """Clients whose backoff never really waits and whose jitter is always the full window."""
    clients: list[HttpClient] = []

    def make(**kwargs: Any) -> HttpClient:
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("random", lambda: 1.0)
        client = HttpClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


CountingHandler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


def counting(handler: CountingHandler) -> tuple[Handler, list[int]]:
    """Wrap a handler so it gets the 1-based hit number, and the test can read how many hits there were."""
    hits: list[int] = []

    async def wrapped(request: web.Request) -> web.StreamResponse:
        hits.append(len(hits) + 1)
        return await handler(request, len(hits))

    return wrapped, hits


async def test_etag_then_304(serve, make_client) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=b"rank,title\n1,Squid Game\n", headers={"ETag": '"v1"'})

    server = await serve(handler)
    async with make_client() as client:
        first = await client.get(str(server.make_url("/")))
        second = await client.get(str(server.make_url("/")))
    assert (first.status, first.not_modified, first.body) == (200, False, b"rank,title\n1,Squid Game\n")
    assert (second.status, second.not_modified, second.body) == (304, True, None)
    assert seen == [None, '"v1"']


class DictStore:
    """A validator store like the SQLite one will be (plain methods)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str | None, str | None]] = {}

    def get(self, url: str) -> tuple[str | None, str | None] | None:
        return self.data.get(url)

    def set(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self.data[url] = (etag, last_modified)


class AsyncDictStore(DictStore):
    """The same with async methods, as an aiosqlite-backed store would have."""

    async def get(self, url: str) -> tuple[str | None, str | None] | None:  # type: ignore[override]
        return super().get(url)

    async def set(self, url: str, etag: str | None, last_modified: str | None) -> None:  # type: ignore[override]
        super().set(url, etag, last_modified)


@pytest.mark.parametrize("store_class", [DictStore, AsyncDictStore])
async def test_last_modified_survives_a_restart_through_the_store(serve, make_client, store_class) -> None:
    stamp = "Sun, 01 Feb 2026 00:00:00 GMT"
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("If-Modified-Since"))
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304)
        return web.Response(body=b"week 1", headers={"Last-Modified": stamp})

    server = await serve(handler)
    url = str(server.make_url("/"))
    store = store_class()
    async with make_client(validator_store=store) as client:
        assert (await client.get(url)).body == b"week 1"
    assert store.data[url] == (None, stamp)
    async with make_client(validator_store=store) as fresh:  # a restarted bot: empty memory, same store
        again = await fresh.get(url)
        assert again.not_modified and again.body is None
        await fresh.forget(url)
        assert (await fresh.get(url)).body == b"week 1"
    assert seen == [None, stamp, None]


async def test_remember_false_leaves_validators_to_the_caller(serve, make_client) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("If-None-Match"))
        return web.Response(body=b"x", headers={"ETag": '"v2"'})

    server = await serve(handler)
    url = str(server.make_url("/"))
    async with make_client() as client:
        result = await client.get(url, remember=False)
        await client.get(url, remember=False)
        await client.remember(result)  # e.g. once the snapshot is safely ingested
        await client.get(url)
    assert seen == [None, None, '"v2"']


async def test_gzip_body_is_decoded(serve, make_client) -> None:
    page = b"<html>" + b"Top 10 " * 500 + b"</html>"
    accepted: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        accepted.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=gzip.compress(page), headers={"Content-Encoding": "gzip"})

    server = await serve(handler)
    async with make_client() as client:
        result = await client.get(str(server.make_url("/")))
    assert "gzip" in accepted[0]
    assert result.body == page


async def test_user_agent_is_truthful_and_configurable(serve, make_client) -> None:
    agents: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        agents.append(request.headers["User-Agent"])
        return web.Response(text="ok")

    server = await serve(handler)
    async with make_client() as client:
        await client.get(str(server.make_url("/")))
    async with make_client(user_agent="chartbot-test/1.0 (+mailto:ops@example.org)") as client:
        await client.get(str(server.make_url("/")))
    assert agents == [DEFAULT_USER_AGENT, "chartbot-test/1.0 (+mailto:ops@example.org)"]
    assert DEFAULT_USER_AGENT.startswith("chartbot/")
    assert DEFAULT_USER_AGENT.endswith(" (+https://github.com/chartbot/chartbot)")


async def test_5xx_is_retried_with_growing_backoff_and_logged_without_headers(
    serve, make_client, sleeps, caplog
) -> None:
    async def flaky(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=500) if hit <= 2 else web.Response(body=b"fine")

    handler, hits = counting(flaky)
    server = await serve(handler)
    caplog.set_level(logging.INFO, logger="chartbot.http")
    async with make_client() as client:
        result = await client.get(str(server.make_url("/")), headers={"Authorization": "Bearer s3cret"})
    assert (result.status, result.body, result.attempts) == (200, b"fine", 3)
    assert len(hits) == 3
    assert sleeps == [1.0, 2.0]  # full window with random() = 1.0: base 1 s, doubling
    retries = [r.getMessage() for r in caplog.records if r.name == "chartbot.http"]
    assert len(retries) == 2
    assert all("HTTP 500" in line and str(server.make_url("/")) in line for line in retries)
    assert "s3cret" not in caplog.text


async def test_backoff_uses_full_jitter(serve, make_client, sleeps) -> None:
    async def flaky(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=502) if hit <= 3 else web.Response(text="ok")

    handler, _ = counting(flaky)
    server = await serve(handler)
    async with make_client(random=lambda: 0.25, backoff_base=2.0, backoff_cap=5.0) as client:
        await client.get(str(server.make_url("/")))
    assert sleeps == [0.5, 1.0, 1.25]  # 0.25 × min(5, 2, 4, 8)


async def test_429_honours_retry_after_seconds(serve, make_client, sleeps) -> None:
    async def limited(request: web.Request, hit: int) -> web.Response:
        if hit == 1:
            return web.Response(status=429, headers={"Retry-After": "2"})
        return web.Response(text="ok")

    handler, hits = counting(limited)
    server = await serve(handler)
    async with make_client() as client:
        result = await client.get(str(server.make_url("/")))
    assert result.attempts == 2 and len(hits) == 2
    assert sleeps == [2.0]  # the server's wish, not the 1 s backoff


async def test_retry_after_beyond_the_cap_gives_up_instead_of_hammering(serve, make_client, sleeps) -> None:
    async def limited(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "3600"})

    handler, hits = counting(limited)
    server = await serve(handler)
    async with make_client(retry_after_cap=60) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(str(server.make_url("/")))
    assert len(hits) == 1 and sleeps == []
    assert caught.value.status == 429 and caught.value.retryable
    assert "Retry-After asks for 3600 s" in str(caught.value)


def test_parse_retry_after() -> None:
    now = 1_767_225_600.0  # Thu, 01 Jan 2026 00:00:00 GMT
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0.0  # already past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_connection_reset_is_retried(serve, make_client, sleeps, caplog) -> None:
    async def breaking(request: web.Request, hit: int) -> web.StreamResponse:
        assert request.transport is not None
        if hit <= 2:  # hang up before any answer (twice: aiohttp itself silently retries once)
            request.transport.close()
            return web.Response()
        if hit == 3:  # hang up after the headers and part of the body
            response = web.StreamResponse()
            response.content_length = 1000
            await response.prepare(request)
            await response.write(b"<html>partial")
            request.transport.close()
            return response
        return web.Response(body=b"<html>whole</html>")

    handler, hits = counting(breaking)
    server = await serve(handler)
    caplog.set_level(logging.INFO, logger="chartbot.http")
    async with make_client() as client:
        result = await client.get(str(server.make_url("/")))
    assert result.body == b"<html>whole</html>" and len(hits) == 4
    assert "the server closed the connection" in caplog.text
    assert "the connection to the server broke mid-response" in caplog.text
    assert result.attempts == len(sleeps) + 1 <= 4


async def test_slow_response_times_out_then_gives_up(serve, make_client, sleeps) -> None:
    async def slow(request: web.Request, hit: int) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="too late")

    handler, hits = counting(slow)
    server = await serve(handler)
    url = str(server.make_url("/"))
    async with make_client(total_timeout=0.2, max_attempts=2) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(url)
    error = caught.value
    assert error.retryable and error.status is None and error.url == url
    reason = "no complete answer from the server within 0.2 s (timed out)"
    assert str(error) == f"GET {url} failed after 2 attempts: {reason}"
    assert len(hits) == 2 and len(sleeps) == 1


async def test_404_is_not_retried(serve, make_client, sleeps) -> None:
    async def missing(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=404)

    handler, hits = counting(missing)
    server = await serve(handler)
    async with make_client() as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get(str(server.make_url("/")))
    assert caught.value.status == 404 and not caught.value.retryable
    assert "not retried" in str(caught.value)
    assert len(hits) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 410])
async def test_other_4xx_are_not_retried(serve, make_client, sleeps, status) -> None:
    async def refusing(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=status, text="no")

    handler, hits = counting(refusing)
    server = await serve(handler)
    async with make_client() as client:
        with pytest.raises(FetchError) as caught:
            await client.get(str(server.make_url("/")))
    assert type(caught.value) is FetchError
    assert caught.value.status == status and not caught.value.retryable
    assert len(hits) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (403, {"cf-mitigated": "challenge"}, "<html></html>"),
        (403, {}, "<title>Just a moment...</title>"),
        (503, {}, '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/jsch/v1"></script>'),
    ],
)
async def test_cloudflare_challenge_says_what_to_do(
    serve, make_client, sleeps, status, headers, body
) -> None:
    async def challenge(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=status, headers=headers, text=body, content_type="text/html")

    handler, hits = counting(challenge)
    server = await serve(handler)
    async with make_client() as client:
        with pytest.raises(ChallengeError) as caught:
            await client.get(str(server.make_url("/")))
    assert caught.value.status == status and not caught.value.retryable
    assert str(caught.value) == (
        "127.0.0.1 answered with a Cloudflare challenge; set FLARESOLVERR_URL to a FlareSolverr endpoint "
        "(https://github.com/FlareSolverr/FlareSolverr) to fetch through a real browser"
    )
    assert len(hits) == 1 and sleeps == []


async def test_5xx_retries_stop_at_max_attempts(serve, make_client, sleeps) -> None:
    async def down(request: web.Request, hit: int) -> web.Response:
        return web.Response(status=503, text="maintenance")

    handler, hits = counting(down)
    server = await serve(handler)
    url = str(server.make_url("/"))
    async with make_client(max_attempts=3) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(url)
    assert caught.value.status == 503 and caught.value.retryable
    assert str(caught.value) == f"GET {url} failed after 3 attempts: HTTP 503"
    assert len(hits) == 3 and len(sleeps) == 2


async def test_per_host_concurrency_limit(serve, make_client) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.1)
        in_flight -= 1
        return web.Response(text="ok")

    server = await serve(slow, path="/{n}")
    async with make_client(per_host_limit=3) as client:
        results = await asyncio.gather(*(client.get(str(server.make_url(f"/{n}"))) for n in range(12)))
    assert all(r.status == 200 for r in results)
    assert peak == 3


def flaresolverr_fake(answer: dict[str, Any], status: int = 200) -> tuple[Handler, list[dict[str, Any]]]:
    """A local stand-in for FlareSolverr's `POST /v1` JSON API."""
    calls: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response(answer, status=status)

    return handler, calls


async def test_flaresolverr_returns_the_page(serve, make_client) -> None:
    html = "<html><h3>TOP 10 Movies</h3><table><tr><td>1.</td></tr></table></html>"
    answer = {
        "status": "ok",
        "message": "Challenge solved!",
        "solution": {
            "url": REMOTE_PAGE,
            "status": 200,
            "headers": {},
            "response": html,
            "cookies": [],
            "userAgent": "Mozilla/5.0",
        },
    }
    handler, calls = flaresolverr_fake(answer)
    server = await serve(handler, path="/v1", method="POST")
    async with make_client(flaresolverr_url=str(server.make_url("/"))) as client:
        result = await client.get(REMOTE_PAGE, browser=True)
    assert calls == [{"cmd": "request.get", "url": REMOTE_PAGE, "maxTimeout": 60000}]
    assert (result.url, result.status, result.body, result.not_modified) == (
        REMOTE_PAGE,
        200,
        html.encode(),
        False,
    )


async def test_flaresolverr_error_becomes_fetch_error(serve, make_client, sleeps) -> None:
    answer = {"status": "error", "message": "Error: Error solving the challenge. Timeout after 60.0 seconds."}
    handler, calls = flaresolverr_fake(answer, status=500)
    server = await serve(handler, path="/v1", method="POST")
    async with make_client(flaresolverr_url=str(server.make_url("/"))) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(REMOTE_PAGE, browser=True)
    assert str(caught.value) == (
        f"FlareSolverr could not fetch {REMOTE_PAGE}: "
        "Error: Error solving the challenge. Timeout after 60.0 seconds."
    )
    assert caught.value.url == REMOTE_PAGE
    assert len(calls) == 1 and sleeps == []


async def test_flaresolverr_solution_status_is_judged_like_a_direct_answer(serve, make_client) -> None:
    answer = {"status": "ok", "message": "", "solution": {"url": REMOTE_PAGE, "status": 404, "response": ""}}
    handler, _ = flaresolverr_fake(answer)
    server = await serve(handler, path="/v1", method="POST")
    async with make_client(flaresolverr_url=str(server.make_url("/"))) as client:
        with pytest.raises(NotFoundError):
            await client.get(REMOTE_PAGE, browser=True)


async def test_browser_without_flaresolverr_says_what_to_set(make_client) -> None:
    async with make_client() as client:
        with pytest.raises(FetchError, match="set FLARESOLVERR_URL"):
            await client.get(REMOTE_PAGE, browser=True)
