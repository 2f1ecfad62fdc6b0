"""bot.render: milestone sentences, embeds within Discord's limits, the rank-history picture."""

from __future__ import annotations

import struct
import warnings
from datetime import date, timedelta

import discord
import pytest
from engines import both_engines

from bot.milestones import KINDS
from bot.model import ChartKey, Milestone, milestone_key, title_key
from bot.render import (
    EMBED_TOTAL,
    chart_embed,
    clean_user_text,
    fit_embed,
    milestone_lines,
    milestone_text,
    milestones_embed,
    movement,
    picture_text,
    rank_history_png,
    safe,
    standing_embed,
)
from bot.store import Store
from bot.views import CountryCount, Standing, TitleReport

AOUAD = "All of Us Are Dead"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WEEK = date(2022, 2, 6)


def milestone(
    kind: str,
    value: int | None,
    previous: int | None = None,
    *,
    region: str = "us",
    category: str = "tv",
    period: str = "week",
    service: str = "netflix",
    title: str = AOUAD,
    **context: object,
) -> Milestone:
    chart = ChartKey("netflix", service, region, category, period, WEEK)
    return Milestone(
        kind, chart, title_key(title), title, value, previous, milestone_key(kind, chart, title), context
    )


# --- milestone sentences --------------------------------------------------------------------------

EXACT = [
    (
        milestone("no1_countries", 63, 29, region="world", reporting=94),
        "All of Us Are Dead is No. 1 in 63 countries this week (of 94 reporting) — up from 29",
    ),
    (
        milestone("lost_no1", 2, 1, period="day", run=1, new_no1="Sweet Magnolias"),
        "All of Us Are Dead slipped to No. 2 on the 🇺🇸 U.S. daily Top 10 after 1 day at No. 1; "
        "Sweet Magnolias is the new No. 1",
    ),
    (
        milestone("reached_no1", 1, 3, region="kr", first_time=True),
        "All of Us Are Dead is No. 1 in 🇰🇷 South Korea this week for the first time",
    ),
    (
        milestone("reached_no1", 1, 2, region="kr", first_time=False),
        "All of Us Are Dead is back at No. 1 in 🇰🇷 South Korea this week",
    ),
    (
        milestone("no1_streak", 8, 7, region="world", period="day"),
        "All of Us Are Dead has been No. 1 on the global daily Top 10 for 8 consecutive days",
    ),
    (
        milestone("no1_streak", 4, 3, region="world", category="tv-non-english"),
        "All of Us Are Dead has been No. 1 on Netflix's global TV (Non-English) list for 4 consecutive weeks",
    ),
    (
        milestone("top10_run", 100, period="day"),
        "All of Us Are Dead has spent 100 days in the 🇺🇸 U.S. daily Top 10",
    ),
    (
        milestone("entered_top10", 3, None, region="nl", reentry=False),
        "All of Us Are Dead enters the 🇳🇱 Netherlands weekly Top 10 at No. 3",
    ),
    (
        milestone("entered_top10", 6, 9, reentry=True),
        "All of Us Are Dead re-enters the 🇺🇸 U.S. weekly Top 10 at No. 6 (last seen at No. 9)",
    ),
    (
        milestone("new_peak", 2, 5, region="gb"),
        "All of Us Are Dead climbs to a new peak of No. 2 in the 🇬🇧 U.K. this week (previous best No. 5)",
    ),
    (
        milestone("left_top10", None, 8, periods=4),
        "All of Us Are Dead left the 🇺🇸 U.S. weekly Top 10 (No. 8 last week; 4 weeks on the chart)",
    ),
    (
        milestone("lost_no1", None, 1, region="kr", run=3, new_no1="Juvenile Justice"),
        "All of Us Are Dead dropped out of the 🇰🇷 South Korea weekly Top 10 after 3 weeks at No. 1; "
        "Juvenile Justice is the new No. 1",
    ),
    (
        milestone("top10_countries", 91, None, region="world", reporting=94, everywhere=False),
        "All of Us Are Dead is in the Top 10 in 91 countries this week (of 94 reporting)",
    ),
    (
        milestone("top10_countries", 94, 91, region="world", reporting=94, everywhere=True),
        "All of Us Are Dead is in the Top 10 in every reporting country (94 of 94) this week",
    ),
    (
        milestone("record", 5, 4, record="no1_run", holder="Squid Game"),
        "All of Us Are Dead sets the record for the longest No. 1 run in the 🇺🇸 U.S. weekly Top 10: "
        "5 weeks in a row, beating Squid Game's 4",
    ),
    (
        milestone(
            "record", 94, 93, region="world", record="no1_countries", holder="Squid Game", reporting=94
        ),
        "All of Us Are Dead sets a record: No. 1 in 94 countries in a single week, beating Squid Game's 93",
    ),
    (
        milestone(
            "record_near", 1, 15, period="day", category="overall", record="no1_run", holder="Squid Game"
        ),
        "All of Us Are Dead is 1 day from tying Squid Game's 15-day No. 1 run in the 🇺🇸 U.S. daily Top 10",
    ),
    (
        milestone(
            "all_time_no1",
            1,
            2,
            region="world",
            category="movies-english",
            period="all-time",
            title="KPop Demon Hunters",
            season=None,
            measure="views",
            figure=236_000_000,
            window_days=91,
            passed="Red Notice",
            passed_season=None,
            passed_figure=230_900_000,
        ),
        "KPop Demon Hunters is now Netflix's most-watched English film ever: 236.0M views in its first "
        "91 days, passing Red Notice (230.9M)",
    ),
    (
        milestone(
            "entered_all_time",
            5,
            None,
            region="world",
            category="tv-non-english",
            period="all-time",
            season="Season 1",
            measure="hours",
            figure=361_040_000,
            window_days=28,
        ),
        "All of Us Are Dead: Season 1 joins Netflix's all-time most popular non-English series at No. 5 "
        "(361.0M hours in its first 28 days)",
    ),
]


@pytest.mark.parametrize(("m", "text"), EXACT, ids=[f"{m.kind}-{i}" for i, (m, _) in enumerate(EXACT)])
def test_milestone_text(m: Milestone, text: str) -> None:
    assert milestone_text(m) == text


def test_every_kind_has_a_sentence() -> None:
    covered = {m.kind for m, _ in EXACT}
    assert covered == set(KINDS)
    for kind in KINDS:
        m = milestone(kind, 2, 1, run=2, new_no1="X", reporting=94, record="no1_run", holder="Y")
        text = milestone_text(m)
        assert text.startswith(AOUAD) and "None" not in text and not text.startswith(f"{AOUAD}: ")


def test_milestone_text_variants() -> None:
    disney = milestone("no1_streak", 3, 2, service="disney", period="day")
    assert (
        milestone_text(disney)
        == "All of Us Are Dead has been No. 1 on the 🇺🇸 U.S. daily Top 10 on Disney+ for 3 consecutive days"
    )
    own = milestone("record", 6, 5, record="no1_run", holder=AOUAD)
    assert milestone_text(own).endswith("beating its own 5")
    today = milestone("no1_countries", 1, None, region="world", period="day", reporting=60)
    assert milestone_text(today) == "All of Us Are Dead is No. 1 in 1 country today (of 60 reporting)"
    world_film = milestone("reached_no1", 1, 2, region="world", category="movies-english", first_time=True)
    assert "Netflix's global film (English) list" in milestone_text(world_film)
    unknown = milestone("brand_new_kind", 7)
    assert milestone_text(unknown).startswith(AOUAD)


def test_milestone_text_escapes_titles_for_discord() -> None:
    m = milestone("reached_no1", 1, 2, title="M*A*S*H @everyone", first_time=True)
    assert milestone_text(m).startswith("M*A*S*H @everyone")
    escaped = milestone_text(m, escape=True)
    assert escaped.startswith("M\\*A\\*S\\*H @\u200beveryone")


# --- small helpers --------------------------------------------------------------------------------


def test_safe_and_clean() -> None:
    assert clean_user_text(" All\u200b of\u200d Us\ufeff Are  Dead\n") == "All of Us Are Dead"
    assert safe("**bold** @here <@123456789012345678>") == (
        "\\*\\*bold\\*\\* @\u200bhere <@\u200b123456789012345678>"
    )
    assert len(safe("x" * 5000, 100)) == 100
    assert not safe("a\\" * 60, 101).endswith("\\…")


def test_movement() -> None:
    assert movement(3, 5, 2) == "▲2"
    assert movement(5, 3, 2) == "▼2"
    assert movement(1, 1, 4) == "="
    assert movement(4, None, 1) == "NEW"
    assert movement(4, None, 3) == "RE"


# --- embeds ---------------------------------------------------------------------------------------


def embed_size(embed: discord.Embed) -> int:
    data = embed.to_dict()
    size = len(data.get("title", "")) + len(data.get("description", ""))
    size += len(data.get("footer", {}).get("text", "")) + len(data.get("author", {}).get("name", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in data.get("fields", []))


def assert_within_limits(embed: discord.Embed) -> None:
    data = embed.to_dict()
    assert len(data.get("title", "")) <= 256
    assert len(data.get("description", "")) <= 4096
    assert len(data.get("fields", [])) <= 25
    for f in data.get("fields", []):
        assert 1 <= len(f["name"]) <= 256 and 1 <= len(f["value"]) <= 1024
    assert embed_size(embed) <= EMBED_TOTAL


@both_engines
async def test_standing_embed_on_real_data(chart_store: Store) -> None:
    report = await chart_store.charts.title_report(title_key(AOUAD), WEEK)
    assert report is not None
    embed = standing_embed(report, on=WEEK)
    assert_within_limits(embed)
    assert embed.title == "All of Us Are Dead: Season 1"
    assert embed.description is not None
    assert "**No. 1** on Netflix's global TV (Non-English) list · 2nd week at No. 1" in embed.description
    assert "No. 1 in 63 of 94 countries" in embed.description
    first = embed.fields[0]
    assert first.name == "🌍 Global · TV (Non-English)"
    assert first.value is not None and "236.2M hours" in first.value and "**No. 1** =" in first.value
    assert embed.fields[1].name == "🇺🇸 United States · TV"  # a major market first among the No. 1s
    assert embed.fields[-1].name == "Also in the Top 10 in 86 more charts"
    assert embed.footer.text == "Netflix Top 10 · week ending Feb 6, 2022"


@both_engines
async def test_standing_embed_latest_and_off_the_charts(chart_store: Store) -> None:
    latest = await chart_store.charts.title_report(title_key(AOUAD))
    assert latest is not None
    description = standing_embed(latest).description or ""
    assert "5th week at No. 1" in description and "No. 1 in 1 of 94 countries" in description
    gone = await chart_store.charts.title_report(title_key("Lucifer"))
    assert gone is not None and not gone.standings
    text = standing_embed(gone).description or ""
    assert text.startswith("Not in any Top 10 right now. Last seen at No.")


def hostile_report(title: str, charts: int = 40) -> TitleReport:
    day = date(2022, 2, 6)
    regions = ["world", "us", "kr", "gb", "fr", "de", "jp", "br", "mx", "in", "es", "it", "ca", "au"]
    standings = [
        Standing(
            "netflix",
            regions[i % len(regions)],
            "tv",
            "week",
            day,
            rank=1 + i % 10,
            season="S" * 300,
            previous_rank=None,
            peak=1,
            peak_date=day,
            periods_in_top10=3,
            no1_streak=0,
            periods_at_no1=0,
            longest_no1_run=0,
            points=None,
            hours=10**9,
            views=None,
        )
        for i in range(charts)
    ]
    countries = [CountryCount("netflix", "tv", "week", day, 63, 94, 94)]
    return TitleReport(title, title_key(title), standings, countries, None)


def test_standing_embed_with_a_huge_hostile_title() -> None:
    title = ("@everyone **Big** `Title` \u200b" * 80)[:2000]
    embed = standing_embed(hostile_report(title))
    assert_within_limits(embed)
    assert embed.title is not None and embed.title.endswith("…") and "\u200b\u200b" not in embed.title
    assert "@everyone" not in (embed.title or "") and "\\*\\*Big\\*\\*" in (embed.title or "")


def test_fit_embed_trims_fields_and_total() -> None:
    embed = discord.Embed(title="t" * 300, description="d" * 5000)
    for i in range(30):
        embed.add_field(name=f"n{i}" * 200, value="v" * 2000)
    embed.set_footer(text="f" * 3000)
    assert_within_limits(fit_embed(embed))


@both_engines
async def test_chart_embed_on_real_data(chart_store: Store) -> None:
    (us_tv,) = await chart_store.charts.find_series(region="us", category="tv")
    view = await chart_store.charts.chart_view(us_tv)
    assert view is not None
    embed = chart_embed(view)
    assert_within_limits(embed)
    assert embed.title == "🇺🇸 U.S. Top 10 · TV"
    lines = (embed.description or "").splitlines()
    assert lines[0] == "` 1.` = **Inventing Anna** · Limited Series"
    assert lines[7] == "` 8.` ▼3 **All of Us Are Dead** · Season 1"
    assert lines[2].startswith("` 3.` NEW **Vikings: Valhalla**")
    assert embed.footer.text == "week ending Feb 27, 2022"
    first = await chart_store.charts.chart_view(us_tv, date(2021, 8, 29))
    assert first is not None and not first.has_previous
    assert "▲" not in (chart_embed(first).description or "")
    (world,) = await chart_store.charts.find_series(region="world", category="tv-non-english")
    global_view = await chart_store.charts.chart_view(world)
    assert global_view is not None
    global_embed = chart_embed(global_view)
    assert global_embed.title == "🌍 Netflix global Top 10 · TV (Non-English)"
    assert "38.9M hours" in (global_embed.description or "")


@both_engines
async def test_milestones_embed_folds_countries(chart_store: Store) -> None:
    items = await chart_store.charts.milestones(title_key=title_key(AOUAD), newest_first=True, limit=300)
    embed = milestones_embed(items, title="Milestones · All of Us Are Dead")
    assert_within_limits(embed)
    lines = (embed.description or "").splitlines()
    assert lines[0] == (
        "`Feb 27` All of Us Are Dead has been No. 1 on Netflix's global TV (Non-English) list "
        "for 5 consecutive weeks"
    )
    assert "`Feb 27` All of Us Are Dead lost No. 1 in 8 countries 🇧🇩 🇮🇳 🇰🇷 🇲🇾 🇵🇪 🇵🇭 🇹🇭 🇻🇳" in lines
    assert milestones_embed([]).description == "No milestones yet."


def test_milestone_lines_long_list_fits() -> None:
    many = [milestone("reached_no1", 1, 2, region="us", title=f"Title {i} " + "x" * 150) for i in range(200)]
    embed = milestones_embed(many)
    assert_within_limits(embed)
    assert (embed.description or "").splitlines()[-1].startswith("…and ")
    assert len(milestone_lines(many)) == 200


# --- the picture ----------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_rank_history_png_is_small_and_deterministic() -> None:
    start = date(2022, 1, 2)
    daily = [(start + timedelta(days=i), 1 + (i * 3) % 10) for i in range(120) if i % 17]  # gaps
    weekly = [(start + timedelta(weeks=i), max(1, 6 - i)) for i in range(8)]
    points = [("United States TV daily", daily), ("Global TV (Non-English)", weekly)]
    png = rank_history_png(points, title="전지적 독자 시점 — All of Us Are Dead")
    assert png_size(png) == (800, 400)
    assert png == rank_history_png(points, title="전지적 독자 시점 — All of Us Are Dead")
    assert len(png) < 200_000


def test_rank_history_png_without_history_or_drawable_text() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph missing", no mathtext error
        assert png_size(rank_history_png([], title="Nothing")) == (800, 400)
        assert png_size(rank_history_png([("empty", [])], title="한국어 제목 $x^$ {")) == (800, 400)
    assert picture_text("Money $ Heist 🇰🇷 ภาษาไทย\u200b", 70) == "Money \\$ Heist"  # no emoji, no Thai font


@both_engines
async def test_rank_history_from_the_store(chart_store: Store) -> None:
    histories = await chart_store.charts.rank_history(title_key(AOUAD), prefer=("us", "kr"))
    assert [h.series for h in histories][:3] == [
        ("netflix", "world", "tv-non-english", "week"),
        ("netflix", "us", "tv", "week"),
        ("netflix", "kr", "tv", "week"),
    ]
    assert len(histories) == 5
    assert histories[0].points == [(date(2022, 1, 30) + timedelta(weeks=i), 1) for i in range(5)]
    (us,) = await chart_store.charts.rank_history(title_key(AOUAD), region="us")
    assert [r for _, r in us.points] == [4, 1, 3, 5, 8]
    until = await chart_store.charts.rank_history(title_key(AOUAD), region="us", until=WEEK)
    assert [r for _, r in until[0].points] == [4, 1]
    assert await chart_store.charts.rank_history("no such title") == []
    assert await chart_store.charts.rank_history(title_key(AOUAD), region="aq") == []
