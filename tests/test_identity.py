"""Title identity: one title_key for one title however a source spells it; seasons kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.model import Entry, InputError, parse_date, split_season, title_key
from bot.sources import netflix
from bot.sources.files import read_file

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "spellings",
    [
        ["All of Us Are Dead", "ALL OF US ARE DEAD", "all of us are dead", "  All  of Us Are Dead "],
        ["Chris D'Elia: No Pain", "Chris D’Elia: No Pain", "Chris D\u00e2\u0080\u0099Elia: No Pain"],
        ['"Sr."', "“Sr.”", "«Sr.»"],
        ["Spider-Man - No Way Home", "Spider-Man – No Way Home", "Spider‐Man — No Way Home"],
        ["Squid Game", "ＳＱＵＩＤ ＧＡＭＥ", "Squid\u3000Game"],
        [
            "Café con aroma de mujer",
            "Cafe con aroma de mujer",
            "CafÃ© con aroma de mujer",
            "Cafe\u0301 con aroma de mujer",
        ],
        ["Pokémon", "POKÉMON", "Pokemon", "PokÃ©mon"],
    ],
)
def test_one_key_for_many_spellings(spellings: list[str]) -> None:
    assert len({title_key(s) for s in spellings}) == 1


def test_different_titles_keep_different_keys() -> None:
    assert title_key("Squid Game") != title_key("Squid Games")
    assert title_key("Tiger King: Murder, Mayhem …") != title_key("Tiger King")


def test_mojibake_is_repaired_for_display() -> None:
    assert Entry.make(1, "Chris D\u00e2\u0080\u0099Elia: No Pain").title == "Chris D'Elia: No Pain"
    assert Entry.make(1, "CafÃ© con aroma de mujer").title == "Café con aroma de mujer"


@pytest.mark.parametrize(
    ("title", "season", "show", "kept_season"),
    [
        ("Stranger Things: Season 4", None, "Stranger Things", "Season 4"),
        ("Bridgerton - Season 2", None, "Bridgerton", "Season 2"),
        ("Money Heist: Part 5", None, "Money Heist", "Part 5"),
        ("The Queen's Gambit: Limited Series", None, "The Queen's Gambit", "Limited Series"),
        ("All of Us Are Dead", "All of Us Are Dead: Season 1", "All of Us Are Dead", "Season 1"),
        ("The Tinder Swindler", "N/A", "The Tinder Swindler", None),
        ("Chris D'Elia: No Pain", None, "Chris D'Elia: No Pain", None),
        ("Tiger King: Murder, Mayhem …", None, "Tiger King: Murder, Mayhem …", None),
    ],
)
def test_seasons_are_split(title: str, season: str | None, show: str, kept_season: str | None) -> None:
    assert split_season(title, season) == (show, kept_season)
    entry = Entry.make(1, title, season)
    assert (entry.title, entry.season, entry.title_key) == (show, kept_season, title_key(show))


def test_two_seasons_one_show() -> None:
    one = Entry.make(5, "Toy Boy", "Toy Boy: Season 1")
    two = Entry.make(6, "Toy Boy: Season 2")
    assert one.title_key == two.title_key == "toy boy"
    assert (one.season, two.season) == ("Season 1", "Season 2")


def test_same_key_across_sources() -> None:
    """The U.S. daily file and Netflix's global TSV name one show the same way."""
    us = read_file(DATA / "netflix_us_daily" / "netflix_daily_top_10.csv")
    world = netflix.parse_global_tsv((DATA / "netflix" / "all-weeks-global_2022-03-02.tsv").read_bytes())
    us_keys = {e.title_key for s in us for e in s.entries}
    world_keys = {e.title_key for s in world for e in s.entries}
    assert {"all of us are dead", "squid game", "the tinder swindler"} <= us_keys & world_keys


plain_titles = st.text(
    st.characters(codec="ascii", categories=["L", "N"], include_characters=" '-.,!?:"),
    min_size=1,
    max_size=40,
).filter(lambda t: any(ch.isalnum() for ch in t))


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@given(plain_titles)
def test_key_ignores_case_quotes_dashes_and_width(title: str) -> None:
    variants = [
        title.upper(),
        title.lower(),
        title.replace("'", "’"),
        title.replace("-", "–"),
        fullwidth(title),
        f"  {title}  ",
    ]
    assert {title_key(v) for v in variants} == {title_key(title)}


@pytest.mark.parametrize("text", ["20220206", "2022-W05-7", "2022-13-01", "6/2/2022", ""])
def test_dates_are_yyyy_mm_dd_only(text):
    with pytest.raises(InputError, match="is not a date"):
        parse_date(text)
