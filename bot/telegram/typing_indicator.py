"""One "typing..." indicator per chat, however many of its requests are being written at once.

Telegram shows a chat action for five seconds, or until the bot sends a message, so a chat waiting for
lyrics gets the action again every few seconds. Each request keeping its own loop sent as many actions
as the chat had requests waiting: in a flood most of the bot's Bot API calls, and most of its CPU, were
chat actions that showed nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Chat:
    task: asyncio.Task[None]
    holders: int = 1


class TypingIndicator:
    """Keeps the action on in a chat while at least one request there is being written."""

    def __init__(self, send: Callable[[int], Awaitable[object]], every_s: float = 4.5) -> None:
        self._send = send  # sends the chat action to one chat; errors are logged, never raised to a request
        self._every_s = every_s
        self._chats: dict[int, _Chat] = {}

    def active(self, chat_id: int) -> bool:
        return chat_id in self._chats

    @contextlib.asynccontextmanager
    async def during(self, chat_id: int) -> AsyncIterator[None]:
        chat = self._chats.get(chat_id)
        if chat is None:
            self._chats[chat_id] = chat = _Chat(asyncio.create_task(self._keep(chat_id), name=f"typing-{chat_id}"))
        else:
            chat.holders += 1
        try:
            yield
        finally:
            chat.holders -= 1
            if chat.holders == 0:
                if self._chats.get(chat_id) is chat:
                    del self._chats[chat_id]
                chat.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chat.task

    async def _keep(self, chat_id: int) -> None:
        while True:
            try:
                await self._send(chat_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a chat action is a nicety: a failed one must not touch the request
                log.debug("chat action in %s failed: %s", chat_id, exc)
            await asyncio.sleep(self._every_s)
