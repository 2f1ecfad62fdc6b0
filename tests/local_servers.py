"""Helpers for tests that talk HTTP to servers of their own, on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer


class Sleeps(list[float]):
    """Stands in for asyncio.sleep in the HTTP client: records the waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@asynccontextmanager
async def app_servers() -> AsyncIterator[Callable[[web.Application], Awaitable[TestServer]]]:
    """`start(app)` serves an app on a free port of 127.0.0.1; every server is closed on exit."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
        await server.start_server()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


def base(server: TestServer) -> str:
    return str(server.make_url("/"))
