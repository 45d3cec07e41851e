"""What the bot says about its lyrics and to what it cannot take: /top, /stats, an unknown command, a message
without text, and the apology when a handler fails. (/help is the catalogue's: ``bot.telegram.catalogue``.)"""

from __future__ import annotations

import contextlib
import logging
import uuid

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.telegram.context import Context
from bot.telegram.delivery import reply, send_outcome
from bot.telegram.i18n import language, t

log = logging.getLogger(__name__)


async def top(update: Update, context: Context) -> None:
    """/top: the best-rated lyrics."""
    lang = context.lang
    best = await context.services.ratings.top(context.person, context.place)
    if not best:
        await reply(update, context, t(lang, "top_empty"))
        return
    items = [
        t(lang, "top_item_one" if b.ratings == 1 else "top_item", rank=i + 1, stars=b.mean_stars, count=b.ratings,
          text=b.output)
        for i, b in enumerate(best)
    ]
    await reply(update, context, "\n\n".join(items))


async def stats(update: Update, context: Context) -> None:
    """/stats: the person's own counts."""
    person = context.person
    lang = context.lang
    s = await context.services.ratings.stats(person)
    received = t(lang, "stats_received", mean=s.mean_stars_received) if s.mean_stars_received is not None else ""
    await reply(
        update,
        context,
        t(lang, "stats", requests=s.requests, answered=s.answered, ratings=s.ratings_given, received=received),
    )


async def unknown_command(update: Update, context: Context) -> None:
    """A command we do not have: a one-line hint in private, or in a group when addressed to us by name
    (``/foo@OurBot``); a group's command for another bot, or one without our name, is not ours."""
    message = update.effective_message
    assert message is not None
    command = (message.text or "/").split(maxsplit=1)[0]
    name, _, addressee = command.partition("@")
    private = context.place.type == ChatType.PRIVATE
    if not private and addressee.casefold() != context.bot.username.casefold():
        return
    person, place = context.person, context.place
    if not private:  # a group hears one hint a minute per person at most, as it hears refusals
        refused = context.services.lyrics.limit(person, place)
        if refused is not None:
            await send_outcome(update, context, refused)
            return
    log.info("unknown command %r from %s in chat %s", name[:40], person.user_id, place.chat_id)
    await reply(update, context, t(context.lang, "unknown_command", command=name[:40]))


async def not_text(update: Update, context: Context) -> None:
    """A sticker, photo, voice or anything else without text in a private chat: say what we can do with words."""
    await reply(update, context, t(context.lang, "not_text"))


async def on_error(update: object, context: Context) -> None:
    """Log the details with an id; show the person a short apology with the same id, never a traceback."""
    error_id = uuid.uuid4().hex[:8]
    log.error("error %s while handling an update", error_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    lang = language(update.effective_user.language_code if update.effective_user else None)
    if update.callback_query is not None:  # a popup, which also stops the button's spinner
        try:
            await update.callback_query.answer(t(lang, "failed", error_id=error_id), show_alert=True)
            return
        except TelegramError:  # answered already: the apology goes to the chat, where there is one
            pass
    if update.effective_chat is not None:
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(update.effective_chat.id, t(lang, "failed", error_id=error_id))
