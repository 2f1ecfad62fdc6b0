"""Slash commands in the fans' languages: discord.py's `app_commands.Translator` over the catalogues.

The cogs' decorators stay plain English: discord.py wraps every command name, description, option name,
option description and choice name in a `locale_str` by itself (`auto_locale_strings`, on by default)
and asks the tree's translator for each of them at sync. The catalogue key comes from where the string
sits in the command tree, not from its English, so a copy edit never loses a translation:

    command.<path>.name / .description                       /rank, /watch, /watch add
    command.<path>.option.<option>.name / .description       /rank's `date` option
    choice.<value>                                           a choice, by its value ("tv-english")

(`<path>` is the command's qualified name with dots: `settings.mention-role`.) Choices are keyed by
value alone because discord.py hands the translator the choice without its option; a test checks that
no value means two things. English is Discord's default text, so English gets no localization.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import unicodedata
from collections.abc import Iterable, Iterator

import discord
from discord import app_commands
from discord.app_commands import Choice, Command, Group, Parameter, TranslationContextLocation, locale_str
from discord.ext import commands

from bot.i18n.catalogues import SOURCE, locale_for, translator

log = logging.getLogger(__name__)

NAME_LIMIT = 32
DESCRIPTION_LIMIT = 100
CHOICE_LIMIT = 100
_NAME_LOCATIONS = frozenset(
    {
        TranslationContextLocation.command_name,
        TranslationContextLocation.group_name,
        TranslationContextLocation.parameter_name,
    }
)


def valid_name(name: str) -> bool:
    """Discord's rule for command and option names: `^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`,
    lower case where the letter has a lower case (none of our languages uses Devanagari or Thai)."""
    return (
        1 <= len(name) <= NAME_LIMIT
        and name == name.lower()
        and unicodedata.is_normalized("NFC", name)
        and all(ch in "-_" or unicodedata.category(ch)[0] in "LN" for ch in name)
    )


def _path(command: Command | Group) -> str:
    return command.qualified_name.replace(" ", ".")


def command_key(command: Command | Group, part: str) -> str:
    """`command.<path>.name` or `.description`."""
    return f"command.{_path(command)}.{part}"


def option_key(command: Command | Group, option: str, part: str) -> str:
    """`command.<path>.option.<option>.name` or `.description` (`option` is the name Discord shows)."""
    return f"command.{_path(command)}.option.{option}.{part}"


def choice_key(choice: Choice) -> str:
    return f"choice.{choice.value}"


def context_key(context: app_commands.TranslationContextTypes) -> str | None:
    """The catalogue key of the string discord.py asks about; None for strings of other kinds."""
    location, data = context.location, context.data
    if location in (TranslationContextLocation.command_name, TranslationContextLocation.group_name):
        return command_key(data, "name")
    if location in (
        TranslationContextLocation.command_description,
        TranslationContextLocation.group_description,
    ):
        return command_key(data, "description")
    if location is TranslationContextLocation.parameter_name:
        return option_key(data.command, data.display_name, "name")
    if location is TranslationContextLocation.parameter_description:
        return option_key(data.command, data.display_name, "description")
    if location is TranslationContextLocation.choice_name:
        return choice_key(data)
    return None


def _fits(text: str, location: TranslationContextLocation) -> bool:
    if location in _NAME_LOCATIONS:
        return valid_name(text)
    limit = CHOICE_LIMIT if location is TranslationContextLocation.choice_name else DESCRIPTION_LIMIT
    return 1 <= len(text) <= limit


class ChartTranslator(app_commands.Translator):
    """Command names, descriptions, options and choices from the catalogues, for Discord's sync."""

    async def load(self) -> None:
        for locale in set(discord_locales().values()):
            translator(locale)  # parse the catalogues now, not during the first sync

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        lang = locale_for(locale.value)
        key = context_key(context)
        if lang == SOURCE or key is None:
            return None  # English is the default text; other kinds of strings are not ours
        text = translator(lang).lookup(key)
        if text is not None and not _fits(text, context.location):
            # Discord would refuse the whole sync: show English for this one string instead.
            log.error("the %s text of %s breaks Discord's rules: %r", lang, key, text)
            return None
        return text


def discord_locales() -> dict[discord.Locale, str]:
    """Every Discord locale that one of our non-English catalogues answers."""
    return {loc: locale_for(loc.value) for loc in discord.Locale if locale_for(loc.value) != SOURCE}


# --- the command strings, for the catalogues and their tests ----------------------------------------


def cog_commands(package: str = "cogs") -> list[Command | Group]:
    """The app commands (and groups) declared by the cogs of `package`, without a bot or a connection."""
    found: list[Command | Group] = []
    module = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda m: m.name):
        cog_module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(cog_module).values():
            if (
                isinstance(value, type)
                and issubclass(value, commands.Cog)
                and value.__module__ == cog_module.__name__
            ):
                found.extend(value.__cog_app_commands__)
    return found


def _walk(items: Iterable[Command | Group]) -> Iterator[Command | Group]:
    for item in items:
        yield item
        if isinstance(item, Group):
            yield from _walk(item.commands)


def command_strings(items: Iterable[Command | Group]) -> dict[str, str]:
    """Catalogue key -> English text, for every translatable string of these commands, in tree order."""
    strings: dict[str, str] = {}
    for item in _walk(items):
        strings[command_key(item, "name")] = item.name
        strings[command_key(item, "description")] = item.description
        if isinstance(item, Group):
            continue
        for param in item.parameters:
            strings[option_key(item, param.display_name, "name")] = param.display_name
            strings[option_key(item, param.display_name, "description")] = param.description
            for choice in param.choices:
                strings.setdefault(choice_key(choice), choice.name)
    return strings


def choices(items: Iterable[Command | Group]) -> list[tuple[Parameter, Choice]]:
    """Every (option, choice) pair of these commands."""
    return [
        (param, choice)
        for item in _walk(items)
        if isinstance(item, Command)
        for param in item.parameters
        for choice in param.choices
    ]
