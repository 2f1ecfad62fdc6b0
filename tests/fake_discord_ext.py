"""The fake Discord, plus what the announcer uses beyond it: nonce deduplication and slow channels.

- ``enforce_nonce``: a second POST with the same nonce in the same channel within ``nonce_window``
  seconds answers the first message instead of posting again (``nonce_dedupe = False`` turns it off,
  to prove that the bot finds its post itself).
- ``channel_delay[channel_id] = seconds``: posts to that channel answer that much later.

Message history (``GET /channels/{id}/messages``, empty without Read Message History) is in the base fake.
"""

from __future__ import annotations

import asyncio
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

    def posts(self, channel_id: int) -> list[Any]:
        """Channel posts, oldest first (``sent_messages`` under a shorter name)."""
        return self.sent_messages(channel_id)
