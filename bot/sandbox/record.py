"""What the bot did, as the tests and the sandbox read it back: the messages it sent (current after edits), when,
and waits on conditions (a message sent, an inline query answered) with a ceiling and a clear failure."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable

from bot.sandbox.protocol import JSONDict


class Record:
    """The record of the bot's calls; mixed into ``FakeTelegram``, which writes it."""

    _sent: list[JSONDict]
    _sent_at: list[float]
    _messages: dict[int, dict[int, JSONDict]]
    _bot_sent: asyncio.Event
    _inline_answered: asyncio.Event
    _refusals: list[tuple[str, str]]
    inline_answers: dict[str, JSONDict]
    requests: list[tuple[str, JSONDict]]

    def sent(self, chat_id: int | None = None) -> list[JSONDict]:
        """Messages the bot sent, current after edits, with any keyboard (Telegram echoes only inline ones)."""
        return [copy.deepcopy(m) for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    def sent_count(self, chat_id: int | None = None) -> int:
        """How many messages the bot sent (to ``chat_id``): ``len(sent())`` without copying them, for load
        benchmarks that ask many times a second and share the bot's CPU."""
        return len(self._sent) if chat_id is None else sum(1 for m in self._sent if m["chat"]["id"] == chat_id)

    def messages(self, chat_id: int) -> list[JSONDict]:
        """Every message in the chat, the person's and the bot's, in order."""
        return [copy.deepcopy(m) for _, m in sorted(self._messages.get(chat_id, {}).items())]

    def sent_times(self, chat_id: int) -> list[float]:
        """``time.perf_counter()`` at which each of ``sent(chat_id)`` arrived: for latency benchmarks."""
        return [t for m, t in zip(self._sent, self._sent_at, strict=True) if m["chat"]["id"] == chat_id]

    async def wait_for_sent(self, chat_id: int, count: int, timeout: float = 10.0) -> list[JSONDict]:
        def shown() -> str:
            sent = self.sent(chat_id)
            texts = [m.get("text") or m.get("caption") or [k for k in ("photo", "document") if k in m] for m in sent]
            return f"the bot sent {len(sent)} of {count} messages to chat {chat_id} within {timeout}s: {texts}"

        await self._wait(self._bot_sent, lambda: len(self.sent(chat_id)) >= count, timeout, shown)
        return self.sent(chat_id)

    async def wait_for_inline_answer(self, query_id: str, timeout: float = 10.0) -> JSONDict:
        """What the bot answered to an inline query: its parameters (results, cache_time, is_personal, button)."""
        await self._wait(self._inline_answered, lambda: query_id in self.inline_answers, timeout,
                         lambda: f"the bot did not answer inline query {query_id} within {timeout}s")
        return copy.deepcopy(self.inline_answers[query_id])

    async def _wait(self, event: asyncio.Event, done: Callable[[], bool], timeout: float,
                    failure: Callable[[], str]) -> None:
        """Until ``done()``, woken by ``event`` (set whenever the bot does that kind of thing)."""
        deadline = time.monotonic() + timeout
        while not done():
            if (remaining := deadline - time.monotonic()) <= 0:
                raise TimeoutError(f"{failure()}; refused requests: {self._refusals[-5:]}; "
                                   f"last calls: {[m for m, _ in self.requests[-8:]]}")
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
