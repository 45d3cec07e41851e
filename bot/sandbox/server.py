"""The local Bot API server, so the real python-telegram-bot stack runs without Telegram.

A product feature, not only a test double: ``make run`` (``lyricbot run``) without a token, and ``lyricbot
sandbox``, chat with the real bot through this server (``bot.sandbox.terminal``), and the tests and benchmarks
run the bot against the same server. They point PTB at it with ``ApplicationBuilder().base_url(fake.base_url)
.base_file_url(fake.base_file_url)``. It speaks Telegram's HTTP protocol and refuses what Telegram refuses, in
Telegram's words (``bot.sandbox.protocol``), so a bot that passes here meets no new errors in production. This
module is the API side: the HTTP server, the update queue, the Bot API methods, webhook delivery, and a record
of every call and of what the bot sent; the people on the other side are ``bot.sandbox.people``. Simplifications:
one bot, webhook updates delivered only when ``deliver_webhook`` is called, inline queries never expire by time
(only by being answered), HTML/Markdown markup accepted but not parsed. Call it from the thread that runs the
event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import inspect
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Self

import aiohttp
from aiohttp import web

from bot.sandbox.people import People
from bot.sandbox.protocol import (
    ACTIONS,
    CONFLICT,
    MAX_CALLBACK_ANSWER,
    MAX_FILE_BYTES,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_RATIO,
    MAX_PHOTO_SIDES,
    NOT_MODIFIED,
    QUERY_INVALID,
    File,
    JSONDict,
    TelegramApiError,
    bad,
    chat_member,
    checked_inline_answer,
    checked_text,
    image_size,
    inline_markup,
    is_ogg_opus,
    public,
    read_params,
)

_log = logging.getLogger(__name__)

_OK_METHODS = ("logOut", "close", "setMyDescription", "setMyShortDescription")  # nothing to fake


@dataclass
class _Queued:
    update: JSONDict
    replay: bool  # an old update_id pushed again: it survives confirmation until handed out once


class FakeTelegram(People):
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
        self._latency, self._poll_generation, self._closing = 0.0, 0, False
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
    def sent(self, chat_id: int | None = None) -> list[JSONDict]:
        """Messages the bot sent, current after edits, with any keyboard (Telegram echoes only inline ones)."""
        return [copy.deepcopy(m) for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    def file_content(self, file_id: str) -> bytes:
        """What a stored file holds (a photo, a voice message or a document the bot sent, or one a person did)."""
        return self._files[file_id].content

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

    def set_latency(self, seconds: float) -> None:
        self._latency = seconds

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

    def _store(self, upload: File, folder: str) -> File:
        self._serial += 1
        path = f"{folder}/file_{self._serial}{PurePosixPath(upload.name).suffix}"
        stored = File(upload.name, upload.content, upload.mime_type, f"BQAC{folder[:3]}{self._serial:06d}", path)
        self._files[stored.file_id] = stored
        return stored

    async def _refusal(self, request: web.Request) -> web.Response | None:
        if self._latency:
            await asyncio.sleep(self._latency)
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

    def _media(self, p: JSONDict, key: str, folder: str) -> File:
        if isinstance(value := p.get(key), File):
            return self._store(value, folder)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise bad(f"there is no {key} in the request" if value is None else "wrong file identifier/HTTP URL specified")

    @staticmethod
    def _commands_key(p: JSONDict) -> str:
        return json.dumps([p.get("scope") or {"type": "default"}, p.get("language_code", "")], sort_keys=True)

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

    def _m_setWebhook(self, p: JSONDict) -> bool:
        """Records where to deliver; unlike Telegram it accepts http:// URLs, for tests on 127.0.0.1."""
        url, secret = str(p.get("url", "")), p.get("secret_token")
        if not re.match(r"https?://[^/]+", url):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad("bad webhook: secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self.webhook = {"url": url} | ({"secret_token": str(secret)} if secret is not None else {})
        return True

    def _m_deleteWebhook(self, p: JSONDict) -> bool:
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self.webhook = {}
        return True

    def _m_getWebhookInfo(self, p: JSONDict) -> JSONDict:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._queue)}  # fmt: skip

    async def deliver_webhook(self, headers: dict[str, str] | None = None) -> list[int]:
        """POST each queued update to the registered webhook, as Telegram does; returns the HTTP statuses.

        ``headers`` None: the registered secret, as Telegram sends it; anything else plays a forger. An
        update leaves the queue only once the bot answered 200, as Telegram retries the others.
        """
        if not (url := self.webhook.get("url")):
            raise RuntimeError("no webhook is set")
        if headers is None:
            secret = self.webhook.get("secret_token")
            headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        statuses: list[int] = []
        async with aiohttp.ClientSession() as session:
            for queued in list(self._queue):
                async with session.post(url, json=queued.update, headers=headers) as response:
                    statuses.append(response.status)
                if response.status == 200:
                    self._queue.remove(queued)
        return statuses

    def _m_setMyCommands(self, p: JSONDict) -> bool:
        if not isinstance(commands := p.get("commands"), list) or len(commands) > 100:
            raise bad("can't parse commands JSON array")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(p)] = [{k: c[k] for k in ("command", "description")} for c in commands]
        return True

    def _m_getMyCommands(self, p: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(p), []))

    def _m_deleteMyCommands(self, p: JSONDict) -> bool:
        self._commands.pop(self._commands_key(p), None)
        return True

    def _m_sendMessage(self, p: JSONDict) -> JSONDict:
        return self._send(self._chat(p), p, checked_text(p))

    def _m_sendChatAction(self, p: JSONDict) -> bool:
        chat = self._chat(p)
        if p.get("action") not in ACTIONS:
            raise bad("wrong parameter action in request")
        self.chat_actions.append((chat["id"], str(p["action"])))
        return True

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

    def _m_sendPhoto(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        upload = p.get("photo")
        if isinstance(upload, File):  # checked before it is stored, as Telegram refuses it whole
            if len(upload.content) > MAX_PHOTO_BYTES:
                raise bad("file is too big")
            dimensions = image_size(upload.content)
            if dimensions is None:
                raise bad("IMAGE_PROCESS_FAILED")
            width, height = dimensions
            if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * max(1, min(width, height)):
                raise bad("PHOTO_INVALID_DIMENSIONS")
        stored = self._media(p, "photo", "photos")
        width, height = image_size(stored.content) or (0, 0)
        size = {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "width": width, "height": height}  # fmt: skip
        return self._send(chat, p, {"photo": [size], **caption})

    def _m_sendDocument(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        if isinstance(upload := p.get("document"), File) and len(upload.content) > MAX_FILE_BYTES:
            raise bad("file is too big")
        return self._send(chat, p, {"document": self._media(p, "document", "documents").as_document(), **caption})

    def _m_sendVoice(self, p: JSONDict) -> JSONDict:
        """A voice message: an OGG file of Opus audio (anything else Telegram would not show as one)."""
        chat, caption = self._chat(p), checked_text(p, "caption") if "caption" in p else {}
        if isinstance(upload := p.get("voice"), File):
            if len(upload.content) > MAX_FILE_BYTES:
                raise bad("file is too big")
            if not is_ogg_opus(upload.content):
                raise bad("VOICE_FORMAT_INVALID: a voice message must be an OGG file encoded with Opus")
        stored = self._media(p, "voice", "voice")
        voice = {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                 "duration": int(p.get("duration") or 0), "mime_type": "audio/ogg"}  # fmt: skip
        return self._send(chat, p, {"voice": voice, **caption})

    def _m_getFile(self, p: JSONDict) -> JSONDict:
        if (stored := self._files.get(str(p.get("file_id", "")))) is None:
            raise bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "file_path": stored.path}  # fmt: skip

    def _m_getChat(self, p: JSONDict) -> JSONDict:
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                               "gifts_from_channels"), False)  # fmt: skip
        return {**self._chat(p), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def _m_getChatMember(self, p: JSONDict) -> JSONDict:
        """A person's standing in a chat (``set_member``); in a private chat, the person is its member."""
        chat = self._chat(p)
        user_id = p.get("user_id")
        if not isinstance(user_id, int) or user_id not in self._users:
            raise bad("PARTICIPANT_ID_INVALID" if user_id is not None else "user_id is empty")
        if chat["type"] == "private":
            return chat_member(self._users[user_id], "member")
        standing = self._members.get((chat["id"], user_id), {"status": "member", "is_anonymous": False})
        return chat_member(self._users[user_id], standing["status"], standing["is_anonymous"])
