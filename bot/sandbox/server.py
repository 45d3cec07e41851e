"""The local Bot API server, so the real python-telegram-bot stack runs without Telegram.

A product feature, not only a test double: ``make run`` (``lyricbot run``) without a token, and ``lyricbot
sandbox``, chat with the real bot through this server (``bot.sandbox.terminal``), and the tests and benchmarks
run the bot against the same server. They point PTB at it with ``ApplicationBuilder().base_url(fake.base_url)
.base_file_url(fake.base_file_url)``. It speaks Telegram's HTTP protocol and refuses what Telegram refuses, in
Telegram's words (``bot.sandbox.protocol``), so a bot that passes here meets no new errors in production.

This module is the API side: the HTTP server, the update queue and the Bot API's message methods. Mixed in: files
(``bot.sandbox.media``), webhooks (``bot.sandbox.webhooks``), menus and chat look-ups (``bot.sandbox.menus``), the
record of what the bot sent (``bot.sandbox.record``); the people on the other side are ``bot.sandbox.people``.
Simplifications: one bot, webhook updates delivered only when ``deliver_webhook`` is called, inline queries never
expire by time (only by being answered), HTML/Markdown markup accepted but not parsed. Call it from the thread that
runs the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import inspect
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from bot.sandbox.media import Media
from bot.sandbox.menus import Menus
from bot.sandbox.people import People
from bot.sandbox.protocol import (
    CONFLICT,
    MAX_CALLBACK_ANSWER,
    NOT_MODIFIED,
    QUERY_INVALID,
    File,
    JSONDict,
    TelegramApiError,
    bad,
    checked_inline_answer,
    checked_text,
    inline_markup,
    public,
    read_params,
)
from bot.sandbox.record import Record
from bot.sandbox.webhooks import Webhooks

_log = logging.getLogger(__name__)

_OK_METHODS = ("logOut", "close", "setMyDescription", "setMyShortDescription")  # nothing to fake


@dataclass
class _Queued:
    update: JSONDict
    replay: bool  # an old update_id pushed again: it survives confirmation until handed out once


class FakeTelegram(People, Record, Media, Webhooks, Menus):
    """The Bot API side and a record of everything the bot did; the people talking to the bot are ``People``."""

    def __init__(
        self, token: str = "123456:TEST-token", bot_username: str = "LyricBot", bot_id: int = 999,
        inline_feedback: bool = True, inline_mode: bool = True, first_update_id: int = 1,
    ) -> None:  # fmt: skip
        """``inline_feedback``: BotFather's setting; without it Telegram sends no chosen_inline_result.
        ``inline_mode``: BotFather's /setinline, which getMe reports as ``supports_inline_queries``.
        ``first_update_id``: where the update ids start. Telegram's never go back, and bots key what they
        stored by them, so a server started again for a bot that kept its database starts after them."""
        if first_update_id < 1:
            raise ValueError(f"first_update_id must be positive, not {first_update_id}")
        self.token = token
        self.inline_feedback = inline_feedback
        self.inline_mode = inline_mode
        self.inline_answers: dict[str, JSONDict] = {}  # inline query id -> what answerInlineQuery sent
        self.inline_asked_at: dict[str, float] = {}  # inline query id -> time.perf_counter() when it was sent
        self.inline_messages: dict[str, JSONDict] = {}  # inline_message_id -> the message a chosen result became
        self._open_inline: dict[str, JSONDict] = {}
        self.bot_user: JSONDict = {"id": bot_id, "is_bot": True, "first_name": bot_username, "username": bot_username}
        self.base_url = self.base_file_url = ""  # set by start(): the port is known only once bound
        self.calls: collections.Counter[str] = collections.Counter()  # refused calls count too
        self.requests: list[tuple[str, JSONDict]] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.answered_callbacks: list[JSONDict] = []
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._last_message_id: collections.Counter[int] = collections.Counter()
        self._sent: list[JSONDict] = []  # the same dicts as in _messages, so later edits show
        self._sent_at: list[float] = []  # time.perf_counter() of each, for latency measurements
        self._refusals: list[tuple[str, str]] = []
        self._queue: list[_Queued] = []
        self._next_update_id, self._serial = first_update_id, 1
        self._files: dict[str, File] = {}
        self._open_queries: dict[str, JSONDict] = {}
        self._members: dict[tuple[int, int], JSONDict] = {}  # (chat, user) -> status: set_member()
        self._commands: dict[str, list[JSONDict]] = {}
        self._faults: dict[str, collections.deque[TelegramApiError]] = collections.defaultdict(collections.deque)
        self._poll_generation, self._closing = 0, False
        self._update_arrived, self._bot_sent = asyncio.Event(), asyncio.Event()
        self._inline_answered = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.webhook: JSONDict = {}  # what setWebhook registered: url, and secret_token if one was given
        self._methods: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {
            name[3:].lower(): (name[3:], getattr(self, name)) for name in dir(self) if name.startswith("_m_")
        }
        self._methods.update({name.lower(): (name, lambda p: True) for name in _OK_METHODS})

    async def start(self) -> None:
        """Binds a free port on 127.0.0.1, so parallel test runs never collide."""
        self._update_arrived, self._bot_sent, self._closing = asyncio.Event(), asyncio.Event(), False
        self._inline_answered = asyncio.Event()
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Telegram's upload limit for bots
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url, self.base_file_url = f"http://127.0.0.1:{port}/bot", f"http://127.0.0.1:{port}/file/bot"

    async def stop(self) -> None:
        """Ends waiting long polls first, so shutdown does not wait out their timeouts."""
        self._closing = True
        self._update_arrived.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the update queue ---
    def push_raw_update(self, update: JSONDict) -> int:
        """Queues an update as given; pushing an update_id again is how a lost confirmation looks to a bot."""
        if "update_id" not in update:
            return self._enqueue(copy.deepcopy(update))
        update_id = int(update["update_id"])
        self._queue.append(_Queued(copy.deepcopy(update), replay=update_id < self._next_update_id))
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._update_arrived.set()
        return update_id

    # --- what the bot did ---
    # --- fault injection ---
    def fail_next(
        self, method: str, status: int = 429, description: str = "Too Many Requests: retry after 2",
        retry_after: int | None = 2, times: int = 1, after_effect: bool = False,
    ) -> None:  # fmt: skip
        """The next `times` calls of `method` are refused without effect; retry_after is sent only with 429.

        ``after_effect``: the call takes effect (the message arrives) and only its answer is an error, as
        when a response is lost on the way back: the case a bot cannot tell from a failure.
        """
        if method.lower() not in self._methods:
            raise ValueError(f"the fake does not implement {method!r}")
        self._faults[method.lower()].extend(
            TelegramApiError(status, description, retry_after, after_effect) for _ in range(times)
        )

    # --- plumbing ---
    def _new_message(self, chat: JSONDict, sender: JSONDict, content: JSONDict) -> JSONDict:
        self._last_message_id[chat["id"]] += 1
        message_id = self._last_message_id[chat["id"]]
        message = {"message_id": message_id, "from": dict(sender), "chat": dict(chat), "date": int(time.time())}
        message.update(copy.deepcopy(content))
        self._messages.setdefault(chat["id"], {})[message_id] = message
        return message

    def _enqueue(self, body: JSONDict) -> int:
        update_id, self._next_update_id = self._next_update_id, self._next_update_id + 1
        self._queue.append(_Queued({"update_id": update_id, **body}, replay=False))
        self._update_arrived.set()
        return update_id

    async def _refusal(self, request: web.Request) -> web.Response | None:
        return None if request.match_info["token"] == self.token else TelegramApiError(401, "Unauthorized").response()

    async def _handle_method(self, request: web.Request) -> web.Response:
        if refused := await self._refusal(request):
            return refused
        if (entry := self._methods.get(request.match_info["method"].lower())) is None:
            return TelegramApiError(404, "Not Found").response()
        name, handler = entry
        try:
            params = await read_params(request)
            self.calls[name] += 1
            self.requests.append((name, {k: {"file_name": v.name, "size": len(v.content)} if isinstance(v, File)
                                         else v for k, v in params.items()}))  # fmt: skip
            fault = faults.popleft() if (faults := self._faults.get(name.lower())) else None
            if fault is not None and not fault.after_effect:
                raise fault
            if inspect.isawaitable(result := handler(params)):  # only getUpdates waits
                result = await result
            if fault is not None:
                raise fault
        except TelegramApiError as exc:
            self._refusals.append((name, exc.description))
            _log.debug("refused %s: %s", name, exc.description)
            return exc.response()
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if refused := await self._refusal(request):
            return refused
        stored = next((f for f in self._files.values() if f.path == request.match_info["path"]), None)
        if stored is None:
            return TelegramApiError(404, "Not Found").response()
        return web.Response(body=stored.content, content_type=stored.mime_type)

    def _chat(self, p: JSONDict) -> JSONDict:
        if "chat_id" not in p:
            raise bad("chat_id is empty")
        if (chat := self._chats.get(p["chat_id"]) if isinstance(p["chat_id"], int) else None) is None:
            raise bad("chat not found")
        return chat

    def _send(self, chat: JSONDict, p: JSONDict, content: JSONDict) -> JSONDict:
        """Stores a bot message once every check has passed, so a refused call leaves no trace."""
        if not isinstance(reply := p.get("reply_parameters") or {}, dict):
            raise bad("can't parse reply parameters JSON object")
        target = reply.get("message_id", p.get("reply_to_message_id"))
        lenient = reply.get("allow_sending_without_reply", p.get("allow_sending_without_reply", False))
        replied = self._messages.get(chat["id"], {}).get(int(target)) if target is not None else None
        if target is not None and replied is None and not lenient:
            raise bad("message to be replied not found")
        raw, inline = p.get("reply_markup"), inline_markup(p.get("reply_markup"))
        if inline is not None or (raw and "inline_keyboard" not in raw):  # sent() shows reply keyboards too
            content = {**content, "reply_markup": inline or raw}
        if replied is not None:
            content = {**content, "reply_to_message": public(replied, quoted=True)}
        message = self._new_message(chat, self.bot_user, content)
        self._sent.append(message)
        self._sent_at.append(time.perf_counter())
        self._bot_sent.set()
        return public(message)

    def _own_message(self, p: JSONDict) -> JSONDict:
        if "inline_message_id" in p:
            if (inline := self.inline_messages.get(str(p["inline_message_id"]))) is None:
                raise bad("MESSAGE_ID_INVALID")
            return inline
        if (message := self._messages.get(self._chat(p)["id"], {}).get(p.get("message_id", 0))) is None:
            raise bad("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise bad("message can't be edited")
        return message

    def _edit(self, message: JSONDict, changes: JSONDict) -> JSONDict:
        if all(message.get(k) == v for k, v in changes.items()):
            raise bad(NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return public(message)

    # --- Bot API methods, named as Telegram names them; the lookup ignores case, as Telegram's does ---
    def _m_getMe(self, p: JSONDict) -> JSONDict:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": self.inline_mode, "can_connect_to_business": False,
                "has_main_web_app": False}  # fmt: skip

    async def _m_getUpdates(self, p: JSONDict) -> list[JSONDict]:
        """Long polling: confirms by offset, waits up to `timeout` s, and ends an older poll with 409."""
        self._poll_generation += 1
        generation = self._poll_generation
        self._update_arrived.set()  # an older poll still waiting learns it was superseded
        offset, limit = int(p.get("offset", 0)), int(p.get("limit", 100))
        if offset < 0:
            self._queue = self._queue[offset:]
        elif offset:
            self._queue = [q for q in self._queue if q.replay or q.update["update_id"] >= offset]
        deadline = time.monotonic() + max(0.0, float(p.get("timeout", 0)))
        while True:
            if generation != self._poll_generation:
                raise TelegramApiError(409, CONFLICT)
            batch = self._queue[: limit if 1 <= limit <= 100 else 100]
            if batch or (remaining := deadline - time.monotonic()) <= 0 or self._closing:
                for queued in batch:
                    queued.replay = False
                return [q.update for q in batch]  # serialized at once: the queue's own copies are safe
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), remaining)

    def _m_sendMessage(self, p: JSONDict) -> JSONDict:
        return self._send(self._chat(p), p, checked_text(p))

    def _m_editMessageText(self, p: JSONDict) -> JSONDict | bool:
        if "text" not in (message := self._own_message(p)):
            raise bad("there is no text in the message to edit")
        # Leaving reply_markup out of an edit removes the keyboard, as in Telegram.
        changes = {"entities": None, **checked_text(p), "reply_markup": inline_markup(p.get("reply_markup"))}
        edited = self._edit(message, changes)
        return True if "inline_message_id" in p else edited  # Telegram returns True for inline messages

    def _m_editMessageReplyMarkup(self, p: JSONDict) -> JSONDict | bool:
        edited = self._edit(self._own_message(p), {"reply_markup": inline_markup(p.get("reply_markup"))})
        return True if "inline_message_id" in p else edited

    def _m_answerInlineQuery(self, p: JSONDict) -> bool:
        """Checked as Telegram checks it; a query is answered once, and only while it is open."""
        query_id = str(p.get("inline_query_id", ""))
        if query_id not in self._open_inline:
            raise bad(QUERY_INVALID)
        results = checked_inline_answer(p)
        self.inline_answers[query_id] = {**copy.deepcopy(p), "results": copy.deepcopy(results),
                                         "inline_query": self._open_inline.pop(query_id),
                                         "answered_at": time.perf_counter()}  # fmt: skip
        self._inline_answered.set()
        return True

    def _m_deleteMessage(self, p: JSONDict) -> bool:
        if self._messages.get(self._chat(p)["id"], {}).pop(p.get("message_id", 0), None) is None:
            raise bad("message to delete not found")
        return True

    def _m_answerCallbackQuery(self, p: JSONDict) -> bool:
        if len(str(p.get("text", ""))) > MAX_CALLBACK_ANSWER:  # checked first: the query stays open, as in Telegram
            raise bad("MESSAGE_TOO_LONG")
        url = p.get("url")  # without a game, only a link that opens this bot with a start payload
        if url is not None and not re.fullmatch(rf"https://t\.me/{self.bot_user['username']}\?start=[A-Za-z0-9_-]{{1,64}}",
                                                str(url)):
            raise bad("URL_INVALID")
        if self._open_queries.pop(str(p.get("callback_query_id", "")), None) is None:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        self.answered_callbacks.append(p)
        return True
