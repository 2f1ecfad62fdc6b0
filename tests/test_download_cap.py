"""The download size cap: bodies larger than the cap after decompression are refused, and never held.

Local aiohttp servers on 127.0.0.1 serve a gzip bomb (1 MB that inflates to 1 GiB), a deflate bomb,
plain oversized bodies (announced by Content-Length or not) and an oversized FlareSolverr answer.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from local_servers import Sleeps, app_servers, base

from bot.cli import poll_main
from bot.poller import make_http_client
from bot.settings import Settings
from bot.sources.http import DEFAULT_MAX_BODY_BYTES, FetchError, HttpClient, TooLargeError, describe_size
from bot.store import open_store

MIB = 1 << 20
CAP = 4_000_000  # the test's cap: 4 MB


def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip file of `inflated_mib` MiB of zeros, ~1 KB per MiB, built in a fraction of a second.

    One MiB of zeros is deflated once and ended with a full flush (which makes it independent of what
    came before), repeated, then closed with the CRC-32 and size the gzip trailer wants."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(bytes(MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    crc = 0
    zeros = bytes(MIB)
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (inflated_mib * MIB) & 0xFFFFFFFF)
    return header + segment * inflated_mib + last + trailer


def test_the_bomb_is_a_real_gzip_file() -> None:
    bomb = gzip_bomb(8)
    assert len(bomb) < 10_000 and gzip.decompress(bomb) == bytes(8 * MIB)


@pytest.fixture
async def server() -> AsyncIterator[Callable[[web.Application], Awaitable[TestServer]]]:
    async with app_servers() as start:
        yield start


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(max_body_bytes=CAP, total_timeout=10, sleep=Sleeps()) as http:
        yield http


def app_with(
    requests: list[str], **routes: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.Application:
    app = web.Application()
    for name, handler in routes.items():

        async def counted(request: web.Request, handler=handler) -> web.StreamResponse:
            requests.append(request.path)
            return await handler(request)

        app.router.add_get(f"/{name}", counted)
    return app


async def test_gzip_bomb_refused_within_the_cap(server, client: HttpClient) -> None:
    bomb = gzip_bomb(1024)  # 1 GiB once inflated
    assert 1_000_000 < len(bomb) < 1_100_000

    async def serve_bomb(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    requests: list[str] = []
    srv = await server(app_with(requests, bomb=serve_bomb))
    url = base(srv) + "bomb"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(TooLargeError) as caught:
            await client.get(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        f"GET {url} failed (not retried): the answer is larger than the 4 MB cap "
        "(after decompression; CHARTBOT_MAX_DOWNLOAD_MB)"
    )
    assert isinstance(caught.value, FetchError) and not caught.value.retryable and caught.value.status == 200
    assert requests == ["/bomb"]  # refused for good, not retried
    # The cap, plus a little: the server's 1 MB send buffer lives in this process too. Without the cap
    # the peak is the whole inflated gigabyte.
    assert peak < CAP + 3 * MIB, f"peak {peak:,} bytes"


async def test_deflate_bomb_refused(server, client: HttpClient) -> None:
    bomb = zlib.compress(bytes(64 * MIB), 9)

    async def serve_bomb(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "deflate"})

    srv = await server(app_with([], bomb=serve_bomb))
    with pytest.raises(TooLargeError, match=r"larger than the 4 MB cap"):
        await client.get(base(srv) + "bomb")


async def test_compressed_body_under_the_cap_is_inflated_whole(server, client: HttpClient) -> None:
    text = ("week\ttitle\n" + "2022-02-06\tAll of Us Are Dead\n" * 100_000).encode()
    assert len(text) < CAP
    packed = gzip.compress(text)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=packed, headers={"Content-Encoding": "gzip"})

    srv = await server(app_with([], file=serve))
    result = await client.get(base(srv) + "file")
    assert result.body == text


async def test_plain_body_one_byte_over_is_refused_and_the_cap_itself_is_fine(server) -> None:
    async def exactly(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1000)

    async def over(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1001)

    srv = await server(app_with([], exactly=exactly, over=over))
    async with HttpClient(max_body_bytes=1000, sleep=Sleeps()) as http:
        assert (await http.get(base(srv) + "exactly")).body == b"x" * 1000
        with pytest.raises(TooLargeError) as caught:
            await http.get(base(srv) + "over")
    assert "larger than the 1,000 bytes cap" in str(caught.value) and base(srv) + "over" in str(caught.value)


async def test_content_length_over_the_cap_is_refused_unread(server) -> None:
    """A server announcing 10 GB and sending a trickle: refused at the headers, not after a timeout."""
    sent = asyncio.Event()

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 10_000_000_000
        await response.prepare(request)
        await response.write(b"x" * 100)
        sent.set()
        await asyncio.sleep(3600)  # cancelled when the client hangs up
        return response

    srv = await server(app_with([], huge=huge))
    async with HttpClient(max_body_bytes=CAP, total_timeout=30, max_attempts=1, sleep=Sleeps()) as http:
        with pytest.raises(TooLargeError, match=r"larger than the 4 MB cap"):
            await http.get(base(srv) + "huge")
    assert sent.is_set()


async def test_chunked_plain_body_counted_as_it_arrives(server, client: HttpClient) -> None:
    """No Content-Length (chunked): the body is counted while it streams and refused at the cap."""
    chunks_sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal chunks_sent
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        while True:  # until the client hangs up
            await response.write(b"y" * 65536)
            chunks_sent += 1

    srv = await server(app_with([], endless=endless))
    with pytest.raises(TooLargeError):
        await client.get(base(srv) + "endless")
    assert chunks_sent >= CAP // 65536


async def test_flaresolverr_answer_over_the_cap(server) -> None:
    page = "<html>" + "z" * 5000 + "</html>"

    async def solver(request: web.Request) -> web.Response:
        answer = {"status": "ok", "solution": {"status": 200, "headers": {}, "response": page}}
        return web.Response(text=json.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1", solver)
    srv = await server(app)
    remote = "https://flixpatrol.test/top10/netflix/world/2026-08-01/"  # never contacted: data for the fake
    async with HttpClient(max_body_bytes=4000, flaresolverr_url=base(srv), sleep=Sleeps()) as http:
        with pytest.raises(TooLargeError, match=r"larger than the 4,000 bytes cap"):
            await http.get(remote, browser=True)
    async with HttpClient(max_body_bytes=10_000, flaresolverr_url=base(srv), sleep=Sleeps()) as http:
        assert (await http.get(remote, browser=True)).body == page.encode()


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be at least 1"):
        HttpClient(max_body_bytes=0)


def test_sizes_read_well() -> None:
    assert describe_size(DEFAULT_MAX_BODY_BYTES) == "200 MB"
    assert describe_size(1_500_000) == "1.5 MB" and describe_size(999) == "999 bytes"


async def test_the_setting_reaches_the_pollers_client() -> None:
    async with await open_store(":memory:") as store:
        http = make_http_client(Settings.from_env({"CHARTBOT_MAX_DOWNLOAD_MB": "0.5"}), store)
        assert http.max_body_bytes == 500_000
        assert make_http_client(Settings(), store).max_body_bytes == 200_000_000
        assert make_http_client(Settings(), store, max_body_bytes=7).max_body_bytes == 7


async def test_poll_refuses_a_netflix_file_over_the_setting(server, tmp_path) -> None:
    """`chartbot poll --once` with CHARTBOT_MAX_DOWNLOAD_MB under the file's size: an error naming
    the file's URL and the cap, nothing stored, and the next poll asks for the whole file again."""
    weekly = (Path(__file__).parent / "data" / "netflix" / "all-weeks-global_2022-03-02.tsv").read_bytes()
    assert 50_000 < len(weekly) < 200_000
    etags: list[str | None] = []

    async def tsv(request: web.Request) -> web.Response:
        if request.match_info["name"] != "all-weeks-global.tsv":
            return web.Response(status=404)
        etags.append(request.headers.get("If-None-Match"))
        return web.Response(body=gzip.compress(weekly), headers={"Content-Encoding": "gzip", "ETag": '"v1"'})

    app = web.Application()
    app.router.add_get("/top10/data/{name}", tsv)
    srv = await server(app)
    env = {"CHARTBOT_DB": str(tmp_path / "c.db"), "NETFLIX_TOP10_URL": base(srv) + "top10/data/"}
    settings = Settings.from_env({**env, "CHARTBOT_MAX_DOWNLOAD_MB": "0.05"})
    out, err = io.StringIO(), io.StringIO()
    assert await poll_main(settings, once=True, out=out, err=err) == 1
    url = base(srv) + "top10/data/all-weeks-global.tsv"
    assert f"GET {url} failed (not retried): the answer is larger than the 50,000 bytes cap" in err.getvalue()
    assert out.getvalue() == ""
    async with await open_store(settings.db_path) as store:
        assert await store.fetch_all("SELECT count(*) FROM charts") == [(0,)]
    settings = Settings.from_env({**env, "CHARTBOT_MAX_DOWNLOAD_MB": "0.2"})
    await poll_main(settings, once=True, out=io.StringIO(), err=io.StringIO())
    assert etags == [None, None]  # the refused file left no validator behind: fetched whole again
    async with await open_store(settings.db_path) as store:
        assert await store.fetch_all("SELECT count(*) FROM charts") == [(140,)]
