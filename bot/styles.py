"""/style: pick the style lyrics are written in, as inline buttons or by name.

In a private chat the choice is the person's own; in a group it is the group's, and only the group's
administrators may change it (``bot.permissions``: Telegram's ``getChatMember`` decides). Button data is
``st:<name>``; it comes from the person's client and can be forged, so a name is acted on only if it names
a live style, looked up again on every tap.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.context import Context
from bot.handlers import command_argument, person_of, place_of, reply, services
from bot.i18n import MESSAGES, language, t
from bot.permissions import may_change_chat_settings
from bot.services.styles import StyleChoice, StyleService
from bot.settings_panel import refuse_foreign

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "st:"
CALLBACK_PATTERN = r"^st:"
BUTTONS_PER_ROW = 2


def style_service(context: Context) -> StyleService:
    styles = services(context).styles
    if styles is None:
        raise RuntimeError("the style service is used before the application started")
    return styles


def title(choice: StyleChoice, lang: str) -> str:
    return choice.title if choice.title is not None else t(lang, "style_default")


def keyboard(choices: list[StyleChoice], current: str, lang: str) -> InlineKeyboardMarkup:
    """One button per style, the current one ticked; data stays far below Telegram's 64 bytes (names are <= 32)."""
    buttons = [
        InlineKeyboardButton(("\u2713 " if c.name == current else "") + title(c, lang),
                             callback_data=CALLBACK_PREFIX + c.name)
        for c in choices
    ]
    return InlineKeyboardMarkup([buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])


async def _panel(context: Context, update: Update, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    styles = style_service(context)
    choices = await styles.available()
    current = await styles.current(person_of(update), place_of(update))
    shown = next((title(c, lang) for c in choices if c.name == current), current)
    key = "style_show_private" if place_of(update).type == ChatType.PRIVATE else "style_show_group"
    return t(lang, key, style=shown), keyboard(choices, current, lang)


def named(argument: str, choices: list[StyleChoice]) -> str:
    """The style a typed name means: its own name, or the title its button shows in any language (``默认``,
    ``Default``, ``Jay Chou``), case-insensitively; unchanged when nothing matches."""
    wanted = argument.strip().casefold()
    for choice in choices:
        shown = {choice.title} if choice.title is not None else {m["style_default"] for m in MESSAGES.values()}
        if wanted in {choice.name.casefold(), *(s.casefold() for s in shown)}:
            return choice.name
    return argument


async def _unknown(context: Context, name: str, lang: str) -> str:
    choices = await style_service(context).available()
    names = ", ".join(c.name if title(c, lang) == c.name else f"{title(c, lang)} ({c.name})" for c in choices)
    return t(lang, "style_unknown", name=name[:40], names=names)


async def style(update: Update, context: Context) -> None:
    """/style [name]: the styles as buttons, or pick one by name."""
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    argument = command_argument(update.effective_message) if update.effective_message else ""
    if not argument:
        text, markup = await _panel(context, update, lang)
        await reply(update, context, text, markup=markup)
        return
    styles = style_service(context)
    argument = named(argument, await styles.available())
    if await styles.find(argument) is None:
        await reply(update, context, await _unknown(context, argument, lang))
        return
    if not await may_change_chat_settings(context.bot, update):
        await reply(update, context, t(lang, "style_admins_only"))
        return
    chosen = await styles.choose(person=person, place=place, name=argument)
    if chosen is None:  # deleted between the two looks
        await reply(update, context, await _unknown(context, argument, lang))
        return
    await reply(update, context, t(lang, "style_set", style=title(chosen, lang)))


async def style_button(update: Update, context: Context) -> None:
    """A tap on a /style button (``st:<name>``): set the style, tick it, or say why not in a popup."""
    query = update.callback_query
    assert query is not None
    if await refuse_foreign(update, context, CALLBACK_PREFIX):  # forged under a lyric, or an inline message
        return
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    name = (query.data or "").removeprefix(CALLBACK_PREFIX)
    styles = style_service(context)
    if await styles.find(name) is None:  # deleted since the buttons were sent, or forged
        with contextlib.suppress(BadRequest):
            await query.answer(await _unknown(context, name, lang), show_alert=True)
        return
    if not await may_change_chat_settings(context.bot, update):
        log.info("refused a style change by %s in chat %s", person.user_id, place.chat_id)
        with contextlib.suppress(BadRequest):
            await query.answer(t(lang, "style_admins_only"), show_alert=True)
        return
    chosen = await styles.choose(person=person, place=place, name=name)
    if chosen is None:
        with contextlib.suppress(BadRequest):
            await query.answer(await _unknown(context, name, lang), show_alert=True)
        return
    with contextlib.suppress(BadRequest):
        await query.answer(t(lang, "style_set", style=title(chosen, lang)))
    text, markup = await _panel(context, update, lang)
    with contextlib.suppress(BadRequest):  # unchanged (a second tap on the same style), or the message is gone
        await query.edit_message_text(text, reply_markup=markup)
