"""What every handler is given: the services, and the update's person, place and language, typed.

PTB builds one ``BotData`` per application and a ``Context`` per update (``ContextTypes``, as
python-telegram-bot's ``contexttypesbot.py`` example does). ``Runtime.open`` fills ``BotData`` in
``post_init``, before the first update, so a handler that finds it empty is a bug, said loud. ``Context``
keeps the update it was made for, so a handler asks ``context.person`` instead of re-reading the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Message, MessageEntity, Update
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.domain import Person, Place
from bot.services.admission import ChatOrder
from bot.services.inline import InlineService
from bot.services.lyrics import LyricsService
from bot.services.preferences import PreferencesService
from bot.services.ratings import RatingService
from bot.services.songs import SongService
from bot.services.styles import StyleService
from bot.services.training import TrainingService
from bot.settings import Settings
from bot.telegram.i18n import language
from bot.telegram.typing_indicator import TypingIndicator


@dataclass(frozen=True)
class Services:
    """Everything handlers call, each built once by the composition root (``bot.app``); none is optional."""

    settings: Settings
    lyrics: LyricsService
    preferences: PreferencesService
    ratings: RatingService
    styles: StyleService
    inline: InlineService
    songs: SongService
    training: TrainingService
    order: ChatOrder  # the order answers leave each chat in (bot.telegram.delivery.in_order)
    typing: TypingIndicator


class BotData:
    def __init__(self) -> None:
        self._services: Services | None = None

    def fill(self, services: Services) -> None:
        self._services = services

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("bot_data.services is used before the application started")
        return self._services


def person_of(update: Update) -> Person:
    """Who is asking. A message sent on behalf of a chat (an anonymous group admin, a channel) has a shared
    placeholder user as ``from``, so every anonymous admin of every group would be one person; such a
    sender is the chat it speaks for instead. Inline updates have no message, so never a sender chat."""
    message = update.effective_message
    sender_chat = message.sender_chat if message is not None and update.callback_query is None else None
    if sender_chat is not None:
        return Person(sender_chat.id, sender_chat.title or sender_chat.effective_name or "anonymous",
                      sender_chat.username, None)
    user = update.effective_user
    assert user is not None
    return Person(user.id, user.first_name, user.username, user.language_code)


def place_of(update: Update) -> Place:
    chat = update.effective_chat
    assert chat is not None
    return Place(chat.id, chat.type, chat.title)


def command_argument(message: Message) -> str:
    """The text after the command, line breaks kept (``context.args`` would split them away)."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return text[entity.length :].lstrip(" ").removeprefix("\n").rstrip()
    return text.strip()


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """PTB's context, with the update it was made for and what handlers read of it."""

    origin: Update | None  # the update this context was made for (PTB's own ``update`` is a method)

    @classmethod
    def from_update(cls, update: object, application: Application) -> Context:  # type: ignore[type-arg]
        context = super().from_update(update, application)
        context.origin = update if isinstance(update, Update) else None
        return context

    def _update(self) -> Update:
        origin: Update | None = getattr(self, "origin", None)
        if origin is None:
            raise RuntimeError("this context was not made for an update")
        return origin

    @property
    def services(self) -> Services:
        return self.bot_data.services

    @property
    def person(self) -> Person:
        return person_of(self._update())

    @property
    def place(self) -> Place:
        return place_of(self._update())

    @property
    def lang(self) -> str:
        """The language to answer in: the person's Telegram language where the bot speaks it, else English."""
        update = self._update()
        if update.effective_user is None and update.effective_chat is None:
            return language(None)
        return language(person_of(update).language_code)

    @property
    def argument(self) -> str:
        """The text after the command ("" for an update without a message)."""
        message = self._update().effective_message
        return command_argument(message) if message is not None else ""


CONTEXT_TYPES = ContextTypes(context=Context, bot_data=BotData)
