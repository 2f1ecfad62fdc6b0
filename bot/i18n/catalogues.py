"""The message catalogues: one gettext `.po` file per language, read once per process, no build step.

Message ids are stable symbolic keys (`picture.rank`, `unit.day`, `command.rank.description`), and the
English catalogue holds the English text like any other language:

- every language must have every key of the English catalogue, which a test checks exactly (with
  English sentences as ids, an edited sentence is a new id and the old translation silently goes);
- the same English word in two roles (`rank` the command, `rank` the axis label) gets two keys;
- each translation records the English it was made from (`#. English: …`), so `python -m
  bot.i18n.update` marks it fuzzy when the English changes, and a fuzzy entry is not used (English
  shows instead) until a translator has looked at it again.

Texts are `str.format` templates: `{n}`, `{date}`; every language uses the same placeholders.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
import re
from enum import Enum
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from babel import Locale
from babel.core import get_global
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "chartbot"
SOURCE = "en"
"""The fallback language, and the catalogue every other one is checked against."""

LOCALES = ("en", "ko", "ja", "es_ES", "es_419", "pt_BR", "fr", "de", "id")
"""Our languages, as gettext/Babel locale names (the folders under bot/i18n/locales/)."""

DISCORD_LOCALES = {
    "en-US": "en",
    "en-GB": "en",
    "ko": "ko",
    "ja": "ja",
    "es-ES": "es_ES",
    "es-419": "es_419",
    "pt-BR": "pt_BR",
    "fr": "fr",
    "de": "de",
    "id": "id",
}
"""Discord's locale codes (`interaction.locale`, `guild_locale`) for our languages."""

# A bare language ("es", "pt") means the first of its locales above: Spain's Spanish, Brazil's Portuguese.
_BY_LANGUAGE = {name.split("_")[0]: name for name in reversed(LOCALES)}
# Languages with more than one of our locales: only there does CLDR's parent locale decide (es-MX ->
# es_419). Elsewhere it is not asked (its table is 3 MB of Babel's global data, loaded on first use).
_SPLIT = {lang for lang in _BY_LANGUAGE if sum(name.split("_")[0] == lang for name in LOCALES) > 1}
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?(?:[-_].*)?$")


def locale_for(tag: str | Enum | Messages | None) -> str:
    """Our locale for a Discord locale, a BCP 47 tag or a POSIX locale ("ko", "es-419", "pt_BR.UTF-8").

    Exact match first, then CLDR's parent locale ("es-MX" -> es_419), then the language ("es" -> es_ES,
    "pt-PT" -> pt_BR), else English. A `Messages` is its own locale.
    """
    if tag is None:
        return SOURCE
    if isinstance(tag, Messages):
        return tag.locale
    text = str(tag.value if isinstance(tag, Enum) else tag).strip()
    text = text.split(".", 1)[0].split("@", 1)[0]  # ko_KR.UTF-8, de_DE@euro
    match = _TAG.match(text)
    if match is None:
        return SOURCE
    language, _script, region = match.groups()
    language = language.lower()
    if region:
        name = f"{language}_{region.upper()}"
        if name in LOCALES:
            return name
        parent = get_global("parent_exceptions").get(name) if language in _SPLIT else None
        if parent in LOCALES:
            return parent
    return _BY_LANGUAGE.get(language, SOURCE)


ORDINAL = "ordinal"
"""Keys `ordinal[.<period>].<category>`: one per CLDR ordinal category of the language ("1st", "2nd",
"3rd", "4th" in English; "1.er", "2.º" in Spanish; one form in Korean), so each language has the keys
of its own categories rather than all of English's."""


def ordinal_categories(locale: str) -> frozenset[str]:
    """CLDR's ordinal plural categories of a locale ("other" always among them)."""
    return Locale.parse(locale).ordinal_form.tags | {"other"}


def required(key: str, locale: str) -> bool:
    """Whether the catalogue of `locale` must translate an English key."""
    if key.split(".", 1)[0] != ORDINAL:
        return True
    return key.rsplit(".", 1)[1] in ordinal_categories(locale)


def catalogue_path(locale: str) -> Traversable:
    """The `.po` file of one of our locales (package data: shipped by `pip install .`)."""
    return resources.files("bot.i18n") / "locales" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def _compiled(locale: str) -> gettext.GNUTranslations:
    """The catalogue compiled in memory (fuzzy entries left out), once per process."""
    with catalogue_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


class Messages:
    """One language's texts, English where that language has no (non-fuzzy) translation."""

    def __init__(self, locale: str) -> None:
        if locale not in LOCALES:
            raise ValueError(f"{locale!r} is not one of our locales ({', '.join(LOCALES)})")
        self.locale = locale
        self.babel = Locale.parse(locale)
        self._own = _compiled(locale)
        self._english = _compiled(SOURCE)

    def __repr__(self) -> str:
        return f"Messages({self.locale!r})"

    def has(self, key: str) -> bool:
        """Whether this language's own catalogue translates `key` (English does not count)."""
        return self._own.gettext(key) != key  # a symbolic key is never its own translation

    def lookup(self, key: str) -> str | None:
        """This language's own text for `key`, unformatted; None when it has none."""
        text = self._own.gettext(key)
        return None if text == key else text

    def gettext(self, key: str, /, **values: Any) -> str:
        """The text for `key` with `values` filled in."""
        text = self._own.gettext(key)
        if text == key:
            text = self._missing(key, self._english.gettext(key))
        return self._format(key, text, values, lambda: self._english.gettext(key))

    def ngettext(self, key: str, n: int, /, **values: Any) -> str:
        """The form of `key` for the count `n` (the catalogue's plural rule picks it), `values` filled in.

        `n` only chooses the form: pass the number to show as a value (`n=format_decimal(n)`).
        """
        text = self._own.ngettext(key, key, n)
        if text == key:
            text = self._missing(key, self._english.ngettext(key, key, n))
        return self._format(key, text, values, lambda: self._english.ngettext(key, key, n))

    def command(self, path: str) -> str:
        """A slash command as this language's Discord shows it: "watch list" -> "/watch list", "/알림 목록"."""
        parts = path.split()
        keys = [f"command.{'.'.join(parts[: i + 1])}.name" for i in range(len(parts))]
        names = [self.gettext(key) for key in keys]
        return "/" + " ".join(names)

    def _missing(self, key: str, english: str) -> str:
        if english == key:
            log.warning("no message %r in the English catalogue", key)
        return english

    def _format(self, key: str, text: str, values: dict[str, Any], english: Any) -> str:
        if not values:
            return text
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError, AttributeError):
            if self.locale == SOURCE:
                raise
            log.warning("the %s text of %r does not fit its placeholders: English used", self.locale, key)
            return english().format(**values)


def translator(locale: str | Enum | Messages | None) -> Messages:
    """The texts of the language for `locale` (any tag `locale_for` reads; a `Messages` is returned as
    it is, so that functions may take either)."""
    if isinstance(locale, Messages):
        return locale
    return _messages(locale_for(locale))


@functools.cache
def _messages(locale: str) -> Messages:
    return Messages(locale)


ENGLISH = translator(SOURCE)
"""English: the texts of any function not told another language."""
