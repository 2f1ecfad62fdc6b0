"""The announcer's rules without Discord or SQL: who wants what, grouping, parsing, errors, backoff
(pacing: tests/test_pacing.py)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.announcer import policy as delivery
from bot.announcer.pacing import backoff, classify
from bot.announcer.policy import (
    ALL,
    DEFAULT_EVENTS,
    Pending,
    Policy,
    Watch,
    group_key,
    is_headline,
    parse_events,
    parse_regions,
    route,
    streak_wanted,
    wants,
)
from bot.milestones import KINDS
from bot.model import ChartKey, InputError, Milestone, milestone_key

AOUAD = "all of us are dead"
SQUID = "squid game"
WEEK = date(2022, 2, 6)
START = 100  # the newest milestone id when the watches started
READ = 7  # the newest read begun when the watches started
_ids = iter(range(START + 1000, 100_000))  # ids of milestones stored after the watches started


def ms(
    kind: str, region: str = "world", title: str = AOUAD, value: int | None = 1, **chart: object
) -> Milestone:
    key = ChartKey(
        "netflix",
        "netflix",
        region,
        str(chart.get("category", "tv")),
        str(chart.get("period", "week")),
        chart.get("day", WEEK),  # type: ignore[arg-type]
    )
    return Milestone(kind, key, title, title.title(), value, None, milestone_key(kind, key, title))


def watch(target: str = AOUAD, guild: int = 1, channel: int = 10, **extra: object) -> Watch:
    return Watch(
        id=hash((target, guild, channel)) % 1000,
        guild_id=guild,
        target=target,
        title=target,
        channel_id=channel,
        since_id=int(extra.get("since_id", START)),  # type: ignore[call-overload]
        since_read=READ,
    )


def news(m: Milestone) -> Pending:
    """A milestone stored after the watches started, by a read begun after them."""
    return Pending(m, outbox_id=next(_ids), read_id=READ + 1)


def test_streak_posts_thin_out_for_days_and_not_for_weeks() -> None:
    days = [n for n in range(1, 64) if streak_wanted(n, "day")]
    assert days == [2, 3, 5, 7, 10, 14, 21, 28, 35, 42, 49, 56, 63]
    assert [n for n in range(1, 9) if streak_wanted(n, "week")] == [2, 3, 4, 5, 6, 7, 8]


def test_default_policy_is_not_noisy() -> None:
    policy = Policy(1)
    assert policy.regions == frozenset({"world", "us", "gb", "kr"})
    assert {"new_peak", "top10_run", "left_top10"}.isdisjoint(policy.events)
    w = watch()
    assert wants(policy, w, ms("reached_no1", "us"))
    assert wants(policy, w, ms("reached_no1", "world", category="tv-non-english"))
    assert not wants(policy, w, ms("reached_no1", "fr"))  # not one of the server's countries
    assert not wants(policy, w, ms("new_peak", "us", value=2))  # not one of its kinds
    assert not wants(policy, w, ms("reached_no1", "us", title=SQUID))  # not its title
    assert not wants(policy, w, ms("no1_streak", "us", value=4, period="day"))  # day 4: no post
    assert wants(policy, w, ms("no1_streak", "us", value=5, period="day"))
    assert wants(Policy(1, regions=None), w, ms("reached_no1", "fr"))  # `all` regions


def test_watch_all_follows_headlines_of_every_title() -> None:
    policy, everything = Policy(1), watch(ALL)
    assert is_headline(ms("reached_no1", "world", title=SQUID, category="tv-english"))
    assert is_headline(ms("no1_countries", "world", title=SQUID, value=29))
    assert not is_headline(ms("no1_countries", "world", title=SQUID, value=6))  # not "many" countries
    assert not is_headline(ms("reached_no1", "us", title=SQUID))  # a country's own No. 1
    assert not is_headline(ms("record", "ar", title=SQUID, value=4))  # a country's run record
    assert not is_headline(ms("entered_top10", "world", title=SQUID))
    assert wants(policy, everything, ms("record", "world", title=SQUID, value=70))
    assert not wants(Policy(1, events=frozenset({"record"})), everything, ms("reached_no1", title=SQUID))


def test_route_posts_once_per_channel_and_only_news() -> None:
    fresh = news(ms("reached_no1", "us"))
    old = Pending(ms("reached_no1", "gb"), outbox_id=START - 5, read_id=READ + 1)
    at_the_mark = Pending(ms("reached_no1", "kr"), outbox_id=START, read_id=READ + 1)  # stored when made
    later = Pending(ms("reached_no1", "world"), outbox_id=START + 50, read_id=READ + 1)
    watches = [
        watch(AOUAD, channel=10, since_id=START + 50),  # a watch made after `later` was stored
        watch(ALL, channel=10, since_id=START + 50),  # one post per channel
        watch(AOUAD, guild=2, channel=20),
    ]
    routes = route([fresh, old, at_the_mark, later], watches, {1: Policy(1), 2: Policy(2)})
    region = {p.outbox_id: p.milestone.chart.region for p in (fresh, old, at_the_mark, later)}
    assert sorted((r.channel_id, region[r.milestone_id]) for r in routes) == [
        (10, "us"),  # once in channel 10, though two of its watches want it
        (20, "us"),
        (20, "world"),  # guild 2's watch is older than that milestone; guild 1's is not
    ]
    caught_up = Pending(ms("reached_no1", "jp"), outbox_id=START + 60, read_id=READ)  # read already under way
    assert route([caught_up], watches, {1: Policy(1, regions=None), 2: Policy(2, regions=None)}) == []
    newer = news(ms("reached_no1", "fr"))
    routes = route([newer], watches, {1: Policy(1, regions=None), 2: Policy(2)})
    assert [r.channel_id for r in routes] == [10]  # guild 1 follows every region
    assert {r.group_key for r in routes} == {f"title|{AOUAD}|netflix|week|2022-02-06"}
    both = news(ms("reached_no1", "world", category="tv-non-english"))  # title and headline
    routes = route([both], watches, {1: Policy(1), 2: Policy(2)})
    assert sorted(r.channel_id for r in routes) == [10, 20]


def test_route_skips_broken_channels_and_watches_without_a_channel() -> None:
    pending = [news(ms("reached_no1", "us"))]
    no_channel = watch(channel=0)
    assert route(pending, [no_channel], {1: Policy(1)}) == []
    (r,) = route(pending, [no_channel], {1: Policy(1, channel_id=99)})
    assert r.channel_id == 99
    assert route(pending, [watch()], {}, broken={(1, 10)}) == []


def test_digest_groups_a_whole_period_and_carries_the_role() -> None:
    pending = [news(ms("reached_no1", "us")), news(ms("reached_no1", "us", title=SQUID))]
    policy = Policy(1, digest="period", mention_role_id=555)
    routes = route(pending, [watch(AOUAD), watch(SQUID)], {1: policy})
    assert {r.group_key for r in routes} == {"digest|netflix|week|2022-02-06"}
    assert all(r.digest and r.mention_role_id == 555 for r in routes)
    assert group_key(ms("reached_no1"), False) != group_key(ms("reached_no1", day=date(2022, 1, 30)), False)


def test_parse_regions() -> None:
    assert parse_regions("world, us, South Korea") == {"world", "us", "kr"}
    assert parse_regions("🇫🇷, United Kingdom; GB") == {"fr", "gb"}
    assert parse_regions("all") is None
    assert parse_regions("default") == frozenset(delivery.DEFAULT_REGIONS)
    with pytest.raises(InputError, match="unknown region 'Atlantis'"):
        parse_regions("us, Atlantis")
    with pytest.raises(InputError):
        parse_regions(" , ")


def test_parse_events() -> None:
    assert parse_events("reached_no1, no1_streak, record") == {"reached_no1", "no1_streak", "record"}
    assert parse_events("no1 streak records") == {"reached_no1", "no1_streak", "record"}
    assert parse_events("all") == frozenset(KINDS)
    assert parse_events("default") == DEFAULT_EVENTS
    assert parse_events("+peak -entered_top10") == (DEFAULT_EVENTS | {"new_peak"}) - {"entered_top10"}
    with pytest.raises(InputError, match="Unknown kind 'fireworks'"):
        parse_events("fireworks")
    with pytest.raises(InputError, match="nothing"):
        parse_events("-reached_no1", frozenset({"reached_no1"}))


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (403, 50013, "broken"),
        (403, 50001, "broken"),
        (404, 10003, "broken"),
        (404, 10008, "failed"),  # Unknown Message: about one message, not the channel
        (429, 0, "retry"),
        (500, 0, "retry"),
        (503, 0, "retry"),
        (400, 50035, "failed"),
    ],
)
def test_classify(status: int, code: int, verdict: str) -> None:
    assert classify(status, code) == verdict


def test_backoff_doubles_up_to_a_cap_with_jitter() -> None:
    top = [backoff(n, base=1, cap=60, rng=lambda: 1.0) for n in range(1, 9)]
    assert top == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(3, base=1, cap=60, rng=lambda: 0.0) == 2  # jitter: between half and all of it
