"""Writing: ``/write``, plain text meant for the bot, and the buttons under a lyric (stars, "write again").

Parse the update, call ``LyricsService``, hand the outcome to ``bot.telegram.delivery``. No tensors, no
database sessions here.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import ForceReply, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.domain import Person, Place, Refused
from bot.services.forms import Asked, lines_pattern, lyric_body, parse_write
from bot.telegram.callbacks import Again, Rate, decode
from bot.telegram.context import Context, command_argument
from bot.telegram.delivery import reply, send_outcome, typing
from bot.telegram.i18n import BOT_NOTES, MESSAGES, t
from bot.telegram.permissions import may_change_chat_settings

log = logging.getLogger(__name__)


async def write(update: Update, context: Context) -> None:
    """/write [tune or pattern:] <prefix>: lyrics that continue the prefix (or, sent as a reply, the replied
    message's text, or new words to a replied lyric's line lengths)."""
    message = update.effective_message
    assert message is not None
    await _write_or_ask(update, context, asked_of(message, context.bot.id, context.services.settings.max_length))


async def _write_or_ask(update: Update, context: Context, asked: Asked) -> None:
    """A lyric for ``asked``; in a group without words or a form, ask for the first line (privacy mode lets the
    answer reach us as a reply to the prompt). The prompt is a reply like any other: it counts against the rate
    limit."""
    if not (asked.words or asked.form or asked.pattern) and context.place.type != ChatType.PRIVATE:
        refused = context.services.lyrics.limit(context.person, context.place)
        if refused is not None:
            await send_outcome(update, context, refused)
            return
        await reply(update, context, t(context.lang, "ask_prefix"), markup=ForceReply(selective=True))
        return
    await _write(update, context, asked)


def asked_of(message: Message, bot_id: int, max_chars: int) -> Asked:
    """What /write asks for: the text after the command (a tune or a pattern before a colon, ``parse_write``).

    As a reply: to a lyric of two lines or more (ours or anyone's), new words to its line lengths (填词), the
    words after the command (if any) their start, up to ``max_chars`` characters of its lines; to one line, that
    line continued (or only its quoted part when the person quoted a part, as Telegram lets one do), unless words
    were given.
    """
    argument = command_argument(message)
    asked = parse_write(argument)
    target = message.reply_to_message
    if target is None or asked.form or asked.pattern:
        return asked
    if message.quote is not None and message.quote.text.strip():
        return asked if argument else Asked(message.quote.text.strip())
    ours = target.from_user is not None and target.from_user.id == bot_id
    if ours and target.text in {m["ask_prefix"] for m in MESSAGES.values()}:
        return asked  # "/write" sent as the answer to our own prompt: the prompt is no first line
    text = target.text or target.caption or ""
    pattern = lines_pattern(lyric_body(text, BOT_NOTES) if ours else text, max_chars)
    if pattern is not None:
        return Asked(asked.words, pattern=pattern)
    return asked if argument else Asked(text.strip())


def _replies_to_prompt(message: Message, bot_id: int) -> bool:
    prompt = message.reply_to_message
    return (
        prompt is not None
        and prompt.from_user is not None
        and prompt.from_user.id == bot_id
        and prompt.text in {m["ask_prefix"] for m in MESSAGES.values()}
    )


def addressed_text(message: Message, bot_username: str) -> str | None:
    """A group message's text without the ``@bot`` mention that addresses it; None when it does not mention us."""
    units = (message.text or "").encode("utf-16-le")  # entity offsets count UTF-16 code units, as Telegram does
    mention = f"@{bot_username}".casefold()
    for entity in message.entities:
        if entity.type == MessageEntity.MENTION and message.parse_entity(entity).casefold() == mention:
            start, end = 2 * entity.offset, 2 * (entity.offset + entity.length)
            return (units[:start] + b" \x00" + units[end:]).decode("utf-16-le").strip()
    return None


async def text_message(update: Update, context: Context) -> None:
    """Plain text is a /write of that text where it is meant for us: in a private chat (what people do with a
    lyric bot), as the answer to our first-line prompt, or in a group when it mentions the bot. Other group
    talk is not ours to answer."""
    message = update.effective_message
    assert message is not None
    text = (message.text or "").strip()
    if _replies_to_prompt(message, context.bot.id) or context.place.type == ChatType.PRIVATE:
        await _write(update, context, parse_write(text))
        return
    addressed = addressed_text(message, context.bot.username)
    if addressed is not None:
        await _write_or_ask(update, context, parse_write(addressed))


def readable(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (which a client can send, escaped in JSON, and no database or Bot API
    accepts) replaced by U+FFFD, which the model treats as any character it has never seen."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


async def _write(update: Update, context: Context, asked: Asked) -> None:
    prefix = readable(asked.words)
    person, place = context.person, context.place
    message = update.effective_message
    assert message is not None
    refused = await context.services.lyrics.admit(update_id=update.update_id, person=person, place=place, prefix=prefix)
    if refused is not None:  # before any row, typing action or write
        await send_outcome(update, context, refused)
        return
    async with typing(context, place.chat_id):
        outcome = await context.services.lyrics.write(
            update_id=update.update_id, person=person, place=place, message_id=message.message_id, prefix=prefix,
            form=asked.form, pattern=asked.pattern,
        )
    await send_outcome(update, context, outcome)


async def button(update: Update, context: Context) -> None:
    """Rating stars and "write again" under a lyric in a chat (``bot.telegram.callbacks``)."""
    query = update.callback_query
    assert query is not None
    pressed = decode(query.data)
    if isinstance(pressed, Rate):
        await _rate(update, context, pressed)
    elif isinstance(pressed, Again):
        await _again(update, context, pressed)
    else:
        with contextlib.suppress(BadRequest):
            await query.answer()


def _under(update: Update) -> int | None:
    """The message the button was pressed under: a button acts only for the request it was sent with."""
    query = update.callback_query
    return query.message.message_id if query is not None and query.message is not None else None


async def _rate(update: Update, context: Context, pressed: Rate) -> None:
    query = update.callback_query
    assert query is not None
    ok = await context.services.ratings.rate(request_id=pressed.request_id, person=context.person,
                                             place=context.place, button_message_id=_under(update), stars=pressed.stars)
    with contextlib.suppress(BadRequest):  # a stale query id: the rating is saved all the same
        await query.answer(t(context.lang, "rated", stars=pressed.stars) if ok else t(context.lang, "button_foreign"))


async def _again(update: Update, context: Context, pressed: Again) -> None:
    query = update.callback_query
    assert query is not None
    lyrics, person, place = context.services.lyrics, context.person, context.place
    admitted = await lyrics.admit_again(request_id=pressed.request_id, person=person, place=place,
                                        button_message_id=_under(update))
    if isinstance(admitted, Refused) and admitted.reason == "again_as_group":
        # Telegram names whoever pressed, even an anonymous admin: one of the group's admins asks as the group.
        admitted = Refused("again_not_yours")
        if await may_change_chat_settings(context.bot, update):
            person = Person(place.chat_id, place.title or "anonymous", None, person.language_code)
            admitted = await lyrics.admit_again(request_id=pressed.request_id, person=person, place=place,
                                                button_message_id=_under(update))
    if isinstance(admitted, Refused) and admitted.reason in ("button_foreign", "again_not_yours"):
        with contextlib.suppress(BadRequest):  # a popup for the one who pressed, nothing in the chat
            await query.answer(t(context.lang, admitted.reason), show_alert=True)
        return
    with contextlib.suppress(BadRequest):
        await query.answer()
    if isinstance(admitted, Refused):
        await send_outcome(update, context, admitted)
        return
    async with typing(context, place.chat_id):
        outcome = await lyrics.write_again(original=admitted, person=person, place=place, update_id=update.update_id)
    await send_outcome(update, context, outcome)


async def chat_migrated(update: Update, context: Context) -> None:
    """A group upgraded to a supergroup: Telegram says so in the old chat (``migrate_to_chat_id``) and in the
    new one (``migrate_from_chat_id``); either moves the group's settings to the new id."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    if message.migrate_to_chat_id is not None:
        old, new = chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, chat.id
    else:
        return
    await context.services.preferences.chat_moved(from_chat_id=old, to_chat=Place(new, ChatType.SUPERGROUP, chat.title))


