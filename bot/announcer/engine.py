"""The delivery engine: drains the outbox into channels, each milestone posted once per channel that
wants it, never lost, never repeated, edited when its chart is corrected.

The rules (who wants what, grouping) are in `policy`, pacing and what an error means in `pacing`, the
posts in `posts`, the state in the store's delivery queue; this module only moves jobs through Discord:

    plan (pending milestones -> deliveries) -> load due deliveries -> claim a batch ('sending')
      -> workers: one job per channel at a time, a shared token bucket -> record outcomes in batches

A delivery is marked 'sending' (with its nonce) before its POST and 'sent' (with the message id) after
it. A job loaded in state 'sending' may already be in the channel (a crash, a timeout), so it is looked
for in the channel's recent messages first, and resent with the same nonce only when absent (Discord
also drops a repeat of a nonce for a few minutes). Forbidden / Unknown Channel marks the channel broken
(shown in /watch list); 429, 5xx and network errors are retried with backoff; other errors fail that
one message. A slow or dead channel holds up one worker, never the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord.ext import commands

from bot.announcer import pacing, posts
from bot.announcer.jobs import FAILED, PLANNED, SENDING, SENT, Job, Outcome
from bot.compat import amortize_bucket_sweep, send_prepared

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AnnouncerConfig:
    """Knobs; a bot may carry one as `bot.announce_config` (tests use short times)."""

    rate: float = 48.0  # requests per second for all of the announcer's REST calls (Discord: 50 in all)
    burst: float = 24.0
    step: int = 24  # requests released together (see TokenBucket): one wake-up per step, not per post
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


class Announcer:
    """The delivery engine. `start()` / `stop()`; `wake()` after new milestones."""

    def __init__(self, bot: commands.Bot, config: AnnouncerConfig | None = None) -> None:
        self.bot = bot
        self.config = config or AnnouncerConfig()
        self.bucket = pacing.TokenBucket(self.config.rate, self.config.burst, self.config.step)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: deque[Job] = deque()  # loaded, not claimed yet
        self._queue: asyncio.Queue[Job] = asyncio.Queue(self.config.claim)  # claimed, for the workers
        self._inflight: set[int] = set()  # loaded and not yet recorded: never loaded twice
        self._busy: set[int] = set()  # channels a worker is posting to
        self._parked: dict[int, deque[Job]] = defaultdict(deque)  # jobs waiting for their channel
        self._broken: set[tuple[int, int]] = set()
        self._outcomes: list[Outcome] = []
        self._fed = asyncio.Event()
        self._edit_cursor = now() - timedelta(days=3650)
        self._posts = posts.PostCache()
        self.sent = 0
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

    # --- the main loop: plan, flag edits, load --------------------------------------------------

    async def _main(self) -> None:
        await self.bot.wait_until_ready()
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

    async def round(self) -> None:
        """One look at the outbox: plan new milestones, flag revised posts, load what is due."""
        config, store = self.config, await self._store()
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
        cursor, self._edit_cursor = self._edit_cursor, now() - timedelta(seconds=2)
        edits = await store.deliveries.flag_edits(cursor)
        if edits:
            log.info("%d posts to edit: their milestones were revised or withdrawn", edits)
        if len(self._ready) + self._queue.qsize() < config.load // 2:
            jobs = await store.deliveries.due_jobs(limit=config.load, skip=set(self._inflight))
            for job in jobs:
                self._inflight.add(job.id)
                self._ready.append(job)
            if jobs:
                self._fed.set()
        self.rounds += 1

    # --- claiming: mark a batch 'sending' before any of it is posted ------------------------------

    async def _feed(self) -> None:
        """Claim loaded jobs a batch at a time; the bounded queue holds the feed back while workers are busy,
        so at most two batches are ever claimed and not yet posted (the ones to look for after a crash)."""
        while True:
            await self._fed.wait()
            try:
                while self._ready:
                    batch = [self._ready.popleft() for _ in range(min(self.config.claim, len(self._ready)))]
                    batch = [job for job in batch if not self._drop_if_broken(job)]
                    to_send = [job.id for job in batch if not job.edit]
                    if to_send:
                        store = await self._store()
                        await store.deliveries.begin_sending(to_send)
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

    def _drop_if_broken(self, job: Job) -> bool:
        if (job.guild_id, job.channel_id) in self._broken:
            self._inflight.discard(job.id)  # mark_broken already failed it in the database
            return True
        return False

    # --- workers: one job per channel at a time ---------------------------------------------------

    async def _worker(self) -> None:
        while True:
            first = await self._queue.get()
            if self._drop_if_broken(first):
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
        try:
            return await self._run_job(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a surprise: this job waits, the others go on
            log.exception("delivery %d to channel %d failed", job.id, job.channel_id)
            return self._retry(job, f"{type(exc).__name__}: {exc}")

    async def _run_job(self, job: Job) -> Outcome | None:
        try:
            if job.edit:
                return await self._edit(job)
            if job.state == SENDING:
                found = await self._find(job)
                if found is not None:
                    log.info(
                        "delivery %d was already posted (message %d): not posting it again", job.id, found
                    )
                    return self._sent(job, found, shown=True)
            if all(item.retracted for item in job.items):
                return Outcome(job.id, FAILED, error="withdrawn before it was posted")
            message_id = await self._post(job)
            self.sent += 1
            return self._sent(job, message_id)
        except discord.RateLimited as exc:
            return self._retry(job, f"rate limited for {exc.retry_after:.0f} s", after=exc.retry_after)
        except discord.HTTPException as exc:
            return await self._http_error(job, exc)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return self._retry(job, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def _post(self, job: Job) -> int:
        live = [item for item in job.items if not item.retracted]  # a first post leaves withdrawn news out
        message = self._posts.message(
            live,
            digest=job.digest,
            nonce=job.nonce,
            mention_role_id=job.mention_role_id,
            language=job.language,
        )
        await self.bucket.acquire()
        async with asyncio.timeout(self.config.send_timeout):
            return await send_prepared(self.bot, job.channel_id, message)

    async def _find(self, job: Job) -> int | None:
        """The post of a 'sending' job, if it reached the channel: by the bot, carrying the nonce."""
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        since = now() - timedelta(minutes=10)
        if job.sending_at:
            since = min(since, job.sending_at - timedelta(minutes=1))
        me = self.bot.user.id if self.bot.user else None
        await self.bucket.acquire()
        after = discord.Object(discord.utils.time_snowflake(since))
        async with asyncio.timeout(self.config.send_timeout):
            async for message in channel.history(limit=self.config.history_limit, after=after):
                if message.author.id == me and posts.carries(message, job.nonce):
                    return message.id
        return None

    async def _edit(self, job: Job) -> Outcome:
        post = posts.render(
            job.items,
            digest=job.digest,
            nonce=job.nonce,
            mention_role_id=job.mention_role_id,
            language=job.language,
        )
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        await self.bucket.acquire()
        try:
            async with asyncio.timeout(self.config.send_timeout):
                await channel.get_partial_message(job.message_id or 0).edit(
                    content=post.content, embed=post.embed, allowed_mentions=discord.AllowedMentions.none()
                )
        except discord.NotFound as exc:
            if exc.code != 10008:  # Unknown Message: deleted by a moderator; nothing left to correct
                raise
            return self._sent(job, None, error="the post was deleted: not corrected")
        log.info("edited post %s in channel %d: a milestone was revised", job.message_id, job.channel_id)
        return self._sent(job, None)

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
        retry_at = now() + timedelta(seconds=after)
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
