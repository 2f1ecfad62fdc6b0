"""Finding a title from what a fan typed. Answers from memory.

Built from `Store.title_catalog()` and rebuilt when history changes; autocomplete must answer in
milliseconds, so nothing here touches the database.

A typed title resolves to a stored title only when it *is* that title, never because it looks alike
("Inventing Anna" is not "Anna", "The Watcher" is not "The Witcher"):

1. the same key (`title_key`: case, punctuation, quotes, dashes, accents folded), or the same once
   spaces go too ("spiderman no way home" is "Spider-Man: No Way Home");
2. the one title it starts, word for word ("all of us" is "All of Us Are Dead"), unless the rest is
   only a number: "The Kissing Booth" is not "The Kissing Booth 2" (`prefixes=False` turns this off);
3. a small typo in a long title (`typo_allowance`): "all of us are ded".

Anything else is `TitleNotFound` naming the closest titles: `AmbiguousTitle` when several titles fit
equally, `UnchartedTitle` when none does (not in the charts yet, or typed too far off to be sure).
`complete` stays generous: autocomplete only suggests.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

from babel.lists import format_list
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.i18n import ENGLISH, SOURCE, Messages
from bot.model import InputError, split_season, title_key

SUGGEST_CUTOFF = 55
SUGGESTIONS = 5
# Typos allowed (edits: a letter added, dropped, changed, or two swapped) by the letters and digits of
# the shorter of the two titles. Short titles get none: in the real catalogue (tests/test_titles.py)
# distinct titles of 6-10 letters lie one edit apart (Braven/Brazen, The Fall/The Falls, 3 Idiots/
# 3 idiotas; and The Witcher/The Watcher, 10 letters, both on Netflix), but no two distinct titles of 11
# or more lie within these allowances once numbers and plurals are told apart (`is_typo`).
TYPO_EDITS = ((20, 2), (11, 1))  # (at least this many letters, edits allowed): the first that fits
_NOT_WORD = re.compile(r"[^\w]+")
_NUMBER = re.compile(r"\d+")
_LETTER = re.compile(r"[^\W\d_]")


class TitleNotFound(InputError):
    """No single stored title is what was typed; `candidates` are the closest, best first. The message
    is English; `text(tr)` says it in another language."""

    def __init__(self, message: str, candidates: list[str], query: str = "") -> None:
        super().__init__(message)
        self.candidates = candidates
        self.query = query

    def text(self, tr: Messages = ENGLISH) -> str:
        return tr.gettext("titles.type_one")


class AmbiguousTitle(TitleNotFound):
    """Several stored titles fit what was typed equally ("the", "death to")."""

    def text(self, tr: Messages = ENGLISH) -> str:
        return tr.gettext(
            "titles.several", title=quoted(self.query, tr), titles=_listing(self.candidates, tr)
        )


class UnchartedTitle(TitleNotFound):
    """No stored title is what was typed: a title not in any chart (yet), or a guess too far off."""

    def text(self, tr: Messages = ENGLISH) -> str:
        text = tr.gettext("titles.unknown", title=quoted(self.query, tr))
        if not self.candidates:
            return text
        return tr.gettext("titles.did_you_mean", text=text, titles=_listing(self.candidates, tr))


def quoted(title: str, tr: Messages = ENGLISH) -> str:
    """A title in the language's quotation marks: “Squid Game”, 「イカゲーム」, « Squid Game »."""
    return tr.gettext("quote", text=title)


def loose(key: str) -> str:
    """A key without punctuation or spaces: "spider-man: no way home" ~ "spiderman no way home"."""
    return _NOT_WORD.sub("", key)


def typo_allowance(letters: int) -> int:
    """Edits allowed between two titles whose shorter one has this many letters and digits."""
    return next((edits for least, edits in TYPO_EDITS if letters >= least), 0)


@dataclass(frozen=True, slots=True)
class Title:
    key: str
    title: str
    weight: int  # periods in any top 10: popular titles come first among equals


@dataclass(frozen=True, slots=True)
class TitleMatch:
    key: str
    title: str
    how: str  # "exact", "loose" (spaces aside), "prefix" (the one title it starts) or "typo"


class TitleIndex:
    def __init__(self, rows: Iterable[tuple[str, str, int]]) -> None:
        self.titles = sorted((Title(*row) for row in rows), key=lambda t: t.key)
        self._keys = [t.key for t in self.titles]
        self._loose_keys = [loose(k) for k in self._keys]
        self._by_key = {t.key: t for t in self.titles}
        self._by_loose: dict[str, list[Title]] = {}
        for t, lk in zip(self.titles, self._loose_keys, strict=True):
            self._by_loose.setdefault(lk, []).append(t)
        self._popular = sorted(self.titles, key=lambda t: (-t.weight, t.key))

    def __len__(self) -> int:
        return len(self.titles)

    def __contains__(self, key: object) -> bool:
        """Is this title key in the charts (`"inventing anna" in index`)?"""
        return key in self._by_key

    def resolve(self, query: str) -> tuple[str, str]:
        """(title_key, title) for what was typed, or TitleNotFound naming the closest titles."""
        match = self.find(query)
        return match.key, match.title

    def find(self, query: str, *, prefixes: bool = True) -> TitleMatch:
        """The stored title that what was typed is (see the module's rules), or TitleNotFound.

        `prefixes=False`: a title typed in full is taken as that title even when a charted one starts
        with it ("Anna" is not "Anna Karenina"): for a title that may not have charted yet."""
        shown = query.strip()
        show, _season = split_season(query) if query.strip() else ("", None)
        key = title_key(show) if show else ""
        if not key:
            raise TitleNotFound(ENGLISH.gettext("titles.type_one"), [], shown)
        if key in self._by_key:
            return self._match(self._by_key[key], "exact")
        same = self._by_loose.get(loose(key), [])
        if len(same) == 1:
            return self._match(same[0], "loose")
        if len(same) > 1:
            raise self._ambiguous(shown, same)
        starting = self._starting_words(key)
        if prefixes and len(starting) == 1:
            return self._match(starting[0], "prefix")
        if prefixes and starting:
            raise self._ambiguous(shown, starting)
        typos = self._typos(key)
        if len(typos) == 1:
            return self._match(typos[0], "typo")
        if typos:
            raise self._ambiguous(shown, typos)
        names = self._suggestions(key, starting)
        uncharted = UnchartedTitle("", names, shown)
        uncharted.args = (uncharted.text(),)  # the English message
        raise uncharted

    def complete(self, query: str, limit: int = 25) -> list[tuple[str, str]]:
        """Up to `limit` choices: titles starting with the text first (popular first), then fuzzy."""
        key = title_key(query)
        if not key:
            return [(t.key, t.title) for t in self._popular[:limit]]
        chosen = sorted(self._prefixed(key), key=lambda t: (-t.weight, t.key))[:limit]
        if len(chosen) < limit:
            seen = {t.key for t in chosen}
            scored = process.extract(
                key, self._keys, scorer=fuzz.WRatio, limit=limit * 2, score_cutoff=SUGGEST_CUTOFF
            )
            extra = [self._by_key[k] for k, _, _ in scored if k not in seen]
            extra.sort(key=lambda t: -t.weight)
            chosen.extend(extra[: limit - len(chosen)])
        return [(t.key, t.title) for t in chosen]

    # --- the rules --------------------------------------------------------------------------------

    def _starting_words(self, key: str) -> list[Title]:
        """Titles that go on from `key` with more words, not only with a number (a sequel, a year)."""
        head = key + " "
        return [t for t in self._prefixed(head) if _LETTER.search(t.key, len(head))]

    def _typos(self, key: str) -> list[Title]:
        """Titles a small typo away (long titles only), the nearest first (ties all kept)."""
        typed = loose(key)
        most = typo_allowance(len(typed))
        if not most:
            return []
        near = process.extract(typed, self._loose_keys, scorer=OSA.distance, score_cutoff=most, limit=None)
        found = [(edits, self.titles[i]) for _, edits, i in near if is_typo(key, self.titles[i].key)]
        nearest = min((edits for edits, _ in found), default=None)
        return [title for edits, title in found if edits == nearest]

    def _suggestions(self, key: str, starting: list[Title]) -> list[str]:
        """The closest titles for a "did you mean": those it starts, then look-alikes, popular first."""
        chosen = sorted(starting or self._prefixed(key + " "), key=lambda t: (-t.weight, t.key))
        scored = process.extract(key, self._keys, scorer=fuzz.WRatio, limit=10, score_cutoff=SUGGEST_CUTOFF)
        chosen += [self._by_key[k] for k, _, _ in scored]
        names: list[str] = []
        for t in chosen:
            if t.title not in names:
                names.append(t.title)
        return names[:SUGGESTIONS]

    def _ambiguous(self, shown: str, titles: list[Title]) -> AmbiguousTitle:
        names = [t.title for t in sorted(titles, key=lambda t: (-t.weight, t.key))[:SUGGESTIONS]]
        ambiguous = AmbiguousTitle("", names, shown)
        ambiguous.args = (ambiguous.text(),)  # the English message
        return ambiguous

    @staticmethod
    def _match(title: Title, how: str) -> TitleMatch:
        return TitleMatch(title.key, title.title, how)

    def _prefixed(self, key: str, cap: int = 500) -> list[Title]:
        start = bisect.bisect_left(self._keys, key)
        found = []
        for index in range(start, min(start + cap, len(self._keys))):
            if not self._keys[index].startswith(key):
                break
            found.append(self.titles[index])
        return found


def is_typo(typed: str, key: str) -> bool:
    """Is the key `typed` a small typo of the title key `key` (within `typo_allowance`, by OSA edits
    on the keys without spaces), rather than another title?"""
    a, b = loose(typed), loose(key)
    most = typo_allowance(min(len(a), len(b)))
    return bool(most) and OSA.distance(a, b, score_cutoff=most) <= most and not _different_titles(typed, key)


def _different_titles(a: str, b: str) -> bool:
    """Two keys a typo apart that still name different titles: another number (a sequel, a year:
    "17 Again"/"18 Again", "Extraction"/"Extraction 2") or a plural ("Perfect Stranger(s)")."""
    if _NUMBER.findall(a) != _NUMBER.findall(b):
        return True
    singular_a = [w.removesuffix("s") for w in a.split()]
    singular_b = [w.removesuffix("s") for w in b.split()]
    return singular_a == singular_b


def _listing(names: list[str], tr: Messages = ENGLISH) -> str:
    """ "“A”, “B” or “C”" (in another language, its own way of saying "or")."""
    shown = [quoted(n, tr) for n in names]
    if tr.locale != SOURCE:
        return format_list(shown, style="or", locale=tr.babel)
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
