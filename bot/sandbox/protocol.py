"""The Bot API's protocol as the local server speaks it: requests decoded, and refused as Telegram refuses them.

The local Bot API server (``bot.sandbox.server``) is a product feature, not only a test double: ``make run``
without a token chats with the real bot through it, and the tests drive the bot through the same server. So
what it accepts must be what Telegram accepts, refused in Telegram's words, so that a bot that passes here
meets no new errors in production. This module is that contract, apart from the server's state: parameters
from JSON, urlencoded or multipart bodies decoded to JSON types, text and keyboards checked, lengths in UTF-16
code units as Telegram counts them (``len()`` for CJK and Latin text), and messages shaped as the bot sees them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSONDict = dict[str, Any]
MAX_TEXT, MAX_CAPTION = 4096, 1024
# A command is recognised where a word starts, as Telegram's clients do; "/cmd@BotName" is one entity.
MENTION = re.compile(r"(?<![\w/])@[A-Za-z0-9_]{5,32}\b")
COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
ACTIONS = {
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
    "results",
    "button",
}
_INT_KEYS = {"message_id", "offset", "limit", "reply_to_message_id", "user_id", "message_thread_id", "cache_time"}
_BOOL_KEYS = {
    "allow_sending_without_reply",
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
    "is_personal",
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
# getChatMember's statuses the fake plays (a restricted member is not: it is a member with many more fields).
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "left", "kicked"})
MAX_CALLBACK_ANSWER = 200  # characters of answerCallbackQuery's text (a toast or a popup)
# Uploads, as the Bot API documents them: a photo at most 10 MB, its width and height at most 10000 together and
# at most 20 to 1; a document or a voice message at most 50 MB, a voice message an OGG file of Opus audio.
MAX_PHOTO_BYTES, MAX_FILE_BYTES = 10 * 1024 * 1024, 50 * 1024 * 1024
MAX_PHOTO_SIDES, MAX_PHOTO_RATIO = 10_000, 20
# Telegram's wording for two refusals the server makes.
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly the same "
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


def bad(description: str) -> TelegramApiError:
    return TelegramApiError(400, f"Bad Request: {description}")


@dataclass(frozen=True)
class File:
    """A file: an upload inside a request, or one the server stored (then with a file_id and a path)."""

    name: str
    content: bytes
    mime_type: str
    file_id: str = ""  # empty while it is only an upload in a request
    path: str = ""

    def as_document(self) -> JSONDict:
        return {"file_id": self.file_id, "file_unique_id": f"u{self.file_id}", "file_name": self.name,
                "mime_type": self.mime_type, "file_size": len(self.content)}  # fmt: skip


def image_size(content: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or a baseline/progressive JPEG, read from its header; None for anything else."""
    if content[:8] == b"\x89PNG\r\n\x1a\n" and content[12:16] == b"IHDR":
        return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    if content[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(content) and content[i] == 0xFF:
            marker, length = content[i + 1], int.from_bytes(content[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                return int.from_bytes(content[i + 7 : i + 9], "big"), int.from_bytes(content[i + 5 : i + 7], "big")
            i += 2 + length
    return None


def is_ogg_opus(content: bytes) -> bool:
    """An Ogg stream whose first packet is an Opus header (RFC 7845): what Telegram plays as a voice message."""
    return content[:4] == b"OggS" and content[28:36] == b"OpusHead"


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> JSONDict:
    """The entities Telegram marks in a person's text: commands and @mentions, in UTF-16 offsets."""
    found = [("bot_command", m) for m in COMMAND.finditer(text)] + [("mention", m) for m in MENTION.finditer(text)]
    entities = [{"type": kind, "offset": _u16(text[: m.start()]), "length": _u16(m.group())}
                for kind, m in sorted(found, key=lambda found: found[1].start())]  # fmt: skip
    return {"entities": entities} if entities else {}


def checked_text(p: JSONDict, key: str = "text") -> JSONDict:
    """Text or caption checked as Telegram checks it; markup stays in `requests`, the text is stored as sent."""
    if p.get("parse_mode") is not None and str(p["parse_mode"]).lower() not in ("html", "markdownv2", "markdown"):
        raise bad("unsupported parse_mode")
    entities_key = "entities" if key == "text" else "caption_entities"
    text, entities = str(p.get(key, "")), p.get(entities_key)
    if key == "text" and not text.strip():
        raise bad("message text is empty")
    if _u16(text) > (MAX_TEXT if key == "text" else MAX_CAPTION):
        raise bad("message is too long" if key == "text" else "message caption is too long")
    return {key: text, **({entities_key: entities} if entities else {})}


def inline_markup(markup: object) -> JSONDict | None:
    """Validates a keyboard the way Telegram does; the classic failure is callback_data over 64 bytes."""
    if markup is not None and not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if (rows := (markup or {}).get("inline_keyboard")) is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad("can't parse inline keyboard markup JSON object")
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad("can't parse inline keyboard button: Text must be non-empty")
        if not set(button) & _BUTTON_ACTIONS:
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
            raise bad("BUTTON_DATA_INVALID")
    return markup if any(rows) else None


# The result types of answerInlineQuery; the fake checks the fields of "article", the type the bot sends.
RESULT_TYPES = {"article", "photo", "gif", "mpeg4_gif", "video", "audio", "voice", "document", "location",
                "venue", "contact", "game", "sticker"}  # fmt: skip
MAX_INLINE_RESULTS = 50
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


def checked_inline_answer(p: JSONDict) -> list[JSONDict]:
    """answerInlineQuery's results and button checked as Telegram checks them; returns the results.

    The upper-case descriptions are Telegram's error codes as bots report them (RESULT_ID_DUPLICATE,
    RESULTS_TOO_MUCH, MESSAGE_EMPTY); where the exact wording of a rarer refusal is not known, the fake uses
    the same style, so a bot's tests fail for the same reason Telegram would refuse.
    """
    results = p.get("results")
    if not isinstance(results, list):
        raise bad("can't parse inline query results JSON object")
    if len(results) > MAX_INLINE_RESULTS:
        raise bad("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, dict) or result.get("type") not in RESULT_TYPES:
            raise bad("RESULT_TYPE_INVALID")
        result_id = result.get("id")
        if not isinstance(result_id, str) or not 1 <= len(result_id.encode()) <= 64:
            raise bad("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if result["type"] == "article":
            if not isinstance(result.get("title"), str) or not result["title"].strip():
                raise bad("RESULT_TITLE_EMPTY")
            content = result.get("input_message_content")
            if not isinstance(content, dict) or "message_text" not in content:
                raise bad("can't parse inline query result: input_message_content is required")
            if not str(content["message_text"]).strip():
                raise bad("MESSAGE_EMPTY")
            if _u16(str(content["message_text"])) > MAX_TEXT:
                raise bad("MESSAGE_TOO_LONG")
            if content.get("parse_mode") is not None and str(content["parse_mode"]).lower() not in (
                    "html", "markdownv2", "markdown"):  # fmt: skip
                raise bad("unsupported parse_mode")
        if "reply_markup" in result and inline_markup(result["reply_markup"]) is None:
            raise bad("REPLY_MARKUP_INVALID")  # only an inline keyboard may sit under an inline result
    if len(str(p.get("next_offset", "")).encode()) > 64:
        raise bad("NEXT_OFFSET_INVALID")
    if (button := p.get("button")) is not None:
        if not isinstance(button, dict) or not str(button.get("text", "")).strip():
            raise bad("can't parse inline query results button: Text must be non-empty")
        if ("web_app" in button) == ("start_parameter" in button):
            raise bad("can't parse inline query results button: exactly one of web_app and start_parameter")
        if "start_parameter" in button and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(button["start_parameter"])):
            raise bad("START_PARAM_INVALID")
    return results


def chat_member(user: JSONDict, status: str, is_anonymous: bool = False) -> JSONDict:
    """A ChatMember as getChatMember returns it, with the fields its status requires (Bot API 9)."""
    member: JSONDict = {"status": status, "user": dict(user)}
    if status == "creator":
        member["is_anonymous"] = is_anonymous
    elif status == "administrator":
        rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                  "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
                  "can_edit_stories", "can_delete_stories", "can_pin_messages")  # fmt: skip
        member.update({"can_be_edited": False, "is_anonymous": is_anonymous, **dict.fromkeys(rights, True)})
    elif status == "kicked":
        member["until_date"] = 0  # banned for ever
    return member


def public(message: JSONDict, quoted: bool = False) -> JSONDict:
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
        raise bad(f"can't parse {key}") from None
    return value.lower() in ("true", "1") if key in _BOOL_KEYS else value


async def read_params(request: web.Request) -> JSONDict:
    """Parameters from the query string and a JSON, urlencoded or multipart body, decoded to JSON types."""
    raw: JSONDict = dict(request.query)
    if request.can_read_body and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise bad("can't parse JSON object")
        raw.update(body)
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                raw[key] = File(value.filename or "file", value.file.read(), value.content_type)
            else:
                raw[key] = value if isinstance(value, str) else bytes(value).decode()
    params = {key: _decode(key, value, raw) for key, value in raw.items()}
    if not _utf8(params):
        raise bad("strings must be encoded in UTF-8")
    return params


def _utf8(value: Any) -> bool:
    """Whether every string in the parameters can be sent as UTF-8. A lone surrogate ("\\ud800") reaches a JSON
    body as an escape; Telegram refuses it (400) before reading any parameter, so the fake does too."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_utf8(k) and _utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_utf8(item) for item in value)
    return True
