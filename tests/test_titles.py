"""bot.titles on the real title catalogue: a typed title resolves only to the title it is.

The catalogue is every title of the real files in tests/data: Netflix's weekly Top 10 (94 countries
and the global lists, 2021-07 … 2022-02), the U.S. daily Top 10 (2020-04 … 2022-03) and, for the
pairwise checks, the all-time lists (2021-11 … 2026-07).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.model import InputError, Snapshot, title_key
from bot.sources.files import read_file
from bot.titles import (
    AmbiguousTitle,
    TitleIndex,
    TitleNotFound,
    UnchartedTitle,
    is_typo,
    loose,
    typo_allowance,
)
from cogs.watch import resolve_title as watch_title

DATA = Path(__file__).parent / "data"
CUT = date(2022, 1, 30)  # the history before Inventing Anna charted (week of 2022-02-13)
AOUAD = "All of Us Are Dead"


@pytest.fixture(scope="module")
def history(netflix_snapshots: list[Snapshot]) -> list[Snapshot]:
    return [*netflix_snapshots, *read_file(DATA / "netflix_us_daily" / "netflix_daily_top_10.csv")]


def index_of(snapshots: Iterable[Snapshot], until: date | None = None) -> TitleIndex:
    """What `Store.title_catalog()` gives: (key, title, periods in any top 10), built from the charts."""
    weight: Counter[str] = Counter()
    names: dict[str, str] = {}
    for snapshot in snapshots:
        if until is not None and snapshot.key.date > until:
            continue
        weight.update(snapshot.best_ranks())
        for entry in snapshot.entries:
            names.setdefault(entry.title_key, entry.title)
    return TitleIndex((key, names[key], n) for key, n in weight.items())


@pytest.fixture(scope="module")
def full(history: list[Snapshot]) -> TitleIndex:
    return index_of(history)


@pytest.fixture(scope="module")
def early(history: list[Snapshot]) -> TitleIndex:
    return index_of(history, until=CUT)


# --- the rules, on real titles --------------------------------------------------------------------


def test_inventing_anna_is_never_anna(early: TitleIndex, full: TitleIndex) -> None:
    assert "anna" in early and "inventing anna" not in early
    with pytest.raises(UnchartedTitle) as raised:
        early.resolve("Inventing Anna")
    assert "Anna" in raised.value.candidates  # suggested, never taken
    assert str(raised.value).startswith("No title called “Inventing Anna” in the chart history. Did you mean")
    assert full.resolve("Inventing Anna") == ("inventing anna", "Inventing Anna")
    assert full.find("inventing").how == "prefix"


@pytest.mark.parametrize(
    ("typed", "title", "how"),
    [
        ("All of Us Are Dead", AOUAD, "exact"),
        ("ALL OF US ARE DEAD!", AOUAD, "exact"),
        ("All of Us Are Dead: Season 1", AOUAD, "exact"),  # the season goes, as in the charts
        ("Cafe con aroma de mujer", "Café con aroma de mujer", "exact"),  # accents
        ("Don’t Look Up", "Don't Look Up", "exact"),  # curly quote
        ("Munich: The Edge of War", "Munich – The Edge of War", "exact"),  # dash
        ("Don t Look Up", "Don't Look Up", "loose"),
        ("spiderman", "Spider-Man", "loose"),
        ("spiderman far from home", "Spider-Man: Far from Home", "loose"),
        ("all of us", AOUAD, "prefix"),
        ("army of the", "Army of the Dead", "prefix"),
        ("all of us are ded", AOUAD, "typo"),
        ("all of su are dead", AOUAD, "typo"),  # two letters swapped: one edit
        ("the tinder swindlr", "The Tinder Swindler", "typo"),
    ],
)
def test_resolves_the_same_title(full: TitleIndex, typed: str, title: str, how: str) -> None:
    match = full.find(typed)
    assert (match.title, match.how) == (title, how)
    assert full.resolve(typed) == (title_key(title), title)


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("squid gamez returns", "Squid Game"),  # a longer, different title
        ("Ozrak", "Ozark"),  # a typo in a short title: too many real titles lie one letter apart
        ("the watcher", "The Witcher"),  # another Netflix show (2022), one letter from this one
        ("Perfect Strangers 3", "Perfect Strangers"),
    ],
)
def test_a_look_alike_is_only_suggested(full: TitleIndex, typed: str, suggested: str) -> None:
    with pytest.raises(UnchartedTitle) as raised:
        full.resolve(typed)
    assert raised.value.candidates[0] == suggested
    assert f"No title called “{typed}” in the chart history. Did you mean “{suggested}”" in str(raised.value)


def test_numbers_and_plurals_are_other_titles(full: TitleIndex) -> None:
    """Sequels, years and plurals are other titles, even one edit apart."""
    for typed, other in [
        ("19 Again", "18 Again"),
        ("The Kissing Booth 4", "The Kissing Booth 3"),
        ("Death to 2022", "Death to 2021"),
        ("Perfect Strangerz", "Perfect Stranger"),  # a typo of two titles at once: neither
    ]:
        with pytest.raises(TitleNotFound):
            full.resolve(typed)
        assert other in [t for _, t in full.complete(typed)]
    assert full.resolve("Perfect Stranger")[1] == "Perfect Stranger"
    assert full.resolve("Perfect Strangers")[1] == "Perfect Strangers"


def test_a_prefix_ending_in_a_number_is_not_the_sequel() -> None:
    index = TitleIndex([("tall girl 2", "Tall Girl 2", 4)])
    with pytest.raises(UnchartedTitle) as raised:
        index.resolve("Tall Girl")
    assert raised.value.candidates[0] == "Tall Girl 2"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("army of", ["Army of the Dead", "Army of Thieves"]),
        ("the", None),  # dozens: the five most charted
    ],
)
def test_an_ambiguous_prefix_lists_the_candidates(
    full: TitleIndex, typed: str, expected: list[str] | None
) -> None:
    with pytest.raises(AmbiguousTitle) as raised:
        full.resolve(typed)
    candidates = raised.value.candidates
    if expected is not None:
        assert set(candidates) == set(expected)
    else:
        assert len(candidates) == 5 and all(c.lower().startswith("the ") for c in candidates)
    assert str(raised.value).startswith(f"“{typed}” matches several titles: “")


def test_ties_are_ambiguous_not_a_guess() -> None:
    spaced = TitleIndex([("start up", "Start-Up", 9), ("startup", "StartUp", 3)])
    assert spaced.resolve("Startup") == ("startup", "StartUp")  # the same key wins
    with pytest.raises(AmbiguousTitle, match="matches several titles: “Start-Up” or “StartUp”"):
        spaced.resolve("sta-rtup")
    twins = TitleIndex([("the great escaper", "The Great Escaper", 1), ("the great escapes", "X", 1)])
    with pytest.raises(AmbiguousTitle):
        twins.resolve("the great escapex")


def test_nothing_typed() -> None:
    index = TitleIndex([("squid game", "Squid Game", 1)])
    for typed in ("", "   ", "!!!", "“”"):
        with pytest.raises(TitleNotFound, match="Type a title") as raised:
            index.resolve(typed)
        assert type(raised.value) is TitleNotFound and raised.value.candidates == []
    with pytest.raises(UnchartedTitle) as raised:
        TitleIndex([]).resolve("Squid Game")
    assert raised.value.candidates == [] and str(raised.value).endswith("in the chart history.")


def test_autocomplete_stays_generous(early: TitleIndex, full: TitleIndex) -> None:
    assert "Anna" in [t for _, t in early.complete("Inventing Anna")]  # it only suggests
    assert full.complete("all of us")[0] == ("all of us are dead", AOUAD)
    assert "Ozark" in [t for _, t in full.complete("Ozrak")]
    assert len(full.complete("")) == 25


# --- the typo allowance, justified on the real catalogue ------------------------------------------


@pytest.fixture(scope="module")
def catalogue(history: list[Snapshot]) -> dict[str, str]:
    names = {e.title_key: e.title for s in history for e in s.entries}
    for path in sorted((DATA / "netflix_most_popular").glob("*.tsv")):
        try:
            snapshots = read_file(path, day=date(2025, 1, 1))
        except InputError:
            continue  # the one HTML body
        names.update((e.title_key, e.title) for s in snapshots for e in s.entries)
    return names


def close_pairs(keys: list[str], edits: int) -> list[tuple[str, str]]:
    """Every pair of distinct keys within `edits` OSA edits of each other (spaces aside)."""
    squeezed = [loose(k) for k in keys]
    distances = process.cdist(squeezed, squeezed, scorer=OSA.distance, score_cutoff=edits, workers=-1)
    return [(keys[i], keys[j]) for i, j in zip(*np.nonzero(distances <= edits), strict=True) if i < j]


def test_no_real_title_is_a_typo_of_another(catalogue: dict[str, str]) -> None:
    """With the allowance, no title of the 1,600+ real ones would be taken for another: typing one
    that has not charted never resolves to a charted one by the typo rule."""
    keys = sorted(catalogue)
    assert len(keys) > 1600
    pairs = close_pairs(keys, 2)
    assert len(pairs) > 50  # plenty of real look-alikes to be told apart
    swapped = [(catalogue[a], catalogue[b]) for a, b in pairs if is_typo(a, b) or is_typo(b, a)]
    assert swapped == []


def test_why_short_titles_get_no_typo(catalogue: dict[str, str]) -> None:
    """One edit in a title of 6-10 letters would swap real, different titles."""
    pairs = {
        frozenset((catalogue[a], catalogue[b]))
        for a, b in close_pairs(sorted(catalogue), 1)
        if 6 <= min(len(loose(a)), len(loose(b))) <= 10
    }
    for a, b in [("Braven", "Brazen"), ("The Fall", "The Falls"), ("3 Idiots", "3 idiotas")]:
        assert frozenset((a, b)) in pairs
        assert not is_typo(title_key(a), title_key(b))
    assert [typo_allowance(n) for n in (5, 6, 10, 11, 19, 20, 40)] == [0, 0, 0, 1, 1, 2, 2]


# --- /watch: an uncharted title is never moved onto a charted one ---------------------------------


def test_watch_inventing_anna_before_it_charts(early: TitleIndex, full: TitleIndex) -> None:
    key, title, suggestions = watch_title(early, "Inventing Anna")
    assert (key, title) == ("inventing anna", "Inventing Anna") and suggestions is not None
    assert watch_title(full, "Inventing Anna") == ("inventing anna", "Inventing Anna", None)


def test_watch_takes_the_same_title_only(full: TitleIndex) -> None:
    assert watch_title(full, "all of us are ded") == ("all of us are dead", AOUAD, None)
    assert watch_title(full, "ALL OF US ARE DEAD: Season 2") == ("all of us are dead", AOUAD, None)
    # a title typed in full is that title, even when a charted one starts with it
    key, title, suggestions = watch_title(full, "All of Us")
    assert (key, title) == ("all of us", "All of Us") and suggestions and suggestions[0] == AOUAD
    key, title, suggestions = watch_title(full, "Squid Game: Season 3")
    assert (key, title, suggestions) == ("squid game", "Squid Game", None)  # seasons share the show


def test_watch_refuses_what_it_cannot_tell(full: TitleIndex) -> None:
    index = TitleIndex([("start up", "Start-Up", 9), ("startup", "StartUp @everyone", 3)])
    with pytest.raises(InputError) as raised:
        watch_title(index, "sta-rtup")
    assert "could be **Start-Up**, **StartUp @\u200beveryone**: pick one" in str(raised.value)
    for typed in ("", "\u200b", "!!!"):
        with pytest.raises(InputError):
            watch_title(full, typed)


def test_no_uncharted_title_is_watched_as_another(
    history: list[Snapshot], early: TitleIndex, full: TitleIndex, catalogue: dict[str, str]
) -> None:
    """Every real title that charted after the cut, typed before it charted, and every title of the
    all-time lists typed on the weekly and daily history: each is watched as itself or as the
    charted title of the same key — never as a different charted title."""
    later = [(early, catalogue[k]) for k in catalogue if k in full and k not in early]
    elsewhere = [(full, catalogue[k]) for k in catalogue if k not in full]
    assert len(later) > 250 and len(elsewhere) > 40
    for index, typed in itertools.chain(later, elsewhere):
        key, _, _ = watch_title(index, typed)
        assert key == title_key(typed), typed
