"""A strict local fake of the Telegram Bot API server, so the real python-telegram-bot stack runs offline.

Tests and the terminal sandbox point PTB at it with ``ApplicationBuilder().base_url(fake.base_url)
.base_file_url(fake.base_file_url)``. It speaks Telegram's HTTP protocol (JSON, urlencoded or multipart in)
and refuses what Telegram refuses, in Telegram's words, so a bot that passes here meets no new errors in
production. Simplifications: one bot, no webhook delivery, no inline mode, HTML/Markdown markup accepted but
not parsed, lengths in UTF-16 code units as Telegram counts them (``len()`` for CJK and Latin text).
Call it from the thread that runs the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import inspect
import json
import logging
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Self

import aiohttp
from aiohttp import web

_log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
MAX_TEXT, MAX_CAPTION = 4096, 1024
# A command is recognised where a word starts, as Telegram's clients do; "/cmd@BotName" is one entity.
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
# Form values arrive as strings; these are decoded so that handlers see what a JSON body would carry.
_JSON_KEYS = {
    "reply_markup",
    "reply_parameters",
    "entities",
    "caption_entities",
    "link_preview_options",
    "commands",
    "scope",
    "allowed_updates",
}
_INT_KEYS = {"message_id", "offset", "limit", "reply_to_message_id", "user_id", "message_thread_id", "cache_time"}
_BOOL_KEYS = {
    "allow_sending_without_reply",
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
}
_BUTTON_ACTIONS = {
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "copy_text",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
}
# The placeholder senders of messages sent on behalf of a chat (Telegram's own ids for them).
ANONYMOUS_ADMIN: JSONDict = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
CHANNEL_BOT: JSONDict = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
_OK_METHODS = ("logOut", "close", "setMyDescription", "setMyShortDescription")  # nothing to fake
_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly the same "
                 "as a current content and reply markup of the message")  # fmt: skip


class TelegramApiError(Exception):
    """A refusal, sent back with Telegram's status code and wording so PTB raises its usual exception."""

    def __init__(
        self, status: int, description: str, retry_after: int | None = None, after_effect: bool = False
    ) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after
        self.after_effect = after_effect  # the call took effect; only its answer was lost

    def response(self) -> web.Response:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None and self.status == 429:  # Telegram sends it only with 429
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.status)


def _bad(description: str) -> TelegramApiError:
    return TelegramApiError(400, f"Bad Request: {description}")


@dataclass(frozen=True)
class _File:
    name: str
    content: bytes
    mime_type: str
    file_id: str = ""  # empty while it is only an upload in a request
    path: str = ""

    def as_document(self) -> JSONDict:
        return {"file_id": self.file_id, "file_unique_id": f"u{self.file_id}", "file_name": self.name,
                "mime_type": self.mime_type, "file_size": len(self.content)}  # fmt: skip


@dataclass
class _Queued:
    update: JSONDict
    replay: bool  # an old update_id pushed again: it survives confirmation until handed out once


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> JSONDict:
    entities = [{"type": "bot_command", "offset": _u16(text[: m.start()]), "length": _u16(m.group())}
                for m in _COMMAND.finditer(text)]  # fmt: skip
    return {"entities": entities} if entities else {}


def _checked_text(p: JSONDict, key: str = "text") -> JSONDict:
    """Text or caption checked as Telegram checks it; markup stays in `requests`, the text is stored as sent."""
    if p.get("parse_mode") is not None and str(p["parse_mode"]).lower() not in ("html", "markdownv2", "markdown"):
        raise _bad("unsupported parse_mode")
    entities_key = "entities" if key == "text" else "caption_entities"
    text, entities = str(p.get(key, "")), p.get(entities_key)
    if key == "text" and not text.strip():
        raise _bad("message text is empty")
    if _u16(text) > (MAX_TEXT if key == "text" else MAX_CAPTION):
        raise _bad("message is too long" if key == "text" else "message caption is too long")
    return {key: text, **({entities_key: entities} if entities else {})}


def _inline_markup(markup: object) -> JSONDict | None:
    """Validates a keyboard the way Telegram does; the classic failure is callback_data over 64 bytes."""
    if markup is not None and not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if (rows := (markup or {}).get("inline_keyboard")) is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse inline keyboard markup JSON object")
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise _bad("can't parse inline keyboard button: Text must be non-empty")
        if not set(button) & _BUTTON_ACTIONS:
            raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
            raise _bad("BUTTON_DATA_INVALID")
    return markup if any(rows) else None


def _public(message: JSONDict, quoted: bool = False) -> JSONDict:
    """A message as the bot sees it: Telegram echoes only inline keyboards and nests replies one level deep."""
    out = copy.deepcopy(message)
    for shown in (out, out.get("reply_to_message", {})):
        if "inline_keyboard" not in shown.get("reply_markup", {"inline_keyboard": None}):
            del shown["reply_markup"]
    if quoted:
        out.pop("reply_to_message", None)
    return out


def _decode(key: str, value: Any, raw: JSONDict) -> Any:
    if isinstance(value, str) and value.startswith("attach://"):  # a file sent as another multipart part
        value = raw.get(value.removeprefix("attach://"), value)
    if not isinstance(value, str):
        return value
    try:
        if key in _JSON_KEYS:
            return json.loads(value)
        if key in _INT_KEYS or (key == "chat_id" and re.fullmatch(r"-?\d+", value)):
            return int(value)
        if key == "timeout":
            return float(value)
    except ValueError:
        raise _bad(f"can't parse {key}") from None
    return value.lower() in ("true", "1") if key in _BOOL_KEYS else value


async def _read_params(request: web.Request) -> JSONDict:
    """Parameters from the query string and a JSON, urlencoded or multipart body, decoded to JSON types."""
    raw: JSONDict = dict(request.query)
    if request.can_read_body and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _bad("can't parse JSON object")
        raw.update(body)
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                raw[key] = _File(value.filename or "file", value.file.read(), value.content_type)
            else:
                raw[key] = value if isinstance(value, str) else bytes(value).decode()
    return {key: _decode(key, value, raw) for key, value in raw.items()}


class FakeTelegram:
    """The Bot API server, the people talking to the bot, and a record of everything the bot did."""

    def __init__(self, token: str = "123456:TEST-token", bot_username: str = "LyricBot", bot_id: int = 999) -> None:
        self.token = token
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
        self._next_update_id = self._serial = 1
        self._files: dict[str, _File] = {}
        self._open_queries: dict[str, JSONDict] = {}
        self._commands: dict[str, list[JSONDict]] = {}
        self._faults: dict[str, collections.deque[TelegramApiError]] = collections.defaultdict(collections.deque)
        self._latency, self._poll_generation, self._closing = 0.0, 0, False
        self._update_arrived, self._bot_sent = asyncio.Event(), asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.webhook: JSONDict = {}  # what setWebhook registered: url, and secret_token if one was given
        self._methods: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {
            name[3:].lower(): (name[3:], getattr(self, name)) for name in dir(self) if name.startswith("_m_")
        }
        self._methods.update({name.lower(): (name, lambda p: True) for name in _OK_METHODS})

    async def start(self) -> None:
        """Binds a free port on 127.0.0.1, so parallel test runs never collide."""
        self._update_arrived, self._bot_sent, self._closing = asyncio.Event(), asyncio.Event(), False
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

    # --- what a person does; each returns the update_id it queued ---
    def add_user(
        self, user_id: int, first_name: str = "Ann", language_code: str | None = "en", username: str | None = None
    ) -> None:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code,
                "username": username}  # fmt: skip
        self._users[user_id] = {k: v for k, v in user.items() if v is not None}

    def add_chat(self, chat_id: int, type: str = "private", title: str | None = None) -> None:
        """Private chats also appear by themselves when a person first writes to the bot."""
        if type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"chat type {type!r} is not one of private, group, supergroup, channel")
        if type == "private":
            names = {k: v for k, v in self._user(chat_id).items() if k in ("first_name", "username")}
            self._chats[chat_id] = {"id": chat_id, "type": type, **names}
        else:
            self._chats[chat_id] = {"id": chat_id, "type": type, "title": title or f"Chat {chat_id}"}

    def send_text(self, user_id: int, chat_id: int, text: str, reply_to_message_id: int | None = None) -> int:
        """Returns -1 where privacy mode hides a group message from the bot, as Telegram does."""
        content = {"text": text, **_command_entities(text)}
        return self._deliver("message", self._user_message(user_id, chat_id, content, reply_to_message_id))

    def send_as_chat(self, sender_chat_id: int, chat_id: int, text: str) -> int:
        """A message on behalf of a chat, as Telegram delivers it: an anonymous group admin (``sender_chat``
        is the group, ``from`` the shared GroupAnonymousBot) or a channel (``from`` is Channel_Bot)."""
        sender = self._chats[sender_chat_id]
        anonymous_admin = sender_chat_id == chat_id
        placeholder = ANONYMOUS_ADMIN if anonymous_admin else CHANNEL_BOT
        message = self._new_message(self._chats[chat_id], placeholder, {"text": text, **_command_entities(text)})
        message["sender_chat"] = dict(sender)
        return self._deliver("message", message)

    def edit_text(self, user_id: int, chat_id: int, message_id: int, text: str) -> int:
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None or message["from"]["id"] != user_id:
            raise ValueError(f"user {user_id} has no message {message_id} in chat {chat_id} to edit")
        message.pop("entities", None)
        message.update(text=text, edit_date=int(time.time()), **_command_entities(text))
        return self._deliver("edited_message", message)

    def press_button(self, user_id: int, chat_id: int, message_id: int, callback_data: str) -> int:
        """Refuses buttons that are not on the message, so a test cannot press what a person could not."""
        message = self._messages.get(chat_id, {}).get(message_id)
        rows = (message or {}).get("reply_markup", {}).get("inline_keyboard", [])
        data = [b.get("callback_data") for row in rows for b in row]
        if message is None or callback_data not in data:
            raise ValueError(f"message {message_id} in chat {chat_id} has no button {callback_data!r}; it has {data}")
        return self._callback(user_id, message, callback_data)

    def forge_callback(self, user_id: int, chat_id: int, message_id: int, callback_data: str) -> int:
        """A callback query with data of the sender's choosing under a message they can see: what a
        modified client can send. Bots must check such data; ``press_button`` only presses real buttons."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise ValueError(f"chat {chat_id} has no message {message_id}")
        return self._callback(user_id, message, callback_data)

    def _callback(self, user_id: int, message: JSONDict, callback_data: str) -> int:
        self._serial += 1
        query: JSONDict = {"id": f"{self._serial}{user_id}", "from": dict(self._user(user_id)),
                           "chat_instance": f"ci{message['chat']['id']}", "data": callback_data,
                           "message": _public(message)}  # fmt: skip
        self._open_queries[query["id"]] = query
        return self._enqueue({"callback_query": query})

    def send_document(
        self, user_id: int, chat_id: int, file_name: str, content: bytes, caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:  # fmt: skip
        mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        fields: JSONDict = {"document": self._store(_File(file_name, content, mime), "documents").as_document()}
        fields.update({"caption": caption} if caption else {})
        return self._deliver("message", self._user_message(user_id, chat_id, fields, reply_to_message_id))

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

    def messages(self, chat_id: int) -> list[JSONDict]:
        """Every message in the chat, the person's and the bot's, in order."""
        return [copy.deepcopy(m) for _, m in sorted(self._messages.get(chat_id, {}).items())]

    def sent_times(self, chat_id: int) -> list[float]:
        """``time.perf_counter()`` at which each of ``sent(chat_id)`` arrived: for latency benchmarks."""
        return [t for m, t in zip(self._sent, self._sent_at, strict=True) if m["chat"]["id"] == chat_id]

    async def wait_for_sent(self, chat_id: int, count: int, timeout: float = 10.0) -> list[JSONDict]:
        deadline = time.monotonic() + timeout
        while len(sent := self.sent(chat_id)) < count:
            if (remaining := deadline - time.monotonic()) <= 0:
                shown = [m.get("text") or m.get("caption") or [k for k in ("photo", "document") if k in m]
                         for m in sent]  # fmt: skip
                raise TimeoutError(
                    f"the bot sent {len(sent)} of {count} messages to chat {chat_id} within {timeout}s: {shown}; "
                    f"refused requests: {self._refusals[-5:]}; last calls: {[m for m, _ in self.requests[-8:]]}"
                )
            self._bot_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bot_sent.wait(), remaining)
        return sent

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
    def _user(self, user_id: int) -> JSONDict:
        if user_id not in self._users:
            self.add_user(user_id)
        return self._users[user_id]

    def _user_message(self, user_id: int, chat_id: int, content: JSONDict, reply_to: int | None) -> JSONDict:
        user = self._user(user_id)
        if chat_id not in self._chats:
            if chat_id != user_id:
                raise ValueError(f"chat {chat_id} does not exist: call add_chat() (only private chats are implicit)")
            self.add_chat(chat_id)
        if reply_to is not None:
            if reply_to not in self._messages.get(chat_id, {}):
                raise ValueError(f"chat {chat_id} has no message {reply_to} to reply to")
            content = {**content, "reply_to_message": _public(self._messages[chat_id][reply_to], quoted=True)}
        return self._new_message(self._chats[chat_id], user, content)

    def _new_message(self, chat: JSONDict, sender: JSONDict, content: JSONDict) -> JSONDict:
        self._last_message_id[chat["id"]] += 1
        message_id = self._last_message_id[chat["id"]]
        message = {"message_id": message_id, "from": dict(sender), "chat": dict(chat), "date": int(time.time())}
        message.update(copy.deepcopy(content))
        self._messages.setdefault(chat["id"], {})[message_id] = message
        return message

    def _deliver(self, kind: str, message: JSONDict) -> int:
        """Queues a person's message unless privacy mode (can_read_all_group_messages=False) hides it."""
        if message["chat"]["type"] in ("group", "supergroup"):
            command = _COMMAND.match(message.get("text") or message.get("caption") or "")
            addressed = command and command.group().partition("@")[2].lower() in ("", self.bot_user["username"].lower())
            if not addressed and message.get("reply_to_message", {}).get("from", {}).get("id") != self.bot_user["id"]:
                return -1
        return self._enqueue({kind: _public(message)})

    def _enqueue(self, body: JSONDict) -> int:
        update_id, self._next_update_id = self._next_update_id, self._next_update_id + 1
        self._queue.append(_Queued({"update_id": update_id, **body}, replay=False))
        self._update_arrived.set()
        return update_id

    def _store(self, upload: _File, folder: str) -> _File:
        self._serial += 1
        path = f"{folder}/file_{self._serial}{PurePosixPath(upload.name).suffix}"
        stored = _File(upload.name, upload.content, upload.mime_type, f"BQAC{folder[:3]}{self._serial:06d}", path)
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
            params = await _read_params(request)
            self.calls[name] += 1
            self.requests.append((name, {k: {"file_name": v.name, "size": len(v.content)} if isinstance(v, _File)
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
            raise _bad("chat_id is empty")
        if (chat := self._chats.get(p["chat_id"]) if isinstance(p["chat_id"], int) else None) is None:
            raise _bad("chat not found")
        return chat

    def _send(self, chat: JSONDict, p: JSONDict, content: JSONDict) -> JSONDict:
        """Stores a bot message once every check has passed, so a refused call leaves no trace."""
        if not isinstance(reply := p.get("reply_parameters") or {}, dict):
            raise _bad("can't parse reply parameters JSON object")
        target = reply.get("message_id", p.get("reply_to_message_id"))
        lenient = reply.get("allow_sending_without_reply", p.get("allow_sending_without_reply", False))
        replied = self._messages.get(chat["id"], {}).get(int(target)) if target is not None else None
        if target is not None and replied is None and not lenient:
            raise _bad("message to be replied not found")
        raw, inline = p.get("reply_markup"), _inline_markup(p.get("reply_markup"))
        if inline is not None or (raw and "inline_keyboard" not in raw):  # sent() shows reply keyboards too
            content = {**content, "reply_markup": inline or raw}
        if replied is not None:
            content = {**content, "reply_to_message": _public(replied, quoted=True)}
        message = self._new_message(chat, self.bot_user, content)
        self._sent.append(message)
        self._sent_at.append(time.perf_counter())
        self._bot_sent.set()
        return _public(message)

    def _own_message(self, p: JSONDict) -> JSONDict:
        if "inline_message_id" in p:
            raise _bad("the fake does not support inline messages")
        if (message := self._messages.get(self._chat(p)["id"], {}).get(p.get("message_id", 0))) is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return message

    def _edit(self, message: JSONDict, changes: JSONDict) -> JSONDict:
        if all(message.get(k) == v for k, v in changes.items()):
            raise _bad(_NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return _public(message)

    def _media(self, p: JSONDict, key: str, folder: str) -> _File:
        if isinstance(value := p.get(key), _File):
            return self._store(value, folder)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise _bad(f"there is no {key} in the request" if value is None else "wrong file identifier/HTTP URL specified")

    @staticmethod
    def _commands_key(p: JSONDict) -> str:
        return json.dumps([p.get("scope") or {"type": "default"}, p.get("language_code", "")], sort_keys=True)

    # --- Bot API methods, named as Telegram names them; the lookup ignores case, as Telegram's does ---
    def _m_getMe(self, p: JSONDict) -> JSONDict:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
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
                raise TelegramApiError(409, _CONFLICT)
            batch = self._queue[: limit if 1 <= limit <= 100 else 100]
            if batch or (remaining := deadline - time.monotonic()) <= 0 or self._closing:
                for queued in batch:
                    queued.replay = False
                return [copy.deepcopy(q.update) for q in batch]
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), remaining)

    def _m_setWebhook(self, p: JSONDict) -> bool:
        """Records where to deliver; unlike Telegram it accepts http:// URLs, for tests on 127.0.0.1."""
        url, secret = str(p.get("url", "")), p.get("secret_token")
        if not re.match(r"https?://[^/]+", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("bad webhook: secret token contains unallowed characters")
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
            raise _bad("can't parse commands JSON array")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(p)] = [{k: c[k] for k in ("command", "description")} for c in commands]
        return True

    def _m_getMyCommands(self, p: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(p), []))

    def _m_deleteMyCommands(self, p: JSONDict) -> bool:
        self._commands.pop(self._commands_key(p), None)
        return True

    def _m_sendMessage(self, p: JSONDict) -> JSONDict:
        return self._send(self._chat(p), p, _checked_text(p))

    def _m_sendChatAction(self, p: JSONDict) -> bool:
        chat = self._chat(p)
        if p.get("action") not in _ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat["id"], str(p["action"])))
        return True

    def _m_editMessageText(self, p: JSONDict) -> JSONDict:
        if "text" not in (message := self._own_message(p)):
            raise _bad("there is no text in the message to edit")
        # Leaving reply_markup out of an edit removes the keyboard, as in Telegram.
        changes = {"entities": None, **_checked_text(p), "reply_markup": _inline_markup(p.get("reply_markup"))}
        return self._edit(message, changes)

    def _m_editMessageReplyMarkup(self, p: JSONDict) -> JSONDict:
        return self._edit(self._own_message(p), {"reply_markup": _inline_markup(p.get("reply_markup"))})

    def _m_deleteMessage(self, p: JSONDict) -> bool:
        if self._messages.get(self._chat(p)["id"], {}).pop(p.get("message_id", 0), None) is None:
            raise _bad("message to delete not found")
        return True

    def _m_answerCallbackQuery(self, p: JSONDict) -> bool:
        if self._open_queries.pop(str(p.get("callback_query_id", "")), None) is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self.answered_callbacks.append(p)
        return True

    def _m_sendPhoto(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), _checked_text(p, "caption") if "caption" in p else {}
        stored = self._media(p, "photo", "photos")  # sizes are not decoded; PTB needs only the fields
        size = {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "width": 0, "height": 0}  # fmt: skip
        return self._send(chat, p, {"photo": [size], **caption})

    def _m_sendDocument(self, p: JSONDict) -> JSONDict:
        chat, caption = self._chat(p), _checked_text(p, "caption") if "caption" in p else {}
        return self._send(chat, p, {"document": self._media(p, "document", "documents").as_document(), **caption})

    def _m_getFile(self, p: JSONDict) -> JSONDict:
        if (stored := self._files.get(str(p.get("file_id", "")))) is None:
            raise _bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.content),
                "file_path": stored.path}  # fmt: skip

    def _m_getChat(self, p: JSONDict) -> JSONDict:
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                               "gifts_from_channels"), False)  # fmt: skip
        return {**self._chat(p), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}
