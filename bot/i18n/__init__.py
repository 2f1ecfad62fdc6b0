"""chartbot in the fans' languages: message catalogues (gettext `.po`, read without a build step),
CLDR names, numbers and dates through Babel (`bot.i18n.formats`), and translated slash commands
(`bot.i18n.commands.ChartTranslator`). See bot/i18n/README.md for how the catalogues are kept."""

from bot.i18n.catalogues import (
    DISCORD_LOCALES,
    ENGLISH,
    LOCALES,
    SOURCE,
    Messages,
    locale_for,
    translator,
)

__all__ = ["DISCORD_LOCALES", "ENGLISH", "LOCALES", "SOURCE", "Messages", "locale_for", "translator"]
