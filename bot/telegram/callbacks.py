"""Button data, both ways: the one codec for every button the bot sends, and the keyboards under lyrics.

Callback data comes back from the person's client and can be forged, so ``decode`` is strict (a shape it does not
know is None) and every handler still checks what the data names against the database or the chat. Telegram
caps data at 64 bytes; every shape here stays far below.

    r:<request>:<stars>   a star under a lyric in a chat         ir:<stars>   a star under an inline lyric
    a:<request>           "write again"                          im           🎵 under an inline lyric
    m:<request>           🎵 under a lyric in a chat             st:<style>   /style's buttons
    s:<what>[:<value>]    the /settings panel (``PanelTap``; ``s:y:<style>`` is its style page's pick)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineQueryLimit

from bot.telegram.i18n import t

MAX_DATA_BYTES: Final = 64
STARS: Final = frozenset({"1", "2", "3", "4", "5"})
PANEL: Final = "s:"
STYLE: Final = "st:"
# Patterns for PTB's CallbackQueryHandler: which handler a shape goes to (bot.telegram.routes).
PANEL_PATTERN: Final = r"^s:"
STYLE_PATTERN: Final = r"^st:"
MUSIC_PATTERN: Final = r"^(m:.*|im)$"  # forged m: data too: answered by the music handler, as foreign


@dataclass(frozen=True)
class Rate:
    request_id: int
    stars: int


@dataclass(frozen=True)
class Again:
    request_id: int


@dataclass(frozen=True)
class Music:
    request_id: int


@dataclass(frozen=True)
class InlineRate:
    stars: int


@dataclass(frozen=True)
class InlineMusic:
    pass


@dataclass(frozen=True)
class PickStyle:
    name: str


@dataclass(frozen=True)
class PanelTap:
    what: str  # t (temperature), l (length), r (rhyme), f (form), y (style), b (back) or x (done)
    value: str  # "" where the button carries none


Button = Rate | Again | Music | InlineRate | InlineMusic | PickStyle | PanelTap


def _request_id(text: str) -> int | None:
    """Any whole number: whether such a request exists, and is the button's own, is the services' question."""
    return int(text) if text.isdecimal() else None


def decode(data: str | None) -> Button | None:
    """The button ``data`` stands for; None for anything that is not one of our shapes."""
    if not data or len(data.encode()) > MAX_DATA_BYTES:
        return None
    kind, _, rest = data.partition(":")
    if kind == "r":
        request, _, stars = rest.partition(":")
        request_id = _request_id(request)
        return Rate(request_id, int(stars)) if request_id is not None and stars in STARS else None
    if kind in ("a", "m"):
        request_id = _request_id(rest)
        return None if request_id is None else Again(request_id) if kind == "a" else Music(request_id)
    if kind == "ir":
        return InlineRate(int(rest)) if rest in STARS else None
    if data == "im":
        return InlineMusic()
    if kind == "st":
        return PickStyle(rest) if rest else None
    if kind == "s":
        what, _, value = rest.partition(":")
        if what not in {"t", "l", "r", "f", "y", "b", "x"} or (what in {"t", "l", "r"} and not value):
            return None
        if what in {"b", "x"} and value:
            return None
        return PanelTap(what, value)
    return None


def encode(button: Button) -> str:
    match button:
        case Rate(request_id, stars):
            return f"r:{request_id}:{stars}"
        case Again(request_id):
            return f"a:{request_id}"
        case Music(request_id):
            return f"m:{request_id}"
        case InlineRate(stars):
            return f"ir:{stars}"
        case InlineMusic():
            return "im"
        case PickStyle(name):
            return STYLE + name
        case PanelTap(what, value):
            return PANEL + what + (f":{value}" if value else "")
    raise TypeError(f"not a button: {button!r}")


def fits(button: Button) -> bool:
    """Whether Telegram takes the button's data (a style name from a row could, in principle, be too long)."""
    return len(encode(button).encode()) <= MAX_DATA_BYTES


def button(text: str, data: Button) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=encode(data))


def share_button(prefix: str, lang: str) -> InlineKeyboardButton:
    """"Send to a chat": the person picks a chat, where the inline query comes pre-filled with the prefix."""
    text = " ".join(prefix.split())  # an inline query is one line
    return InlineKeyboardButton(t(lang, "share"), switch_inline_query=text[: InlineQueryLimit.MAX_QUERY_LENGTH])


def lyric_keyboard(request_id: int, lang: str, prefix: str = "", share: bool = True) -> InlineKeyboardMarkup:
    """Stars, "write again", 🎵, and "send to a chat" where the bot has inline mode (getMe's
    ``supports_inline_queries``): without it the button would open an inline query nobody answers."""
    stars = [button("\u2605" + str(n), Rate(request_id, n)) for n in range(1, 6)]
    again = [button(t(lang, "write_again"), Again(request_id)), button(t(lang, "tune_button"), Music(request_id))]
    return InlineKeyboardMarkup([stars, again, *([[share_button(prefix, lang)]] if share else [])])


def inline_keyboard(prefix: str, lang: str) -> InlineKeyboardMarkup:
    """Under a lyric sent through inline mode: stars, "send to a chat" and 🎵 (no "write again": there is no chat
    to write into). The request is found by the message's ``inline_message_id``, so the data names none."""
    stars = [button(f"\u2605{n}", InlineRate(n)) for n in range(1, 6)]
    return InlineKeyboardMarkup([stars, [share_button(prefix, lang), button(t(lang, "tune_button"), InlineMusic())]])
