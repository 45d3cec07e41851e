"""Inline mode's handlers: ``@Bot first words`` in any chat, the result a person picked, stars under it.

Thin, as the chat handlers are: parse the update, call ``InlineService``, answer. An inline update has a user
but no chat (``update.effective_chat`` is None), and a button under an inline message comes with
``inline_message_id`` and no message, so nothing here may lean on a chat.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Update,
)
from telegram.constants import MessageLimit
from telegram.error import BadRequest, TelegramError

from bot.services.inline import InlineHint, InlineOutcome
from bot.telegram.callbacks import InlineRate, decode, inline_keyboard
from bot.telegram.context import Context
from bot.telegram.i18n import t

log = logging.getLogger(__name__)

# How long Telegram may show the same results again for the same person and words (is_personal): short, so a
# person who wants fresh lyrics gets them soon; the bot's own cache (InlineService.answer_ttl_s) outlives it.
LYRICS_CACHE_S = 30
HINT_CACHE_S = 300  # the empty-query hint never changes
START_PARAMETER = "inline"  # /start inline: someone came from the button above the inline results


def _hint(hint: InlineHint, lang: str, bot_username: str) -> InlineQueryResultArticle:
    """One article that says why there are no lyrics; sent, it tells the chat how to ask for some."""
    how = t(lang, "inline_how", bot=bot_username)
    return InlineQueryResultArticle(
        id="hint",
        title=t(lang, hint.reason, seconds=hint.seconds, limit=hint.limit, error_id=hint.error_id),
        description=how,
        input_message_content=InputTextMessageContent(how),
    )


async def inline_query(update: Update, context: Context) -> None:
    """An inline query: up to three lyrics that continue the typed words, or a hint."""
    query = update.inline_query
    assert query is not None
    person, lang = context.person, context.lang
    try:
        outcome: InlineOutcome = await context.services.inline.answer(person, query.query)
    except Exception:  # the person is still looking at the results list: tell them, as the chat path does
        error_id = uuid.uuid4().hex[:8]
        log.exception("error %s while answering inline query %s", error_id, query.id)
        outcome = InlineHint("failed", error_id=error_id)
    button = InlineQueryResultsButton(t(lang, "inline_open_chat"), start_parameter=START_PARAMETER)
    if isinstance(outcome, InlineHint) and outcome.reason == "superseded":  # the person typed on: nothing to show
        results: list[InlineQueryResultArticle] = []
        cache_time = 0
    elif isinstance(outcome, InlineHint):
        results = [_hint(outcome, lang, context.bot.username)]
        cache_time = HINT_CACHE_S if outcome.reason == "inline_empty" else 0
    else:
        limit = MessageLimit.MAX_TEXT_LENGTH
        results = [
            InlineQueryResultArticle(
                id=c.result_id, title=c.title, description=c.description or None,
                input_message_content=InputTextMessageContent(c.text[:limit]),  # plain text: no parse mode
                reply_markup=inline_keyboard(outcome.query, lang),
            )
            for c in outcome.candidates
        ]  # fmt: skip
        cache_time = LYRICS_CACHE_S
    try:
        await query.answer(results, cache_time=cache_time, is_personal=True, button=button)
    except TelegramError as exc:  # "query is too old": the person typed on or left; nobody is waiting any more
        log.info("inline query %s was not answered: %s", query.id, exc)


async def chosen_result(update: Update, context: Context) -> None:
    """A person sent one of our inline results: record it (Telegram sends this only with inline feedback on)."""
    chosen = update.chosen_inline_result
    assert chosen is not None
    await context.services.inline.choose(update_id=update.update_id, person=context.person, result_id=chosen.result_id,
                                  inline_message_id=chosen.inline_message_id)  # fmt: skip


async def inline_button(update: Update, context: Context) -> None:
    """A button under a message sent through inline mode: a star rates the request recorded for it."""
    query = update.callback_query
    assert query is not None and query.inline_message_id is not None
    person, lang = context.person, context.lang
    pressed = decode(query.data)
    if not isinstance(pressed, InlineRate):
        with contextlib.suppress(BadRequest):  # forged or foreign data: nothing to do, but the spinner stops
            await query.answer(t(lang, "button_foreign"))
        return
    ok = await context.services.inline.rate(inline_message_id=query.inline_message_id, person=person,
                                            stars=pressed.stars)
    with contextlib.suppress(BadRequest):  # a stale query id: the rating is saved all the same
        await query.answer(t(lang, "rated", stars=pressed.stars) if ok else t(lang, "inline_not_recorded"))
