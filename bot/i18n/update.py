"""Keep the catalogues in step with the code: `python -m bot.i18n.update [--check]`.

- The English catalogue takes the cogs' command strings as they are in the decorators (the English
  Discord shows), and drops the command strings of commands that are gone. Every other English text
  is written in `locales/en/LC_MESSAGES/chartbot.po` by hand.
- The keys the code asks for literally (`tr.gettext("picture.rank")`, found the way `pybabel extract`
  finds them) must be in the English catalogue: a missing one is reported (exit 2).
- Every other language gets every English key (new ones untranslated, so English shows until someone
  translates them), loses the keys English no longer has, and each entry records the English it was
  translated from (`#. English: …`): when that English changes, the translation is marked fuzzy,
  and a fuzzy translation is not used until a translator has checked it and removed the mark.

`--check` changes nothing and exits 1 when a catalogue would change (the tests run the same check).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n.catalogues import DOMAIN, LOCALES, SOURCE, catalogue_path, required
from bot.i18n.commands import NAME_LIMIT, cog_commands, command_strings

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("bot", "cogs")
KEYWORDS = {"gettext": None, "ngettext": (1,)}
ENGLISH = "English: "
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")
_COMMAND_KEY = re.compile(r"^(command|choice)\.")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # fixed dates: the files change only when their texts do


@dataclass
class Outcome:
    texts: dict[str, str]  # locale -> the catalogue's new text
    missing: list[tuple[str, str, int]]  # keys the code uses that English lacks: (key, file, line)


def placeholders(text: str) -> set[str]:
    """The `{name}` placeholders of a text."""
    return set(_PLACEHOLDER.findall(text))


def _path(locale: str) -> Path:
    return Path(str(catalogue_path(locale)))


def read(locale: str) -> Catalog | None:
    path = _path(locale)
    if not path.exists():
        return None
    with path.open("rb") as po:
        return read_po(po, locale=locale, domain=DOMAIN)


def render(catalog: Catalog) -> str:
    out = io.BytesIO()
    write_po(out, catalog, width=0, include_lineno=False, ignore_obsolete=True)
    return out.getvalue().decode("utf-8")


def _new_catalog(locale: str, old: Catalog | None) -> Catalog:
    catalog = Catalog(
        locale=locale,
        domain=DOMAIN,
        header_comment=old.header_comment if old else _header(locale),
        project="chartbot",
        version="0.1.0",
        creation_date=old.creation_date if old else _EPOCH,
        revision_date=old.revision_date if old else _EPOCH,
        msgid_bugs_address="the chartbot issue tracker",
        last_translator=old.last_translator if old else "chartbot",
        language_team=Locale.parse(locale).english_name,
        fuzzy=False,
    )
    return catalog  # Plural-Forms: CLDR's rule for the locale (Babel's get_plural)


def _header(locale: str) -> str:
    name = Locale.parse(locale).english_name
    if locale == SOURCE:
        return f"# chartbot's {name} texts: the fallback, and the keys every language must have.\n#"
    return f"# chartbot's texts in {name}. Update with: python -m bot.i18n.update\n#"


def _english_text(message: Message) -> str:
    return " | ".join(message.string) if isinstance(message.string, tuple | list) else message.string


def _role(key: str) -> list[str]:
    """A note for translators on what Discord allows where the string goes."""
    if not _COMMAND_KEY.match(key):
        return []
    if key.startswith("command.") and key.endswith(".name"):
        return [f"Discord name: lower case, no spaces, at most {NAME_LIMIT} characters"]
    return ["Discord: at most 100 characters"]


def update_english(old: Catalog, strings: dict[str, str]) -> Catalog:
    """English with the cogs' command strings as they are, the hand-written texts kept."""
    catalog = _new_catalog(SOURCE, old)
    for key, text in strings.items():
        catalog.add(key, text, auto_comments=_role(key))
    for message in old:
        if not message.id or message.id in catalog or _COMMAND_KEY.match(_key(message)):
            continue
        catalog.add(
            message.id,
            message.string,
            auto_comments=message.auto_comments,
            user_comments=message.user_comments,
            flags=message.flags,
        )
    return catalog


def _key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, tuple | list) else message.id


def update_language(locale: str, old: Catalog | None, english: Catalog) -> Catalog:
    """`locale`'s catalogue with exactly English's keys, each noting the English it translates."""
    catalog = _new_catalog(locale, old)
    forms = catalog.num_plurals
    for source in english:
        if not source.id or not required(_key(source), locale):
            continue
        was = old.get(source.id) if old is not None else None
        now = ENGLISH + _english_text(source)
        plural = isinstance(source.id, tuple | list)
        if was is not None and bool(isinstance(was.string, tuple | list)) == plural:
            string = was.string
            flags = set(was.flags)
            made_from = _made_from(was.auto_comments)
            if made_from is not None and made_from.split() != now.split() and _translated(string):
                flags.add("fuzzy")  # the English changed since this was translated: check it again
            comments = list(was.user_comments)
        else:
            string = ("",) * forms if plural else ""
            flags, comments = set(), []
        if plural and len(string) != forms:
            string = (tuple(string) + ("",) * forms)[:forms]
        catalog.add(
            source.id,
            string,
            auto_comments=[*source.auto_comments, now],
            user_comments=comments,
            flags=sorted(flags),
        )
    return catalog


def _made_from(comments: list[str]) -> str | None:
    """The English a translation records (write_po wraps long comments over several lines)."""
    for i, comment in enumerate(comments):
        if comment.startswith(ENGLISH):
            return " ".join(comments[i:])
    return None


def _translated(string: str | Iterable[str]) -> bool:
    return any(string) if isinstance(string, tuple | list) else bool(string)


def used_keys(root: Path = ROOT) -> list[tuple[str, str, int]]:
    """(key, file, line) for every literal key the code passes to gettext/ngettext."""
    found = []
    for folder in CODE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            root / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            key = message[0] if isinstance(message, tuple) else message
            found.append((key, f"{folder}/{filename}", lineno))
    return found


def update() -> Outcome:
    """What every catalogue should read now."""
    old_english = read(SOURCE)
    if old_english is None:
        old_english = _new_catalog(SOURCE, None)
    english = update_english(old_english, command_strings(cog_commands()))
    texts = {SOURCE: render(english)}
    for locale in LOCALES:
        if locale != SOURCE:
            texts[locale] = render(update_language(locale, read(locale), english))
    missing = [(key, file, line) for key, file, line in used_keys() if key not in english]
    return Outcome(texts, missing)


def stale(outcome: Outcome) -> list[str]:
    """The locales whose catalogue on disk differs from what it should read."""
    return [
        locale
        for locale, text in outcome.texts.items()
        if not _path(locale).exists() or _path(locale).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n.update", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    args = parser.parse_args(argv)
    outcome = update()
    for key, file, line in outcome.missing:
        print(f"{file}:{line}: {key!r} is not in the English catalogue", file=sys.stderr)
    changed = stale(outcome)
    if args.check:
        for locale in changed:
            print(f"{_path(locale)} is out of date: run python -m bot.i18n.update", file=sys.stderr)
        return 2 if outcome.missing else 1 if changed else 0
    for locale in changed:
        path = _path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outcome.texts[locale], encoding="utf-8")
        print(f"updated {path.relative_to(ROOT)}")
    return 2 if outcome.missing else 0


if __name__ == "__main__":
    sys.exit(main())
