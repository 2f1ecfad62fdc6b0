"""chartbot in eight languages: the catalogues, CLDR formats, translated commands and the CJK picture."""

from __future__ import annotations

import fnmatch
import logging
import tomllib
import unicodedata
import warnings
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import discord
import matplotlib.dates as mdates
import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import write_po
from discord.app_commands import Choice, Group, TranslationContext, TranslationContextLocation
from fake_discord import FakeDiscord
from fontTools.ttLib import TTFont

import bot.render as render
from bot.client import ChartBot
from bot.i18n import catalogues, update
from bot.i18n.catalogues import (
    DISCORD_LOCALES,
    LOCALES,
    SOURCE,
    Messages,
    locale_for,
    ordinal_categories,
    required,
    translator,
)
from bot.i18n.cjkfont import FAMILY, coverage, font_path
from bot.i18n.commands import (
    ChartTranslator,
    choices,
    cog_commands,
    command_strings,
    context_key,
    discord_locales,
    valid_name,
)
from bot.i18n.formats import (
    compact,
    date_part,
    date_text,
    number,
    ordinal,
    ordinal_period,
    period_text,
    place_name,
    region_name,
    units,
)
from bot.model import WORLD, InputError, title_key
from bot.regions import REGIONS, WORLD_NAME
from bot.regions import region_name as english_region_name
from bot.settings import Settings
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]
OTHERS = [loc for loc in LOCALES if loc != SOURCE]
GUILD = 820_000_000_000_000_001
CHANNEL = 820_000_000_000_000_010
AOUAD = "All of Us Are Dead"


def read(locale: str) -> Catalog:
    catalog = update.read(locale)
    assert catalog is not None, f"no catalogue for {locale}"
    return catalog


def entries(catalog: Catalog) -> dict[str, object]:
    """key -> message (the header left out)."""
    return {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id}


def forms(string: str | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(string) if isinstance(string, tuple | list) else (string,)


# --- the catalogues -----------------------------------------------------------------------------------


def test_every_language_has_a_catalogue_and_discords_codes_map_to_them() -> None:
    assert set(OTHERS) == {"ko", "ja", "es_ES", "es_419", "pt_BR", "fr", "de", "id"}
    for locale in LOCALES:
        assert Path(str(catalogues.catalogue_path(locale))).is_file()
        assert read(locale).locale == Locale.parse(locale)
    discord_codes = {loc.value for loc in discord.Locale}
    assert set(DISCORD_LOCALES) <= discord_codes
    assert set(DISCORD_LOCALES.values()) == set(LOCALES)
    assert {locale_for(code) for code in DISCORD_LOCALES} == set(LOCALES)


def test_every_catalogue_has_exactly_the_english_keys() -> None:
    english = set(entries(read(SOURCE)))
    assert len(english) > 100
    for locale in OTHERS:
        expected = {key for key in english if required(key, locale)}
        assert set(entries(read(locale))) == expected, locale


def test_ordinal_keys_follow_each_languages_cldr_categories() -> None:
    assert ordinal_categories("en") == {"one", "two", "few", "other"}
    assert ordinal_categories("ko") == {"other"}
    assert ordinal_categories("es_ES") == {"one", "other"}  # 1.er, 3.er (primer, tercer)
    assert ordinal_categories("fr") == {"one", "other"}  # 1er
    assert required("ordinal.day.few", "en") and not required("ordinal.day.few", "ko")
    assert required("unit.day", "ko") and required("ordinal.day.other", "ko")
    for locale in LOCALES:
        keys = set(entries(read(locale)))
        for base in ("ordinal", "ordinal.day", "ordinal.week"):
            assert {k.rsplit(".", 1)[1] for k in keys if k.rsplit(".", 1)[0] == base} == ordinal_categories(
                locale
            )


def test_no_translation_is_empty_or_fuzzy() -> None:
    for locale in LOCALES:
        for key, message in entries(read(locale)).items():
            assert all(f.strip() for f in forms(message.string)), (locale, key)
            assert not message.fuzzy, (locale, key)


def test_placeholders_are_the_same_in_every_language() -> None:
    english = {key: m for key, m in entries(read(SOURCE)).items()}
    for key, message in english.items():
        shapes = {frozenset(update.placeholders(f)) for f in forms(message.string)}
        assert len(shapes) == 1, key  # English's forms agree with each other
    for locale in OTHERS:
        for key, message in entries(read(locale)).items():
            want = update.placeholders(forms(english[key].string)[0])
            for form in forms(message.string):
                assert update.placeholders(form) == want, (locale, key, form)
    assert update.placeholders("{n} days, {date} — {{literal}}") == {"n", "date"}


def test_plural_rules_come_from_cldr_and_pick_the_right_form() -> None:
    for locale in LOCALES:
        catalog = read(locale)
        assert catalog.plural_forms == get_plural(locale).plural_forms, locale
        day = entries(catalog)["unit.day"].string
        assert len(forms(day)) == catalog.num_plurals
        tags = Locale.parse(locale).plural_form.tags | {"other"}
        order = [t for t in ("zero", "one", "two", "few", "many", "other") if t in tags]
        tr = translator(locale)
        for n in [*range(0, 120), 1_000_000, 2_000_000, 1_000_001]:
            category = Locale.parse(locale).plural_form(n)
            assert tr.ngettext("unit.day", n, n=n) == forms(day)[order.index(category)].format(n=n), (
                locale,
                n,
            )


def test_catalogues_are_up_to_date_with_the_code() -> None:
    outcome = update.update()
    assert outcome.missing == []
    assert update.stale(outcome) == [], "run: python -m bot.i18n.update"
    assert update.main(["--check"]) == 0


def test_command_strings_in_english_are_the_decorators() -> None:
    english = entries(read(SOURCE))
    strings = command_strings(cog_commands())
    assert len(strings) > 70
    for key, text in strings.items():
        assert english[key].string == text
    assert strings["command.rank.option.date.name"] == "date"  # the name Discord shows (renamed `on`)
    assert strings["command.settings.mention-role.name"] == "mention-role"
    assert strings["choice.tv-non-english"] == "TV (Non-English), Netflix global list"


def test_a_code_key_missing_from_english_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(update, "used_keys", lambda: [("picture.rnak", "bot/render.py", 12)])
    assert update.main(["--check"]) == 2
    assert "bot/render.py:12: 'picture.rnak' is not in the English catalogue" in capsys.readouterr().err


def test_used_keys_finds_literal_keys_like_pybabel(tmp_path: Path) -> None:
    (tmp_path / "bot").mkdir()
    (tmp_path / "cogs").mkdir()
    (tmp_path / "bot" / "x.py").write_text(
        'tr.gettext("a.key", n=1)\ntr.ngettext("b.key", 3, n=3)\ntr.gettext(f"c.{x}")\ntr.gettext(key)\n'
    )
    assert [k for k, _file, _line in update.used_keys(tmp_path)] == ["a.key", "b.key"]
    keys = {k for k, _f, _l in update.used_keys()}
    assert {"picture.rank", "picture.no_history", "place.global", "period.week_ending"} <= keys


def test_update_keeps_translations_and_marks_the_ones_whose_english_changed() -> None:
    english = Catalog(locale="en", domain="chartbot")
    english.add("a", "New text")
    english.add("b", "Same text")
    english.add("c", "Brand new")
    english.add(("n", "n"), ("{n} day", "{n} days"))
    english.add("ordinal.day.few", "{n}rd day")
    english.add("ordinal.day.other", "{n}th day")
    old = Catalog(locale="ko", domain="chartbot")
    old.add("a", "옛 번역", auto_comments=["English: Old", "text"])
    old.add("b", "번역", auto_comments=["English: Same", "text"])  # wrapped over two lines
    old.add("gone", "사라질 번역", auto_comments=["English: Gone"])
    old.add(("n", "n"), ("{n}일",), auto_comments=["English: {n} day | {n} days"])
    new = entries(update.update_language("ko", old, english))
    assert set(new) == {"a", "b", "c", "n", "ordinal.day.other"}
    assert new["a"].fuzzy and new["a"].string == "옛 번역"
    assert new["a"].auto_comments[-1] == "English: New text"
    assert not new["b"].fuzzy
    assert new["c"].string == "" and not new["c"].fuzzy
    assert new["n"].string == ("{n}일",) and not new["n"].fuzzy
    es = entries(update.update_language("es_ES", None, english))
    assert es["n"].string == ("", "", "")  # one, many, other


@pytest.fixture
def scratch_catalogues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """English and Korean catalogues written by the test, in place of the package's."""

    def path(locale: str) -> Path:
        return tmp_path / locale / "LC_MESSAGES" / "chartbot.po"

    def write(locale: str, messages: dict[str, object], fuzzy: frozenset[str] = frozenset()) -> None:
        catalog = Catalog(locale=locale, domain="chartbot", fuzzy=False)
        for key, text in messages.items():
            catalog.add(
                key if isinstance(text, str) else (key, key),
                text,
                flags={"fuzzy"} if key in fuzzy else set(),
            )
        path(locale).parent.mkdir(parents=True)
        with path(locale).open("wb") as po:
            write_po(po, catalog)

    write(
        "en",
        {
            "hello": "Hello {name}",
            "only.english": "English only",
            "stale": "Fresh",
            "n": ("{n} day", "{n} days"),
        },
    )
    write("ko", {"hello": "안녕 {nom}", "stale": "낡은 번역", "n": ("{n}일",)}, fuzzy=frozenset({"stale"}))
    monkeypatch.setattr(catalogues, "catalogue_path", path)
    catalogues._compiled.cache_clear()
    catalogues._messages.cache_clear()
    yield tmp_path
    catalogues._compiled.cache_clear()
    catalogues._messages.cache_clear()


def test_a_missing_or_fuzzy_translation_falls_back_to_english(
    scratch_catalogues: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ko = translator("ko")
    assert ko.gettext("only.english") == "English only"
    assert not ko.has("only.english") and ko.lookup("only.english") is None
    assert ko.gettext("stale") == "Fresh"  # fuzzy: not used
    assert ko.ngettext("n", 5, n=5) == "5일"
    with caplog.at_level(logging.WARNING, logger="bot.i18n.catalogues"):
        assert ko.gettext("hello", name="Ana") == "Hello Ana"  # {nom}: a broken placeholder
        assert ko.gettext("no.such.key") == "no.such.key"
    assert "does not fit its placeholders" in caplog.text
    assert "no message 'no.such.key' in the English catalogue" in caplog.text
    with pytest.raises(KeyError):
        translator("en").gettext("hello", nom="x")  # English itself wrong: a bug, raised


def test_locale_negotiation() -> None:
    cases = {
        "ko": "ko",
        "ja": "ja",
        "es-ES": "es_ES",
        "es-419": "es_419",
        "es-MX": "es_419",  # CLDR: Mexico's Spanish inherits Latin America's
        "es-AR": "es_419",
        "es": "es_ES",
        "es-XX": "es_ES",
        "pt-BR": "pt_BR",
        "pt-PT": "pt_BR",
        "pt": "pt_BR",
        "fr-CA": "fr",
        "de-AT": "de",
        "id": "id",
        "en-US": "en",
        "en-GB": "en",
        "ko_KR.UTF-8": "ko",
        "de_DE@euro": "de",
        "es_419": "es_419",
        "zh-TW": "en",
        "it": "en",
        "C": "en",
        "POSIX": "en",
        "": "en",
        "not a locale": "en",
        None: "en",
    }
    assert {tag: locale_for(tag) for tag in cases} == cases
    assert locale_for(discord.Locale.korean) == "ko"
    assert locale_for(discord.Locale.latin_american_spanish) == "es_419"
    assert translator("it").locale == "en"  # an unknown locale: English
    assert translator(discord.Locale.brazil_portuguese) is translator("pt_BR")
    with pytest.raises(ValueError, match="not one of our locales"):
        Messages("it")


# --- CLDR formats: English exactly as bot.render always wrote it ----------------------------------------


def test_english_formats_are_renders_helpers_exactly() -> None:
    values = [0, 1, 9.4, 999, 999.5, 1000, 1049, 1050, 15_000, 999_949, 999_950, 1_000_000, 236_230_000]
    values += [1_234_567_890, -1500, 123_456_789_012, 0.5]
    for value in values:
        assert compact(value, "en") == render.compact(value), value
    day = date(1999, 12, 1)
    while day < date(2031, 1, 1):
        assert date_text(day, "en") == render.date_text(day)
        assert period_text(day, "week", "en") == render.period_text(day, "week")
        assert period_text(day, "day", "en") == render.period_text(day, "day")
        day += timedelta(days=1)
    for n in [*range(0, 2001), 12_345, 1_000_000]:
        assert ordinal(n, "en") == render.ordinal(n)
        for period in ("day", "week"):
            assert units(n, period, "en") == render.units(n, period)
            assert ordinal_period(n, period, "en") == f"{render.ordinal(n)} {period}"
    assert units(3, "month", "en") == render.units(3, "month") == "3 months"  # no words for it: English
    assert units(-1, "day", "en") == render.units(-1, "day")
    for code in [*REGIONS, WORLD, "zz", "", "USA"]:
        assert place_name(code, "en") == render.place_name(code), code
    for code in [*REGIONS, WORLD]:
        assert region_name(code, "en") == english_region_name(code)


def test_english_catalogue_agrees_with_bot_regions() -> None:
    english = entries(read(SOURCE))
    assert english["region.world"].string == WORLD_NAME
    for key, message in english.items():
        if key.startswith("region.") and key != "region.world":
            assert message.string == english_region_name(key.removeprefix("region."))


def test_country_names_in_every_language() -> None:
    assert region_name("kr", "ko") == "대한민국"
    assert region_name("kr", "ja") == "韓国"
    assert region_name("kr", "es-ES") == "Corea del Sur"
    assert region_name("kr", "pt-BR") == "Coreia do Sul"
    assert region_name("us", "es-419") == "Estados Unidos"
    assert region_name("us", "ja") == "アメリカ"  # CLDR's short form, not アメリカ合衆国
    assert region_name("hk", "ko") == "홍콩"  # not 홍콩(중국 특별행정구)
    assert region_name("de", "de") == "Deutschland"
    assert region_name("cz", "fr") == "Tchéquie"
    assert region_name("world", "ko") == "전 세계"
    assert region_name("KR", "ja") == "韓国"
    assert place_name("kr", "ko") == "🇰🇷 대한민국"
    assert place_name(WORLD, "de") == "🌍 Weltweit"
    assert place_name("zz", "ko") == "ZZ"
    for locale in OTHERS:
        names = {code: region_name(code, locale) for code in REGIONS}
        assert all(names.values())
        clashes = [name for name, count in Counter(names.values()).items() if count > 1]
        assert clashes == [], (locale, clashes)
        with pytest.raises(InputError):
            region_name("zz", locale)


def test_plural_units() -> None:
    assert [units(n, "day", "es-ES") for n in (1, 2)] == ["1 día", "2 días"]
    assert [units(n, "week", "en") for n in (1, 2)] == ["1 week", "2 weeks"]
    assert [units(n, "day", "ko") for n in (1, 2)] == ["1일", "2일"]
    assert [units(n, "week", "ja") for n in (1, 3)] == ["1週間", "3週間"]
    assert [units(n, "day", "de") for n in (1, 2)] == ["1 Tag", "2 Tage"]
    assert [units(n, "day", "fr") for n in (0, 1, 2)] == [
        "0 jour",
        "1 jour",
        "2 jours",
    ]  # French: 0 is singular
    assert [units(n, "week", "pt-BR") for n in (1, 2)] == ["1 semana", "2 semanas"]
    assert units(2, "day", "id") == "2 hari"
    assert units(1234, "week", "de") == "1.234 Wochen"
    assert units(1234, "day", "fr") == "1\u202f234 jours"
    assert units(1_000_000, "day", "es-ES") == "1.000.000 de días"  # CLDR's "many"


def test_ordinals() -> None:
    es = [ordinal_period(n, "day", "es-ES") for n in (1, 2, 3, 11, 13, 21)]
    assert es == ["1.er día", "2.º día", "3.er día", "11.º día", "13.er día", "21.er día"]  # decimotercer
    assert ordinal_period(1, "week", "es-419") == "1.ª semana"
    assert [ordinal_period(n, "day", "fr") for n in (1, 2)] == ["1er jour", "2e jour"]
    assert [ordinal_period(n, "week", "fr") for n in (1, 2)] == ["1re semaine", "2e semaine"]
    assert [ordinal(n, "en") for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "111th", "112th"
    ]  # fmt: skip
    assert ordinal_period(3, "week", "ko") == "3주째"
    assert ordinal_period(3, "day", "ja") == "3日目"
    assert ordinal_period(3, "week", "de") == "3. Woche"
    assert ordinal_period(3, "week", "pt-BR") == "3ª semana"
    assert ordinal_period(3, "day", "id") == "hari ke-3"
    assert ordinal_period(2, "month", "fr") == "2e month"  # no words for it: the bare ordinal
    assert ordinal(1, "fr") == "1er" and ordinal(2, "de") == "2."


def test_compact_numbers_as_each_language_writes_them() -> None:
    big = 236_230_000
    assert compact(big, "es-ES") == "236,2\xa0M"
    assert compact(big, "es-419") == "236.2\xa0M"
    assert compact(big, "pt-BR") == "236,2\xa0mi"
    assert compact(big, "fr") == "236,2\xa0M"
    assert compact(big, "de") == "236,2\xa0Mio."
    assert compact(big, "id") == "236,2\xa0jt"
    assert compact(big, "ko") == "2.4억"
    assert compact(big, "ja") == "2.4億"
    assert compact(15_000_000, "ko") == "1500만"
    assert compact(15_000, "ko") == "1.5만"  # Korean and Japanese count in ten-thousands
    assert compact(1_500, "ko") == "1,500"
    assert compact(15_000, "es-ES") == "15.000"  # thousands in full: "15 mil" reads as slang
    assert compact(15_000, "de") == "15.000"
    assert compact(999_950, "fr") == "999\u202f950"
    assert number(1_234_567, "de") == "1.234.567"
    assert number(1_234_567, "ja") == "1,234,567"


def test_dates_in_every_language() -> None:
    day = date(2022, 2, 6)
    expected = {
        "en": "Feb 6, 2022",
        "ko": "2022년 2월 6일",
        "ja": "2022年2月6日",
        "es_ES": "6 de febrero de 2022",
        "es_419": "6 de febrero de 2022",
        "pt_BR": "6 de fevereiro de 2022",
        "fr": "6 février 2022",
        "de": "6. Februar 2022",
        "id": "6 Februari 2022",
    }
    assert {locale: date_text(day, locale) for locale in LOCALES} == expected
    assert period_text(date(2022, 2, 27), "week", "es-ES") == "semana hasta el 27 de febrero de 2022"
    assert period_text(date(2022, 2, 27), "week", "ja") == "2022年2月27日までの週"
    assert period_text(date(2022, 2, 27), "day", "ko") == "2022년 2월 27일"
    assert date_part(datetime(2022, 2, 6, 23, 59), "d", "ko") == "6일"  # the day as given, no zone shift
    assert date_part(day, "MMM", "fr") == "févr."


# --- commands --------------------------------------------------------------------------------------------


def test_discord_name_rule() -> None:
    for name in (
        "rank",
        "mention-role",
        "순위",
        "メンションロール",
        "configuración",
        "länder",
        "top10",
        "a_b",
    ):
        assert valid_name(name), name
    bad = ("", "Rank", "two words", "x" * 33, "メンション・ロール", "rang!", "cargo/menção", "Ä")
    for name in bad:
        assert not valid_name(name), name
    assert not valid_name(unicodedata.normalize("NFD", "순위"))  # decomposed jamo: not what Discord stores
    assert valid_name("x" * 32)


def _translations(locale: str) -> dict[str, str]:
    return {key: m.string for key, m in entries(read(locale)).items()}


def test_every_translated_command_string_fits_discord() -> None:
    keys = command_strings(cog_commands())
    for locale in OTHERS:
        texts = _translations(locale)
        for key in keys:
            text = texts[key]
            if key.startswith("command.") and key.endswith(".name"):
                assert valid_name(text), (locale, key, text)
            else:
                assert 1 <= len(text) <= 100, (locale, key, text)


def test_translated_names_are_unique_where_discord_needs_them() -> None:
    commands = cog_commands()
    levels = {"top level": [f"command.{c.name}.name" for c in commands]}
    for item in commands:
        subcommands = [item]
        if isinstance(item, Group):
            levels[item.name] = [f"command.{item.name}.{sub.name}.name" for sub in item.commands]
            subcommands = item.commands
        for command in subcommands:
            path = command.qualified_name.replace(" ", ".")
            levels[path] = [f"command.{path}.option.{p.display_name}.name" for p in command.parameters]
    for locale in LOCALES:
        texts = _translations(locale)
        for where, keys in levels.items():
            shown = [texts[k] for k in keys]
            assert len(set(shown)) == len(shown), (locale, where, shown)


def test_each_choice_value_means_one_thing() -> None:
    meanings: dict[object, set[str]] = defaultdict(set)
    pairs = choices(cog_commands())
    for _param, choice in pairs:
        meanings[choice.value].add(choice.name)
    assert len(pairs) > len(meanings)  # the category choices are shared by /rank and /top
    assert all(len(names) == 1 for names in meanings.values()), meanings


def _context(location: TranslationContextLocation, data: object) -> TranslationContext:
    return TranslationContext(location=location, data=data)


async def test_translator_answers_from_the_catalogues(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    commands = {c.name: c for c in cog_commands()}
    rank, settings = commands["rank"], commands["settings"]
    date_param = next(p for p in rank.parameters if p.display_name == "date")
    tv = next(c for c in date_param.command.parameters[2].choices if c.value == "tv")
    digest = next(c for c in settings.commands if c.name == "digest")
    translator_ = ChartTranslator()
    await translator_.load()
    L, K = TranslationContextLocation, discord.Locale

    async def ask(location: TranslationContextLocation, data: object, locale: discord.Locale) -> str | None:
        return await translator_.translate(
            discord.app_commands.locale_str("x"), locale, _context(location, data)
        )

    assert await ask(L.command_name, rank, K.korean) == "순위"
    assert await ask(L.command_description, rank, K.japanese) == "作品の現在の順位と、順位の推移グラフ"
    assert await ask(L.group_name, settings, K.spain_spanish) == "ajustes"
    assert await ask(L.group_name, settings, K.latin_american_spanish) == "configuración"
    assert await ask(L.command_name, digest, K.french) == "résumé"
    assert await ask(L.parameter_name, date_param, K.german) == "datum"
    assert (await ask(L.parameter_description, date_param, K.indonesian)).startswith("Tanggal lampau")
    assert await ask(L.choice_name, tv, K.brazil_portuguese) == "Séries"
    assert await ask(L.command_name, rank, K.american_english) is None  # English: Discord's default
    assert await ask(L.command_name, rank, K.italian) is None  # not ours: English
    assert await ask(L.other, rank, K.korean) is None
    assert context_key(_context(L.choice_name, Choice(name="x", value="tv"))) == "choice.tv"

    broken = SimpleNamespace(lookup=lambda key: "Two Words")
    monkeypatch.setattr("bot.i18n.commands.translator", lambda locale: broken)
    with caplog.at_level(logging.ERROR, logger="bot.i18n.commands"):
        assert await ask(L.command_name, rank, K.korean) is None  # would fail the whole sync: English
    assert "breaks Discord's rules" in caplog.text
    assert set(discord_locales().values()) == set(OTHERS)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "Fans", channels=[CHANNEL], members=[])
        yield fake


def _validate(payload: dict, kind: str) -> None:
    """What Discord checks in a command payload's localizations (it answers 400 to the whole sync)."""
    for code, name in payload.get("name_localizations", {}).items():
        assert code in {loc.value for loc in discord.Locale}
        if kind == "choice":
            assert 1 <= len(name) <= 100
        else:
            assert valid_name(name), (code, name)
    for code, text in payload.get("description_localizations", {}).items():
        assert code in {loc.value for loc in discord.Locale} and 1 <= len(text) <= 100


async def test_sync_payload_carries_localizations_for_everything(fake: FakeDiscord, chart_db: Path) -> None:
    settings = Settings.from_env(
        {
            **fake.settings_env(),
            "CHARTBOT_DB": str(chart_db),
            "DISCORD_DEV_GUILD": str(GUILD),
            "DISCORD_TOKEN": "fake-token",
            "CHARTBOT_POLL": "off",
        }
    )
    async with fake.run_bot(ChartBot(settings, guild_ready_timeout=0.05)):
        pass
    ours = {code for code, locale in DISCORD_LOCALES.items() if locale != SOURCE}
    assert ours == {"ko", "ja", "es-ES", "es-419", "pt-BR", "fr", "de", "id"}
    seen: Counter[str] = Counter()

    def check(payload: dict, kind: str, key: str) -> None:
        _validate(payload, kind)
        assert set(payload["name_localizations"]) == ours, (kind, payload["name"])
        for code in ours:
            texts = _translations(DISCORD_LOCALES[code])
            name_key = key if kind == "choice" else f"{key}.name"
            assert payload["name_localizations"][code] == texts[name_key]
            if kind != "choice":
                assert set(payload["description_localizations"]) == ours, (kind, payload["name"])
                assert payload["description_localizations"][code] == texts[f"{key}.description"]
        seen[kind] += 1

    def walk_options(options: list[dict], path: str) -> None:
        for option in options:
            if option["type"] in (1, 2):  # a subcommand (or a subcommand group)
                check(option, "command", f"command.{path}.{option['name']}")
                walk_options(option.get("options", []), f"{path}.{option['name']}")
                continue
            check(option, "option", f"command.{path}.option.{option['name']}")
            for choice in option.get("choices", []):
                check(choice, "choice", f"choice.{choice['value']}")

    for command in fake.synced_commands(GUILD):
        check(command, "command", f"command.{command['name']}")
        walk_options(command.get("options", []), command["name"])
    assert seen["command"] >= 3 + 2 + 11  # /rank /top /milestones, /watch /settings, their subcommands
    assert seen["option"] >= 15 and seen["choice"] >= 16  # the category choices of /rank and /top


# --- the picture ----------------------------------------------------------------------------------------


def test_the_cjk_font_is_package_data_with_its_licence() -> None:
    path = font_path()
    assert path.is_file() and path.stat().st_size < 4_000_000
    assert (path.parent / "OFL.txt").read_text().startswith("Copyright 2014-2021 Adobe")
    font = TTFont(path)
    assert font["name"].getDebugName(1) == FAMILY
    cmap = set(font.getBestCmap())
    assert len(cmap) > 20_000 and cmap <= coverage()
    for text in ("한국어 뷁", "ひらがな カタカナー", "学校 國 韓 鬱", "、。「」・〜！"):
        assert {ord(ch) for ch in text if not ch.isspace()} <= cmap, text
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "bot.i18n"
    ]
    package = ROOT / "bot" / "i18n"
    for file in package.rglob("*"):
        if file.is_file() and file.suffix not in (".py", ".pyc"):
            relative = file.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in globs), f"{relative} would not be installed"


# What the rank picture draws from the catalogues: its axis and note, and the legend's words (places,
# kinds of chart, "daily"). Replies and posts are text: Discord's fonts draw those.
PICTURE_KEYS = ("picture.", "place.", "region.", "category.", "chart.daily")


def test_every_korean_and_japanese_word_we_draw_has_glyphs() -> None:
    for locale in ("ko", "ja"):
        texts = [region_name(code, locale) for code in REGIONS]
        texts += [
            f
            for key, m in entries(read(locale)).items()
            if key.startswith(PICTURE_KEYS)
            for f in forms(m.string)
        ]
        texts += [date_part(date(2022, month, 1), "yMMMd", locale) for month in range(1, 13)]
        assert any("시리즈" in t or "TV番組" in t for t in texts)  # the legend's words are among them
        for text in texts:
            missing = {
                ch for ch in text.format(n=1, date="") if not render._drawable(ord(ch)) and not ch.isspace()
            }
            assert not missing, (locale, text, missing)


async def _histories(store: Store, locale: str) -> list[tuple[str, list[tuple[date, int]]]]:
    histories = await store.charts.rank_history(title_key(AOUAD), prefer=("us", "kr", "jp"))
    return [
        (
            region_name(h.region, locale) if h.region != WORLD else place_name(WORLD, locale).lstrip("🌍 "),
            h.points,
        )
        for h in histories
    ]


@pytest.mark.parametrize(("locale", "title"), [("ko", "지금 우리 학교는"), ("ja", "今、私たちの学校は…")])
async def test_rank_picture_in_korean_and_japanese_draws_every_glyph(
    chart_store: Store, locale: str, title: str
) -> None:
    points = await _histories(chart_store, locale)
    assert any(label == region_name("kr", locale) for label, _ in points)
    for label, _ in points:
        assert render.picture_text(label, 40) == label  # nothing left out: every character is drawn
    assert render.picture_text(title, 70) == title
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on a glyph missing from its fonts
        png = render.rank_history_png(points, title=title, locale=locale)
        empty = render.rank_history_png([], title=title, locale=locale)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and empty[:8] == png[:8]
    assert png != render.rank_history_png(points, title=title)  # English axis and dates differ


def test_without_the_cjk_font_the_picture_test_would_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [("대한민국", [(date(2022, 1, 30), 1), (date(2022, 2, 6), 2)])]
    monkeypatch.setattr(render, "CJK_FONTS", render.LATIN_FONTS)  # the picture asks for DejaVu Sans only
    with pytest.warns(UserWarning, match="missing from font"):
        render.rank_history_png(points, title="지금 우리 학교는", locale="ko")


def test_english_picture_is_unchanged_by_the_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    start = date(2022, 1, 2)
    points = [("United States TV daily", [(start + timedelta(days=i), 1 + i % 10) for i in range(40)])]
    assert render._families(["United States TV daily", AOUAD, "rank", "Feb"]) == render.LATIN_FONTS
    assert render._families(["대한민국"]) == render.CJK_FONTS
    plain = render.rank_history_png(points, title=AOUAD)
    monkeypatch.setattr(render, "_families", lambda texts: render.CJK_FONTS)  # the CJK font behind it
    assert render.rank_history_png(points, title=AOUAD) == plain  # glyph for glyph the same


def test_picture_dates_are_written_the_readers_way() -> None:
    ticks = [mdates.date2num(datetime(2022, m, d)) for m, d in ((2, 1), (2, 15), (3, 1), (3, 15))]

    def labels(locale: str) -> tuple[list[str], str]:
        formatter = render._date_formatter(mdates.AutoDateLocator(), translator(locale))
        return formatter.format_ticks(ticks), formatter.get_offset()

    assert labels("en") == (["Feb", "15", "Mar", "15"], "2022-Mar")  # matplotlib's own, as always
    assert labels("ko") == (["2월", "15일", "3월", "15일"], "2022년 3월")
    assert labels("ja") == (["2月", "15日", "3月", "15日"], "2022年3月")
    assert labels("fr") == (["févr.", "15", "mars", "15"], "mars 2022")
    years = [mdates.date2num(datetime(y, 1, 1)) for y in (2021, 2022, 2023)]
    formatter = render._date_formatter(mdates.AutoDateLocator(), translator("ko"))
    assert formatter.format_ticks(years) == ["2021년", "2022년", "2023년"]
