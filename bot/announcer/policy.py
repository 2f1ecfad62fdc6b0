"""Who gets which milestone, grouped how, paced how fast: the announcer's rules. No Discord, no SQL.

A server's `Policy` (regions, kinds, digest, mention role, the language of its posts) and its `Watch`es
decide which channels want a milestone; `route` turns pending milestones into (channel, group) pairs; the store groups them into
deliveries (one message each). Pacing and failures are in `bot.announcer.pacing`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from bot.i18n import ENGLISH, LOCALES, SOURCE, Messages, formats, locale_for
from bot.milestones import KINDS
from bot.model import WORLD, InputError, Milestone
from bot.regions import REGION_CODES, resolve_region

ALL = "*"  # a watch of every title's headlines; in a region list: every region
DEFAULT_REGIONS: tuple[str, ...] = (WORLD, "us", "gb", "kr")
# Not noisy: peaks, run lengths and exits are left out unless a server asks for them.
DEFAULT_EVENTS: frozenset[str] = frozenset(
    {"entered_top10", "reached_no1", "no1_streak", "lost_no1", "no1_countries", "top10_countries", "record"}
)
# What `/watch all` follows for every title: No. 1 worldwide, records, No. 1 in many countries.
HEADLINE_KINDS: frozenset[str] = frozenset({"reached_no1", "no1_streak", "no1_countries", "record"})
HEADLINE_COUNTRIES = 10  # "No. 1 in many countries": the detector reports from 5, headlines from 10
DIGEST_MODES = ("instant", "period")
DAY_STREAK_POSTS = (2, 3, 5, 7, 10, 14, 21, 28)  # then every 7 days

_EVENT_ALIASES: dict[str, str] = {
    "entered": "entered_top10",
    "enters": "entered_top10",
    "entry": "entered_top10",
    "no1": "reached_no1",
    "reached": "reached_no1",
    "streak": "no1_streak",
    "streaks": "no1_streak",
    "lost": "lost_no1",
    "peak": "new_peak",
    "peaks": "new_peak",
    "run": "top10_run",
    "runs": "top10_run",
    "left": "left_top10",
    "leaves": "left_top10",
    "countries": "no1_countries",
    "records": "record",
}


@dataclass(frozen=True, slots=True)
class Policy:
    """One server's announcement settings. `regions` None: every region."""

    guild_id: int
    channel_id: int | None = None
    regions: frozenset[str] | None = frozenset(DEFAULT_REGIONS)
    events: frozenset[str] = DEFAULT_EVENTS
    digest: str = "instant"
    mention_role_id: int | None = None
    language: str | None = None  # of the posts, chosen with /settings language (None: the server's)
    server_language: str | None = (
        None  # the server's own, as Discord said at an admin command (None: English)
    )
    publish: bool = False  # publish posts made in announcement channels (other servers Follow them)

    @property
    def post_language(self) -> str:
        """The language the server's posts are written in: the one chosen, else the server's own
        (Discord's "preferred locale" of the server, when it is one of ours), else English."""
        return self.language or self.server_language or SOURCE


def server_language(guild_locale: object) -> str | None:
    """The server's own language from Discord's `guild_locale`, as `Policy.server_language` keeps it:
    one of our languages, None for English (or a language we do not write)."""
    if guild_locale is None:
        return None
    language = locale_for(guild_locale)
    return None if language == SOURCE else language


def check_language(language: str | None) -> str | None:
    """A language to store (None: the server's default); ValueError for one we do not write."""
    if language is not None and language not in LOCALES:
        raise ValueError(f"language must be one of {LOCALES} or None, not {language!r}")
    return language


@dataclass(frozen=True, slots=True)
class Watch:
    """A server following a title (or, with target `*`, every title's headlines) in a channel."""

    id: int
    guild_id: int
    target: str
    title: str
    channel_id: int  # 0: the server's announcement channel
    # High-water marks when the watch was made: the newest milestone stored, and the newest read begun
    # (a poll cycle, an import). A milestone is news to the watch only when it is newer than both, so
    # nothing stored before, or read before and still being caught up, is ever posted to it.
    since_id: int = 0
    since_read: int = 0

    @property
    def everything(self) -> bool:
        return self.target == ALL

    def channel(self, policy: Policy) -> int | None:
        return self.channel_id or policy.channel_id

    def is_news(self, item: Pending) -> bool:
        """Whether a milestone came after the watch started (history is never posted)."""
        return item.outbox_id > self.since_id and item.read_id > self.since_read


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending outbox row: the milestone, and the row's id and revision."""

    milestone: Milestone
    outbox_id: int = 0
    revision: int = 0
    read_id: int = 0  # the read that brought it (see Watch.since_read)


@dataclass(frozen=True, slots=True)
class Route:
    """A milestone wanted in a channel, and the message (group) it belongs to there."""

    guild_id: int
    channel_id: int
    group_key: str
    milestone_id: int
    mention_role_id: int | None
    digest: bool


# --- who wants what -------------------------------------------------------------------------------


def streak_wanted(length: int, period: str) -> bool:
    """Days at No. 1: 2, 3, 5, 7, 10, 14, 21, 28, then every 7; weeks: every week."""
    if period != "day":
        return length >= 2
    return length in DAY_STREAK_POSTS or (length > DAY_STREAK_POSTS[-1] and length % 7 == 0)


def is_headline(m: Milestone) -> bool:
    """News about the world, fit for a server that follows every title."""
    if m.kind not in HEADLINE_KINDS or m.chart.region != WORLD:  # country counts are "world" news
        return False
    return m.kind != "no1_countries" or (m.value or 0) >= HEADLINE_COUNTRIES


def wants(policy: Policy, watch: Watch, m: Milestone) -> bool:
    """Whether this watch, under its server's policy, posts this milestone."""
    if m.kind not in policy.events:
        return False
    if m.kind == "no1_streak" and not streak_wanted(m.value or 0, m.chart.period):
        return False
    if watch.everything:
        return is_headline(m)
    if m.title_key != watch.target:
        return False
    return m.chart.region == WORLD or policy.regions is None or m.chart.region in policy.regions


def group_key(m: Milestone, digest: bool) -> str:
    """The message a milestone goes into: one per title and period, or one per period in a digest."""
    period = f"{m.chart.service}|{m.chart.period}|{m.chart.date.isoformat()}"
    return f"digest|{period}" if digest else f"title|{m.title_key}|{period}"


def route(
    pending: Iterable[Pending],
    watches: Iterable[Watch],
    policies: dict[int, Policy],
    broken: AbstractSet[tuple[int, int]] = frozenset(),
) -> list[Route]:
    """Every (channel, milestone) to post, once per channel even when several watches want it there.

    Watches without a channel (no default set) and broken channels are left out.
    """
    by_title: dict[str, list[Watch]] = defaultdict(list)
    everything: list[Watch] = []
    for w in watches:
        (everything if w.everything else by_title[w.target]).append(w)
    routes: list[Route] = []
    seen: set[tuple[int, int]] = set()
    for item in pending:
        m = item.milestone
        candidates = by_title.get(m.title_key, [])
        if everything and is_headline(m):
            candidates = [*candidates, *everything]
        for w in candidates:
            policy = policies.get(w.guild_id) or Policy(w.guild_id)
            channel = w.channel(policy)
            if not channel or (w.guild_id, channel) in broken or not w.is_news(item):
                continue
            if (channel, item.outbox_id) in seen or not wants(policy, w, m):
                continue
            seen.add((channel, item.outbox_id))
            digest = policy.digest == "period"
            routes.append(
                Route(
                    w.guild_id, channel, group_key(m, digest), item.outbox_id, policy.mention_role_id, digest
                )
            )
    return routes


# --- parsing what admins type ---------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def parse_regions(text: str, tr: Messages = ENGLISH) -> frozenset[str] | None:
    """ "world, us, South Korea" -> codes; "all" -> None (every region); "default" -> the defaults.
    Country names may be in the admin's language too; what is wrong is said in it (`tr`)."""
    words = _words(text)
    folded = [w.casefold() for w in words]
    if folded in (["all"], ["*"], ["every"], ["everywhere"]):
        return None
    if folded in (["default"], ["defaults"], ["reset"]):
        return frozenset(DEFAULT_REGIONS)
    if not words:
        raise InputError(tr.gettext("error.regions.empty"))
    codes = set()
    for word in words:
        if len(word) > 1 and word.casefold() in REGION_CODES:
            codes.add(word.casefold())
        else:
            codes.add(resolve_region(word, tr))
    return frozenset(codes)


def parse_events(
    text: str, current: frozenset[str] = DEFAULT_EVENTS, tr: Messages = ENGLISH
) -> frozenset[str]:
    """ "no1, streak, record"; "default"; "all"; or changes to `current`: "+peak -entered"."""
    words = [w.casefold().replace("-", "_") for part in _words(text) for w in part.split()]
    if words in (["all"], ["*"]):
        return frozenset(KINDS)
    if words in (["default"], ["defaults"], ["reset"]):
        return DEFAULT_EVENTS
    if not words:
        raise InputError(tr.gettext("error.events.empty", known=known_events()))
    changes = all(w[:1] in "+_" and len(w) > 1 for w in words)  # "-peak" arrives as "_peak"
    chosen: set[str] = set(current) if changes else set()
    for word in words:
        name = word[1:] if changes else word
        kind = _EVENT_ALIASES.get(name, name)
        if kind not in KINDS:
            raise InputError(tr.gettext("error.events.unknown", kind=repr(name), known=known_events()))
        if changes and word[0] == "_":
            chosen.discard(kind)
        else:
            chosen.add(kind)
    if not chosen:
        raise InputError(tr.gettext("error.events.nothing"))
    return frozenset(chosen)


def known_events() -> str:
    return ", ".join(f"`{k}`" for k in KINDS)


def describe_regions(regions: frozenset[str] | None, tr: Messages = ENGLISH) -> str:
    """ "Worldwide (`world`), United States (`us`)", in `tr`'s language."""
    if regions is None:
        return tr.gettext("settings.every_region")
    ordered = sorted(regions, key=lambda c: (c != WORLD, c))
    return ", ".join(f"{formats.region_name(c, tr)} (`{c}`)" for c in ordered)


def describe_events(events: frozenset[str], tr: Messages = ENGLISH) -> str:
    """ "reaches No. 1 (`reached_no1`), records (`record`)", in `tr`'s language."""
    return ", ".join(f"{event_name(k, tr)} (`{k}`)" for k in KINDS if k in events)


def event_name(kind: str, tr: Messages = ENGLISH) -> str:
    """What a kind of milestone is called where admins choose them (`event.<kind>`)."""
    key = f"event.{kind}"
    return tr.gettext(key) if kind in KINDS else kind


def describe_language(policy: Policy, tr: Messages = ENGLISH) -> str:
    """ "한국어", or "English (the server's language)" when none was chosen (in `tr`'s language)."""
    name = language_name(policy.post_language)
    return name if policy.language else tr.gettext("settings.language.default", language=name)


def language_name(language: str) -> str:
    """A language by its own name, as its speakers write it: "한국어", "español (España)", "English"."""
    return LANGUAGE_NAMES[language]


LANGUAGE_NAMES = {
    "en": "English",
    "ko": "한국어",
    "ja": "日本語",
    "es_ES": "Español (España)",
    "es_419": "Español (Latinoamérica)",
    "pt_BR": "Português do Brasil",
    "fr": "Français",
    "de": "Deutsch",
    "id": "Bahasa Indonesia",
}
"""Each language by its own name (as Discord's own language menu writes them)."""
