"""Names, numbers and dates in the reader's language, from CLDR through Babel.

English gives exactly what bot/render.py's helpers have always given (`compact`, `date_text`,
`period_text`, `units`, `ordinal`, `place_name`; a test holds them together), so moving a text to
these functions changes nothing for English readers. Country names in English stay bot.regions' own
("South Korea", "Czech Republic"); other languages take CLDR's ("대한민국", "Corea del Sur").

`locale` is anything `locale_for` reads: our locale names, Discord's codes, POSIX locales.
"""

from __future__ import annotations

from datetime import date
from enum import Enum

from babel.dates import format_date, format_skeleton
from babel.numbers import format_compact_decimal, format_decimal

from bot import regions
from bot.i18n.catalogues import SOURCE, Messages, locale_for, translator
from bot.model import WORLD

Tag = str | Enum | Messages | None

PERIODS = ("day", "week")
"""The periods whose words are in the catalogues (an all-time list has no run lengths)."""

# English writes "Feb 6, 2022"; the other languages write the month out ("6 de febrero de 2022",
# "2022년 2월 6일"): CLDR's medium date is numeric in Korean and Japanese ("2022. 2. 6.", "2022/02/06").
_DATE_FORMAT = {"en": "medium"}
# Below this, numbers are written in full with grouping ("15.000"): thousands abbreviated read as
# slang in most languages ("15 k"), and German has no short form for them at all. Korean and Japanese
# count in ten-thousands (만, 万), the unit readers use for figures like these.
_COMPACT_FROM = {"ko": 10_000, "ja": 10_000}
_COMPACT_FROM_DEFAULT = 1_000_000


def _lang(locale: Tag) -> str:
    return locale_for(locale)


# --- places -----------------------------------------------------------------------------------------


def region_name(code: str, locale: Tag) -> str:
    """A region's name: "South Korea" / "대한민국" / "Corea del Sur"; "Worldwide" for the world.

    Raises InputError for a code that is not a region, as bot.regions.region_name does.
    """
    english = regions.region_name(code)
    lang = _lang(locale)
    if lang == SOURCE:
        return english
    tr = translator(lang)
    code = code.lower()
    if code == WORLD:
        return tr.gettext("region.world")
    # A few CLDR names are formal ("홍콩(중국 특별행정구)"); the catalogue holds CLDR's short forms.
    return tr.lookup(f"region.{code}") or tr.babel.territories.get(code.upper()) or english


def region_phrase(code: str, locale: Tag) -> str:
    """A region inside a sentence, with its flag: "the 🇺🇸 U.S." / "🇰🇷 South Korea" in English (as
    bot.regions.region_phrase writes it), "🇺🇸 미국" / "🇰🇷 Corea del Sur" in the others; the
    prepositions and articles around it are the sentence's (each language's catalogue).

    A code that is not a region reads as the code in capitals.
    """
    try:
        if _lang(locale) == SOURCE:
            return regions.region_phrase(code)
        return f"{regions.flag(code)} {region_name(code, locale)}"
    except ValueError:
        return code.upper()


def chart_place(code: str, locale: Tag) -> str:
    """A region naming a chart: "🇺🇸 U.S.", "🇳🇱 Netherlands" (English drops its "the"), "🇺🇸 미국"."""
    return region_phrase(code, locale).removeprefix("the ")


def flag(region: str) -> str:
    """The region's flag emoji, "" for a code that is not a region."""
    try:
        return regions.flag(region)
    except ValueError:
        return ""


def place_name(region: str, locale: Tag) -> str:
    """A label for a field: "🇺🇸 United States", "🌍 Global" (bot.render.place_name in English)."""
    if region == WORLD:
        word = translator(locale).gettext("place.global")
        return f"{flag(region)} {word}"
    try:
        return f"{flag(region)} {region_name(region, locale)}"
    except ValueError:
        return region.upper()


# --- numbers ----------------------------------------------------------------------------------------


def number(n: int, locale: Tag) -> str:
    """A whole number with the language's grouping: 1,234 / 1.234 / 1 234."""
    return format_decimal(n, locale=translator(locale).babel)


def compact(value: float, locale: Tag) -> str:
    """Big numbers the way charts print them: 236230000 -> "236.2M", "236,2 M", "2.4억", "236,2 Mio."."""
    lang = _lang(locale)
    if lang == SOURCE:
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= size:
                return f"{value / size:.1f}{suffix}"
        return f"{value:,.0f}"
    babel_locale = translator(lang).babel
    if abs(value) < _COMPACT_FROM.get(lang, _COMPACT_FROM_DEFAULT):
        return format_decimal(round(value), locale=babel_locale)
    return format_compact_decimal(value, format_type="short", fraction_digits=1, locale=babel_locale)


def units(count: int, period: str, locale: Tag) -> str:
    """Count and unit, in the language's plural form: "1 day", "8 days", "8 días", "8일", "8 Tage"."""
    if period not in PERIODS:  # no words for it in the catalogues: the English way
        return f"{count:,} {period}{'' if count == 1 else 's'}"
    key = f"unit.{period}"
    return translator(locale).ngettext(key, count, n=number(count, locale))


def ordinal(n: int, locale: Tag) -> str:
    """A place in a sequence (n >= 0): "1st", "1.º", "1er", "1.", "1번째", by CLDR's ordinal rules."""
    tr = translator(locale)
    key = f"ordinal.{tr.babel.ordinal_form(n)}"
    return tr.gettext(key, n=n)


def ordinal_period(n: int, period: str, locale: Tag) -> str:
    """The n-th day or week of a run: "3rd week", "3.ª semana", "3e semaine", "3주째", "3週目"."""
    if period not in PERIODS:
        return f"{ordinal(n, locale)} {period}"
    tr = translator(locale)
    key = f"ordinal.{period}.{tr.babel.ordinal_form(n)}"
    return tr.gettext(key, n=n)


# --- dates ------------------------------------------------------------------------------------------


def date_text(day: date, locale: Tag) -> str:
    """A day: "Feb 6, 2022", "6 de febrero de 2022", "2022年2月6日", "2022년 2월 6일"."""
    lang = _lang(locale)
    return format_date(day, _DATE_FORMAT.get(lang, "long"), locale=translator(lang).babel)


def period_text(day: date, period: str, locale: Tag) -> str:
    """The period a chart covers: "week ending Feb 27, 2022" (dated by its last day) or the day."""
    if period == "week":
        return translator(locale).gettext("period.week_ending", date=date_text(day, locale))
    return date_text(day, locale)


def date_part(day: date, skeleton: str, locale: Tag) -> str:
    """Part of a date by a CLDR skeleton: "MMM" -> "Feb" / "2월" / "févr.", "y" -> "2022년" (UTC)."""
    return format_skeleton(skeleton, day, locale=translator(locale).babel)
