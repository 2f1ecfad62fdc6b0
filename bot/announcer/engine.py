"""The delivery engine: drains the outbox into channels, each milestone posted once per channel that
wants it, never lost, never repeated, edited when its chart is corrected, published where the server
asked for it.

The rules (who wants what, grouping) are in `policy`, pacing, pauses and what an error means in
`pacing`, what the bot needs in a channel in `permissions`, the posts in `posts`, the state in the
store's delivery queue; this module only moves jobs through Discord:

    plan (pending milestones -> deliveries) -> load due deliveries -> claim a batch ('sending')
      -> workers: one job per channel at a time; every REST call through one gate -> record outcomes

A delivery is marked 'sending' (with its nonce) before its POST and 'sent' (with the message id) after
it. A job loaded in state 'sending' may already be in the channel (a crash, a timeout, a 5xx), so it is
looked for in the channel's recent messages first, and resent with the same nonce only when absent
(Discord also drops a repeat of a nonce for a few minutes).

Every REST call passes one gate (`_call`), as Discord documents its failures:
- a permit from the REST budget (`pacing.RateBudget`): no window of one second holds more calls than
  the budget, so the bot never draws a global 429 (on ChartBot the client's `pacing.RestGate` takes
  that permit for every REST call the bot makes, posts or not);
- 401 (the token was revoked): posting stops at once for the whole bot, until a restart with a good
  token; deliveries stay pending; one error in the log, and the store keeps it for `chartbot status`;
- 5xx, a Cloudflare ban (429 without `Via`), no connection, a timeout: the breaker pauses every call,
  with backoff, then probes; the delivery at hand is tried again when Discord answers, its attempts
  untouched;
- the invalid requests of the last 10 minutes (401, 403, 429) are counted: near the budget, posting
  is held until the window allows.

What discord.py (2.5-2.7, `HTTPClient.request`) raises for each, and so what is caught here:
- 401: `HTTPException` (status 401, not `Forbidden`), at once.
- 429 without `Via` (or with a body that is not JSON): `HTTPException` (status 429), at once - "banned by
  Cloudflare, more than likely". Its `Retry-After` header, when there is one, sets the pause.
- 429 with `Via`: discord.py sleeps `retry_after` and tries again (5 tries in all, then `HTTPException`
  429); when `retry_after` exceeds the client's `max_ratelimit_timeout` (ChartBot: 60 s), it raises
  `RateLimited` (not an `HTTPException`) at once instead - how a publish hears "wait an hour".
- 500, 502, 504, 524: discord.py tries 5 times, sleeping 1, 3, 5 and 7 s, then `DiscordServerError`;
  503 and any other 5xx: `DiscordServerError` at once. Both are `HTTPException`s with `status >= 500`.
- no connection: aiohttp's `ClientError`s / `OSError` (a reset connection is retried by discord.py first).

Before a channel is posted to, the bot's permissions there are read from discord.py's cache: a missing
one blocks the channel with its reason (deliveries stay pending, not failed) until each round finds
it back. Forbidden / Unknown Channel from Discord still marks the channel broken for good (shown in
/watch list); a 429 with `Via` (after discord.py's own retries) is retried with backoff; other errors
fail that one message. A slow or dead channel holds up one worker, never the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import discord
from discord.ext import commands

from bot.announcer import pacing, permissions, posts
from bot.announcer.jobs import (
    FAILED,
    PLANNED,
    PUBLISH_PENDING,
    PUBLISH_REFUSED,
    PUBLISH_SKIPPED,
    PUBLISHED,
    SENDING,
    SENT,
    Job,
    Outcome,
)
from bot.compat import amortize_bucket_sweep, send_prepared
from bot.store import PLAN, ShardScope

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_REJECTED = "Discord rejected the bot's token (401 Unauthorized)"
ALREADY_CROSSPOSTED = 40033  # Discord: "This message has already been crossposted"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AnnouncerConfig:
    """Knobs; a bot may carry one as `bot.announce_config` (tests use short times)."""

    rate: float = 48.0  # REST calls per second for all of the announcer's calls (Discord: 50 in all)
    step: int = 24  # permits released together (see pacing.WindowBudget): one wake-up per step
    workers: int = 24  # channels served at once: a whole step
    interval: float = 5.0  # seconds between looks at the outbox when nobody wakes the announcer
    hold: float = 30.0  # an instant post waits this long after its latest news for more of the same
    digest_hold: float = 600.0  # a digest waits until its period has been quiet this long
    settle: float = 0.0  # leave milestones younger than this for the next round
    claim: int = 48  # deliveries marked 'sending' at once (after a crash, at most 2x this to look for)
    load: int = 2000  # deliveries read per round
    flush_every: float = 1.0  # seconds between writes of outcomes (a crash loses none: see _find)
    send_timeout: float = 30.0
    max_attempts: int = 8
    retry_base: float = 5.0
    retry_cap: float = 900.0
    history_limit: int = 100  # recent messages searched for a post that may have been made
    pause_base: float = 5.0  # the first pause of all posting when Discord is down (then doubling)
    pause_cap: float = 300.0
    invalid_budget: int = 1000  # invalid requests allowed in 10 minutes (Discord bans at 10,000)
    invalid_margin: int = 100  # posting is held this far below the budget (at least `workers`: one per call)
    publish_retry: float = 600.0  # a publish refused with a 429 that gave no retry_after waits this long
    clock: Callable[[], float] = time.monotonic  # pauses and the invalid-request window
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    now: Callable[[], datetime] = now  # due times of retries and publishing


class Halted(Exception):
    """Posting is stopped for the whole bot (the token was rejected)."""


class Outage(Exception):
    """Discord did not answer (5xx, Cloudflare, no connection): the breaker is tripped.
    `maybe_done`: the call may have had its effect (a post may exist) - everything but a Cloudflare ban."""

    def __init__(self, reason: str, *, maybe_done: bool) -> None:
        super().__init__(reason)
        self.maybe_done = maybe_done


class Announcer:
    """The delivery engine. `start()` / `stop()`; `wake()` after new milestones.

    `budget`: where REST permits come from (default: `config.rate` calls a second in this process).
    """

    def __init__(
        self,
        bot: commands.Bot,
        config: AnnouncerConfig | None = None,
        *,
        budget: pacing.RateBudget | None = None,
    ) -> None:
        self.bot = bot
        self.config = config = config or AnnouncerConfig()
        self.budget: pacing.RateBudget = budget or pacing.WindowBudget.per_second(
            config.rate, step=config.step
        )
        self.breaker = pacing.Breaker(
            base=config.pause_base, cap=config.pause_cap, clock=config.clock, sleep=config.sleep
        )
        counted = getattr(bot, "invalid_requests", None)  # the bot's own count of every REST answer
        self.invalid: pacing.InvalidRequests = (
            counted
            if isinstance(counted, pacing.InvalidRequests)
            else pacing.InvalidRequests(clock=config.clock)
        )
        self.halt: str | None = None  # why posting stopped for good (until a restart)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: deque[Job] = deque()  # loaded, not claimed yet
        self._queue: asyncio.Queue[Job] = asyncio.Queue(config.claim)  # claimed, for the workers
        self._inflight: set[int] = set()  # loaded and not yet recorded: never loaded twice
        self._busy: set[int] = set()  # channels a worker is posting to
        self._parked: dict[int, deque[Job]] = defaultdict(deque)  # jobs waiting for their channel
        self._broken: set[tuple[int, int]] = set()
        self._blocked: dict[tuple[int, int], str] = {}  # waiting for a permission: the reason
        self._publish_wait: dict[int, datetime] = {}  # channel -> when Discord allows publishing again
        self._recheck_due = True  # blocked channels to re-check at the next round
        self._rechecked_at = 0.0
        self._outcomes: list[Outcome] = []
        self._fed = asyncio.Event()
        self._edit_cursor = config.now() - timedelta(days=3650)
        self._posts = posts.PostCache()
        self.sent = 0
        self.published = 0
        self.rounds = 0

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        amortize_bucket_sweep(self.bot.http)
        spawn = asyncio.get_running_loop().create_task
        self._tasks = [spawn(self._main(), name="announce-main"), spawn(self._feed(), name="announce-feed")]
        self._tasks += [
            spawn(self._worker(), name=f"announce-worker-{i}") for i in range(self.config.workers)
        ]
        self._tasks.append(spawn(self._flusher(), name="announce-flush"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self._flush()

    def wake(self) -> None:
        self._wake.set()

    async def _store(self) -> Store:
        get_store = getattr(self.bot, "get_store", None)
        return await get_store() if get_store else self.bot.store  # type: ignore[attr-defined]

    @property
    def busy(self) -> bool:
        """Jobs in memory not recorded yet."""
        return bool(self._inflight or self._outcomes)

    # --- the main loop: plan, flag edits, re-check blocked channels, load --------------------------

    async def _main(self) -> None:
        await self.bot.wait_until_ready()
        await self._forget_old_halt()
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("announcer round failed; trying again in %.0f s", self.config.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval)
            self._wake.clear()

    async def _forget_old_halt(self) -> None:
        """This process logged in, so its token is good: a stop for a rejected token is over."""
        try:
            store = await self._store()
            old = await store.deliveries.halted()
            if old is not None:
                await store.deliveries.resume()
                log.info("posting resumes (it was stopped since %s: %s)", old.since.isoformat(), old.reason)
        except Exception:
            log.exception("could not read or clear the stored posting stop")

    async def round(self) -> None:
        """One look at the outbox: plan new milestones, flag revised posts, re-check channels that wait
        for a permission, load what is due."""
        if self.halt is not None:
            return
        config, store = self.config, await self._store()
        if self._plans():
            await self._plan(store)
        if self._recheck_due or config.clock() >= self._rechecked_at + config.interval:
            await self._recheck_blocked(store)
        if len(self._ready) + self._queue.qsize() < config.load // 2:
            jobs = await store.deliveries.due_jobs(
                limit=config.load,
                skip=set(self._inflight),
                at=config.now(),
                shards=self._shards(),
                member=self._member(),
            )
            for job in jobs:
                self._inflight.add(job.id)
                self._ready.append(job)
            if jobs:
                self._fed.set()
        self.rounds += 1

    async def _plan(self, store: Store) -> None:
        """Pending milestones into deliveries, and revised posts flagged for an edit."""
        config = self.config
        report = await store.deliveries.plan(
            hold=config.hold, digest_hold=config.digest_hold, settle=config.settle
        )
        if report.stale or report.deliveries or report.joined:
            log.info(
                "planned %d milestones into %d new posts (+%d joined); %d stale skipped, %d unwanted",
                report.planned,
                report.deliveries,
                report.joined,
                report.stale,
                report.unwanted,
            )
        cursor, self._edit_cursor = self._edit_cursor, config.now() - timedelta(seconds=2)
        edits = await store.deliveries.flag_edits(cursor)
        if edits:
            log.info("%d posts to edit: their milestones were revised or withdrawn", edits)

    # --- this process's part of a cluster (bot/cluster.py): all of it for a bot alone -------------

    def _plans(self) -> bool:
        """Does this process plan? In a cluster of processes one does (the bot's `holds(PLAN)`)."""
        holds = getattr(self.bot, "holds", None)
        return holds(PLAN) if holds is not None else True

    def _shards(self) -> ShardScope | None:
        """The shards whose servers this process posts for (None: every server)."""
        scope = getattr(self.bot, "shard_scope", None)
        return scope() if scope is not None else None

    def _member(self) -> int | None:
        """This process's number in the cluster, which its claims carry."""
        duties = getattr(self.bot, "duties", None)
        return duties.link.member_id if duties is not None else None

    async def _recheck_blocked(self, store: Store) -> None:
        """Channels waiting for a permission: posting resumes by itself once the cache shows it back.
        Every `interval` at most, and at once after a gateway event that may have changed permissions."""
        self._recheck_due, self._rechecked_at = False, self.config.clock()
        blocked = await store.guilds.blocked_everywhere()
        for (guild_id, channel_id), reason in blocked.items():
            known, problem = permissions.in_cache(self.bot, guild_id, channel_id)
            if known and problem is None:
                await store.guilds.unblock_channel(guild_id, channel_id)
                del blocked[(guild_id, channel_id)]
                log.info(
                    "channel %d of server %d: the bot may post there again (%s no more)",
                    channel_id,
                    guild_id,
                    reason,
                )
            elif problem is not None and problem != reason:
                await store.guilds.block_channel(guild_id, channel_id, problem)
                blocked[(guild_id, channel_id)] = problem
        self._blocked = dict(blocked)

    def permissions_changed(self) -> None:
        """A channel, role or the bot's member changed (gateway events): re-check blocked channels now."""
        self._recheck_due = True
        if self._blocked:
            self.wake()

    # --- claiming: mark a batch 'sending' before any of it is posted ------------------------------

    async def _feed(self) -> None:
        """Claim loaded jobs a batch at a time; the bounded queue holds the feed back while workers are busy,
        so at most two batches are ever claimed and not yet posted (the ones to look for after a crash)."""
        while True:
            await self._fed.wait()
            try:
                while self._ready:
                    batch = [self._ready.popleft() for _ in range(min(self.config.claim, len(self._ready)))]
                    batch = [job for job in batch if not self._drop_if_stopped(job)]
                    to_send = [job.id for job in batch if job.state != SENT]
                    if to_send:
                        store = await self._store()
                        claimed = set(await store.deliveries.begin_sending(to_send, member=self._member()))
                        taken = [job for job in batch if job.state != SENT and job.id not in claimed]
                        for job in taken:  # another process took it (or it is done): not ours to post
                            self._inflight.discard(job.id)
                        batch = [job for job in batch if job.state == SENT or job.id in claimed]
                        claimed_at = self.config.now()
                        for job in batch:
                            if job.state != SENT and job.sending_at is None:
                                job.sending_at = claimed_at  # what a later search looks back to
                    for job in batch:
                        await self._queue.put(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not claim deliveries; trying again shortly")
                await asyncio.sleep(1.0)
                continue
            self._fed.clear()
            if not self._ready:
                self.wake()  # more may be due: look now rather than after the interval

    def _drop_if_stopped(self, job: Job) -> bool:
        """Not claimed after all: its channel is broken (its deliveries failed in the database), it waits
        for a permission, or posting stopped (they stay as they are)."""
        key = (job.guild_id, job.channel_id)
        if key in self._broken or key in self._blocked or self.halt is not None:
            self._inflight.discard(job.id)
            return True
        return False

    # --- workers: one job per channel at a time ---------------------------------------------------

    async def _worker(self) -> None:
        while True:
            first = await self._queue.get()
            if (first.guild_id, first.channel_id) in self._broken:
                self._inflight.discard(first.id)  # mark_broken already failed it in the database
                continue
            channel = first.channel_id
            if channel in self._busy:  # another worker posts there: it takes this one next, in order
                self._parked[channel].append(first)
                continue
            self._busy.add(channel)
            job: Job | None = first
            try:
                while job is not None:
                    outcome = await self._attempt(job)
                    if outcome is not None:
                        self._outcomes.append(outcome)
                    job = self._next_parked(channel)
            finally:
                self._busy.discard(channel)

    def _next_parked(self, channel: int) -> Job | None:
        parked = self._parked.get(channel)
        if not parked:
            self._parked.pop(channel, None)
            return None
        return parked.popleft()

    async def _attempt(self, job: Job) -> Outcome | None:
        while True:
            try:
                return await self._run_job(job)
            except asyncio.CancelledError:
                raise
            except Halted:
                return self._release(job, f"waiting: {self.halt}")
            except Outage as outage:
                if outage.maybe_done and job.state == PLANNED:
                    job.state = SENDING  # the post may exist: look for it before posting again
                continue  # the next call waits for the breaker; no attempt is counted
            except Exception as exc:  # a bug or a surprise: this job waits, the others go on
                log.exception("delivery %d to channel %d failed", job.id, job.channel_id)
                return self._retry(job, f"{type(exc).__name__}: {exc}")

    async def _run_job(self, job: Job) -> Outcome | None:
        if (job.guild_id, job.channel_id) in self._broken:
            self._inflight.discard(job.id)
            return None
        if self.halt is not None:
            raise Halted
        _, problem = permissions.in_cache(self.bot, job.guild_id, job.channel_id)
        if problem is not None:
            return await self._block(job, problem)
        try:
            if job.state == SENT:
                return await self._update(job)
            if job.state == SENDING:
                found = await self._find(job)
                if found is not None:
                    log.info(
                        "delivery %d was already posted (message %d): not posting it again", job.id, found
                    )
                    return await self._posted(job, found, shown=True)
            if all(item.retracted for item in job.items):
                return Outcome(job.id, FAILED, error="withdrawn before it was posted")
            message_id = await self._post(job)
            self.sent += 1
            return await self._posted(job, message_id)
        except discord.RateLimited as exc:
            return self._retry(job, f"rate limited for {exc.retry_after:.0f} s", after=exc.retry_after)
        except discord.HTTPException as exc:
            return await self._http_error(job, exc)

    # --- the gate every REST call passes ------------------------------------------------------------

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """Make one REST call: when posting is not stopped, paused or held, with a permit of the budget;
        its answer tells the breaker whether Discord is there."""
        ticket = await self._pass()
        try:
            async with self._permit(), asyncio.timeout(self.config.send_timeout):
                result = await request()
        except discord.HTTPException as exc:
            await self._answered(ticket, exc)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            self.breaker.trip(ticket, reason)
            raise Outage(reason, maybe_done=True) from exc
        except BaseException:
            self.breaker.done(ticket)
            raise
        self.breaker.ok()
        return result

    def _permit(self) -> contextlib.AbstractAsyncContextManager[object]:
        """A permit of the budget for one call, unless the client's gate takes one for every call."""
        gate = getattr(self.bot, "rest_gate", None)
        if isinstance(gate, pacing.RestGate) and gate.budget is self.budget:
            return contextlib.nullcontext()
        return self.budget.permit()  # type: ignore[return-value]

    async def _pass(self) -> int:
        if self.halt is not None:
            raise Halted
        ceiling = self.config.invalid_budget - max(self.config.invalid_margin, self.config.workers)
        if self.invalid.count() >= ceiling:
            until = self.invalid.below_at(ceiling)  # the counter and the breaker share one clock
            if self.breaker.held_until <= self.breaker.clock():  # a new hold: one line in the log
                log.warning(
                    "%d invalid requests (401/403/429) in the last 10 minutes: posting held for %.0f s "
                    "(chartbot stays under %d; Discord bans an IP at 10,000)",
                    self.invalid.count(),
                    until - self.invalid.clock(),
                    self.config.invalid_budget,
                )
            self.breaker.hold(until)
        breaker = self.breaker
        ticket = breaker.ticket if breaker.passable() else await breaker.wait()
        if self.halt is not None:
            self.breaker.done(ticket)
            raise Halted
        return ticket

    async def _answered(self, ticket: int, exc: discord.HTTPException) -> None:
        """Discord (or Cloudflare in front of it) answered with an error: what it means for all posting."""
        response = exc.response
        headers = getattr(response, "headers", None) or {}
        if not self.invalid.traced:
            self.invalid.note(exc.status, headers.get("X-RateLimit-Scope"))
        if exc.status == 401:
            self.breaker.ok()
            await self._stop_posting(TOKEN_REJECTED)
            raise Halted from exc
        if exc.status == 429 and not headers.get(
            "Via"
        ):  # discord.py: "banned by Cloudflare, more than likely"
            pause = _seconds(headers.get("Retry-After"))
            self.breaker.trip(ticket, "429 without Via: Cloudflare is refusing this IP", pause)
            raise Outage("Cloudflare ban", maybe_done=False) from exc
        if exc.status >= 500:
            self.breaker.trip(ticket, f"{exc.status} {getattr(response, 'reason', '') or ''}".strip())
            raise Outage(f"{exc.status}", maybe_done=True) from exc
        self.breaker.ok()

    async def _stop_posting(self, reason: str) -> None:
        """Stop all posting until a restart: jobs in memory go back as they were, nothing is lost."""
        if self.halt is not None:
            return
        self.halt = reason
        log.error(
            "%s: all posting stopped, nothing is lost (deliveries stay pending). Reset the token in the "
            "Developer Portal, set DISCORD_TOKEN and restart chartbot",
            reason,
        )
        for job in self._ready:
            self._inflight.discard(job.id)
        self._ready.clear()
        try:
            store = await self._store()
            await store.deliveries.halt(reason)
        except Exception:
            log.exception("could not record that posting stopped")

    # --- the calls ----------------------------------------------------------------------------------

    async def _post(self, job: Job) -> int:
        live = [item for item in job.items if not item.retracted]  # a first post leaves withdrawn news out
        message = self._posts.message(
            live,
            digest=job.digest,
            nonce=job.nonce,
            mention_role_id=job.mention_role_id,
            language=job.language,
        )
        return await self._call(lambda: send_prepared(self.bot, job.channel_id, message))

    async def _find(self, job: Job) -> int | None:
        """The post of a 'sending' job, if it reached the channel: by the bot, carrying the nonce."""
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        since = self.config.now() - timedelta(minutes=10)
        if job.sending_at:
            since = min(since, job.sending_at - timedelta(minutes=1))
        me = self.bot.user.id if self.bot.user else None
        after = discord.Object(discord.utils.time_snowflake(since))

        async def search() -> int | None:
            async for message in channel.history(limit=self.config.history_limit, after=after):
                if message.author.id == me and posts.carries(message, job.nonce):
                    return message.id
            return None

        return await self._call(search)

    async def _update(self, job: Job) -> Outcome | None:
        """A post made already: edit it (a milestone was revised) and/or publish it."""
        outcome = await self._edit(job) if job.edit else None
        if job.to_publish:
            if job.publishes and permissions.is_announcement_channel(self.bot, job.guild_id, job.channel_id):
                publish, at = await self._publish(job, job.message_id or 0)
            else:
                publish, at = PUBLISH_SKIPPED, None  # turned off, or no longer an announcement channel
            outcome = replace(outcome or Outcome(job.id, None), publish=publish, publish_at=at)
        return outcome

    async def _edit(self, job: Job) -> Outcome:
        post = posts.render(
            job.items,
            digest=job.digest,
            nonce=job.nonce,
            mention_role_id=job.mention_role_id,
            language=job.language,
        )
        message = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id).get_partial_message(
            job.message_id or 0
        )
        try:
            await self._call(
                lambda: message.edit(
                    content=post.content, embed=post.embed, allowed_mentions=discord.AllowedMentions.none()
                )
            )
        except discord.NotFound as exc:
            if exc.code != 10008:  # Unknown Message: deleted by a moderator; nothing left to correct
                raise
            return self._sent(job, None, error="the post was deleted: not corrected")
        log.info("edited post %s in channel %d: a milestone was revised", job.message_id, job.channel_id)
        return self._sent(job, None)

    async def _posted(self, job: Job, message_id: int, *, shown: bool = False) -> Outcome:
        """Posted (or found after a crash): published too, where the server asked for it."""
        outcome = self._sent(job, message_id, shown=shown)
        if job.publishes and permissions.is_announcement_channel(self.bot, job.guild_id, job.channel_id):
            publish, at = await self._publish(job, message_id)
            outcome = replace(outcome, publish=publish, publish_at=at)
        return outcome

    async def _publish(self, job: Job, message_id: int) -> tuple[str, datetime | None]:
        """Publish a post to the servers that Follow its channel: (publish state, when to try again).

        Discord allows a few an hour per channel: a 429 names when, and the post waits until then (the
        delivery keeps the time; a restart publishes it). Anything else Discord refuses leaves the post
        where it is, unpublished.
        """
        channel, moment = job.channel_id, self.config.now()
        allowed = self._publish_wait.get(channel)
        if allowed is not None and allowed > moment:
            return PUBLISH_PENDING, allowed  # this channel's allowance is spent: no 429 to draw
        message = self.bot.get_partial_messageable(channel, guild_id=job.guild_id).get_partial_message(
            message_id
        )
        try:
            await self._call(message.publish)
        except discord.RateLimited as exc:
            return self._publish_later(job, exc.retry_after)
        except discord.HTTPException as exc:
            if exc.code == ALREADY_CROSSPOSTED:  # published before a crash, not recorded
                return PUBLISHED, None
            if exc.status == 429:  # discord.py waited and retried already: wait longer now
                return self._publish_later(job, self.config.publish_retry)
            log.warning(
                "could not publish post %d in channel %d (%s %s): it stays in the channel, unpublished",
                message_id,
                channel,
                exc.status,
                exc.text or "",
            )
            return PUBLISH_REFUSED, None
        except (Outage, Halted):
            return PUBLISH_PENDING, moment  # posted; published once Discord answers (or after a restart)
        self._publish_wait.pop(channel, None)
        self.published += 1
        return PUBLISHED, None

    def _publish_later(self, job: Job, seconds: float) -> tuple[str, datetime]:
        at = self.config.now() + timedelta(seconds=seconds)
        self._publish_wait[job.channel_id] = at
        log.info(
            "channel %d: Discord allows no more publishing for %.0f s; its posts wait to be published",
            job.channel_id,
            seconds,
        )
        return PUBLISH_PENDING, at

    # --- outcomes ---------------------------------------------------------------------------------

    @staticmethod
    def _sent(
        job: Job,
        message_id: int | None,
        error: str | None = None,
        *,
        shown: bool = False,
        attempts: int | None = None,
    ) -> Outcome:
        """Posted or edited: the items as the message shows them (`shown`: found after a crash, so
        every item is in it as first posted; a withdrawn one is then corrected by an edit)."""
        items = tuple((i.milestone_id, i.revision, i.retracted and not shown) for i in job.items)
        if job.edit and attempts is None:
            attempts = 0  # an edit's failures are counted afresh for the next edit
        return Outcome(job.id, SENT, message_id=message_id, items=items, error=error, attempts=attempts)

    @staticmethod
    def _release(job: Job, error: str) -> Outcome:
        """Back as it was loaded, its claim not counted as an attempt: it never reached Discord (or, as
        'sending', it is looked for first next time)."""
        if job.state == SENT:
            return Outcome(job.id, None, error=error)
        state = SENDING if job.state == SENDING else PLANNED
        return Outcome(job.id, state, error=error, attempts=job.attempts)

    def _retry(
        self, job: Job, error: str, *, after: float | None = None, state: str | None = None
    ) -> Outcome:
        """Try again later with backoff; after `max_attempts`, give up on this one message."""
        attempts = job.attempts + 1  # a post's attempt was counted when it was claimed; an edit's here
        edit_attempts = attempts if job.edit else None
        if attempts >= self.config.max_attempts:
            log.warning(
                "delivery %d to channel %d given up after %d attempts: %s",
                job.id,
                job.channel_id,
                attempts,
                error,
            )
            if job.edit:
                return self._sent(job, None, error=f"edit given up: {error}", attempts=0)
            return Outcome(job.id, FAILED, error=f"gave up: {error}")
        if after is None:
            after = pacing.backoff(attempts, base=self.config.retry_base, cap=self.config.retry_cap)
        log.info("delivery %d to channel %d: %s; retrying in %.1f s", job.id, job.channel_id, error, after)
        retry_at = self.config.now() + timedelta(seconds=after)
        return Outcome(job.id, state, error=error, retry_at=retry_at, attempts=edit_attempts)

    async def _http_error(self, job: Job, exc: discord.HTTPException) -> Outcome | None:
        status, code = exc.status, exc.code
        verdict = pacing.classify(status, code)
        error = f"{status} {exc.text or exc.response.reason}".strip()
        if verdict == pacing.BROKEN:
            reason = pacing.broken_reason(status, code, exc.text)
            await self._mark_broken(job, reason)
            return None
        if verdict == pacing.RETRY:
            return self._retry(job, error, state=PLANNED if status == 429 and not job.edit else None)
        log.warning("delivery %d to channel %d failed for good: %s", job.id, job.channel_id, error)
        if job.edit:
            return self._sent(job, None, error=f"edit failed: {error}")
        return Outcome(job.id, FAILED, error=error)

    async def _block(self, job: Job, reason: str) -> Outcome:
        """The bot lacks a permission in this channel: it waits (pending, not failed) until it is back."""
        key = (job.guild_id, job.channel_id)
        if self._blocked.get(key) != reason:
            log.warning(
                "cannot post in channel %d of server %d: %s; its posts wait until the permission is back",
                job.channel_id,
                job.guild_id,
                reason,
            )
            self._blocked[key] = reason
            store = await self._store()
            await store.guilds.block_channel(job.guild_id, job.channel_id, reason)
        return self._release(job, f"waiting: {reason}")

    async def _mark_broken(self, job: Job, reason: str) -> None:
        log.warning(
            "cannot post in channel %d of server %d: %s (marked broken)", job.channel_id, job.guild_id, reason
        )
        self._broken.add((job.guild_id, job.channel_id))
        store = await self._store()
        await store.guilds.mark_broken(job.guild_id, job.channel_id, reason)
        self._inflight.discard(job.id)
        for queued in [*self._ready, *self._parked.pop(job.channel_id, ())]:
            if queued.channel_id == job.channel_id:
                self._inflight.discard(queued.id)
        self._ready = deque(j for j in self._ready if j.channel_id != job.channel_id)

    def forget_broken(self, guild_id: int, channel_id: int) -> None:
        """An admin fixed the channel (see cogs/watch.py): post there again."""
        self._broken.discard((guild_id, channel_id))
        self._blocked.pop((guild_id, channel_id), None)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_every)
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not record delivery outcomes; keeping them for the next try")

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        outcomes, self._outcomes = self._outcomes, []
        try:
            store = await self._store()
            await store.deliveries.record(outcomes)
        except BaseException:
            self._outcomes[:0] = outcomes
            raise
        for outcome in outcomes:
            self._inflight.discard(outcome.job_id)
        if not self._ready and not self._inflight:
            self.wake()


def _seconds(header: str | None) -> float:
    try:
        return max(0.0, float(header)) if header else 0.0
    except ValueError:
        return 0.0
