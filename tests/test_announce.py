"""Milestone posts end to end: a real week replayed through the store, the announcer and the real
discord.py client into the fake Discord. Exactly the expected posts, in the right channels, once each —
also across a crash between the POST and its record, a forbidden channel, errors and slow channels."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import AsyncIterator
from datetime import date

import pytest
from announce_worker import FAST, make_bot, run_worker
from engines import both_engines
from fake_discord import MANAGE_GUILD, FakeChannel, FakeMember, FakeRole, SentMessage
from fake_discord_ext import DeliveryFake

from bot.announcer import posts as announcements
from bot.announcer.jobs import Item
from bot.client import ChartBot
from bot.ingest import Ingester, IngestReport
from bot.model import ChartKey, Milestone, Snapshot, make_snapshot, milestone_key
from bot.store import Store, open_store

GUILD, OTHER = 830_000_000_000_000_001, 830_000_000_000_000_002
CHARTS, NEWS, SPARE, THIRD = (830_000_000_000_000_010 + i for i in range(4))
OTHER_CHANNEL = 830_000_000_000_000_020
MODS, OTHER_MODS, OTHER_FANS = 830_000_000_000_000_100, 830_000_000_000_000_101, 830_000_000_000_000_102
ALICE, CAROL = 830_000_000_000_001_000, 830_000_000_000_003_000
AOUAD = "all of us are dead"
JAN30, FEB6 = date(2022, 1, 30), date(2022, 2, 6)

AOUAD_JAN30 = [
    "All of Us Are Dead is No. 1 in 29 countries this week (of 94 reporting)",
    "All of Us Are Dead is No. 1 on Netflix's global TV (Non-English) list for the first time",
    "All of Us Are Dead is No. 1 in 🇰🇷 South Korea this week for the first time",
    "All of Us Are Dead is in the Top 10 in 91 countries this week (of 94 reporting)",
    "All of Us Are Dead enters Netflix's global TV (Non-English) Top 10 at No. 1",
    "All of Us Are Dead entered the Top 10 in 3 countries 🇬🇧 🇰🇷 🇺🇸",
]
AOUAD_FEB6 = [
    "All of Us Are Dead is No. 1 in 63 countries this week (of 94 reporting) — up from 29",
    "All of Us Are Dead is No. 1 in the 🇬🇧 U.K. this week for the first time",
    "All of Us Are Dead is No. 1 in the 🇺🇸 U.S. this week for the first time",
    "All of Us Are Dead has been No. 1 on Netflix's global TV (Non-English) list for 2 consecutive weeks",
    "All of Us Are Dead has been No. 1 in 🇰🇷 South Korea for 2 consecutive weeks",
    "All of Us Are Dead is in the Top 10 in every reporting country (94 of 94) this week",
]
# `/watch all`: No. 1 on a global list, or No. 1 in 10+ countries, for every title
HEADLINES = {
    JAN30: {
        "All of Us Are Dead",
        "Munich – The Edge of War",
        "My Father's Violin",
        "Ozark",
        "Perfect Strangers",
        "The Royal Treatment",
    },
    FEB6: {
        "All of Us Are Dead",
        "The Tinder Swindler",
        "The Woman in the House Across the Street from the Girl in the Window",
        "Through My Window",
    },
}


# --- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture
def db(from_template, netflix_snapshots: list[Snapshot]) -> str:
    """The weeks before Jan 30, 2022 as history (no news), built once per engine; this test's copy."""

    async def build(store: Store) -> None:
        await Ingester(store).ingest([s for s in netflix_snapshots if s.key.date < JAN30], news=False)

    return from_template("announce-history", build)


def week(snapshots: list[Snapshot], day: date) -> list[Snapshot]:
    return [s for s in snapshots if s.key.date == day]


async def ingest(db: str, snapshots: list[Snapshot], bot: ChartBot | None = None) -> IngestReport:
    """Ingest as the poller does (its own connection), then tell the bot, as the poller hook will."""
    async with await open_store(db) as store:
        report = await Ingester(store).ingest(snapshots)
    if bot is not None:
        bot.dispatch("milestones", report.milestones)
    return report


async def settle(bot: ChartBot, within: float = 10.0) -> None:
    """Wait until the announcer has nothing left to do (nothing pending, nothing in flight)."""
    store = await bot.get_store()
    announcer = bot.announcer
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rounds = announcer.rounds
        await asyncio.sleep(0.05)
        if announcer.rounds > rounds and not announcer.busy and await store.deliveries.open_work() == 0:
            return
    raise AssertionError("the announcer did not settle")


def lines(post: SentMessage) -> list[str]:
    return post.embeds[0]["description"].split("\n")


def footer(post: SentMessage) -> str:
    return post.embeds[0]["footer"]["text"]


def add_guilds(fake: DeliveryFake) -> None:
    fake.add_guild(
        GUILD,
        "Chart Fans",
        channels=[
            FakeChannel(c, n) for c, n in ((CHARTS, "charts"), (NEWS, "news"), (SPARE, "spare"), (THIRD, "k"))
        ],
        roles=[FakeRole(MODS, "Mods", permissions=MANAGE_GUILD)],
        members=[FakeMember(ALICE, "alice", roles=[MODS])],
    )
    fake.add_guild(
        OTHER,
        "K-drama Club",
        channels=[FakeChannel(OTHER_CHANNEL, "announcements")],
        roles=[FakeRole(OTHER_MODS, "Admins", permissions=MANAGE_GUILD), FakeRole(OTHER_FANS, "Fans")],
        members=[FakeMember(CAROL, "carol", roles=[OTHER_MODS])],
    )


@pytest.fixture
async def fake() -> AsyncIterator[DeliveryFake]:
    async with DeliveryFake() as fake:
        add_guilds(fake)
        yield fake


@pytest.fixture
async def bot(fake: DeliveryFake, db: str) -> AsyncIterator[ChartBot]:
    async with fake.run_bot(make_bot(db)) as running:
        await running.tree.sync()
        yield running  # type: ignore[misc]


async def admin(fake: DeliveryFake, command: str, options: dict | None = None, guild: int = GUILD) -> str:
    user, channel = (ALICE, CHARTS) if guild == GUILD else (CAROL, OTHER_CHANNEL)
    reply = await (await fake.slash(guild, channel, user, command, options or {})).response()
    assert reply.ephemeral
    return reply.content


# --- the replayed weeks ----------------------------------------------------------------------------------


@both_engines
async def test_a_replayed_week_posts_exactly_the_expected_messages(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await admin(fake, "watch add", {"title": "All of Us Are Dead"})  # not charted yet: it will be
    await admin(fake, "watch all", {"channel": NEWS})
    for day in (JAN30, FEB6):
        await ingest(db, week(netflix_snapshots, day), bot)
        await settle(bot)
    jan, feb = fake.sent_messages(CHARTS)
    assert [lines(jan), lines(feb)] == [AOUAD_JAN30, AOUAD_FEB6]  # one post per title and week
    assert [footer(jan), footer(feb)] == [
        "Netflix Top 10 · week ending Jan 30, 2022",
        "Netflix Top 10 · week ending Feb 6, 2022",
    ]
    headlines: dict[date, set[str]] = {JAN30: set(), FEB6: set()}
    for post in fake.sent_messages(NEWS):
        day = JAN30 if "Jan 30" in footer(post) else FEB6
        assert post.embeds[0]["title"] not in headlines[day]  # one post per title and week
        headlines[day].add(post.embeds[0]["title"])
    assert headlines == HEADLINES
    (aouad_news,) = [
        p
        for p in fake.sent_messages(NEWS)
        if p.embeds[0]["title"] == "All of Us Are Dead" and "Feb 6" in footer(p)
    ]
    assert lines(aouad_news) == [AOUAD_FEB6[0], AOUAD_FEB6[3]]  # headlines only: 63 countries, global No. 1
    for post in [*fake.sent_messages(CHARTS), *fake.sent_messages(NEWS)]:
        assert post.content == "" and post.allowed_mentions == {"parse": []}
        assert post.payload["nonce"] and post.embeds[0]["url"].endswith("#" + post.payload["nonce"])
    assert fake.sent_messages(SPARE) == fake.sent_messages(OTHER_CHANNEL) == []
    assert await (await bot.get_store()).fetch_all(
        "SELECT count(*) FROM outbox WHERE status = 'pending'"
    ) == [(0,)]


@both_engines
async def test_two_servers_each_get_only_their_own_posts(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await admin(fake, "settings channel", {"channel": CHARTS})
    await admin(fake, "watch add", {"title": "All of Us Are Dead"})
    await admin(fake, "settings channel", {"channel": OTHER_CHANNEL}, guild=OTHER)
    await admin(fake, "settings regions", {"regions": "all"}, guild=OTHER)
    await admin(fake, "settings events", {"events": "reached_no1"}, guild=OTHER)
    await admin(fake, "settings digest", {"mode": "period"}, guild=OTHER)
    await admin(fake, "settings mention-role", {"role": OTHER_FANS}, guild=OTHER)
    await admin(fake, "watch add", {"title": "All of Us Are Dead"}, guild=OTHER)
    for day in (JAN30, FEB6):
        await ingest(db, week(netflix_snapshots, day), bot)
        await settle(bot)
    assert [lines(p) for p in fake.sent_messages(CHARTS)] == [AOUAD_JAN30, AOUAD_FEB6]
    jan, feb = fake.sent_messages(OTHER_CHANNEL)
    assert jan.embeds[0]["title"] == "Top 10 milestones · week ending Jan 30, 2022"
    assert (
        lines(jan)[0]
        == "All of Us Are Dead is No. 1 on Netflix's global TV (Non-English) list for the first time"
    )
    assert lines(jan)[1].startswith("All of Us Are Dead reached No. 1 in 29 countries 🇦🇪 🇧🇩 ")
    assert len(lines(jan)) == 2
    assert lines(feb) == [lines(feb)[0]] and lines(feb)[0].startswith(
        "All of Us Are Dead reached No. 1 in 38 countries "  # new No. 1s that week; 25 were already
    )
    for post in (jan, feb):
        assert post.content == f"<@&{OTHER_FANS}>"  # the one mention allowed, and only that role
        assert post.allowed_mentions == {"parse": [], "roles": [OTHER_FANS]}
    assert all(p.content == "" for p in fake.sent_messages(CHARTS))


@both_engines
async def test_a_new_watch_never_posts_history(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await ingest(db, week(netflix_snapshots, JAN30))  # news, but before anyone watched
    await admin(fake, "watch add", {"title": "All of Us Are Dead"})
    await settle(bot)
    assert fake.sent_messages(CHARTS) == []
    await ingest(db, week(netflix_snapshots, FEB6), bot)
    await settle(bot)
    assert [lines(p) for p in fake.sent_messages(CHARTS)] == [AOUAD_FEB6]


@both_engines
async def test_after_downtime_only_the_newest_period_is_posted(
    fake: DeliveryFake, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    async with await open_store(db) as store:
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHARTS)
    await ingest(db, week(netflix_snapshots, JAN30))  # the bot is down for two weeks
    await ingest(db, week(netflix_snapshots, FEB6))
    async with fake.run_bot(make_bot(db)) as bot:
        await settle(bot)  # type: ignore[arg-type]
        store = await bot.get_store()  # type: ignore[attr-defined]
        statuses = await store.fetch_all(
            "SELECT date, status, count(*) FROM outbox GROUP BY date, status ORDER BY date, status"
        )
    assert [lines(p) for p in fake.sent_messages(CHARTS)] == [AOUAD_FEB6]
    assert {(day, status) for day, status, _ in statuses} == {
        ("2022-01-30", "skipped"),
        ("2022-02-06", "sent"),
        ("2022-02-06", "skipped"),
    }


@both_engines
async def test_a_revised_week_edits_its_post(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await ingest(db, week(netflix_snapshots, JAN30))
    await admin(fake, "watch add", {"title": "All of Us Are Dead", "channel": CHARTS})
    await ingest(db, week(netflix_snapshots, FEB6), bot)
    await settle(bot)
    (post,) = fake.sent_messages(CHARTS)
    assert lines(post) == AOUAD_FEB6 and not post.edited
    (us_tv,) = [s for s in week(netflix_snapshots, FEB6) if (s.key.region, s.key.category) == ("us", "tv")]
    first, second, *rest = us_tv.entries  # Netflix corrects the U.S. chart: AOUAD was No. 2
    revised = make_snapshot(
        us_tv.key, [dataclasses.replace(second, rank=1), dataclasses.replace(first, rank=2), *rest]
    )
    await ingest(db, [revised], bot)
    await settle(bot)
    (post,) = fake.sent_messages(CHARTS)  # the same message, edited: nothing posted again
    assert post.edited
    assert (
        lines(post)
        == [
            "All of Us Are Dead is No. 1 in 62 countries this week (of 94 reporting) — up from 29",  # revised
            *AOUAD_FEB6[1:2],
            *AOUAD_FEB6[3:],
            f"~~{AOUAD_FEB6[2]}~~ (withdrawn: the chart was corrected)",
        ]
    )
    assert footer(post) == "Netflix Top 10 · week ending Feb 6, 2022 · corrected"
    patch = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith(f"/messages/{post.id}")]
    assert len(patch) == 1 and patch[0].json["allowed_mentions"] == {"parse": []}


@both_engines
async def test_news_arriving_in_two_batches_joins_the_unsent_post(
    db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await ingest(db, week(netflix_snapshots, JAN30))
    async with await open_store(db) as store:
        await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHARTS)
    feb6 = week(netflix_snapshots, FEB6)
    await ingest(db, [s for s in feb6 if s.key.region != "world"])  # the countries first…
    async with await open_store(db) as store:
        first = await store.deliveries.plan(hold=60)
        await Ingester(store).ingest([s for s in feb6 if s.key.region == "world"])  # …the global lists later
        second = await store.deliveries.plan(hold=60)
        rows = await store.fetch_all(
            "SELECT d.id, count(*) FROM deliveries d JOIN delivery_items i ON i.delivery_id = d.id GROUP BY d.id"
        )
    assert (first.deliveries, second.deliveries, second.joined) == (1, 0, 1)
    assert rows == [(rows[0][0], len(AOUAD_FEB6))]  # one message for the title and week


@both_engines
async def test_the_poller_hook_wakes_the_announcer(db: str, netflix_snapshots: list[Snapshot]) -> None:
    await ingest(db, week(netflix_snapshots, JAN30))
    async with DeliveryFake() as fake:
        add_guilds(fake)
        bot = make_bot(db, config=dataclasses.replace(FAST, interval=60.0))
        async with fake.run_bot(bot):
            await asyncio.sleep(0.2)  # the first round has passed: the next look is a minute away
            async with await open_store(db) as store:
                await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", CHARTS)
            await ingest(db, week(netflix_snapshots, FEB6), bot)  # dispatches "milestones"
            (post,) = await fake.wait_for_messages(CHARTS, 1, timeout=2.0)
    assert lines(post) == AOUAD_FEB6


# --- faults ------------------------------------------------------------------------------------------------


async def watch_everywhere(fake: DeliveryFake, channels: list[int]) -> None:
    for channel in channels:
        await admin(fake, "watch add", {"title": "All of Us Are Dead", "channel": channel})


@both_engines
async def test_a_forbidden_channel_is_marked_broken_and_the_others_are_served(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    channels = [CHARTS, NEWS, SPARE, THIRD]
    await watch_everywhere(fake, channels)
    await ingest(db, week(netflix_snapshots, JAN30), bot)
    await settle(bot)
    fake.forbid_channel(NEWS)  # someone takes the bot's Send Messages away mid-run
    await ingest(db, week(netflix_snapshots, FEB6), bot)
    await settle(bot)
    assert [len(fake.sent_messages(c)) for c in channels] == [2, 1, 2, 2]
    assert f"⚠ cannot post in <#{NEWS}>: missing permissions" in await admin(fake, "watch list")
    tries = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{NEWS}/messages"]
    assert [r.status for r in tries] == [200, 403]  # not retried forever (not at all)
    store = await bot.get_store()
    assert await store.fetch_all(
        "SELECT state, last_error FROM deliveries WHERE channel_id = ? ORDER BY id", (NEWS,)
    ) == [("sent", None), ("failed", "channel broken: missing permissions")]


@both_engines
async def test_server_errors_and_rate_limits_are_retried(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await ingest(db, week(netflix_snapshots, JAN30))
    await watch_everywhere(fake, [CHARTS, NEWS])
    fake.fail_next("POST", rf"^/channels/{CHARTS}/messages$", status=503, times=2)
    fake.fail_next("POST", rf"^/channels/{NEWS}/messages$", status=429, retry_after=0.05, times=2)
    await ingest(db, week(netflix_snapshots, FEB6), bot)
    await settle(bot)
    assert [lines(p) for p in fake.sent_messages(CHARTS)] == [AOUAD_FEB6]
    assert [lines(p) for p in fake.sent_messages(NEWS)] == [AOUAD_FEB6]
    looked = [r for r in fake.requests if r.method == "GET" and r.path == f"/channels/{CHARTS}/messages"]
    assert looked  # after a 503 the post might exist: looked for before resending


@both_engines
async def test_a_slow_channel_does_not_hold_up_the_others(
    fake: DeliveryFake, bot: ChartBot, db: str, netflix_snapshots: list[Snapshot]
) -> None:
    await watch_everywhere(fake, [CHARTS, NEWS, SPARE, THIRD])
    fake.channel_delay[CHARTS] = 2.0
    await ingest(db, week(netflix_snapshots, FEB6), bot)
    started = time.monotonic()
    for channel in (NEWS, SPARE, THIRD):
        await fake.wait_for_messages(channel, 1, timeout=1.5)
    assert time.monotonic() - started < 1.5 and fake.sent_messages(CHARTS) == []
    await fake.wait_for_messages(CHARTS, 1, timeout=3.0)
    await settle(bot)
    assert [len(fake.sent_messages(c)) for c in (CHARTS, NEWS, SPARE, THIRD)] == [1, 1, 1, 1]


@both_engines
async def test_a_failing_item_does_not_stop_the_announcer(
    fake: DeliveryFake,
    bot: ChartBot,
    db: str,
    netflix_snapshots: list[Snapshot],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await watch_everywhere(fake, [CHARTS, NEWS])
    render, failures = announcements.render, []

    def flaky(items: list[Item], **options: object) -> announcements.Post:
        post = render(items, **options)  # type: ignore[arg-type]
        if not failures and "Feb 6" in (post.embed.footer.text or ""):
            failures.append(options["nonce"])
            raise RuntimeError("a bug in one post")
        return post

    monkeypatch.setattr(announcements, "render", flaky)
    for day in (JAN30, FEB6):
        await ingest(db, week(netflix_snapshots, day), bot)
        await settle(bot)
    assert failures and [len(fake.sent_messages(c)) for c in (CHARTS, NEWS)] == [2, 2]


# --- a crash between the POST and its record ---------------------------------------------------------------


@pytest.mark.parametrize("nonce_dedupe", [True, False], ids=["discord-dedupes", "history-only"])
@both_engines
async def test_killed_between_post_and_record_posts_everything_exactly_once(
    db: str, netflix_snapshots: list[Snapshot], nonce_dedupe: bool
) -> None:
    channels = [CHARTS, NEWS, SPARE, THIRD]
    await ingest(db, week(netflix_snapshots, JAN30))  # before the watches: never posted
    async with await open_store(db) as store:
        for channel in channels:
            await store.guilds.add_watch(GUILD, AOUAD, "All of Us Are Dead", channel)
        await store.guilds.add_watch(GUILD, "*", "All titles", NEWS)
    await ingest(db, week(netflix_snapshots, FEB6))
    async with DeliveryFake() as fake:
        add_guilds(fake)
        fake.nonce_dedupe = nonce_dedupe
        code, _ = await run_worker(fake, db, "--kill-after-posts", "3")
        assert code == -signal.SIGKILL
        posted = sum(len(fake.sent_messages(c)) for c in channels)
        assert posted >= 3  # and maybe a few more: the workers post concurrently
        async with await open_store(db) as store:
            states = dict(await store.fetch_all("SELECT state, count(*) FROM deliveries GROUP BY state"))
        assert states.get("sending", 0) >= 1  # posted (at least the last one) but not recorded
        code, log = await run_worker(fake, db)
        assert code == 0
        assert log.count("was already posted") == posted - states.get("sent", 0)  # found, not reposted
        expected = {CHARTS: 1, NEWS: len(HEADLINES[FEB6]), SPARE: 1, THIRD: 1}  # AOUAD: one post in NEWS
        assert {c: len(fake.sent_messages(c)) for c in channels} == expected
        nonces = [m.payload["nonce"] for c in channels for m in fake.sent_messages(c)]
        assert len(nonces) == len(set(nonces))
        for channel in channels:
            (aouad,) = [
                m for m in fake.sent_messages(channel) if m.embeds[0]["title"] == "All of Us Are Dead"
            ]
            assert lines(aouad) == AOUAD_FEB6
        history = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/messages")]
        assert history  # the second run looked for what the first may have posted
        async with await open_store(db) as store:
            states = dict(await store.fetch_all("SELECT state, count(*) FROM deliveries GROUP BY state"))
        assert states == {"sent": sum(expected.values())}


# --- posts -------------------------------------------------------------------------------------------------


def test_a_post_folds_countries_and_marks_itself() -> None:
    def item(kind: str, region: str, retracted: bool = False) -> Item:
        chart = ChartKey("netflix", "netflix", region, "tv", "week", FEB6)
        return Item(
            Milestone(kind, chart, AOUAD, "All of Us Are *Dead*", 1, None, milestone_key(kind, chart, AOUAD)),
            0,
            retracted,
        )

    items = [item("reached_no1", r) for r in ("us", "gb", "kr", "fr")] + [
        item("reached_no1", "world"),
        item("entered_top10", "br", True),
    ]
    post = announcements.render(items, digest=False, nonce="cbnonce", mention_role_id=None)
    assert post.embed.title == r"All of Us Are \*Dead\*"
    assert post.embed.description.split("\n") == [
        r"All of Us Are \*Dead\* is back at No. 1 worldwide this week",
        r"All of Us Are \*Dead\* reached No. 1 in 4 countries 🇫🇷 🇬🇧 🇰🇷 🇺🇸",
        r"~~All of Us Are \*Dead\* enters the 🇧🇷 Brazil weekly Top 10 at No. 1~~ (withdrawn: the chart was corrected)",
    ]
    assert post.embed.url == "https://www.netflix.com/tudum/top10#cbnonce"
    assert post.content is None and post.allowed_mentions.to_dict() == {"parse": []}
    assert announcements.render(items, digest=True, nonce="n", mention_role_id=7).content == "<@&7>"


def test_a_fan_out_renders_once_and_stamps_each_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = ChartKey("netflix", "netflix", "world", "tv", "week", FEB6)
    news = Milestone("reached_no1", chart, AOUAD, "All of Us Are Dead", 1, None, "k")
    render, renders = announcements.render, []

    def counted(items: list[Item], **options: object) -> announcements.Post:
        renders.append(options)
        return render(items, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(announcements, "render", counted)
    cache = announcements.PostCache()
    first, second = (
        cache.message([Item(news, 0, False)], digest=False, nonce=nonce, mention_role_id=None)
        for nonce in ("cbone", "cbtwo")
    )
    assert len(renders) == 1
    for params, nonce in ((first, "cbone"), (second, "cbtwo")):
        assert params.payload is not None
        assert params.payload["nonce"] == nonce and params.payload["enforce_nonce"] is True
        assert params.payload["embeds"][0]["url"] == f"https://www.netflix.com/tudum/top10#{nonce}"
        assert params.payload["allowed_mentions"] == {"parse": []}
        assert "No. 1 worldwide" in params.payload["embeds"][0]["description"]
    pinged = cache.message([Item(news, 0, False)], digest=False, nonce="cbx", mention_role_id=7).payload
    assert (
        pinged and pinged["content"] == "<@&7>" and pinged["allowed_mentions"] == {"parse": [], "roles": [7]}
    )
    revised = cache.message([Item(news, 1, False)], digest=False, nonce="cby", mention_role_id=None)
    assert (
        len(renders) == 3
        and revised.payload
        and "corrected" in revised.payload["embeds"][0]["footer"]["text"]
    )
