"""The one polite HTTP client every source fetches through.

Polite means: a truthful User-Agent, a per-host concurrency limit, timeouts, a few retries with
exponential backoff and full jitter (only for failures that waiting can fix), honouring `Retry-After`,
and conditional GETs so an unchanged chart costs the server a 304 and us no work. Pages behind a
Cloudflare challenge can be fetched through a FlareSolverr endpoint (a real browser).

Careful too: a body is read in chunks and refused once it passes a size cap (counted after gzip or
deflate is undone), so a hostile or broken server cannot fill the memory (1 MB of gzip can inflate
to gigabytes). aiohttp >= 3.13.3 inflates at most a bounded chunk per read, which keeps that true.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

log = logging.getLogger("chartbot.http")

try:
    VERSION = importlib.metadata.version("chartbot")
except importlib.metadata.PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0.0.0"

DEFAULT_USER_AGENT = f"chartbot/{VERSION} (+https://github.com/chartbot/chartbot)"
FLARESOLVERR_HOME = "https://github.com/FlareSolverr/FlareSolverr"

# Failures that a later attempt may not repeat: the connection broke, or nothing came back in time.
_TRANSIENT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
DEFAULT_MAX_BODY_BYTES = 200_000_000  # Netflix's all-weeks-countries.tsv is tens of MB and grows weekly
_READ_CHUNK = 1 << 16
_CHALLENGE_MARKERS = (b"Just a moment...", "Just a moment…".encode(), b"challenge-platform")

Validators = tuple[str | None, str | None]
"""(ETag, Last-Modified) of the last full answer for a URL."""


class ValidatorStore(Protocol):
    """Where ETag / Last-Modified survive a restart (e.g. the SQLite store).

    Methods may be plain or `async`: the client awaits whatever they return when it is awaitable.
    """

    def get(self, url: str) -> Validators | Awaitable[Validators | None] | None: ...

    def set(self, url: str, etag: str | None, last_modified: str | None) -> Awaitable[None] | None: ...


@dataclass(frozen=True)
class FetchResult:
    """A successful answer. `not_modified` (HTTP 304) means: nothing changed since last time, no body."""

    url: str
    status: int
    body: bytes | None
    headers: Mapping[str, str]
    not_modified: bool
    attempts: int
    elapsed: float


class FetchError(Exception):
    """A fetch that failed for good. `retryable` says whether trying again later may succeed."""

    def __init__(self, message: str, *, url: str, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable


class NotFoundError(FetchError):
    """HTTP 404: the page does not exist (yet). Not retried."""


class ChallengeError(FetchError):
    """A Cloudflare challenge page: only a real browser gets through. Not retried."""


class TooLargeError(FetchError):
    """The body (after decompression) is larger than the client's cap. Not retried."""


class _OverCap(Exception):
    """Raised while reading a body that passed the cap; `get` turns it into a TooLargeError."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class HttpClient:
    """One shared `aiohttp.ClientSession` with the house rules. Use `async with` or call `close()`."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        total_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        per_host_limit: int = 4,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 120.0,
        validator_store: ValidatorStore | None = None,
        flaresolverr_url: str | None = None,
        flaresolverr_max_timeout_ms: int = 60_000,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1 or per_host_limit < 1:
            raise ValueError("max_attempts and per_host_limit must be at least 1")
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        self.user_agent = user_agent
        self.timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
        self.per_host_limit = per_host_limit
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.validator_store = validator_store
        self.flaresolverr_url = flaresolverr_url.rstrip("/") if flaresolverr_url else None
        self.flaresolverr_max_timeout_ms = flaresolverr_max_timeout_ms
        self.max_body_bytes = max_body_bytes
        self._sleep = sleep
        self._random = random
        self._session: aiohttp.ClientSession | None = None
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._validators: dict[str, Validators] = {}

    async def __aenter__(self) -> HttpClient:
        self._get_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession wants a running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            )
        return self._session

    async def get(
        self,
        url: str,
        *,
        browser: bool = False,
        headers: Mapping[str, str] | None = None,
        conditional: bool = True,
        remember: bool = True,
    ) -> FetchResult:
        """GET `url`, retrying what waiting can fix; raise `FetchError` (or a subclass) otherwise.

        `browser=True` fetches through FlareSolverr (no conditional GET there). With `remember=False`
        the validators are not stored, so a caller can `remember(result)` only once it has used the body.
        """
        started = time.monotonic()
        send = dict(headers or {})
        if conditional and not browser:
            send.update(await self._conditional_headers(url))
        reason = ""
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                async with self._host_limit(url):
                    answer = await (self._fetch_via_flaresolverr(url) if browser else self._fetch(url, send))
            except _OverCap as exc:
                reason = (
                    f"the answer is larger than the {describe_size(self.max_body_bytes)} cap "
                    "(after decompression; CHARTBOT_MAX_DOWNLOAD_MB)"
                )
                raise self._give_up(
                    url, exc.status, reason, attempt, retryable=False, kind=TooLargeError
                ) from None
            except _TRANSIENT_ERRORS as exc:
                status, reason = None, self._describe(exc, browser)
            except aiohttp.ClientError as exc:
                raise self._give_up(
                    url, None, f"{type(exc).__name__}: {exc}", attempt, retryable=False
                ) from exc
            else:
                status = answer.status
                if (status != 429 and status < 500) or _is_challenge(answer):
                    result = self._finish(url, answer, attempt, started, browser)
                    if remember and not browser and status == 200:
                        await self.remember(result)
                    return result
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            if attempt == self.max_attempts:
                break
            if retry_after is not None and retry_after > self.retry_after_cap:
                cap = self.retry_after_cap
                reason += f", and Retry-After asks for {retry_after:g} s (more than the {cap:g} s cap)"
                break
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            log.warning(
                "GET %s: %s; retry %d/%d in %.2f s", url, reason, attempt + 1, self.max_attempts, wait
            )
            await self._sleep(wait)
        raise self._give_up(url, status, reason, attempt, retryable=True)

    async def remember(self, result: FetchResult, *, persist: bool = True) -> None:
        """Keep the ETag / Last-Modified of `result` for the next conditional GET of its URL.

        `persist=False`: the caller has saved them itself (with the charts the answer led to)."""
        etag, last_modified = result.headers.get("ETag"), result.headers.get("Last-Modified")
        if etag is None and last_modified is None:
            return
        self._validators[result.url] = (etag, last_modified)
        if persist and self.validator_store is not None:
            await _maybe_await(self.validator_store.set(result.url, etag, last_modified))

    async def forget(self, url: str) -> None:
        """Drop the validators of `url` (e.g. its body could not be parsed): the next GET is a full one."""
        self._validators.pop(url, None)
        if self.validator_store is not None:
            await _maybe_await(self.validator_store.set(url, None, None))

    async def _conditional_headers(self, url: str) -> dict[str, str]:
        validators = self._validators.get(url)
        if validators is None and self.validator_store is not None:
            validators = await _maybe_await(self.validator_store.get(url))
            if validators is not None:
                self._validators[url] = validators
        etag, last_modified = validators or (None, None)
        sent = {}
        if etag:
            sent["If-None-Match"] = etag
        if last_modified:
            sent["If-Modified-Since"] = last_modified
        return sent

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = URL(url).host or ""
        if host not in self._limits:
            self._limits[host] = asyncio.Semaphore(self.per_host_limit)
        return self._limits[host]

    async def _fetch(self, url: str, headers: Mapping[str, str]) -> _Answer:
        async with self._get_session().get(url, headers=headers) as resp:
            body = await self._read_capped(resp)
            return _Answer(resp.status, resp.headers, body)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body, read in chunks; _OverCap as soon as it passes `max_body_bytes`.

        An uncompressed body announced larger than the cap (Content-Length) is refused unread. A
        compressed one is counted as it inflates: at most the cap and one chunk are ever held.
        """
        cap = self.max_body_bytes
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity") and resp.content_length is not None and resp.content_length > cap:
            raise _OverCap(resp.status)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > cap:
                raise _OverCap(resp.status)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _fetch_via_flaresolverr(self, url: str) -> _Answer:
        """Ask FlareSolverr's real browser for `url`; its answer is JSON with the page in `solution`."""
        if self.flaresolverr_url is None:
            raise FetchError(
                f"cannot fetch {url} through a browser: set FLARESOLVERR_URL to a FlareSolverr endpoint "
                f"({FLARESOLVERR_HOME})",
                url=url,
            )
        endpoint = f"{self.flaresolverr_url}/v1"
        payload = {"cmd": "request.get", "url": url, "maxTimeout": self.flaresolverr_max_timeout_ms}
        async with self._get_session().post(endpoint, json=payload, timeout=self._browser_timeout()) as resp:
            raw = await self._read_capped(resp)
        try:
            data = json.loads(raw)
        except ValueError:  # not JSON, or not UTF-8
            data = None
        if not isinstance(data, dict):
            raise FetchError(
                f"FlareSolverr at {endpoint} answered HTTP {resp.status} without a JSON object", url=url
            )
        solution = data.get("solution")
        if data.get("status") != "ok" or not isinstance(solution, dict):
            message = data.get("message") or "no message"
            raise FetchError(f"FlareSolverr could not fetch {url}: {message}", url=url)
        headers = CIMultiDict({str(k): str(v) for k, v in (solution.get("headers") or {}).items()})
        body = str(solution.get("response") or "").encode("utf-8")
        return _Answer(int(solution.get("status") or 200), CIMultiDictProxy(headers), body)

    def _finish(self, url: str, answer: _Answer, attempt: int, started: float, browser: bool) -> FetchResult:
        """Turn a final answer into a result, or into the error it means."""
        status = answer.status
        if _is_challenge(answer):
            host = (URL(url).host or url).removeprefix("www.")
            if browser:
                message = (
                    f"{host} still answered with a Cloudflare challenge through FlareSolverr at "
                    f"{self.flaresolverr_url}; check that FlareSolverr is running and up to date"
                )
            else:
                message = (
                    f"{host} answered with a Cloudflare challenge; set FLARESOLVERR_URL to a FlareSolverr "
                    f"endpoint ({FLARESOLVERR_HOME}) to fetch through a real browser"
                )
            raise self._give_up(url, status, message, attempt, retryable=False, kind=ChallengeError)
        if status == 404:
            raise self._give_up(
                url, status, "HTTP 404 (not found)", attempt, retryable=False, kind=NotFoundError
            )
        if status >= 400:
            raise self._give_up(url, status, f"HTTP {status}", attempt, retryable=False)
        not_modified = status == 304
        return FetchResult(
            url=url,
            status=status,
            body=None if not_modified else answer.body,
            headers=answer.headers,
            not_modified=not_modified,
            attempts=attempt,
            elapsed=time.monotonic() - started,
        )

    def _browser_timeout(self) -> aiohttp.ClientTimeout:
        """The browser may take up to maxTimeout to solve a challenge: allow that plus the usual total."""
        total = self.flaresolverr_max_timeout_ms / 1000 + (self.timeout.total or 0)
        return aiohttp.ClientTimeout(total=total, connect=self.timeout.connect)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1)))."""
        return self._random() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))

    def _describe(self, exc: BaseException, browser: bool) -> str:
        where = f"FlareSolverr at {self.flaresolverr_url}" if browser else "the server"
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"could not connect to {where} within {self.timeout.connect:g} s"
        if isinstance(exc, TimeoutError):
            total = (self._browser_timeout() if browser else self.timeout).total or 0
            return f"no complete answer from {where} within {total:g} s (timed out)"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return f"{where} closed the connection"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"the connection to {where} broke mid-response"
        return f"cannot reach {where}: {exc}"

    def _give_up(
        self,
        url: str,
        status: int | None,
        reason: str,
        attempts: int,
        *,
        retryable: bool,
        kind: type[FetchError] = FetchError,
    ) -> FetchError:
        """Log one line and build the error; the caller raises it."""
        if kind is ChallengeError:
            message = reason
        else:
            tries = f"after {attempts} attempts" if attempts > 1 else "(not retried)"
            message = f"GET {url} failed {tries}: {reason}"
        (log.warning if retryable else log.info)("giving up: %s", message)
        return kind(message, url=url, status=status, retryable=retryable)


def describe_size(size: int) -> str:
    """200,000,000 -> "200 MB"; 1,000 -> "1,000 bytes"."""
    return f"{size / 1_000_000:,.6g} MB" if size >= 1_000_000 else f"{size:,} bytes"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _is_challenge(answer: _Answer) -> bool:
    if answer.status not in (403, 503):
        return False
    if answer.headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    return any(marker in answer.body for marker in _CHALLENGE_MARKERS)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
