"""Telegram handlers: parse the update, call a service, reply. No tensors, no database sessions here."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, TelegramError

from bot.context import Context
from bot.i18n import MESSAGES, language, t
from bot.inline import inline_button, share_button
from bot.permissions import may_change_chat_settings
from bot.services.admission import ChatOrder, Ticket
from bot.services.forms import Asked, lines_pattern, lyric_body, parse_write
from bot.services.inline import InlineService
from bot.services.lyrics import (
    Duplicate,
    Lyric,
    LyricsService,
    Person,
    Place,
    Refused,
    WriteOutcome,
    group_id,
)
from bot.services.songs import SongService
from bot.services.styles import StyleService
from bot.settings import Settings
from bot.typing_indicator import TypingIndicator

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
        ticket = services(context).order.ticket(update.effective_chat.id)
        token = CURRENT_TICKET.set(ticket)
        try:
            await handler(update, context)
        finally:
            ticket.done()
            CURRENT_TICKET.reset(token)

    return wrapper


@dataclass
class BotServices:
    """Everything handlers need, built in ``post_init`` and kept in ``application.bot_data``."""

    settings: Settings
    lyrics: LyricsService
    order: ChatOrder
    typing: TypingIndicator
    styles: StyleService | None = None  # /style and the admin commands per style (bot.styles)
    inline: InlineService | None = None  # inline mode (bot.inline); built with the rest in post_init
    songs: SongService | None = None  # melodies (bot.song_handlers); built with the rest in post_init


def services(context: Context) -> BotServices:
    return context.bot_data.services


def person_of(update: Update) -> Person:
    """Who is asking. A message sent on behalf of a chat (an anonymous group admin, a channel) has a shared
    placeholder user as ``from``, so every anonymous admin of every group would be one person; such a
    sender is the chat it speaks for instead."""
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


def fit(text: str) -> str:
    """Telegram refuses messages over 4096 characters (UTF-16 code units: an emoji counts twice);
    lyrics are capped far below, this is the belt."""
    limit = MessageLimit.MAX_TEXT_LENGTH
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    while len(text.encode("utf-16-le")) // 2 > limit - 1:
        text = text[: -max(1, (len(text.encode("utf-16-le")) // 2 - limit + 1) // 2)]
    return text + "…"


def lyric_keyboard(request_id: int, lang: str, prefix: str = "", share: bool = True) -> InlineKeyboardMarkup:
    """Stars, "write again", and "send to a chat" where the bot has inline mode (getMe's
    ``supports_inline_queries``): without it the button would open an inline query nobody answers."""
    stars = [InlineKeyboardButton("\u2605" * 1 + str(n), callback_data=f"r:{request_id}:{n}") for n in range(1, 6)]
    again = [InlineKeyboardButton(t(lang, "write_again"), callback_data=f"a:{request_id}"),
             InlineKeyboardButton(t(lang, "tune_button"), callback_data=f"m:{request_id}")]  # bot.song_handlers
    return InlineKeyboardMarkup([stars, again, *([[share_button(prefix, lang)]] if share else [])])


def typing(context: Context, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep "typing..." on in the chat while the body runs: one indicator per chat, shared by its requests."""
    return services(context).typing.during(chat_id)


async def start(update: Update, context: Context) -> None:
    """/start and /help: what the bot does, in the person's language."""
    from bot.commands import help_text  # the registry holds this handler: imported at call time

    svc = services(context)
    person, place = person_of(update), place_of(update)
    prefs = await svc.lyrics.preferences(person, place)
    lang = language(person.language_code)
    chat = update.effective_chat
    # Admin commands are listed only to an admin, and only in private: a group need not learn them.
    with_admin = person.user_id in svc.settings.admin_ids and chat is not None and chat.type == "private"
    text = help_text(lang, svc.settings, with_admin, group=group_id(place) is not None,
                     bot_username=context.bot.username, temperature=prefs.temperature, length=prefs.length,
                     rhyme=t(lang, "on" if prefs.rhyme else "off"))
    await reply(update, context, text)


async def write(update: Update, context: Context) -> None:
    """/write [tune or pattern:] <prefix>: lyrics that continue the prefix (or, sent as a reply, the replied
    message's text, or new words to a replied lyric's line lengths)."""
    message = update.effective_message
    assert message is not None
    await _write_or_ask(update, context, asked_of(message, context.bot.id, services(context).settings.max_length))


async def _write_or_ask(update: Update, context: Context, asked: Asked) -> None:
    """A lyric for ``asked``; in a group without words or a form, ask for the first line (privacy mode lets the
    answer reach us as a reply to the prompt). The prompt is a reply like any other: it counts against the rate
    limit."""
    if not (asked.words or asked.form or asked.pattern) and place_of(update).type != ChatType.PRIVATE:
        refused = services(context).lyrics.limit(person_of(update), place_of(update))
        if refused is not None:
            await send_outcome(update, context, refused)
            return
        lang = language(person_of(update).language_code)
        await reply(update, context, t(lang, "ask_prefix"), markup=ForceReply(selective=True))
        return
    await _write(update, context, asked)


# What the bot appends under a lyric (their fixed openings): not lines of the lyric when one replies to it.
BOT_NOTES = tuple(m[key].split("{")[0] for m in MESSAGES.values() for key in ("skipped", "style_gone"))


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
    if _replies_to_prompt(message, context.bot.id) or place_of(update).type == ChatType.PRIVATE:
        await _write(update, context, parse_write(text))
        return
    addressed = addressed_text(message, context.bot.username)
    if addressed is not None:
        await _write_or_ask(update, context, parse_write(addressed))


async def unknown_command(update: Update, context: Context) -> None:
    """A command we do not have: a one-line hint in private, or in a group when addressed to us by name
    (``/foo@OurBot``); a group's command for another bot, or one without our name, is not ours."""
    message = update.effective_message
    assert message is not None
    command = (message.text or "/").split(maxsplit=1)[0]
    name, _, addressee = command.partition("@")
    private = place_of(update).type == ChatType.PRIVATE
    if not private and addressee.casefold() != context.bot.username.casefold():
        return
    person, place = person_of(update), place_of(update)
    if not private:  # a group hears one hint a minute per person at most, as it hears refusals
        refused = services(context).lyrics.limit(person, place)
        if refused is not None:
            await send_outcome(update, context, refused)
            return
    log.info("unknown command %r from %s in chat %s", name[:40], person.user_id, place.chat_id)
    await reply(update, context, t(language(person.language_code), "unknown_command", command=name[:40]))


async def not_text(update: Update, context: Context) -> None:
    """A sticker, photo, voice or anything else without text in a private chat: say what we can do with words."""
    await reply(update, context, t(language(person_of(update).language_code), "not_text"))


def readable(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (which a client can send, escaped in JSON, and no database or Bot API
    accepts) replaced by U+FFFD, which the model treats as any character it has never seen."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


async def _write(update: Update, context: Context, asked: Asked) -> None:
    prefix = readable(asked.words)
    svc = services(context)
    person, place = person_of(update), place_of(update)
    message = update.effective_message
    assert message is not None
    refused = await svc.lyrics.admit(update_id=update.update_id, person=person, place=place, prefix=prefix)
    if refused is not None:  # before any row, typing action or write
        await send_outcome(update, context, refused)
        return
    async with typing(context, place.chat_id):
        outcome = await svc.lyrics.write(
            update_id=update.update_id, person=person, place=place, message_id=message.message_id, prefix=prefix,
            form=asked.form, pattern=asked.pattern,
        )
    await send_outcome(update, context, outcome)


async def send_outcome(update: Update, context: Context, outcome: WriteOutcome) -> None:
    svc = services(context)
    lang = language(person_of(update).language_code)
    if isinstance(outcome, Duplicate):
        log.info("update %s repeats request %s: not answered twice", update.update_id, outcome.request_id)
        return
    if isinstance(outcome, Refused):
        if not outcome.tell:
            return
        values = {"seconds": outcome.seconds, "length": outcome.length, "limit": svc.settings.max_prefix_chars}
        await reply(update, context, t(lang, outcome.reason, **values))
        return
    await send_lyric(update, context, outcome, lang)


async def send_lyric(update: Update, context: Context, lyric: Lyric, lang: str) -> None:
    svc = services(context)
    text = lyric.text
    if lyric.skipped:
        text += "\n\n" + t(lang, "skipped", chars=" ".join(lyric.skipped))
    if lyric.style_gone:
        text += "\n\n" + t(lang, "style_gone", name=lyric.style_gone)
    if not await svc.lyrics.claim_sending(lyric.request_id):
        log.warning("request %s is already being answered elsewhere; not sending it twice", lyric.request_id)
        return
    try:
        markup = lyric_keyboard(lyric.request_id, lang, lyric.prefix, share=context.bot.supports_inline_queries)
        sent = await reply(update, context, text, markup=markup)
    except BadRequest as exc:  # refused: nothing arrived, so the person gets the apology
        await svc.lyrics.fail(lyric.request_id, f"Telegram: {exc}")
        raise
    except TelegramError as exc:
        # A timeout or a network error: the lyric may have arrived after all, so no second message (an
        # apology) and no retry at restart; the row records that delivery is unknown.
        await svc.lyrics.fail(lyric.request_id, f"delivery unknown: {type(exc).__name__}: {exc}")
        log.warning("request %s: sending failed (%s); it may have arrived, so nothing more is sent",
                    lyric.request_id, exc)
        return
    try:
        await svc.lyrics.answered(lyric.request_id, sent.message_id)
    except Exception:  # the person has the lyric; the row stays 'sending', which a restart never resends
        log.exception("request %s was answered but could not be marked so", lyric.request_id)


async def reply(
    update: Update,
    context: Context,
    text: str,
    markup: InlineKeyboardMarkup | ForceReply | None = None,
) -> Message:
    """Plain text (no parse mode, so lyrics cannot break markup); in groups, a reply to the requester."""
    chat = update.effective_chat
    assert chat is not None
    ticket = CURRENT_TICKET.get()
    if ticket is not None:
        await ticket.wait_turn(services(context).settings.request_timeout_s)
    message = update.effective_message
    quote = None
    if chat.type != ChatType.PRIVATE and message is not None:
        quote = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    return await context.bot.send_message(chat.id, fit(text), reply_markup=markup, reply_parameters=quote)


async def top(update: Update, context: Context) -> None:
    """/top: the best-rated lyrics."""
    svc = services(context)
    lang = language(person_of(update).language_code)
    best = await svc.lyrics.top(person_of(update), place_of(update))
    if not best:
        await reply(update, context, t(lang, "top_empty"))
        return
    items = [
        t(lang, "top_item", rank=i + 1, stars=b.mean_stars, count=b.ratings, text=b.output) for i, b in enumerate(best)
    ]
    await reply(update, context, "\n\n".join(items))


async def stats(update: Update, context: Context) -> None:
    """/stats: the person's own counts."""
    svc = services(context)
    person = person_of(update)
    lang = language(person.language_code)
    s = await svc.lyrics.stats(person)
    received = t(lang, "stats_received", mean=s.mean_stars_received) if s.mean_stars_received is not None else ""
    await reply(
        update,
        context,
        t(lang, "stats", requests=s.requests, answered=s.answered, ratings=s.ratings_given, received=received),
    )


async def button(update: Update, context: Context) -> None:
    """Rating stars (``r:<request>:<stars>``) and "write again" (``a:<request>``)."""
    svc = services(context)
    query = update.callback_query
    assert query is not None
    if query.inline_message_id is not None:  # under a lyric sent through inline mode: no chat, no message
        await inline_button(update, context)
        return
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    # The message the button was pressed under: a button acts only for the request it was sent with.
    under = query.message.message_id if query.message is not None else None
    kind, _, rest = (query.data or "").partition(":")
    if kind == "r":
        request_text, _, stars_text = rest.partition(":")
        if request_text.isdecimal() and stars_text in {"1", "2", "3", "4", "5"}:
            ok = await svc.lyrics.rate(
                request_id=int(request_text), person=person, place=place, button_message_id=under,
                stars=int(stars_text),
            )
            with contextlib.suppress(BadRequest):  # a stale query id: the rating is saved all the same
                await query.answer(t(lang, "rated", stars=stars_text) if ok else t(lang, "button_foreign"))
            return
    elif kind == "a" and rest.isdecimal():
        admitted = await svc.lyrics.admit_again(
            request_id=int(rest), person=person, place=place, button_message_id=under
        )
        if isinstance(admitted, Refused) and admitted.reason == "again_as_group":
            # Telegram names whoever pressed, even an anonymous admin: one of the group's admins asks as the group.
            admitted = Refused("again_not_yours")
            if await may_change_chat_settings(context.bot, update):
                person = Person(place.chat_id, place.title or "anonymous", None, person.language_code)
                admitted = await svc.lyrics.admit_again(
                    request_id=int(rest), person=person, place=place, button_message_id=under
                )
        if isinstance(admitted, Refused) and admitted.reason in ("button_foreign", "again_not_yours"):
            with contextlib.suppress(BadRequest):  # a popup for the one who pressed, nothing in the chat
                await query.answer(t(lang, admitted.reason), show_alert=True)
            return
        with contextlib.suppress(BadRequest):
            await query.answer()
        if isinstance(admitted, Refused):
            await send_outcome(update, context, admitted)
            return
        async with typing(context, place.chat_id):
            outcome = await svc.lyrics.write_again(
                original=admitted, person=person, place=place, update_id=update.update_id
            )
        await send_outcome(update, context, outcome)
        return
    with contextlib.suppress(BadRequest):
        await query.answer()


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
    await services(context).lyrics.chat_moved(from_chat_id=old, to_chat=Place(new, ChatType.SUPERGROUP, chat.title))


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
