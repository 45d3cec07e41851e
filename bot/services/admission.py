"""Who gets in, and in which order answers leave: a person's rate limit, one refusal a minute, and each chat's
answer order. All of it is per process (a replica keeps its own), in memory, and bounded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


class RateLimiter:
    """A sliding window per person: at most ``per_minute`` requests in any 60 seconds.

    People who have not asked for a minute are forgotten (a sweep at most once a minute), so the memory is
    bounded by who asked in the last minute or two, not by everyone who ever did.
    """

    WINDOW_S = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[int, deque[float]] = {}
        self._swept = -math.inf

    def check(self, user_id: int, now: float | None = None) -> float:
        """0 when allowed (and counted); otherwise seconds until the next request is allowed."""
        now = time.monotonic() if now is None else now
        self._sweep(now)
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= self.WINDOW_S:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return self.WINDOW_S - (now - hits[0])
        hits.append(now)
        return 0.0

    def __len__(self) -> int:
        """How many people it remembers."""
        return len(self._hits)

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.WINDOW_S:
            return
        self._swept = now
        for user_id in [u for u, hits in self._hits.items() if not hits or now - hits[-1] >= self.WINDOW_S]:
            del self._hits[user_id]


class RefusalThrottle:
    """At most one rate-limit refusal per person and chat a minute; the rest are only logged. Entries older
    than that are forgotten (a sweep at most once a minute): they no longer hold anything back."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last: dict[tuple[int, int], float] = {}
        self._swept = -math.inf

    def tell(self, chat_id: int, user_id: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._swept >= self.every_s:
            self._swept = now
            for old in [key for key, told in self._last.items() if now - told >= self.every_s]:
                del self._last[old]
        key = (chat_id, user_id)
        if now - self._last.get(key, -math.inf) < self.every_s:
            return False
        self._last[key] = now
        return True

    def __len__(self) -> int:
        return len(self._last)


class ChatOrder:
    """Answers in a chat go out in the order the requests came in, whatever finishes first.

    Each request takes a ticket when it arrives; before sending, it waits for the previous ticket of
    the same chat to be done (or for a timeout, so one stuck answer cannot silence a chat).
    """

    def __init__(self) -> None:
        self._tail: dict[int, asyncio.Future[None]] = {}

    def ticket(self, chat_id: int) -> Ticket:
        before = self._tail.get(chat_id)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tail[chat_id] = mine
        return Ticket(self, chat_id, before, mine)

    def _release(self, ticket: Ticket) -> None:
        if not ticket.mine.done():
            ticket.mine.set_result(None)
        if self._tail.get(ticket.chat_id) is ticket.mine:
            del self._tail[ticket.chat_id]


@dataclass
class Ticket:
    order: ChatOrder
    chat_id: int
    before: asyncio.Future[None] | None
    mine: asyncio.Future[None]

    async def wait_turn(self, timeout: float) -> None:
        if self.before is None or self.before.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.before), timeout)
        except TimeoutError:
            log.warning("chat %s: an earlier answer is late; answering out of order", self.chat_id)

    def done(self) -> None:
        self.order._release(self)
