"""The FlixPatrol parser on SYNTHETIC pages (tests/data/flixpatrol, tests/flixpatrol_pages.py)."""

import json
import re
from datetime import date
from pathlib import Path

import pytest
from flixpatrol_pages import ERAS, points_for, render_page, title_slug

from bot.model import InputError
from bot.sources.flixpatrol import PageError, page_info, parse_page, parse_result_json, read_page

FIXTURES = Path(__file__).parent / "data" / "flixpatrol"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def titles(text: str) -> list[str]:
    return text.split(" | ")


# file -> (region, date, movies, tv): what each era's fixture must parse to.
ERA_FIXTURES = {
    "2021-2023_world.html": (
        "world",
        date(2022, 2, 6),
        "The Tinder Swindler | Home Team | Through My Window | Despicable Me 2 | My Father's Violin | "
        "13 Hours: The Secret Soldiers of Benghazi | Looop Lapeta | The Royal Treatment | Don't Look Up | "
        "Transformers: Revenge of the Fallen",
        "All of Us Are Dead | The Woman in the House Across the Street from the Girl in the Window | "
        "Raising Dion | Café con aroma de mujer | In From the Cold | Dark Desire | Ozark | Sweet Magnolias | "
        "I Am Georgina | Our Beloved Summer",
    ),
    "2021-2023_country.html": (
        "kr",
        date(2022, 2, 6),
        "13 Hours: The Secret Soldiers of Benghazi | Don't Look Up | Escape From Mogadishu | The Pirates | "
        "Miracle: Letters to the President | Crayon Shin-chan the Movie: My Moving Story Cactus Attack | "
        "Jo Pil-ho: The Dawning Rage | Sinkhole | Pokémon the Movie: Secrets of the Jungle | Red Notice",
        "All of Us Are Dead | Our Beloved Summer | Bulgasal: Immortal Souls | Itaewon Class | 18 Again | "
        "My Mister | Prison Playbook | Mr. Sunshine | I am Solo | Squid Game",
    ),
    "2023-2024_world.html": (
        "world",
        date(2024, 1, 1),
        "Rebel Moon – Part One: A Child of Fire | Leave the World Behind | Chicken Run: Dawn of the Nugget | "
        "Maestro | Family Switch | Curry & Cyanide: The Jolly Joseph Case | May December | The Archies | "
        "Best. Christmas. Ever! | Godzilla vs. Kong",
        "Berlin | Fool Me Once | Pokémon Concierge | Squid Game: The Challenge | Yu Yu Hakusho | "
        "Gyeongseong Creature | Sweet Home | Blood Coast | Alice in Borderland | Love Is Blind",
    ),
    "2023-2024_country.html": (
        "us",
        date(2023, 12, 31),
        "Leave the World Behind | Rebel Moon – Part One: A Child of Fire | Chicken Run: Dawn of the Nugget | "
        "Maestro | Family Switch | Jumanji: Welcome to the Jungle | May December | The Grinch | "
        "Pain Hustlers | Nyad",
        "Berlin | Squid Game: The Challenge | Suits | Young Sheldon | The Crown | Pokémon Concierge | "
        "Blue Eye Samurai | Gyeongseong Creature | Love Is Blind | Sweet Home",
    ),
    "2025-02_world.html": (
        "world",
        date(2025, 3, 20),
        "The Electric State | Plankton: The Movie | Counterattack | Delicious | Kinda Pregnant | "
        "Back in Action | Bad Boys: Ride or Die | Despicable Me 4 | Leo | Puss in Boots: The Last Wish",
        "Adolescence | The Residence | Zero Day | Running Point | Toxic Town | Love Is Blind | Wolf King | "
        "Medusa | The Night Agent | Squid Game",
    ),
    "2025-02_country.html": (
        "gb",
        date(2025, 3, 20),
        "The Electric State | Plankton: The Movie | Delicious | Counterattack | Bad Boys: Ride or Die | "
        "Despicable Me 4 | The Fall Guy | Kinda Pregnant | Back in Action | Back to Black",
        "Adolescence | Toxic Town | The Residence | Zero Day | Running Point | Love Is Blind | Medusa | "
        "Apple Cider Vinegar | Wolf King | Grey's Anatomy",
    ),
    "2025-11_world.html": (
        "world",
        date(2025, 11, 30),
        "Jingle Bell Heist | KPop Demon Hunters | Frankenstein | A Merry Little Ex-Mas | In Your Dreams | "
        "Being Eddie | The Wrong Paris | Happy Gilmore 2 | The Mitchells vs. the Machines | Wake Up Dead Man",
        "Stranger Things | The Beast in Me | Death by Lightning | Last Samurai Standing | The Witcher | "
        "Monster: The Ed Gein Story | Nobody Wants This | Selling Sunset | Physical: Asia | Squid Game",
    ),
    "2025-11_country.html": (
        "cz",
        date(2025, 11, 30),
        "Jingle Bell Heist | Vlny | KPop Demon Hunters | Frankenstein | Úsvit | A Merry Little Ex-Mas | "
        "Being Eddie | Happy Gilmore 2 | In Your Dreams | Amélie",
        "Stranger Things | The Beast in Me | Death by Lightning | Monster: The Ed Gein Story | The Witcher | "
        "Last Samurai Standing | Nobody Wants This | Squid Game | Physical: Asia | Případy 1. oddělení",
    ),
}

SIDEBAR = {"Wednesday", "Bridgerton", "Money Heist", "Extraction 2", "The Night Agent"}


def test_every_fixture_says_it_is_synthetic():
    files = sorted(FIXTURES.glob("*.html"))
    assert len(files) >= 16
    for path in files:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert first.startswith("<!-- SYNTHETIC"), path.name
        assert "notes/flixpatrol-pages.md" in first and "not a saved real" in first, path.name


@pytest.mark.parametrize("name", sorted(ERA_FIXTURES))
def test_era_fixture_parses(name):
    region, day, movies, tv = ERA_FIXTURES[name]
    charts = parse_page(load(name), service="netflix")
    assert [c.key.category for c in charts] == ["movies", "tv"]
    for chart, expected in zip(charts, (titles(movies), titles(tv)), strict=True):
        key = chart.key
        assert (key.source, key.service, key.region, key.period, key.date) == (
            "flixpatrol",
            "netflix",
            region,
            "day",
            day,
        )
        assert chart.complete
        assert [e.rank for e in chart.entries] == list(range(1, 11))
        assert [e.title for e in chart.entries] == expected
        if region == "world":
            assert [e.points for e in chart.entries] == [points_for(r) for r in range(1, 11)]
        else:
            assert [e.points for e in chart.entries] == [11 - r for r in range(1, 11)]
        assert not SIDEBAR & {e.title for e in chart.entries} - set(expected)


@pytest.mark.parametrize("name", sorted(ERA_FIXTURES))
def test_era_fixture_slugs(name):
    _region, _day, movies, tv = ERA_FIXTURES[name]
    page = read_page(load(name), service="netflix")
    for section, expected in zip(page.sections, (titles(movies), titles(tv)), strict=True):
        assert [r.slug for r in section.rows] == [title_slug(t) for t in expected]


def test_unicode_titles_and_keys():
    tv = parse_page(load("2021-2023_world.html"), service="netflix")[1]
    assert tv.entries[0].title == "All of Us Are Dead"
    assert tv.entries[0].title_key == "all of us are dead"
    assert tv.entries[3].title == "Café con aroma de mujer"
    assert tv.entries[3].title_key == "cafe con aroma de mujer"
    movies = parse_page(load("2021-2023_country.html"), service="netflix")[0]
    assert movies.entries[8].title == "Pokémon the Movie: Secrets of the Jungle"
    assert read_page(load("2021-2023_country.html"), service="netflix").sections[0].rows[8].slug == (
        "pokemon-the-movie-secrets-of-the-jungle"
    )


def test_poster_link_without_text_is_skipped():
    rows = read_page(load("2023-2024_world.html"), service="netflix").sections[1].rows
    assert (rows[0].rank, rows[0].title, rows[0].slug) == (1, "Berlin", "berlin")


def test_page_info():
    info = page_info(load("2023-2024_country.html"))
    assert (info.service, info.region, info.date) == ("netflix", "us", date(2023, 12, 31))
    assert info.url == "https://flixpatrol.com/top10/netflix/united-states/2023-12-31/"


def test_kids_lists_are_ignored():
    charts = parse_page(load("kids-sections.html"), service="netflix")
    assert [(c.key.region, c.key.category) for c in charts] == [("gb", "movies"), ("gb", "tv")]
    assert charts[0].entries[0].title == "Luther: The Fallen Sun"
    assert charts[1].entries[0].title == "The Night Agent"
    kids = {"Leo", "Cocomelon", "Bluey", "Pokémon"}
    assert not kids & {e.title for c in charts for e in c.entries}


def test_overall_only_page():
    (chart,) = parse_page(load("overall-only.html"), service="disney")
    key = chart.key
    assert (key.service, key.region, key.category, key.date) == ("disney", "de", "overall", date(2025, 5, 10))
    assert chart.entries[0].title == "Andor"
    assert chart.entries[-1].title == "Percy Jackson and the Olympians"


def test_streaming_page_takes_the_asked_service_only():
    netflix = parse_page(load("streaming_2024.html"), service="netflix")
    assert [c.key.category for c in netflix] == ["movies", "tv"]
    assert netflix[0].entries[0].title == "Leave the World Behind"
    assert netflix[1].entries[0].title == "Berlin"
    for service in ("hbo", "hbo-max"):
        hbo = parse_page(load("streaming_2024.html"), service=service)
        assert hbo[1].entries[0].title == "The Last of Us"
        assert hbo[1].key.service == service
    assert {c.key.date for c in netflix} == {date(2024, 1, 1)}


# --- bad pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("cloudflare-challenge.html", "cloudflare", "FLARESOLVERR_URL"),
        ("page-not-found.html", "not-found", "Page Not Found"),
        ("seven-rows.html", "row-count", "7 ranked rows"),
        ("repeated-rank.html", "repeated-rank", "rank 4 is repeated"),
        ("changed-layout.html", "layout", "chartbot parse FILE --source flixpatrol"),
    ],
)
def test_bad_pages_raise(name, reason, words):
    service = "hbo" if name == "page-not-found.html" else "netflix"
    with pytest.raises(PageError) as info:
        parse_page(load(name), service=service)
    assert info.value.reason == reason
    assert words in str(info.value)
    assert isinstance(info.value, InputError)


def test_missing_table_is_not_borrowed_from_the_next_section():
    page = load("kids-sections.html").decode()
    # drop the Movies table: the next table after "TOP 10 Movies" now belongs to the Kids Movies list
    start = page.index("<table", page.index(">TOP 10 Movies<"))
    page = page[:start] + page[page.index("</table>", start) + len("</table>") :]
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix")
    assert info.value.reason == "missing-section"
    assert "TOP 10 Movies" in str(info.value)


def test_missing_table_on_world_page_stops_at_the_next_heading():
    page = load("2025-11_world.html").decode()
    start = page.index("<table", page.index("<span>TOP TV Shows</span>"))
    page = page[:start] + page[page.index("</table>", start) + len("</table>") :]
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix")
    assert info.value.reason == "missing-section"


def test_row_without_title_link_is_an_error():
    page = (
        load("2025-02_country.html").decode().replace('href="/title/delicious/"', 'href="/film/delicious/"')
    )
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix")
    assert info.value.reason == "bad-row"


def test_eleven_rows_is_an_error():
    page = render_page(
        "2023-2024",
        region="us",
        date=date(2024, 1, 2),
        movies=[f"M{n}" for n in range(11)],
        tv=[],
        points=False,
    )
    with pytest.raises(PageError, match="11 ranked rows") as info:
        parse_page(page, service="netflix")
    assert info.value.reason == "row-count"


# --- date and region ----------------------------------------------------------------------------


def test_date_and_region_arguments_must_agree_with_the_page():
    page = load("2023-2024_country.html")
    assert parse_page(page, service="netflix", region="US", date=date(2023, 12, 31))[0].key.region == "us"
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix", date=date(2024, 1, 1))
    assert info.value.reason == "mismatch"
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix", region="gb")
    assert info.value.reason == "mismatch"
    with pytest.raises(PageError) as info:
        parse_page(page, service="hbo")
    assert info.value.reason == "mismatch"


def test_without_canonical_url_the_date_comes_from_the_title_and_the_region_from_the_caller():
    page = render_page(
        "2025-02", region="kr", date=date(2025, 2, 14), movies=list("ABCDEFGHIJ"), tv=[], points=False,
        canonical=False,
    )  # fmt: skip
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix")
    assert info.value.reason == "no-region"
    (chart,) = parse_page(page, service="netflix", region="kr")
    assert (chart.key.region, chart.key.date) == ("kr", date(2025, 2, 14))


def test_date_from_a_dated_section_heading():
    page = render_page(
        "streaming", region="us", date=date(2024, 1, 1), movies=list("ABCDEFGHIJ"), tv=[], points=False,
        canonical=False,
    )  # fmt: skip
    page = re.sub(r"<title>.*?</title>", "<title>FlixPatrol</title>", page)
    page = re.sub(r"<h1[^>]*>.*?</h1>", "", page)
    assert page_info(page).date is None
    charts = parse_page(page, service="netflix", region="us")
    assert charts[0].key.date == date(2024, 1, 1)


def test_no_date_anywhere_is_an_error():
    page = render_page(
        "2025-02", region="kr", date=date(2025, 2, 14), movies=list("ABCDEFGHIJ"), tv=[], points=False,
        canonical=False,
    )  # fmt: skip
    page = re.sub(r"<title>.*?</title>", "<title>FlixPatrol</title>", page)
    page = re.sub(r"<h1[^>]*>.*?</h1>", "", page).replace("February 14, 2025", "")
    with pytest.raises(PageError) as info:
        parse_page(page, service="netflix", region="kr")
    assert info.value.reason == "no-date"
    assert parse_page(page, service="netflix", region="kr", date=date(2025, 2, 14))[0].key.date == date(
        2025, 2, 14
    )


def test_weekly_page_is_refused():
    page = load("2021-2023_world.html").decode()
    page = page.replace("/top10/netflix/world/2022-02-06/", "/top10/netflix/world/2022-005/full/")
    with pytest.raises(PageError, match="not a daily"):
        parse_page(page, service="netflix")


# --- robustness ---------------------------------------------------------------------------------


def test_world_page_found_by_section_ids_when_heading_text_changes():
    page = load("2021-2023_world.html").decode()
    page = page.replace(">TOP 10 Movies</h2>", ">Movies</h2>").replace(">TOP 10 TV Shows</h2>", ">Shows</h2>")
    charts = parse_page(page, service="netflix")
    assert [c.key.category for c in charts] == ["movies", "tv"]
    assert charts[1].entries[0].title == "All of Us Are Dead"


def test_str_and_non_utf8_bytes():
    text = load("2021-2023_country.html").decode()
    assert parse_page(text, service="netflix")[0].entries[8].title.startswith("Pokémon")
    latin = text.replace('<meta charset="utf-8">', '<meta charset="windows-1252">').replace(
        "Případy 1. oddělení", "Squid Game 2"
    )
    charts = parse_page(latin.encode("cp1252"), service="netflix")
    assert charts[0].entries[8].title == "Pokémon the Movie: Secrets of the Jungle"


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("region", ["world", "us", "kr", "re"])
def test_generated_pages_round_trip(era, region):
    day = date(2024, 6, 30)
    movies = [f"Movie {n} Pokémon" for n in range(1, 11)]
    tv = [f"Show {n}: Season {n}" for n in range(1, 11)]
    charts = parse_page(
        render_page(era, region=region, date=day, movies=movies, tv=tv, points=True), service="netflix"
    )
    assert [(c.key.region, c.key.category, c.key.date) for c in charts] == [
        (region, "movies", day),
        (region, "tv", day),
    ]
    assert [e.title for e in charts[0].entries] == movies
    assert [(e.title, e.season) for e in charts[1].entries] == [
        (f"Show {n}", f"Season {n}") for n in range(1, 11)
    ]
    expected = [float(points_for(r)) if region == "world" else float(11 - r) for r in range(1, 11)]
    assert [e.points for e in charts[0].entries] == expected


def test_parse_result_json():
    charts = parse_page(load("2021-2023_world.html"), service="netflix")
    doc = json.loads(json.dumps(parse_result_json(charts)))
    assert [c["category"] for c in doc["charts"]] == ["movies", "tv"]
    tv = doc["charts"][1]
    assert {k: tv[k] for k in ("service", "region", "period", "date")} == {
        "service": "netflix",
        "region": "world",
        "period": "day",
        "date": "2022-02-06",
    }
    assert tv["entries"][0] == {
        "rank": 1,
        "title": "All of Us Are Dead",
        "title_key": "all of us are dead",
        "points": points_for(1),
    }
    assert len(tv["entries"]) == 10


def test_cloudflare_title_alone_is_a_challenge_but_its_injected_script_is_not():
    with pytest.raises(PageError) as info:
        parse_page(
            "<html><head><title>Just a moment...</title></head><body></body></html>", service="netflix"
        )
    assert info.value.reason == "cloudflare"
    page = load("2025-02_world.html").decode()
    assert "/cdn-cgi/challenge-platform/scripts/jsd/main.js" in page
    assert len(parse_page(page, service="netflix")) == 2
