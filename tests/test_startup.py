"""Start-up: a bad setting or `.env` is one line on stderr and exit 2 (never a traceback), through
`bot.cli.main` and through a real `python -m bot` process; a Discord that cannot be reached at start
is waited for with backoff (a local port that refuses connections, then forwards to the fake Discord)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fake_discord import FakeDiscord

from bot.cli import main
from bot.client import Backoff, ChartBot, is_unreachable, serve
from bot.model import InputError
from bot.settings import Settings

DATA = Path(__file__).parent / "data"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
PREFIXES = ("CHARTBOT_", "DISCORD_", "NETFLIX_", "FLIXPATROL_", "FLARESOLVERR_")
GUILD = 830_000_000_000_000_001
CHANNEL = 830_000_000_000_000_010


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A private copy of the environment without chartbot's settings; the current folder is tmp_path."""
    copy = {name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)}
    monkeypatch.setattr(os, "environ", copy)
    monkeypatch.chdir(tmp_path)
    return copy


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.rstrip("\n")


BAD_SETTINGS = [
    ("CHARTBOT_LOG_LEVEL", "LOUD", "CHARTBOT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("DISCORD_API_BASE", "discord.com/api", "DISCORD_API_BASE must be an absolute URL starting with http://"),
    (
        "DISCORD_GATEWAY_URL",
        "https://gateway",
        "DISCORD_GATEWAY_URL must be an absolute URL starting with ws://",
    ),
    ("CHARTBOT_POLL_INTERVAL", "1e-9", "CHARTBOT_POLL_INTERVAL must be a number of seconds, at least 1"),
    ("CHARTBOT_POLL_INTERVAL", "nan", "CHARTBOT_POLL_INTERVAL must be a number of seconds, at least 1"),
    ("NETFLIX_TOP10_URL", "netflix.com/tudum", "NETFLIX_TOP10_URL must be an absolute URL"),
    ("CHARTBOT_ANNOUNCE_RATE", "51", "CHARTBOT_ANNOUNCE_RATE must be a number of requests per second"),
    ("CHARTBOT_MAX_DOWNLOAD_MB", "0", "CHARTBOT_MAX_DOWNLOAD_MB must be a number of megabytes"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_SETTINGS)
@pytest.mark.parametrize("command", ["run", "poll", "status"])
def test_bad_setting_is_one_line_and_exit_2(
    environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    value: str,
    message: str,
) -> None:
    environ[name] = value
    environ["DISCORD_TOKEN"] = "never-used"
    code, out, err = run(capsys, command, "--db", "charts.sqlite3")
    assert code == 2 and out == ""
    assert one_line(err).startswith(f"chartbot {command}: {message}")
    assert repr(value) in err
    assert not Path("charts.sqlite3").exists()  # nothing was started


def test_bad_setting_in_dotenv(
    environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("CHARTBOT_LOG_LEVEL=chatty  # too much\n", encoding="utf-8")
    code, _, err = run(capsys, "status")
    assert code == 2
    assert one_line(err) == (
        "chartbot status: CHARTBOT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'chatty'"
    )


def test_dotenv_not_utf8(environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".env").write_bytes(b"# r\xe9glages\nCHARTBOT_DB=x.sqlite3\n")
    code, _, err = run(capsys, "status")
    assert code == 2
    assert one_line(err) == (
        "chartbot status: .env: line 1: byte 0xe9 is not valid UTF-8 (save the file as UTF-8)"
    )


def test_dotenv_with_comments_export_and_quotes_is_used(
    environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text(
        "CHARTBOT_POLL_INTERVAL=3600 # hourly\n"
        'export CHARTBOT_DB="my charts.sqlite3"  # a name with a space\n'
        "CHARTBOT_SOURCES='netflix,flixpatrol' # both\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "import", str(GLOBAL))
    assert (code, err) == (0, "")
    assert (tmp_path / "my charts.sqlite3").is_file()
    code, out, err = run(capsys, "status")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["netflix", "never", "polled"]
    assert lines[2].split()[:3] == ["flixpatrol", "never", "polled"]


# --- a real process ---------------------------------------------------------------------------------


def chartbot(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARTBOT_LOG_LEVEL": "LOUD"}, "chartbot run: CHARTBOT_LOG_LEVEL must be one of DEBUG, INFO"),
        ({"DISCORD_API_BASE": "localhost:8080"}, "chartbot run: DISCORD_API_BASE must be an absolute URL"),
    ],
)
def test_real_process_bad_setting(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = chartbot(tmp_path, "run", DISCORD_TOKEN="never-used", **env)
    assert done.returncode == 2 and done.stdout == ""
    assert one_line(done.stderr).startswith(message)


def test_real_process_dotenv_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"DISCORD_TOKEN=abc\nCHARTBOT_DB=\xff\xfe.sqlite3\n")
    done = chartbot(tmp_path, "run")
    assert done.returncode == 2
    assert (
        one_line(done.stderr)
        == "chartbot run: .env: line 2: byte 0xff is not valid UTF-8 (save the file as UTF-8)"
    )


# --- an unreachable Discord at start: retried with backoff ---------------------------------------------


class LatePort:
    """A port of 127.0.0.1 that refuses connections until `answer(port)` forwards it to a server there.

    Stands for Discord (or a proxy in front of it) that is down when the bot starts and comes back."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def answer(self, target_port: int) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
            for task in (pipe(reader, up_writer), pipe(up_reader, writer)):
                self._pipes.add(asyncio.ensure_future(task))

        self._server = await asyncio.start_server(forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


@pytest.fixture
async def late() -> AsyncIterator[LatePort]:
    port = LatePort()
    yield port
    await port.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "Chart Fans", channels=[CHANNEL])
        yield fake


def port_of(fake: FakeDiscord) -> int:
    port = yarl.URL(fake.http_base).port
    assert port is not None
    return port


def bot_settings(tmp_path: Path, api: str, gateway: str, **env: str) -> Settings:
    return Settings.from_env(
        {
            "DISCORD_API_BASE": api,
            "DISCORD_GATEWAY_URL": gateway,
            "CHARTBOT_DB": str(tmp_path / "c.sqlite3"),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
            **env,
        }
    )


QUICK = {"first": 0.01, "cap": 0.04}


async def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Wait for `condition` (a generous deadline only against hangs: nothing here measures time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.005)


def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "is unreachable" in r.getMessage()]


async def stop_serving(task: asyncio.Task[None]) -> None:
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(task, 10)


async def test_unreachable_discord_is_retried_until_it_answers(
    fake: FakeDiscord, late: LatePort, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    api = f"http://127.0.0.1:{late.port}/api/v10"
    settings = bot_settings(tmp_path, api, f"ws://127.0.0.1:{late.port}/gateway")
    bot = ChartBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(**QUICK)))
    await until(lambda: len(retries(caplog)) >= 4, "four retries")
    assert not task.done() and not fake.requests  # nothing reached Discord yet
    await late.answer(port_of(fake))  # Discord is back
    await until(bot.is_ready, "the bot to be ready")
    assert len(fake.identify_payloads) == 1
    await stop_serving(task)
    assert (
        task.result() is None and bot.is_closed() and before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    )

    lines = retries(caplog)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
    assert all("\n" not in r.getMessage() for r in lines)
    first = lines[0].getMessage()
    assert first.startswith(
        f"Discord's API at {api} is unreachable (Cannot connect to host 127.0.0.1:{late.port}"
    )
    assert first.endswith("; trying again in 0.0 s (attempt 2)")
    assert [r.getMessage().rsplit("attempt ", 1)[1] for r in lines[:4]] == ["2)", "3)", "4)", "5)"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback, no leaked session


async def test_unreachable_gateway_after_login_is_retried(
    fake: FakeDiscord, late: LatePort, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gateway = f"ws://127.0.0.1:{late.port}/gateway"
    settings = bot_settings(tmp_path, fake.api_base, gateway)
    bot = ChartBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(**QUICK)))
    await until(lambda: len(retries(caplog)) >= 3, "three retries")
    assert bot.user is not None and not fake.identify_payloads  # logged in over REST, no gateway yet
    assert all(
        r.getMessage().startswith(f"Discord's gateway at {gateway} is unreachable (") for r in retries(caplog)
    )
    await late.answer(port_of(fake))
    await until(bot.is_ready, "the bot to be ready")
    await stop_serving(task)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_5xx_api_is_retried(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.fail_next("GET", r"^/gateway$", status=503, times=3)
    settings = bot_settings(tmp_path, fake.api_base, fake.gateway_url)
    bot = ChartBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(**QUICK)))
    await until(bot.is_ready, "the bot to be ready")
    await stop_serving(task)
    assert [r.getMessage().split("(")[1].split(")")[0] for r in retries(caplog)] == ["HTTP 503"] * 3


class FlakyLogin(ChartBot):
    """Login fails once the way a dropped connection or an outage does, after the probe had an answer."""

    def __init__(self, settings: Settings, error: BaseException) -> None:
        super().__init__(settings, guild_ready_timeout=0.05)
        self.error: BaseException | None = error
        self.logins = 0

    async def login(self, token: str) -> None:
        self.logins += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        await super().login(token)


def server_error(status: int) -> discord.HTTPException:
    return discord.DiscordServerError(SimpleNamespace(status=status, reason="Service Unavailable"), "outage")


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), server_error(503), TimeoutError()],
    ids=["reset", "503", "timeout"],
)
async def test_a_login_that_fails_after_the_probe_is_retried(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture, error: BaseException
) -> None:
    caplog.set_level(logging.INFO)
    settings = bot_settings(tmp_path, fake.api_base, fake.gateway_url)
    bot = FlakyLogin(settings, error)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(**QUICK)))
    await until(bot.is_ready, "the bot to be ready")
    await stop_serving(task)
    assert bot.logins == 2 and len(retries(caplog)) == 1


async def test_a_rejected_token_stays_fatal_after_waiting(
    late: LatePort, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord(expected_token="the-real-token") as fake:
        api = f"http://127.0.0.1:{late.port}/api/v10"
        settings = bot_settings(tmp_path, api, fake.gateway_url, DISCORD_TOKEN="a-revoked-token")
        task = asyncio.create_task(serve(settings, backoff=Backoff(**QUICK)))
        await until(lambda: len(retries(caplog)) >= 2, "two retries")
        await late.answer(port_of(fake))
        with pytest.raises(InputError, match=r"^Discord rejected DISCORD_TOKEN \(401 Unauthorized\)"):
            await asyncio.wait_for(task, 10)


async def test_stop_while_waiting_for_discord(
    late: LatePort, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bot_settings(tmp_path, f"http://127.0.0.1:{late.port}/api/v10", f"ws://127.0.0.1:{late.port}/")
    bot = ChartBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(serve(settings, bot=bot, backoff=Backoff(first=3600, cap=3600)))
    await until(lambda: len(retries(caplog)) >= 1, "a retry")
    await stop_serving(task)  # in the middle of an hour's wait
    assert task.result() is None and bot.is_closed() and bot.user is None
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    top = Backoff(random=lambda: 1.0)
    assert [top.next_wait() for _ in range(9)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    bottom = Backoff(random=lambda: 0.0)
    assert [bottom.next_wait() for _ in range(3)] == [2.5, 5, 10]
    bottom.reset()
    assert bottom.next_wait() == 2.5
    spread = Backoff()
    waits = [spread.next_wait() for _ in range(3)]
    assert 2.5 <= waits[0] <= 5 and 5 <= waits[1] <= 10 and 10 <= waits[2] <= 20


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (
            aiohttp.ClientConnectorError(
                SimpleNamespace(ssl=None, host="h", port=1), OSError(111, "refused")
            ),
            True,
        ),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (aiohttp.ServerDisconnectedError(), True),
        (discord.GatewayNotFound(), True),
        (server_error(500), True),
        (server_error(502), True),
        (discord.HTTPException(SimpleNamespace(status=429, reason="Too Many"), "slow down"), False),
        (discord.HTTPException(SimpleNamespace(status=403, reason="Forbidden"), "no"), False),
        (discord.LoginFailure("Improper token has been passed."), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_unreachable(error: BaseException, retried: bool) -> None:
    assert is_unreachable(error) is retried


# --- the same through a real process ---------------------------------------------------------------


async def start_chartbot(tmp_path: Path, **env: str) -> asyncio.subprocess.Process:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(PREFIXES)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env={**clean, "CHARTBOT_DB": str(tmp_path / "c.sqlite3"), "CHARTBOT_POLL": "off", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_real_process_waits_for_discord_and_stops_on_sigterm(late: LatePort, tmp_path: Path) -> None:
    process = await start_chartbot(
        tmp_path,
        DISCORD_TOKEN="never-accepted",
        DISCORD_API_BASE=f"http://127.0.0.1:{late.port}/api/v10",
        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{late.port}/gateway",
    )
    assert process.stderr is not None
    seen: list[str] = []
    while not any("is unreachable" in line for line in seen):  # discord.py's own warnings come first
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, f"chartbot ended: {seen}"
        seen.append(line)
    assert " WARNING bot.client: Discord's API at http://127.0.0.1:" in seen[-1]
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0 and out == b""
    assert b"Traceback" not in err


async def test_real_process_rejected_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with FakeDiscord(expected_token="the-real-token") as fake:
        process = await start_chartbot(
            tmp_path,
            DISCORD_TOKEN="a-revoked-token",
            CHARTBOT_LOG_LEVEL="critical",
            **fake.settings_env(),
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2 and out == b""
    assert one_line(err.decode()).startswith(
        "chartbot run: Discord rejected DISCORD_TOKEN (401 Unauthorized)"
    )
