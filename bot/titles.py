"""Finding a title from what a fan typed: exact, loose, prefix, then fuzzy. Answers from memory.

Built from `Store.title_catalog()` and rebuilt when history changes; autocomplete must answer in
milliseconds, so nothing here touches the database.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.model import InputError, title_key

FUZZY_ACCEPT = 88  # a typo-level difference: "all of us are ded"
FUZZY_CLEAR_LEAD = 4  # the best fuzzy match must beat the runner-up by this much to be taken alone
SUGGEST_CUTOFF = 55
_NOT_WORD = re.compile(r"[^\w]+")


class TitleNotFound(InputError):
    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


def loose(key: str) -> str:
    """A key without punctuation or spaces: "spider-man: no way home" ~ "spiderman no way home"."""
    return _NOT_WORD.sub("", key)


@dataclass(frozen=True, slots=True)
class Title:
    key: str
    title: str
    weight: int  # periods in any top 10: popular titles come first among equals


class TitleIndex:
    def __init__(self, rows: Iterable[tuple[str, str, int]]) -> None:
        self.titles = sorted((Title(*row) for row in rows), key=lambda t: t.key)
        self._keys = [t.key for t in self.titles]
        self._by_key = {t.key: t for t in self.titles}
        self._by_loose: dict[str, list[Title]] = {}
        for t in self.titles:
            self._by_loose.setdefault(loose(t.key), []).append(t)
        self._popular = sorted(self.titles, key=lambda t: (-t.weight, t.key))

    def __len__(self) -> int:
        return len(self.titles)

    def resolve(self, query: str) -> tuple[str, str]:
        """(title_key, title) for what was typed, or TitleNotFound naming the closest titles."""
        key = title_key(query)
        if not key:
            raise TitleNotFound("Type a title, e.g. “All of Us Are Dead”.", [])
        if key in self._by_key:
            return key, self._by_key[key].title
        same = self._by_loose.get(loose(key), [])
        if len(same) == 1:
            return same[0].key, same[0].title
        starting = self._prefixed(key)
        if len(starting) == 1:
            return starting[0].key, starting[0].title
        if len(starting) > 1:
            names = [t.title for t in sorted(starting, key=lambda t: (-t.weight, t.key))[:5]]
            raise TitleNotFound(f"“{query.strip()}” matches several titles: {_listing(names)}.", names)
        scored = process.extract(key, self._keys, scorer=fuzz.WRatio, limit=5, score_cutoff=SUGGEST_CUTOFF)
        if scored:
            best_key, best, _ = scored[0]
            runner_up = scored[1][1] if len(scored) > 1 else 0
            if best >= FUZZY_ACCEPT and best - runner_up >= FUZZY_CLEAR_LEAD:
                return best_key, self._by_key[best_key].title
        names = [self._by_key[k].title for k, _, _ in scored]
        hint = f" Did you mean {_listing(names)}?" if names else ""
        raise TitleNotFound(f"No title called “{query.strip()}” in the chart history.{hint}", names)

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

    def _prefixed(self, key: str, cap: int = 500) -> list[Title]:
        start = bisect.bisect_left(self._keys, key)
        found = []
        for index in range(start, min(start + cap, len(self._keys))):
            if not self._keys[index].startswith(key):
                break
            found.append(self.titles[index])
        return found


def _listing(names: list[str]) -> str:
    quoted = [f"“{n}”" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
