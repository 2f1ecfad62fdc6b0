"""What both engines make of their rows: standings folded from appearances, current country counts,
the series a rank-history picture shows, a milestone, a server's policy; the ids a history write
keeps between transactions. Pure, no SQL."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from bot.announcer import policy as rules
from bot.announcer.jobs import PlanReport, new_nonce
from bot.announcer.policy import ALL, Pending, Policy, Route
from bot.milestones import MIN_REPORTING
from bot.model import PERIODS, WORLD, ChartKey, Milestone, join_key
from bot.stats import fold
from bot.store.interfaces import CountryTally, GroupKey
from bot.views import CountryCount, RankHistory, SeriesKey, Standing


def standings_from(
    appearances: dict[int, dict[date, tuple]],
    series_of: dict[int, tuple[str, str, str, str]],
    current: dict[int, str | date],
    on: date,
) -> list[Standing]:
    """Standings on `on` from each series' appearances of a title (rank and figures by date) and the
    newest date of each series up to `on`."""
    standings = []
    for series_id, seen in appearances.items():
        service, region, category, period = series_of[series_id]
        step = PERIODS[period]
        newest = current[series_id]
        chart_day = newest if isinstance(newest, date) else date.fromisoformat(newest)
        if chart_day not in seen or chart_day <= on - step:
            continue
        stats = fold(((d, r[0]) for d, r in sorted(seen.items())), step)
        assert stats is not None
        rank, season, points, hours, views = seen[chart_day]
        standings.append(
            Standing(
                service,
                region,
                category,
                period,
                date=chart_day,
                rank=rank,
                season=season,
                previous_rank=stats.prev_rank,
                peak=stats.peak,
                peak_date=stats.peak_date,
                periods_in_top10=stats.periods_in_top10,
                no1_streak=stats.no1_run,
                periods_at_no1=stats.periods_at_no1,
                longest_no1_run=stats.longest_no1_run,
                points=points,
                hours=hours,
                views=views,
            )
        )
    return standings


def countries_from(rows: Sequence[Sequence], on: date | None) -> list[CountryCount]:
    counts = []
    for service, category, period, day, reporting, no1, top10 in rows:
        when = day if isinstance(day, date) else date.fromisoformat(day)
        if on is not None and when <= on - PERIODS[period]:
            continue  # that group's newest period is too old to be current on `on`
        if top10 and reporting >= MIN_REPORTING:  # a handful of regions is no "countries" count
            counts.append(CountryCount(service, category, period, when, no1, top10, reporting))
    return counts


def choose_histories(
    found: dict[SeriesKey, list[tuple[date, int]]], limit: int, prefer: Sequence[str]
) -> list[RankHistory]:
    """World charts first, then the series the title spent most periods in (regions in `prefer` first
    among equals): the picture never has more lines than a reader can follow."""

    def preference(item: tuple[SeriesKey, list[tuple[date, int]]]) -> tuple:
        series, points = item
        favourite = prefer.index(series[1]) if series[1] in prefer else len(prefer)
        return (series[1] != WORLD, -len(points), min(r for _, r in points), favourite, series)

    chosen = sorted(found.items(), key=preference)[:limit]
    return [RankHistory(*series, points=sorted(points)) for series, points in chosen]


# --- a server's settings -------------------------------------------------------------------------------

# The settings columns of `guild_settings`, in the order `policy_from_row` reads them.
SETTINGS = (
    "channel_id",
    "regions",
    "events",
    "digest",
    "mention_role_id",
    "language",
    "server_language",
    "publish",
)
HALTED = "posting_halted"  # bot_state key: why posting stopped for the whole bot


def policy_from_row(guild_id: int, row: Sequence) -> Policy:
    """A server's `Policy` from its `SETTINGS` columns (regions and events as JSON text)."""
    channel_id, regions, events, digest, role, language, server_language, publish = row
    region_set: frozenset[str] | None = frozenset(rules.DEFAULT_REGIONS)
    if regions is not None:
        codes = json.loads(regions)
        region_set = None if codes == [ALL] else frozenset(codes)
    return Policy(
        guild_id=guild_id,
        channel_id=channel_id,
        regions=region_set,
        events=frozenset(json.loads(events)) if events is not None else rules.DEFAULT_EVENTS,
        digest=digest,
        mention_role_id=role,
        language=language,
        server_language=server_language,
        publish=bool(publish),
    )


# --- milestones and ids ----------------------------------------------------------------------------------


def milestone_from_row(row: Sequence) -> Milestone:
    """A Milestone from the 13 columns of MILESTONE_COLUMNS (more may follow); its key is built from
    the parts the database keeps unique."""
    kind, source, service, region, category, period, day, key, title, value, previous, detail, context = row[
        :13
    ]
    if not isinstance(day, date):  # SQLite keeps dates as ISO text
        day = date.fromisoformat(day)
    series = f"{service}|{region}|{category}|{period}"
    return Milestone(
        kind=kind,
        chart=ChartKey(source, service, region, category, period, day),
        title_key=key,
        title=title,
        value=value,
        previous=previous,
        key=join_key(day.isoformat(), kind, series, key, detail),
        context=json.loads(context),
        detail=detail,
    )


class Identities:
    """Title and series ids by key, kept between transactions; `forget()` after a rollback."""

    def __init__(self) -> None:
        self.title_ids: dict[str, int] = {}  # also a cut-short key -> the full title's id
        self.title_keys: dict[int, str] = {}
        self.title_names: dict[int, str] = {}
        self.series_ids: dict[SeriesKey, int] = {}

    def forget(self) -> None:
        for table in (self.title_ids, self.title_keys, self.title_names, self.series_ids):
            table.clear()

    def remember_titles(self, rows: Iterable[tuple[int, str, str]]) -> None:
        for title_id, key, name in rows:
            self.title_ids[key] = title_id
            self.title_keys[title_id] = key
            self.title_names[title_id] = name


def tally_rows(
    tallies: Mapping[tuple[GroupKey, date], CountryTally],
) -> tuple[list[tuple[str, str, str, date, str, int, int]], list[tuple[str, str, str, date, int]]]:
    """Country tallies as rows to add: (group, date, title key, at No. 1, in the top 10) and (group,
    date, charts), period by period in order (a period's rows are neighbours in the tables)."""
    counts = []
    periods = []
    for (group, day), tally in sorted(tallies.items()):
        periods.append((*group, day, tally.charts))
        no1 = tally.no1
        counts.extend((*group, day, title, no1[title], top10) for title, top10 in tally.top10.items())
    return counts, periods


# --- planning: routes into deliveries --------------------------------------------------------------------

DeliveryGroups = dict[tuple[int, int, str], list[Route]]


def delivery_groups(routes: Iterable[Route]) -> DeliveryGroups:
    """Routes by (server, channel, group key): one message each."""
    groups: DeliveryGroups = defaultdict(list)
    for r in routes:
        groups[(r.guild_id, r.channel_id, r.group_key)].append(r)
    return groups


def split_deliveries(
    groups: DeliveryGroups,
    unsent: Mapping[tuple[int, str], int],
    due_at: Mapping[bool, Any],
    at: Any,
    report: PlanReport,
) -> tuple[list[tuple[Any, Any, int]], list[tuple[int, int, str, str, int | None, Any]]]:
    """Which groups join the delivery of their channel and group still unsent - (due, at, delivery id):
    the news pushes its time back - and which start one: (server, channel, group key, nonce, mention
    role, due). `due_at[digest]` and `at` are moments as the engine writes them."""
    joins, starts = [], []
    for (guild_id, channel_id, key), members in groups.items():
        due = due_at[members[0].digest]
        if (channel_id, key) in unsent:
            joins.append((due, at, unsent[(channel_id, key)]))
            report.joined += len(members)
        else:
            starts.append((guild_id, channel_id, key, new_nonce(), members[0].mention_role_id, due))
            report.deliveries += 1
    return joins, starts


def delivery_items(
    groups: DeliveryGroups,
    delivery_of: Mapping[tuple[int, str], int],
    pending: Mapping[int, Pending],
) -> list[tuple[int, int, int, int]]:
    """(channel, milestone, delivery, revision) of every routed milestone, in its group's delivery."""
    return [
        (channel_id, m.milestone_id, delivery_of[(channel_id, key)], pending[m.milestone_id].revision)
        for (_, channel_id, key), members in groups.items()
        for m in members
    ]
