"""The bot's own words for what it deals in, shared by every layer: who asks (``Person``), where (``Place``),
how their lyrics are written (``Preferences``), and what a request comes to (``Lyric``, ``Refused``,
``Duplicate``).

Plain frozen records with no Telegram, database or model types in them, so the Telegram layer, the services and
the serving side all speak of the same things without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The style the bot serves to whoever chose none: a row of ``styles`` like any other (migration 0012), whose
# version is the shipped base on a fresh install and the nightly fine-tunes after it.
DEFAULT_STYLE: Final = "default"


@dataclass(frozen=True)
class Person:
    user_id: int
    first_name: str
    username: str | None
    language_code: str | None


@dataclass(frozen=True)
class Place:
    chat_id: int
    type: str
    title: str | None


def group_id(place: Place | None) -> int | None:
    """The chat whose settings apply (a group's), or None where the person's own do (a private chat, inline)."""
    return place.chat_id if place is not None and place.type != "private" else None


@dataclass(frozen=True)
class Preferences:
    """How a person's lyrics are written: their settings, or the bot's defaults where they set none."""

    temperature: float
    length: int
    rhyme: bool
    style: str = DEFAULT_STYLE  # the style written in
    version: str | None = None  # that style's active version, once resolved (``StyleService.resolve``)
    style_gone: str | None = None  # a deleted style the setting named: the default is used, and the person told
    # The form written in (bot.services.forms): a tune's table name, the person's or group's setting unless the
    # request names its own; a pattern string, only ever the request's own; "": free lines.
    form: str = ""
    pattern: str = ""


@dataclass(frozen=True)
class Lyric:
    request_id: int
    text: str
    skipped: tuple[str, ...]
    style_gone: str | None = None  # written in the default style because this one was deleted
    prefix: str = ""  # what the person asked with: the "send to a chat" button pre-fills it


@dataclass(frozen=True)
class Refused:
    """No lyric: ``reason`` is a message key (busy, rate_limited, prefix_too_long, timeout, ...).

    ``tell`` is False when the person was already told the same thing a moment ago: a flood of requests
    must not become a flood of refusals.
    """

    reason: str
    request_id: int | None = None
    seconds: int = 0
    tell: bool = True
    length: int = 0  # prefix_too_long: how long the prefix was
    limit: int = 0  # prefix_too_long, pattern_too_long: the most allowed


@dataclass(frozen=True)
class Duplicate:
    """This Telegram update was already taken, or its request was taken over by another process; its answer is
    (or will be) sent once, elsewhere."""

    request_id: int


WriteOutcome = Lyric | Refused | Duplicate
