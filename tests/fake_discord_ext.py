"""The fake Discord, plus what the announcer uses beyond it: message history, nonce deduplication and
slow channels.

- ``GET /channels/{id}/messages`` (``limit``, ``before``, ``after``), newest first, as Discord answers.
  Like Discord, messages read back carry no ``nonce``: only the answer to the POST does.
- ``enforce_nonce``: a second POST with the same nonce in the same channel within ``nonce_window``
  seconds answers the first message instead of posting again (``nonce_dedupe = False`` turns it off,
  to prove that the bot finds its post itself).
- ``channel_delay[channel_id] = seconds``: posts to that channel answer that much later.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fake_discord import FakeDiscord, Json, RecordedRequest

__all__ = ["DeliveryFake"]


class DeliveryFake(FakeDiscord):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nonce_dedupe = True
        self.nonce_window = 300.0
        self.channel_delay: dict[int, float] = {}
        self.deduplicated = 0
        """How many POSTs were answered with an earlier message because of their nonce."""
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}

    def _route_table(self) -> list:
        table = super()._route_table()
        history = ("GET", re.compile(r"/channels/(?P<cid>\d+)/messages$"), self._history)
        return [history, *table]

    async def _post_message(self, rec: RecordedRequest, cid: str) -> Json:
        delay = self.channel_delay.get(int(cid))
        if delay:
            await asyncio.sleep(delay)
        body: Json = rec.json or {}
        nonce = body.get("nonce")
        key = (int(cid), str(nonce))
        if nonce is not None and body.get("enforce_nonce") and self.nonce_dedupe:
            seen = self._nonces.get(key)
            if seen is not None and time.monotonic() - seen[1] < self.nonce_window:
                message = self.messages.get(seen[0])
                if message is not None and not message.deleted:
                    self.deduplicated += 1
                    return {**self._message_payload(message), "nonce": nonce}
        payload = await super()._post_message(rec, cid)
        if nonce is not None:
            self._nonces[key] = (int(payload["id"]), time.monotonic())
            payload["nonce"] = nonce
        return payload

    async def _history(self, rec: RecordedRequest, cid: str) -> list[Json]:
        self._channel_checked(cid, write=False)
        limit = max(1, min(int(rec.query.get("limit", 50)), 100))
        messages = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel_id == int(cid) and not m.deleted and not m.ephemeral
            ),
            key=lambda m: m.id,
        )
        if "after" in rec.query:
            after = int(rec.query["after"])
            chosen = [m for m in messages if m.id > after][:limit]
        else:
            before = int(rec.query.get("before", 2**63))
            chosen = [m for m in messages if m.id < before][-limit:]
        return [self._message_payload(m) for m in reversed(chosen)]

    def posts(self, channel_id: int) -> list[Any]:
        """Channel posts, oldest first (``sent_messages`` under a shorter name)."""
        return self.sent_messages(channel_id)
