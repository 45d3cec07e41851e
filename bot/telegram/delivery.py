"""How answers leave: in each chat's order, within Telegram's limits, and a lyric exactly once.

A lyric goes claim -> send -> record (``deliver_lyric``), whoever sends it: ``/write``, "write again", and the
catch-up after a restart all come here, so each sends the same message with the same buttons and notes, and a
row is never sent twice. What happens when Telegram fails: a refusal (``BadRequest``) means nothing arrived, so
the row fails and the person gets the error handler's apology; a timeout or a network error may have delivered
it after all, so the row records "delivery unknown" and nothing more is sent, now or after a restart.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, ForceReply, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, TelegramError

from bot.db.repository import RequestRecord
from bot.domain import Duplicate, Lyric, Refused, WriteOutcome
from bot.services.admission import Ticket
from bot.services.lyrics import LyricsService
from bot.telegram.callbacks import lyric_keyboard
from bot.telegram.context import Context
from bot.telegram.i18n import language, t

log = logging.getLogger(__name__)

CURRENT_TICKET: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("ticket", default=None)

Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


def in_order(handler: Handler) -> Handler:
    """Answers in a chat leave in the order the updates came in, whichever finishes first.

    The ticket is taken before the first ``await``, i.e. in arrival order; ``reply`` waits for the
    chat's previous ticket before sending.
    """

    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        if update.effective_chat is None:
            await handler(update, context)
            return
        ticket = context.services.order.ticket(update.effective_chat.id)
        token = CURRENT_TICKET.set(ticket)
        try:
            await handler(update, context)
        finally:
            ticket.done()
            CURRENT_TICKET.reset(token)

    return wrapper


def fit(text: str) -> str:
    """Telegram refuses messages over 4096 characters (UTF-16 code units: an emoji counts twice);
    lyrics are capped far below, this is the belt."""
    limit = MessageLimit.MAX_TEXT_LENGTH
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    while len(text.encode("utf-16-le")) // 2 > limit - 1:
        text = text[: -max(1, (len(text.encode("utf-16-le")) // 2 - limit + 1) // 2)]
    return text + "…"


def quoting(update: Update, under: Message | None = None) -> ReplyParameters | None:
    """In a group, a reply to the message that asked (or to ``under``); in private, none."""
    chat = update.effective_chat
    message = under or update.effective_message
    if chat is None or chat.type == ChatType.PRIVATE or message is None:
        return None
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def reply(
    update: Update,
    context: Context,
    text: str,
    markup: InlineKeyboardMarkup | ForceReply | None = None,
) -> Message:
    """Plain text (no parse mode, so lyrics cannot break markup), in the chat's order; in groups, a reply."""
    chat = update.effective_chat
    assert chat is not None
    ticket = CURRENT_TICKET.get()
    if ticket is not None:
        await ticket.wait_turn(context.services.settings.request_timeout_s)
    return await context.bot.send_message(chat.id, fit(text), reply_markup=markup, reply_parameters=quoting(update))


def typing(context: Context, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep "typing..." on in the chat while the body runs: one indicator per chat, shared by its requests."""
    return context.services.typing.during(chat_id)


async def send_outcome(update: Update, context: Context, outcome: WriteOutcome) -> None:
    """A lyric, or the refusal's message (once: a refusal told a moment ago is not told again)."""
    if isinstance(outcome, Duplicate):
        log.info("update %s repeats request %s: not answered twice", update.update_id, outcome.request_id)
        return
    if isinstance(outcome, Refused):
        if not outcome.tell:
            return
        values = {"seconds": outcome.seconds, "length": outcome.length, "limit": outcome.limit}
        await reply(update, context, t(context.lang, outcome.reason, **values))
        return

    async def send(text: str, markup: InlineKeyboardMarkup) -> Message:
        return await reply(update, context, text, markup=markup)

    await deliver_lyric(context.services.lyrics, outcome, context.lang, send,
                        share=context.bot.supports_inline_queries)


def shown(lyric: Lyric, lang: str) -> str:
    """The lyric as sent: its text, then the notes about it (characters never seen, a deleted style)."""
    text = lyric.text
    if lyric.skipped:
        text += "\n\n" + t(lang, "skipped", chars=" ".join(lyric.skipped))
    if lyric.style_gone:
        text += "\n\n" + t(lang, "style_gone", name=lyric.style_gone)
    return text


async def deliver_lyric(
    lyrics: LyricsService,
    lyric: Lyric,
    lang: str,
    send: Callable[[str, InlineKeyboardMarkup], Coroutine[Any, Any, Message]],
    share: bool,
) -> bool:
    """Claim the request, send it (``send``), record the message: the one way a lyric leaves. True when Telegram
    took the message."""
    if not await lyrics.claim_sending(lyric.request_id):
        log.warning("request %s is already being answered elsewhere; not sending it twice", lyric.request_id)
        return False
    try:
        sent = await send(fit(shown(lyric, lang)), lyric_keyboard(lyric.request_id, lang, lyric.prefix, share=share))
    except BadRequest as exc:  # refused: nothing arrived, so the person gets the apology
        await lyrics.fail(lyric.request_id, f"Telegram: {exc}")
        raise
    except TelegramError as exc:
        # A timeout or a network error: the lyric may have arrived after all, so no second message (an
        # apology) and no retry at restart; the row records that delivery is unknown.
        await lyrics.fail(lyric.request_id, f"delivery unknown: {type(exc).__name__}: {exc}")
        log.warning("request %s: sending failed (%s); it may have arrived, so nothing more is sent",
                    lyric.request_id, exc)
        return False
    try:
        await lyrics.answered(lyric.request_id, sent.message_id)
    except Exception:  # the person has the lyric; the row stays 'sending', which a restart never resends
        log.exception("request %s was answered but could not be marked so", lyric.request_id)
    return True


async def answer_unfinished(bot: Bot, lyrics: LyricsService, records: list[RequestRecord]) -> None:
    """After a crash or restart, answer exactly once what was accepted but never answered."""
    for record in records:
        try:
            chat_id = record.chat_id
            if chat_id is None:  # an inline request: Telegram delivered it; nowhere to send a lyric
                continue
            outcome = await lyrics.finish(record)
            if not isinstance(outcome, Lyric):
                continue
            quote = None if record.message_id is None else ReplyParameters(
                message_id=record.message_id, allow_sending_without_reply=True)

            async def send(text: str, markup: InlineKeyboardMarkup, chat_id: int = chat_id,
                           quote: ReplyParameters | None = quote) -> Message:
                return await bot.send_message(chat_id, text, reply_markup=markup, reply_parameters=quote)

            lang = language(await lyrics.preferences.language_of(record.user_id))
            if await deliver_lyric(lyrics, outcome, lang, send, share=bool(bot.supports_inline_queries)):
                log.info("answered request %s left over from before the restart", record.id)
        except Exception:  # one bad left-over must not keep the others waiting for yet another restart
            log.exception("could not answer left-over request %s", record.id)


async def notify_admins(bot: Bot, admin_ids: frozenset[int], text: str, chart: bytes | None) -> None:
    """Tell every admin the outcome of a run, with the loss chart when there is one."""
    for admin in sorted(admin_ids):
        try:
            if chart is not None:
                await bot.send_photo(admin, chart, caption=text[:1024])
            else:
                await bot.send_message(admin, text)
        except TelegramError as exc:
            log.warning("could not notify admin %s: %s", admin, exc)
