"""Start-up: a bad setting or `.env` is one line on stderr and exit 2 (never a traceback), through
`bot.cli.main` and through a real `python -m bot` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

DATA = Path(__file__).parent / "data"
GLOBAL = DATA / "netflix" / "all-weeks-global_2022-03-02.tsv"
PREFIXES = ("CHARTBOT_", "DISCORD_", "NETFLIX_", "FLIXPATROL_", "FLARESOLVERR_")


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
