"""Announcement posts: the embed a channel gets for a title's milestones in one period (or a digest of
the period), in its server's language, the one mention allowed, and the marker that finds a post again
after a crash. No I/O.

The marker is the nonce in the fragment of the embed's link (the chart's page): Discord returns a
message's nonce only when it is created, so after a restart the post is recognised by its link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import discord

from bot.announcer.jobs import Item
from bot.compat import PreparedMessage, prepare_message
from bot.i18n import ENGLISH, Messages, translator
from bot.model import WORLD, ChartKey, Milestone
from bot.render import (
    COLOUR,
    EMBED_DESCRIPTION,
    fit_embed,
    fold_countries,
    group_text,
    join_lines,
    milestone_text,
    news_order,
    period_text,
    safe,
    service_name,
)

SOURCE_PAGES = {
    "netflix": "https://www.netflix.com/tudum/top10",
    "flixpatrol": "https://flixpatrol.com/top10/",
}
WITHDRAWN = ENGLISH.gettext("post.withdrawn")


@dataclass(frozen=True, slots=True)
class Post:
    content: str | None
    embed: discord.Embed
    allowed_mentions: discord.AllowedMentions


def mentions(role_id: int | None) -> discord.AllowedMentions:
    """Nobody, ever — except the one role a server chose to ping."""
    if role_id is None:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(role_id)], replied_user=False
    )


def marker_url(source: str, nonce: str) -> str:
    return f"{SOURCE_PAGES.get(source, SOURCE_PAGES['netflix'])}#{nonce}"


def carries(message: discord.Message, nonce: str) -> bool:
    """Whether a message is the post made with this nonce (its nonce, or the marker in its link)."""
    if message.nonce is not None and str(message.nonce) == nonce:
        return True
    return any((embed.url or "").endswith(f"#{nonce}") for embed in message.embeds)


def _headline_order(m: Milestone) -> tuple:
    return (news_order(m.kind), m.chart.region != WORLD, m.title_key, m.chart.region, m.chart.category)


def lines(items: Sequence[Item], tr: Messages = ENGLISH) -> list[str]:
    """One line per piece of news, biggest first (the same news in many countries is one line with
    their flags); a withdrawn milestone struck through."""
    live = sorted((i.milestone for i in items if not i.retracted), key=_headline_order)
    groups = sorted(fold_countries(live), key=lambda group: _headline_order(group[0]))
    out = [line for group in groups for line in group_text(group, tr)]
    for item in items:
        if item.retracted:
            text = milestone_text(item.milestone, escape=True, tr=tr)
            out.append(tr.gettext("post.struck", text=text, withdrawn=tr.gettext("post.withdrawn")))
    return out


def _chart_label(chart: ChartKey, tr: Messages) -> str:
    return tr.gettext(
        "footer.charts",
        services=service_name(chart.service),
        period=period_text(chart.date, chart.period, tr),
    )


def render(
    items: Sequence[Item],
    *,
    digest: bool,
    nonce: str,
    mention_role_id: int | None,
    language: str | Messages = ENGLISH,
) -> Post:
    """The post for a delivery, in `language` (its server's): its milestones as they stand now (revised
    values, withdrawn ones struck)."""
    if not items:
        raise ValueError("a post needs at least one milestone")
    tr = translator(language)
    first = min((i.milestone for i in items), key=_headline_order)
    chart = first.chart
    if digest:
        title = tr.gettext("post.digest", period=period_text(chart.date, chart.period, tr))
    else:
        title = safe(first.title, 256)
    embed = discord.Embed(title=title, url=marker_url(chart.source, nonce), colour=COLOUR)
    embed.description = join_lines(lines(items, tr), EMBED_DESCRIPTION, tr)
    footer = _chart_label(chart, tr)
    if any(i.revision for i in items) or any(i.retracted for i in items):
        footer += " · " + tr.gettext("post.corrected")
    embed.set_footer(text=footer)
    content = f"<@&{mention_role_id}>" if mention_role_id else None
    return Post(content, fit_embed(embed), mentions(mention_role_id))


class PostCache:
    """A fan-out posts the same milestones to thousands of channels: render them once, as the JSON
    discord.py sends for a message (`bot.compat.prepare_message`), then stamp each copy with its
    delivery's nonce (in the payload and in the embed's link). Keyed by the language and the
    milestones' keys and revisions, so a revised milestone renders anew, and each language once."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._payloads: dict[tuple, dict[str, Any]] = {}

    def message(
        self,
        items: Sequence[Item],
        *,
        digest: bool,
        nonce: str,
        mention_role_id: int | None,
        language: str = "en",
    ) -> PreparedMessage:
        """What `bot.compat.send_prepared` posts: no `discord.Message` is built from the answer, which
        would cost a fan-out more CPU than the request itself."""
        milestones = tuple((i.milestone.key, i.revision, i.retracted) for i in items)
        key = (language, digest, mention_role_id, milestones)
        base = self._payloads.get(key)
        if base is None:
            if len(self._payloads) >= self.size:
                self._payloads.clear()
            post = render(items, digest=digest, nonce="", mention_role_id=mention_role_id, language=language)
            prepared = prepare_message(
                content=post.content, embed=post.embed, nonce="", allowed_mentions=post.allowed_mentions
            )
            base = self._payloads[key] = prepared.payload
        embed = base["embeds"][0]
        stamped = {**embed, "url": f"{embed['url'].partition('#')[0]}#{nonce}"}
        return PreparedMessage({**base, "embeds": [stamped], "nonce": nonce})


def sample(
    mention_role_id: int | None, *, day: date | None = None, language: str | Messages = ENGLISH
) -> Post:
    """What `/settings test` posts: a made-up milestone that looks like the real ones, in the server's
    language."""
    chart = ChartKey("netflix", "netflix", WORLD, "tv-non-english", "week", day or date(2022, 2, 6))
    m = Milestone(
        kind="no1_streak",
        chart=chart,
        title_key="all of us are dead",
        title="All of Us Are Dead",
        value=2,
        previous=1,
        key="sample",
    )
    tr = translator(language)
    post = render(
        [Item(m, 0, False)], digest=False, nonce="sample", mention_role_id=mention_role_id, language=tr
    )
    post.embed.url = None
    post.embed.set_author(name=tr.gettext("post.sample"))
    return post
