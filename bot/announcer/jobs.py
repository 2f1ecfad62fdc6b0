"""The delivery queue's vocabulary: a delivery (one message) and its milestones, what happened to it,
and what a planning round did. Plain data, shared by the announcer and the store engines.

A delivery is written 'planned' before anything is posted, claimed 'sending' (with its nonce) just
before its POST and marked 'sent' (with the message id) after it, so a crash or a restart can tell
what may already be in the channel; 'failed' is final for that message.

In an announcement channel of a server that publishes (`/settings publish on`), a post is published
after it is made (crossposted to the servers that Follow the channel). Discord allows about 10 a
channel an hour, so a post may wait to be published: its `publish` state is kept with the delivery
('pending' until `publish_at`), and a restart publishes it then.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from bot.model import Milestone

PLANNED, SENDING, SENT, FAILED = "planned", "sending", "sent", "failed"
# A delivery's publishing: none wanted (None), to do, done, refused by Discord, or turned off meanwhile.
PUBLISH_PENDING, PUBLISHED, PUBLISH_REFUSED, PUBLISH_SKIPPED = "pending", "published", "refused", "skipped"


@dataclass(frozen=True, slots=True)
class Item:
    """A milestone in a delivery, as the post shows it now."""

    milestone: Milestone
    revision: int
    retracted: bool
    milestone_id: int = 0


@dataclass
class Job:
    """A delivery to work on: send it, find it after a crash, or edit it."""

    id: int
    guild_id: int
    channel_id: int
    group_key: str
    nonce: str
    state: str
    message_id: int | None
    mention_role_id: int | None
    attempts: int
    sending_at: datetime | None
    edit: bool
    items: list[Item] = field(default_factory=list)
    language: str = "en"  # of the post: its server's (bot.announcer.policy.Policy.post_language)
    publish: str | None = None  # the post's publishing (see PUBLISH_*)
    publishes: bool = False  # its server publishes posts in announcement channels (/settings publish)

    @property
    def digest(self) -> bool:
        return self.group_key.startswith("digest|")

    @property
    def to_publish(self) -> bool:
        """A post made and waiting to be published."""
        return self.state == SENT and self.publish == PUBLISH_PENDING


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a job. `state` None: leave it as it is (only record the error / the time)."""

    job_id: int
    state: str | None
    message_id: int | None = None
    items: tuple[tuple[int, int, bool], ...] = ()  # (milestone id, revision, retracted) as posted
    error: str | None = None
    retry_at: datetime | None = None
    attempts: int | None = None  # set for edits (a post's attempts are counted when it is claimed)
    publish: str | None = None  # a new publishing state (None: leave it as it is)
    publish_at: datetime | None = None  # when a 'pending' publishing is due


@dataclass
class PlanReport:
    """What one planning round did."""

    stale: int = 0  # pending milestones of a period older than the newest: skipped, never posted
    planned: int = 0  # milestones handed to at least one channel
    unwanted: int = 0  # pending milestones no channel wants
    deliveries: int = 0  # new deliveries (messages) created
    joined: int = 0  # items added to a delivery not sent yet (the same title and period)


@dataclass(frozen=True, slots=True)
class PostingHalt:
    """Posting stopped for the whole bot until a restart (e.g. Discord rejected its token)."""

    reason: str
    since: datetime


def new_nonce() -> str:
    """Discord takes nonces of up to 25 characters; this one also marks the post (see posts.marker_url)."""
    return "cb" + secrets.token_hex(10)
