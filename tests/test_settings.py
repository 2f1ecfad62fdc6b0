"""Settings: `.env` read by python-dotenv, and every setting checked with one line that names it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.model import InputError
from bot.settings import Settings, load_dotenv


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A private copy of the environment (what load_dotenv writes is gone after the test), in tmp_path."""
    copy = dict(os.environ)
    for name in [
        n for n in copy if n.startswith(("CHARTBOT_", "DISCORD_", "NETFLIX_", "FLIXPATROL_", "FLARE"))
    ]:
        del copy[name]
    monkeypatch.setattr(os, "environ", copy)
    monkeypatch.chdir(tmp_path)
    return copy


def write_env(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / ".env"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


# --- .env ---------------------------------------------------------------------------------------


def test_dotenv_comment_after_a_value(environ: dict[str, str], tmp_path: Path) -> None:
    load_dotenv(write_env(tmp_path, "CHARTBOT_POLL_INTERVAL=3600 # hourly\n"))
    assert environ["CHARTBOT_POLL_INTERVAL"] == "3600"
    assert Settings.from_env().poll_interval == 3600.0


def test_dotenv_export_quotes_escapes_and_multiline(environ: dict[str, str], tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "# a comment line\n"
        "export CHARTBOT_LOG_LEVEL=debug\n"
        'CHARTBOT_DB="/srv/chart bot/db.sqlite3" # quoted, with a space\n'
        'QUOTED="she said \\"hi\\""\n'
        "SINGLE='no # comment here'\n"
        'MULTI="line one\nline two"\n'
        "\n"
        "EMPTY=\n",
    )
    load_dotenv(path)
    assert environ["CHARTBOT_LOG_LEVEL"] == "debug"
    assert environ["CHARTBOT_DB"] == "/srv/chart bot/db.sqlite3"
    assert environ["QUOTED"] == 'she said "hi"'
    assert environ["SINGLE"] == "no # comment here"
    assert environ["MULTI"] == "line one\nline two"
    assert environ["EMPTY"] == ""
    settings = Settings.from_env()
    assert settings.log_level == "DEBUG" and settings.db_path == "/srv/chart bot/db.sqlite3"


def test_dotenv_variables_already_set_win(environ: dict[str, str], tmp_path: Path) -> None:
    environ["CHARTBOT_DB"] = "from-the-environment.sqlite3"
    load_dotenv(write_env(tmp_path, "CHARTBOT_DB=from-the-file.sqlite3\nCHARTBOT_POLL=off\n"))
    assert environ["CHARTBOT_DB"] == "from-the-environment.sqlite3"
    assert environ["CHARTBOT_POLL"] == "off"


def test_dotenv_with_a_byte_order_mark(environ: dict[str, str], tmp_path: Path) -> None:
    load_dotenv(write_env(tmp_path, "\ufeffCHARTBOT_SOURCES=flixpatrol\n".encode()))
    assert environ["CHARTBOT_SOURCES"] == "flixpatrol"


def test_no_dotenv_is_fine(environ: dict[str, str], tmp_path: Path) -> None:
    before = dict(environ)
    load_dotenv(tmp_path / ".env")
    assert environ == before


def test_dotenv_not_utf8_is_one_line_with_its_line(environ: dict[str, str], tmp_path: Path) -> None:
    path = write_env(tmp_path, b"CHARTBOT_DB=a.sqlite3\nCHARTBOT_POLL=off\nFLIXPATROL_SERVICES=caf\xe9\n")
    with pytest.raises(InputError) as caught:
        load_dotenv(path)
    assert str(caught.value) == (f"{path}: line 3: byte 0xe9 is not valid UTF-8 (save the file as UTF-8)")
    assert "CHARTBOT_DB" not in environ  # nothing of a bad file is used


def test_dotenv_unreadable_is_one_line(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_env(tmp_path, "CHARTBOT_DB=x\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(InputError, match=r"\.env: cannot read the file \(Permission denied\)$"):
        load_dotenv(path)


# --- each setting -------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.poll_interval, settings.log_level, settings.sources) == (3600.0, "INFO", ("netflix",))
    assert (settings.announce_rate, settings.announce_workers) == (48.0, 24)
    assert settings.max_download_mb == 200.0 and settings.max_download_bytes == 200_000_000
    assert settings.api_base is None and settings.gateway_url is None and settings.poll_in_bot


def test_every_setting_read() -> None:
    settings = Settings.from_env(
        {
            "CHARTBOT_DB": "postgresql://chart@db/charts",
            "CHARTBOT_LOG_LEVEL": "warning",
            "DISCORD_TOKEN": "  tok  ",
            "DISCORD_DEV_GUILD": "820000000000000001",
            "DISCORD_API_BASE": "http://127.0.0.1:8080/api/v10",
            "DISCORD_GATEWAY_URL": "wss://gateway.example.org/",
            "CHARTBOT_POLL": "No",
            "CHARTBOT_SOURCES": "Netflix, flixpatrol",
            "NETFLIX_TOP10_URL": "http://127.0.0.1:9000/top10/data/",
            "FLIXPATROL_URL": "https://mirror.example.org/",
            "FLIXPATROL_SERVICES": "netflix,hbo-max , disney",
            "FLARESOLVERR_URL": "http://localhost:8191/v1",
            "CHARTBOT_POLL_INTERVAL": "1",
            "CHARTBOT_ANNOUNCE_RATE": "50",
            "CHARTBOT_ANNOUNCE_WORKERS": "1",
            "CHARTBOT_MAX_DOWNLOAD_MB": "0.5",
        }
    )
    assert settings == Settings(
        db_path="postgresql://chart@db/charts",
        log_level="WARNING",
        discord_token="tok",
        dev_guild=820000000000000001,
        api_base="http://127.0.0.1:8080/api/v10",
        gateway_url="wss://gateway.example.org/",
        poll_in_bot=False,
        sources=("netflix", "flixpatrol"),
        netflix_url="http://127.0.0.1:9000/top10/data/",
        flixpatrol_url="https://mirror.example.org/",
        flixpatrol_services=("netflix", "hbo-max", "disney"),
        flaresolverr_url="http://localhost:8191/v1",
        poll_interval=1.0,
        announce_rate=50.0,
        announce_workers=1,
        max_download_mb=0.5,
    )
    assert settings.max_download_bytes == 500_000


@pytest.mark.parametrize(
    "value", ["1e-9", "0", "-5", "0.999", "nan", "NaN", "inf", "-inf", "abc", "1,5", "3600 s"]
)
def test_poll_interval_refused(value: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"CHARTBOT_POLL_INTERVAL": value})
    assert str(caught.value) == (
        f"CHARTBOT_POLL_INTERVAL must be a number of seconds, at least 1; not {value!r}"
    )


@pytest.mark.parametrize("value", ["1", "1.5", "900", " 3600 ", "1e3"])
def test_poll_interval_accepted(value: str) -> None:
    assert Settings.from_env({"CHARTBOT_POLL_INTERVAL": value}).poll_interval == float(value)


@pytest.mark.parametrize("value", ["0", "-1", "50.01", "51", "nan", "inf", "fast"])
def test_announce_rate_refused(value: str) -> None:
    with pytest.raises(
        InputError, match=r"^CHARTBOT_ANNOUNCE_RATE must be a number of requests per second, "
    ):
        Settings.from_env({"CHARTBOT_ANNOUNCE_RATE": value})


@pytest.mark.parametrize("value", ["0.1", "1", "48", "50"])
def test_announce_rate_accepted(value: str) -> None:
    assert Settings.from_env({"CHARTBOT_ANNOUNCE_RATE": value}).announce_rate == float(value)


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many", "1e2", "٣"])
def test_announce_workers_refused(value: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"CHARTBOT_ANNOUNCE_WORKERS": value})
    assert (
        str(caught.value) == f"CHARTBOT_ANNOUNCE_WORKERS must be a whole number of at least 1, not {value!r}"
    )


@pytest.mark.parametrize("value", ["0", "-200", "nan", "inf", "big"])
def test_max_download_refused(value: str) -> None:
    with pytest.raises(
        InputError, match=r"^CHARTBOT_MAX_DOWNLOAD_MB must be a number of megabytes, more than 0"
    ):
        Settings.from_env({"CHARTBOT_MAX_DOWNLOAD_MB": value})


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error", "critical"])
def test_log_level_any_case(level: str) -> None:
    assert Settings.from_env({"CHARTBOT_LOG_LEVEL": level}).log_level == level.upper()


@pytest.mark.parametrize("level", ["LOUD", "verbose", "10", "WARN ING", "NOTSET"])
def test_log_level_refused(level: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"CHARTBOT_LOG_LEVEL": level})
    assert str(caught.value) == (
        f"CHARTBOT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {level!r}"
    )


HTTP_SETTINGS = ("DISCORD_API_BASE", "NETFLIX_TOP10_URL", "FLIXPATROL_URL", "FLARESOLVERR_URL")
BAD_HTTP = [
    "discord.com/api/v10",  # no scheme
    "/api/v10",
    "ftp://example.org/",
    "ws://127.0.0.1:1/",
    "http://",
    "http:///path",
    "https://example.org:99999/",  # port out of range
    "http://example.org:port/",
    "http://exa mple.org/",
    "localhost:8191",
]


@pytest.mark.parametrize("name", HTTP_SETTINGS)
@pytest.mark.parametrize("value", BAD_HTTP)
def test_http_urls_refused(name: str, value: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value) == (
        f"{name} must be an absolute URL starting with http:// or https:// and a host, not {value!r}"
    )


@pytest.mark.parametrize("name", HTTP_SETTINGS)
def test_http_urls_accepted(name: str) -> None:
    for value in ("http://127.0.0.1:8080/api/v10", "https://example.org/", "HTTPS://Example.org"):
        Settings.from_env({name: value})


@pytest.mark.parametrize("value", ["http://127.0.0.1/gateway", "gateway.discord.gg", "ws://", "wss://:443/"])
def test_gateway_url_refused(value: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"DISCORD_GATEWAY_URL": value})
    assert str(caught.value) == (
        f"DISCORD_GATEWAY_URL must be an absolute URL starting with ws:// or wss:// and a host, not {value!r}"
    )


def test_gateway_url_accepted() -> None:
    env = {"DISCORD_GATEWAY_URL": "ws://127.0.0.1:5000/gateway"}
    assert Settings.from_env(env).gateway_url == "ws://127.0.0.1:5000/gateway"


@pytest.mark.parametrize("value", ["abc", "12a", "-1", "1.0", "１２"])
def test_dev_guild_digits_only(value: str) -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"DISCORD_DEV_GUILD": value})
    assert str(caught.value) == f"DISCORD_DEV_GUILD must be a server id (digits), not {value!r}"


def test_sources_known_names_only() -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"CHARTBOT_SOURCES": "netflix,hulu"})
    assert str(caught.value) == "CHARTBOT_SOURCES: unknown source 'hulu' (known: netflix, flixpatrol)"
    with pytest.raises(InputError, match=r"^CHARTBOT_SOURCES names nothing: ','$"):
        Settings.from_env({"CHARTBOT_SOURCES": " , "})


def test_flixpatrol_services_are_slugs() -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"FLIXPATROL_SERVICES": "netflix,hbo max"})
    assert str(caught.value) == (
        "FLIXPATROL_SERVICES: 'hbo max' is not a service slug like 'netflix' or 'hbo-max' (comma separated)"
    )


@pytest.mark.parametrize(("value", "on"), [("on", True), ("OFF", False), ("true", True), ("0", False)])
def test_poll_switch(value: str, on: bool) -> None:
    assert Settings.from_env({"CHARTBOT_POLL": value}).poll_in_bot is on


def test_poll_switch_refused() -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"CHARTBOT_POLL": "sometimes"})
    assert str(caught.value) == "CHARTBOT_POLL must be on or off, not 'sometimes'"


def test_env_example_documents_every_setting() -> None:
    """`.env.example` lists every setting the code reads, each after its one-line comment."""
    example = (Path(__file__).parent.parent / ".env.example").read_text(encoding="utf-8").splitlines()
    names = [line.split("=", 1)[0] for line in example if line and not line.startswith("#")]
    settings_source = (Path(__file__).parent.parent / "bot" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'read\.\w+\(\s*"([A-Z0-9_]+)"', settings_source))
    assert read == set(names)
    for index, line in enumerate(example):
        if line and not line.startswith("#"):
            assert example[index - 1].startswith("# "), f"{line} has no comment line above it"
    # and the example itself is a valid configuration
    values = {n: v for n, _, v in (line.partition("=") for line in example if line and line[0] != "#")}
    Settings.from_env(values)
