"""chartbot in the fans' languages, end to end: every milestone in every language, /rank and /top in the
user's language, posts in the server's language (/settings language), the command line's --lang, and
English unchanged wherever a language is not ours."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import discord
import pytest
from engines import both_engines
from fake_discord import MANAGE_GUILD, FakeChannel, FakeDiscord, FakeMember, FakeRole, Reply
from test_render import assert_within_limits, milestone

import bot.terminal as terminal
from bot.announcer import posts
from bot.announcer.jobs import Item
from bot.announcer.policy import Policy, describe_events, parse_regions, server_language
from bot.charts import top_charts
from bot.cli import environment_language, main
from bot.client import ChartBot, explain
from bot.i18n import LOCALES, SOURCE, Messages, translator
from bot.i18n.formats import date_part
from bot.milestones import KINDS
from bot.model import ALL_TIME, WORLD, InputError, Milestone, title_key
from bot.pages import ChartKind, chart_kinds
from bot.regions import resolve_region
from bot.render import (
    chart_embed,
    group_text,
    milestone_lines,
    milestone_text,
    milestones_embed,
    standing_embed,
)
from bot.settings import Settings
from bot.store import Store, open_store
from bot.views import RankHistory
from cogs.rank import history_label, region_choices
from cogs.watch import settings_text

OTHERS = [locale for locale in LOCALES if locale != SOURCE]
GUILD, CHANNEL = 840_000_000_000_000_001, 840_000_000_000_000_010
MODS, FAN, ADMIN = 840_000_000_000_000_100, 840_000_000_000_001_000, 840_000_000_000_002_000
AOUAD = "All of Us Are Dead"
FEB6 = date(2022, 2, 6)
ALL_TIME_DATA = Path(__file__).parent / "data" / "netflix_most_popular"


# --- every milestone, every language ------------------------------------------------------------------


def every_milestone() -> list[Milestone]:
    """Each of the detector's kinds, in each of the shapes its sentence takes."""
    found = [
        milestone("entered_top10", 3, None, region="nl"),
        milestone("entered_top10", 6, None, reentry=True),
        milestone("entered_top10", 6, 9, reentry=True),
        milestone("entered_top10", 1, None, region="world", category="tv-non-english"),
        milestone("reached_no1", 1, 3, region="kr", first_time=True),
        milestone("reached_no1", 1, 2, region="world", period="day"),
        milestone("reached_no1", 1, 2, region="us", service="disney", period="day"),
        milestone("no1_streak", 8, 7, region="world", period="day"),
        milestone("no1_streak", 4, 3, region="world", category="tv-non-english"),
        milestone("no1_streak", 2, 1, region="kr"),
        milestone("lost_no1", 2, 1, period="day", run=1, new_no1="Sweet Magnolias"),
        milestone("lost_no1", None, 1, region="kr", run=3, new_no1="Juvenile Justice"),
        milestone("lost_no1", 4, 1, region="gb", run=2),
        milestone("new_peak", 2, 5, region="gb"),
        milestone("new_peak", 3, 7, region="world", period="day"),
        milestone("top10_run", 100, period="day"),
        milestone("top10_run", 4, service="disney"),
        milestone("left_top10", None, 8, periods=4),
        milestone("left_top10", None, 3, period="day"),
        milestone("left_top10", None, None, periods=2, region="world", category="movies-english"),
        milestone("no1_countries", 63, 29, region="world", reporting=94),
        milestone("no1_countries", 12, None, region="world", service="disney", reporting=40, period="day"),
        milestone("top10_countries", 91, None, region="world", reporting=94, everywhere=False),
        milestone("top10_countries", 94, 91, region="world", reporting=94, everywhere=True),
        milestone("top10_countries", 30, 28, region="world", everywhere=True),
        milestone("record", 5, 4, record="no1_run", holder="Squid Game"),
        milestone("record", 9, 8, region="world", category="tv-non-english", record="no1_run", holder=AOUAD),
        milestone("record", 16, 15, period="day", record="no1_run"),
        milestone("record", 94, 93, region="world", record="no1_countries", holder="Squid Game"),
        milestone("record", 40, 35, region="world", period="day", record="no1_countries"),
        milestone("record_near", 1, 15, period="day", holder="Squid Game"),
        milestone("record_near", 1, 9, region="world", category="tv-non-english", holder=AOUAD),
        milestone("record_near", 2, 20, region="world", period="day"),
        milestone(
            "entered_all_time",
            2,
            None,
            region="world",
            category="movies-english",
            period=ALL_TIME,
            figure=277_900_000,
            measure="hours",
            window_days=28,
        ),
        milestone(
            "entered_all_time", 7, None, region="kr", category="tv", period=ALL_TIME, season="Season 1"
        ),
        milestone(
            "all_time_no1",
            1,
            2,
            region="world",
            category="movies-english",
            period=ALL_TIME,
            figure=236_000_000,
            measure="views",
            window_days=91,
            passed="Red Notice",
            passed_figure=230_900_000,
        ),
        milestone(
            "all_time_no1", 1, 2, region="world", category="tv-english", period=ALL_TIME, passed="Wednesday"
        ),
        milestone("all_time_no1", 1, None, region="br", category="other", period=ALL_TIME),
    ]
    assert {m.kind for m in found} == set(KINDS)  # a kind added to the detector is added here too
    return found


@pytest.fixture
def untranslated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every (language, key) a text fell back to English for, while the test runs."""
    seen: list[tuple[str, str]] = []
    original = Messages._missing

    def record(self: Messages, key: str, english: str) -> str:
        seen.append((self.locale, key))
        return original(self, key, english)

    monkeypatch.setattr(Messages, "_missing", record)
    yield seen


def _no_broken_texts(caplog: pytest.LogCaptureFixture) -> None:
    broken = [r.getMessage() for r in caplog.records if r.name == "bot.i18n.catalogues"]
    assert broken == []  # no key missing from English, no translation that breaks its placeholders


@pytest.mark.parametrize("locale", LOCALES)
def test_a_milestone_of_each_kind_in_every_language(
    locale: str, untranslated: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    tr = translator(locale)
    with caplog.at_level(logging.WARNING, logger="bot.i18n.catalogues"):
        for m in every_milestone():
            text = milestone_text(m, escape=True, tr=tr)
            assert text and "{" not in text and "}" not in text, text
            assert text.startswith(m.title) or m.title in text
            if locale != SOURCE:
                assert text != milestone_text(m, escape=True), (locale, text)  # its own words, not English
            post = posts.render(
                [Item(m, 0, False)], digest=False, nonce="n", mention_role_id=None, language=tr
            )
            assert_within_limits(post.embed)
            struck = posts.render(
                [Item(m, 1, True)], digest=True, nonce="n", mention_role_id=None, language=tr
            )
            assert_within_limits(struck.embed)
    assert untranslated == []
    _no_broken_texts(caplog)


@pytest.mark.parametrize("locale", LOCALES)
def test_grouped_news_digests_and_long_lists_fit_discord_in_every_language(
    locale: str, untranslated: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    tr = translator(locale)
    countries = ["kr", "jp", "br", "mx", "fr", "de", "es", "it", "us", "gb", "ca", "au", "in", "id"]
    with caplog.at_level(logging.WARNING, logger="bot.i18n.catalogues"):
        for kind in ("entered_top10", "reached_no1", "no1_streak", "lost_no1", "new_peak", "left_top10"):
            group = [milestone(kind, 1 if "no1" in kind else 4, 2, region=r, run=2) for r in countries]
            (line,) = group_text(group, tr)
            assert "🇰🇷" in line and "…" in line  # 12 flags shown, the rest left out
        same = [milestone("top10_run", 8, region=r) for r in countries[:4]]
        mixed = [milestone("top10_run", 4 * (i + 1), region=r) for i, r in enumerate(countries[:4])]
        assert group_text(same, tr) != group_text(mixed, tr)
        many = [Item(m, 0, False) for m in every_milestone() * 40]
        digest = posts.render(many, digest=True, nonce="n", mention_role_id=555, language=tr)
        assert_within_limits(digest.embed)
        assert digest.embed.description is not None and digest.embed.description.count("\n") > 10
        embed = milestones_embed(every_milestone() * 30, tr=tr)
        assert_within_limits(embed)
        lines = milestone_lines(every_milestone(), tr)
        stamp = "`Feb  6`" if locale == SOURCE else f"`{date_part(FEB6, 'MMMd', tr)}`"
        assert len(lines) > 30 and all(line.startswith(stamp + " ") for line in lines)
    assert untranslated == []
    _no_broken_texts(caplog)


@pytest.mark.parametrize("locale", LOCALES)
async def test_standings_charts_and_tables_on_real_data_in_every_language(
    chart_store: Store, locale: str, untranslated: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    tr = translator(locale)
    report = await chart_store.charts.title_report(title_key(AOUAD), FEB6)
    assert report is not None
    views = await top_charts(chart_store.charts, region="us", category=None, service=None, on=FEB6, tr=tr)
    with caplog.at_level(logging.WARNING, logger="bot.i18n.catalogues"):
        embed = standing_embed(report, on=FEB6, tr=tr)
        assert_within_limits(embed)
        for view in views:
            assert_within_limits(chart_embed(view, page=(3, 15), tr=tr))
            assert terminal.format_chart(view, tr)
        table = terminal.format_title_report(report, FEB6, tr)
        assert AOUAD in table
        off = await chart_store.charts.title_report(title_key(AOUAD), date(2021, 9, 5))
        assert off is not None and not off.standings
        assert standing_embed(off, on=date(2021, 9, 5), tr=tr).description
        assert terminal.format_title_report(off, date(2021, 9, 5), tr)
        assert settings_text(Policy(GUILD, channel_id=CHANNEL, mention_role_id=MODS), tr)
    assert untranslated == []
    _no_broken_texts(caplog)
    if locale != SOURCE:
        assert embed.to_dict() != standing_embed(report, on=FEB6).to_dict()


def test_korean_standing_has_korean_names_numbers_and_dates(chart_db: Path) -> None:
    async def run() -> discord.Embed:
        async with await open_store(chart_db) as store:
            report = await store.charts.title_report(title_key(AOUAD), FEB6)
        assert report is not None
        return standing_embed(report, on=FEB6, tr=translator("ko"))

    embed = asyncio.run(run())
    assert embed.description is not None
    assert "**94개국 중 63개국 1위** 이번 주" in embed.description
    assert "Netflix 글로벌 비영어 시리즈 차트" in embed.description
    assert embed.footer.text == "Netflix Top 10 · 2022년 2월 6일까지의 주간"
    assert any(f.name.startswith("🇰🇷 대한민국") for f in embed.fields)
    for english in ("countries", "No. 1", "week ending", "this week", "Also in"):
        assert english not in embed.description + "".join(f"{f.name} {f.value}" for f in embed.fields)


# --- the catalogues' own words: places, names, numbers --------------------------------------------------


def test_country_names_in_any_of_our_languages_are_regions() -> None:
    assert resolve_region("대한민국") == "kr"
    assert resolve_region("韓国") == "kr"
    assert resolve_region("Corée du Sud") == "kr"
    assert resolve_region("coreia do sul") == "kr"
    assert resolve_region("Estados Unidos") == "us"
    assert resolve_region("Südkorea") == "kr"
    assert resolve_region("전 세계") == WORLD
    assert parse_regions("world, 대한민국, Estados Unidos", translator("ko")) == {"world", "kr", "us"}
    with pytest.raises(InputError, match=r"^región desconocida 'Atlántida'"):
        resolve_region("Atlántida", translator("es-ES"))
    with pytest.raises(InputError) as caught:
        resolve_region("대한민굴", translator("ko"))
    assert str(caught.value).startswith("알 수 없는 지역 '대한민굴': 혹시 대한민국 (`kr`)")


def test_region_autocomplete_speaks_the_users_language() -> None:
    ko = translator("ko")
    assert region_choices("대한", tr=ko)[0].name == "대한민국 (kr)"
    assert region_choices("kor", tr=ko)[0].value == "kr"  # the English name still finds it
    assert [c.name for c in region_choices("", tr=ko)[:3]] == [
        "전 세계 (world)",
        "대한민국 (kr)",
        "독일 (de)",
    ]
    assert region_choices("", tr=translator("en"))[0].name == "Worldwide (world)"
    assert region_choices("Esta", tr=translator("es-419"))[0].name == "Estados Unidos (us)"


def test_the_pictures_legend_in_the_users_language() -> None:
    history = RankHistory("netflix", "kr", "tv", "week", [])
    assert history_label(history, translator("ko")) == "대한민국 시리즈"
    assert history_label(RankHistory("netflix", WORLD, "movies", "day", []), translator("ja")) == (
        "グローバル 映画 デイリー"
    )
    assert history_label(RankHistory("disney", "us", "tv", "day", [])) == "United States TV (Disney+) daily"


def test_admin_texts_in_the_admins_language() -> None:
    ko = translator("ko")
    assert (
        describe_events(frozenset({"reached_no1", "record"}), ko)
        == "1위 달성 (`reached_no1`), 신기록 (`record`)"
    )
    text = settings_text(Policy(GUILD, language="pt_BR"), ko)
    assert "**언어:** Português do Brasil" in text
    assert "**Language:** English (the server's language)" in settings_text(Policy(GUILD))
    assert "**Idioma:** 한국어 (el idioma del servidor)" in settings_text(
        Policy(GUILD, server_language="ko"), translator("es-ES")
    )


def test_the_server_language() -> None:
    assert Policy(1).post_language == SOURCE
    assert Policy(1, server_language="ko").post_language == "ko"
    assert Policy(1, language="de", server_language="ko").post_language == "de"
    assert server_language(discord.Locale.brazil_portuguese) == "pt_BR"
    assert server_language("es-MX") == "es_419"
    assert (
        server_language("en-US") is None and server_language("it") is None and server_language(None) is None
    )


def test_errors_in_the_users_language() -> None:
    error = discord.app_commands.MissingPermissions(["manage_guild"])
    assert explain(error, translator("ko")) == ("이 명령어를 쓰려면 서버 관리하기 권한이 필요해요.", False)
    assert explain(error) == (str(error), False)  # discord.py's own words in English
    assert explain(discord.app_commands.NoPrivateMessage(), translator("de"))[0] == (
        "Dieser Befehl kann nicht in Direktnachrichten verwendet werden."
    )
    assert explain(ValueError("a bug"), translator("ja")) == (
        "こちらで問題が発生しました（記録済みです）。1分ほどしてからもう一度お試しください。",
        True,
    )


def test_the_post_cache_renders_each_language_once() -> None:
    item = Item(milestone("reached_no1", 1, 3, region="kr", first_time=True), 0, False)
    cache = posts.PostCache()
    english = cache.message([item], digest=False, nonce="a", mention_role_id=None)
    korean = cache.message([item], digest=False, nonce="b", mention_role_id=None, language="ko")
    again = cache.message([item], digest=False, nonce="c", mention_role_id=None, language="ko")
    assert len(cache._payloads) == 2
    assert "for the first time" in english.payload["embeds"][0]["description"]
    assert korean.payload["embeds"][0]["description"] == "All of Us Are Dead, 이번 주 🇰🇷 대한민국에서 첫 1위"
    assert again.payload["embeds"][0] == {
        **korean.payload["embeds"][0],
        "url": again.payload["embeds"][0]["url"],
    }
    assert again.payload["nonce"] == "c" and again.payload["embeds"][0]["url"].endswith("#c")
    sample = posts.sample(None, language="fr")
    assert sample.embed.author.name == "Annonce de test\u00a0: voici à quoi ressembleront les annonces ici"


# --- Discord, end to end -----------------------------------------------------------------------------------


def bot_settings(fake: FakeDiscord, db: Path) -> Settings:
    return Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(db),
            "DISCORD_DEV_GUILD": str(GUILD),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(
            GUILD,
            "Fans",
            channels=[FakeChannel(CHANNEL, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(FAN, "fan"), FakeMember(ADMIN, "admin", roles=[MODS])],
        )
        yield fake


@pytest.fixture
async def bot(fake: FakeDiscord, chart_db: Path) -> AsyncIterator[ChartBot]:
    async with fake.run_bot(ChartBot(bot_settings(fake, chart_db), guild_ready_timeout=0.05)) as running:
        yield running  # type: ignore[misc]


async def ask(
    fake: FakeDiscord, command: str, options: dict[str, Any], locale: str, user: int = FAN
) -> Reply:
    return await (await fake.slash(GUILD, CHANNEL, user, command, options, locale=locale)).response(timeout=5)


def text_of(embed: dict[str, Any]) -> str:
    parts = [embed.get("title", ""), embed.get("description", ""), embed.get("footer", {}).get("text", "")]
    parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


async def test_rank_answers_in_korean_with_korean_country_names(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await ask(fake, "rank", {"title": AOUAD, "date": "2022-02-06"}, "ko")
    assert reply.embed is not None and reply.message is not None and reply.message.files
    text = text_of(reply.embed)
    assert reply.embed["title"] == "All of Us Are Dead: Season 1"  # titles as the charts spell them
    assert "🌍 Netflix 글로벌 비영어 시리즈 차트 **1위** · 1위 2주째" in text
    assert "**94개국 중 63개국 1위** 이번 주" in text
    assert "🇰🇷 대한민국" in text and "🇺🇸 미국" in text
    assert reply.embed["footer"]["text"] == "Netflix Top 10 · 2022년 2월 6일까지의 주간"
    for english in ("countries", "No. 1", "week ending", "South Korea", "United States", "peak"):
        assert english not in text, english


async def test_rank_answers_in_spanish(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await ask(
        fake, "rank", {"title": AOUAD, "date": "2022-02-06", "region": "Corea del Sur"}, "es-ES"
    )
    assert reply.embed is not None
    text = text_of(reply.embed)
    assert "🇰🇷 Corea del Sur · series" in text
    assert "**n.º 1**" in text and "mejor puesto: n.º 1 · 30 de enero de 2022" in text
    assert reply.embed["footer"]["text"] == "Top 10 de Netflix · semana hasta el 6 de febrero de 2022"
    latin = await ask(fake, "rank", {"title": AOUAD, "date": "2022-02-06", "region": "us"}, "es-419")
    assert latin.embed is not None and "🇺🇸 Estados Unidos · series" in text_of(latin.embed)


async def test_a_locale_that_is_not_ours_answers_in_english(fake: FakeDiscord, bot: ChartBot) -> None:
    english = await ask(fake, "rank", {"title": AOUAD, "date": "2022-02-06"}, "en-US")
    italian = await ask(fake, "rank", {"title": AOUAD, "date": "2022-02-06"}, "it")
    assert italian.embed == english.embed
    assert english.embed is not None and "No. 1 in 63 of 94 countries" in english.embed["description"]
    wrong = await ask(fake, "top", {"region": "Atlantis"}, "it")
    assert wrong.ephemeral and wrong.content.startswith("unknown region 'Atlantis'")


async def test_errors_answer_in_the_users_language(fake: FakeDiscord, bot: ChartBot) -> None:
    day = await ask(fake, "rank", {"title": AOUAD, "date": "2022-13-01"}, "ja")
    assert (
        day.ephemeral
        and day.content == "'2022-13-01'は日付ではありません（YYYY-MM-DD形式で入力してください）"
    )
    early = await ask(fake, "top", {"date": "1999-12-31"}, "de")
    assert early.content == "1999-12-31 liegt vor dem 2000-01-01: So alte Charts gibt es nicht"
    region = await ask(fake, "top", {"region": "Atlántida"}, "es-ES")
    assert region.content.startswith("región desconocida 'Atlántida'")
    title = await ask(fake, "rank", {"title": "qqqqqqqqzzzz"}, "fr")
    assert title.content == "Aucun titre des classements ne correspond à «\u00a0qqqqqqqqzzzz\u00a0». " + (
        "Choisissez-en un dans la liste pendant la saisie."
    )
    kind = await ask(fake, "top", {"region": "us", "service": "disney"}, "pt-BR")
    assert kind.content == "Nenhum dado de Disney+ salvo no Top 10 🇺🇸 Estados Unidos."
    refused = await ask(fake, "settings show", {}, "ko", user=FAN)
    assert refused.ephemeral and refused.content == "이 명령어를 쓰려면 서버 관리하기 권한이 필요해요."


async def test_top_pages_and_buttons_in_the_pressers_language(fake: FakeDiscord, bot: ChartBot) -> None:
    reply = await ask(fake, "top", {"region": "us"}, "fr")
    page = reply.message
    assert page is not None and reply.embed is not None
    assert reply.embed["title"] == "Top 10 🇺🇸 États-Unis · séries"
    assert reply.embed["footer"]["text"] == "semaine jusqu'au 27 février 2022 · Page 15 sur 15"
    assert [b["label"] for b in page.buttons] == ["◀ Précédent", "Suivant ▶", "Séries", "Films"]
    custom_id = page.button_labelled("◀ Précédent")["custom_id"]
    pressed = await (await fake.press(page, custom_id, FAN, locale="ko")).response(timeout=5)
    assert pressed.message is not None
    assert pressed.message.embeds[0]["title"] == "🇺🇸 미국 Top 10 · 시리즈"  # the presser's language
    assert [b["label"] for b in pressed.message.buttons] == ["◀ 이전", "다음 ▶", "시리즈", "영화"]
    newer = pressed.message.button_labelled("다음 ▶")["custom_id"]
    someone = await (await fake.press(pressed.message, newer, ADMIN, locale="de")).response(timeout=5)
    assert someone.ephemeral and someone.content == (
        f"Nur <@{FAN}> kann diese Buttons benutzen; führe `/top` selbst aus."
    )
    milestones = await ask(fake, "milestones", {"title": AOUAD}, "ja")
    assert milestones.embed is not None and milestones.embed["title"] == "記録 · All of Us Are Dead"


async def test_sync_carries_the_new_options_in_every_language(fake: FakeDiscord, bot: ChartBot) -> None:
    commands = {c["name"]: c for c in fake.synced_commands(GUILD)}
    period = next(o for o in commands["top"]["options"] if o["name"] == "period")
    assert period["name_localizations"]["ko"] == "기간"
    assert period["name_localizations"]["es-419"] == "período"
    assert [c["value"] for c in period["choices"]] == ["latest", "day", "week", ALL_TIME]
    all_time = period["choices"][3]
    assert all_time["name_localizations"]["ja"] == "歴代（Netflix歴代最多視聴ランキング）"
    language = next(o for o in commands["settings"]["options"] if o["name"] == "language")
    assert language["name_localizations"]["de"] == "sprache"
    option = language["options"][0]
    assert [c["value"] for c in option["choices"]] == ["default", *LOCALES]
    assert option["choices"][2]["name"] == "한국어"  # each language by its own name


# --- /top's period: all-time lists, version by version ------------------------------------------------------


@pytest.fixture
async def all_time_db(tmp_path: Path) -> Path:
    """Three real versions of Netflix's all-time lists (and no weekly charts at all)."""
    from bot.cli import read_all
    from bot.ingest import ingest

    versions = sorted(ALL_TIME_DATA.glob("most-popular_2025-0[6-9]*.tsv"))[:3]
    assert len(versions) == 3
    path = tmp_path / "all-time.sqlite3"
    async with await open_store(path) as store:
        for version in versions:
            (charts,) = read_all([version], None, date.fromisoformat(version.name.split("_")[1][:10]))
            await ingest(store, [s for chunk in charts.chunks() for s in chunk])
    return path


def test_the_kind_buttons_of_an_all_time_list_are_all_time_lists() -> None:
    from bot.views import Series

    available = [
        Series("netflix", WORLD, c, p, FEB6)
        for c in ("tv-english", "tv-non-english", "movies-english")
        for p in ("week", ALL_TIME)
    ]
    assert chart_kinds(available, "netflix") == [ChartKind("tv", "week"), ChartKind("movies", "week")]
    assert chart_kinds(available, "netflix", ALL_TIME) == [
        ChartKind("tv", ALL_TIME),
        ChartKind("movies", ALL_TIME),
    ]


async def test_top_all_time_pages_through_the_versions(fake: FakeDiscord, all_time_db: Path) -> None:
    async with fake.run_bot(ChartBot(bot_settings(fake, all_time_db), guild_ready_timeout=0.05)):
        reply = await ask(fake, "top", {"period": ALL_TIME}, "en-US")
        page = reply.message
        assert page is not None and [e["title"] for e in page.embeds] == [
            "🌍 Netflix all-time Top 10 · TV (English)",
            "🌍 Netflix all-time Top 10 · TV (Non-English)",
        ]
        newest = page.embeds[0]["footer"]["text"]
        assert newest.startswith("as of ") and newest.endswith("Page 3 of 3")
        assert [b["label"] for b in page.buttons] == ["◀ Previous", "Next ▶", "TV", "Films"]
        older = await (await fake.press(page, page.button_labelled("◀ Previous")["custom_id"], FAN)).response(
            5
        )
        assert older.message is not None and older.message.embeds[0]["footer"]["text"].endswith("Page 2 of 3")
        films = await (await fake.press(page, page.button_labelled("Films")["custom_id"], FAN)).response(5)
        assert films.message is not None
        assert [e["title"] for e in films.message.embeds] == [
            "🌍 Netflix all-time Top 10 · film (English)",
            "🌍 Netflix all-time Top 10 · film (Non-English)",
        ]
        assert films.message.embeds[0]["footer"]["text"].endswith("Page 2 of 3")  # the version shown before
        korean = await ask(fake, "top", {"period": ALL_TIME, "category": "movies"}, "ko")
        assert korean.embed is not None
        assert korean.embed["title"] == "🌍 Netflix 역대 Top 10 · 영어 영화"
        assert "기준" in korean.embed["footer"]["text"] and "3/3 페이지" in korean.embed["footer"]["text"]
        daily = await ask(fake, "top", {"period": "day"}, "en-US")
        assert daily.ephemeral and daily.content == "No day chart worldwide is stored yet."
        latest = await ask(fake, "top", {}, "de")  # only all-time lists stored: they are the latest
        assert latest.embed is not None and latest.embed["title"].startswith("🌍 Netflix-Top-10 aller Zeiten")


# --- posts in the server's language ---------------------------------------------------------------------


@both_engines
async def test_a_portuguese_server_gets_its_posts_in_portuguese(
    db_target: str, netflix_snapshots: list[Any]
) -> None:
    from announce_worker import make_bot
    from fake_discord_ext import DeliveryFake

    from bot.ingest import Ingester

    jan23, jan30 = date(2022, 1, 23), date(2022, 1, 30)
    db = db_target
    async with await open_store(db) as store:
        await Ingester(store).ingest([s for s in netflix_snapshots if s.key.date <= jan23], news=False)
    brazil, club = GUILD, GUILD + 1
    brazil_channel, club_channel = CHANNEL, CHANNEL + 1
    async with DeliveryFake() as fake:
        fake.add_guild(
            brazil,
            "Fãs",
            channels=[FakeChannel(brazil_channel, "ranking")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ADMIN, "admin", roles=[MODS])],
            locale="pt-BR",
        )
        fake.add_guild(
            club,
            "Club",
            channels=[FakeChannel(club_channel, "charts")],
            roles=[FakeRole(MODS + 1, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ADMIN + 1, "admin", roles=[MODS + 1])],
        )
        async with fake.run_bot(make_bot(db)) as running:
            await running.tree.sync()

            async def admin(guild: int, command: str, options: dict[str, Any], locale: str) -> str:
                channel, user = (brazil_channel, ADMIN) if guild == brazil else (club_channel, ADMIN + 1)
                rec = await fake.slash(guild, channel, user, command, options, locale=locale)
                return (await rec.response()).content

            added = await admin(brazil, "watch add", {"title": AOUAD}, "en-US")  # an admin who reads English
            assert added.startswith("Watching **All of Us Are Dead** in <#")
            shown = await admin(club, "settings language", {"language": "ja"}, "es-ES")
            assert shown == "A partir de ahora, las publicaciones de logros están en 日本語."
            await admin(club, "watch add", {"title": AOUAD}, "es-ES")
            store = await running.get_store()
            policy = await store.guilds.policy(brazil)
            assert (policy.language, policy.server_language, policy.post_language) == (None, "pt_BR", "pt_BR")
            assert (await store.guilds.policy(club)).post_language == "ja"

            async with await open_store(db) as writer:
                report = await Ingester(writer).ingest([s for s in netflix_snapshots if s.key.date == jan30])
            running.dispatch("milestones", report.milestones)
            await _settle(running)
            (post,) = fake.sent_messages(brazil_channel)
            embed = post.embeds[0]
            assert embed["title"] == "All of Us Are Dead"
            assert embed["footer"]["text"] == "Top 10 Netflix · semana até 30 de janeiro de 2022"
            assert embed["description"].split("\n") == [
                "All of Us Are Dead está em 1º lugar em 29 países nesta semana (de 94 com dados)",
                "All of Us Are Dead chega ao 1º lugar na lista global da Netflix de séries em outros idiomas "
                "pela primeira vez",
                "All of Us Are Dead chega ao 1º lugar no Top 10 🇰🇷 Coreia do Sul nesta semana pela primeira vez",
                "All of Us Are Dead está no Top 10 de 91 países nesta semana (de 94 com dados)",
                "All of Us Are Dead entra no Top 10 global da Netflix de séries em outros idiomas em 1º lugar",
                "All of Us Are Dead entra no Top 10 em 3 países 🇬🇧 🇰🇷 🇺🇸",
            ]
            (japanese,) = fake.sent_messages(club_channel)
            assert japanese.embeds[0]["footer"]["text"] == "Netflix Top 10 · 2022年1月30日までの週"
            assert japanese.embeds[0]["description"].startswith("All of Us Are Deadが今週29か国で1位")

            back = await admin(club, "settings language", {"language": "default"}, "ko")
            assert back == "이제부터 기록 알림은 서버 언어를 따라가요 (지금은 English)."
            assert (await store.guilds.policy(club)).post_language == SOURCE
            shown = await admin(club, "settings language", {}, "ko")
            assert shown == "기록 알림 언어: English (서버 언어)"


async def _settle(running: ChartBot, within: float = 10.0) -> None:
    store = await running.get_store()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rounds = running.announcer.rounds
        await asyncio.sleep(0.05)
        idle = running.announcer.rounds > rounds and not running.announcer.busy
        if idle and await store.deliveries.open_work() == 0:
            return
    raise AssertionError("the announcer did not settle")


async def test_the_settings_test_sample_is_in_the_servers_language(tmp_path: Path) -> None:
    from announce_worker import make_bot
    from fake_discord_ext import DeliveryFake

    async with DeliveryFake() as fake:
        fake.add_guild(
            GUILD,
            "Fans",
            channels=[FakeChannel(CHANNEL, "charts")],
            roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
            members=[FakeMember(ADMIN, "admin", roles=[MODS])],
            locale="de",
        )
        async with fake.run_bot(make_bot(tmp_path / "db.sqlite3")) as running:
            await running.tree.sync()
            rec = await fake.slash(GUILD, CHANNEL, ADMIN, "settings test", {"channel": CHANNEL}, locale="ko")
            reply = await rec.response()
            assert reply.content == f"<#{CHANNEL}>에 예시를 올렸어요."  # the admin reads Korean…
            (sample,) = fake.sent_messages(CHANNEL)
            assert (
                sample.embeds[0]["author"]["name"] == "Testankündigung: So sehen Meilenstein-Posts hier aus"
            )
            store = await running.get_store()
            await _until(lambda: store.guilds.policy(GUILD), lambda p: p.server_language == "de")


async def _until(read: Any, check: Any, seconds: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check(await read()):
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@both_engines
async def test_the_language_setting_is_stored_and_checked(db_target: str) -> None:
    path = db_target
    async with await open_store(path) as store:
        policy = await store.guilds.update_settings(GUILD, language="ko", server_language="de")
        assert (policy.language, policy.server_language) == ("ko", "de")
        with pytest.raises(ValueError, match="language must be one of"):
            await store.guilds.update_settings(GUILD, language="it")
        with pytest.raises(ValueError, match="language must be one of"):
            await store.guilds.update_settings(GUILD, server_language="ko-KR")
        await store.guilds.update_settings(GUILD, channel_id=CHANNEL)
    async with await open_store(path) as store:
        policy = await store.guilds.policy(GUILD)
        assert (policy.language, policy.server_language, policy.channel_id) == ("ko", "de", CHANNEL)
        await store.guilds.update_settings(GUILD, language=None)
        assert (await store.guilds.policy(GUILD)).post_language == "de"


# --- the command line -------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_lang_ko_prints_korean(chart_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "rank", AOUAD, "--date", "2022-02-06", "--lang", "ko", "--db", str(chart_db)
    )
    assert code == 0
    assert out.startswith("All of Us Are Dead — 2022년 2월 6일\n")
    assert "94개국 중 63개국 1위 · Top 10 94개국 (Netflix 시리즈, 2022년 2월 6일까지의 주)" in out
    assert "🇰🇷 대한민국" in out and "1위" in out and "지역" in out
    code, out, _ = run_cli(
        capsys, "top", "--region", "kr", "--date", "2022-02-06", "--lang", "ko", "--db", str(chart_db)
    )
    assert code == 0 and out.startswith("🇰🇷 대한민국 Top 10 · 시리즈 — 2022년 2월 6일까지의 주\n")


def test_cli_language_from_the_environment(
    chart_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert environment_language({}) == SOURCE
    assert environment_language({"LANG": "ja_JP.UTF-8"}) == "ja"
    assert environment_language({"LANG": "ja_JP.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8"}) == "fr"
    assert environment_language({"LANG": "ja_JP.UTF-8", "LC_ALL": "de_DE.UTF-8"}) == "de"
    assert environment_language({"LANG": "C.UTF-8"}) == environment_language({"LANG": "it_IT"}) == SOURCE
    monkeypatch.setenv("LANG", "es_MX.UTF-8")
    code, out, _ = run_cli(capsys, "top", "--region", "us", "--date", "2022-02-06", "--db", str(chart_db))
    assert code == 0 and out.startswith(
        "Top 10 🇺🇸 Estados Unidos · series — semana hasta el 6 de febrero de 2022"
    )
    code, out, _ = run_cli(
        capsys, "top", "--region", "us", "--date", "2022-02-06", "--lang", "en", "--db", str(chart_db)
    )
    assert out.startswith("🇺🇸 U.S. Top 10 · TV — week of Feb 6, 2022")  # --lang wins


def test_cli_json_keeps_english_keys_and_writes_text_in_lang(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.data import sample_files

    files = [str(path) for path in sample_files()]
    code, out, _ = run_cli(capsys, "replay", *files, "--kinds", "no1_countries", "--json", "--lang", "es-ES")
    assert code == 0
    found = [json.loads(line) for line in out.splitlines()]
    assert found and all(set(m) >= {"kind", "title", "key", "text"} for m in found)
    assert all(m["kind"] == "no1_countries" and " es n.º 1 en " in m["text"] for m in found)
    code, english, _ = run_cli(capsys, "replay", *files, "--kinds", "no1_countries", "--json")
    assert [json.loads(line)["key"] for line in english.splitlines()] == [m["key"] for m in found]


def test_cli_unknown_language_is_refused(chart_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "rank", AOUAD, "--lang", "klingon", "--db", str(chart_db))
    assert code == 2 and out == ""
    assert err == (
        "chartbot rank: unknown language 'klingon': use one of en-US, en-GB, ko, ja, es-ES, es-419, pt-BR, fr, de, id\n"
    )
    code, _, err = run_cli(capsys, "rank", "qqqqqqqqzzzz", "--lang", "de", "--db", str(chart_db))
    assert code == 2 and err == "chartbot rank: Kein Titel namens „qqqqqqqqzzzz“ in der Chart-Historie.\n"


def test_cli_demo_and_replay_in_another_language(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "demo", "--lang", "fr")
    assert code == 0
    assert out.startswith(
        "démo de chartbot — rejoue le Top 10 de Netflix du 20 janvier au 20 février 2022 (données réelles)\n"
    )
    assert "est n°\u00a01 dans" in out and "autres classements nationaux" in out
    from bot.data import sample_files

    code, out, _ = run_cli(capsys, "replay", *map(str, sample_files()), "--kinds", "record", "--lang", "id")
    assert code == 0 and "mencetak rekor" in out
