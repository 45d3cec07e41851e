"""/style: pick the style lyrics are written in, as inline buttons or by name.

In a private chat the choice is the person's own; in a group it is the group's, and only the group's
administrators may change it (``bot.telegram.permissions``: Telegram's ``getChatMember`` decides). Button
data is ``st:<name>``; it comes from the person's client and can be forged, so a name is acted on only if it names
a live style, looked up again on every tap.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.services.styles import StyleChoice
from bot.telegram.callbacks import STYLE, PickStyle, button, decode
from bot.telegram.context import Context
from bot.telegram.delivery import reply
from bot.telegram.i18n import t
from bot.telegram.panels import pick_style, refuse_foreign, style_title, typed_style

log = logging.getLogger(__name__)

BUTTONS_PER_ROW = 2


def keyboard(choices: list[StyleChoice], current: str, lang: str) -> InlineKeyboardMarkup:
    """One button per style, the current one ticked; data stays far below Telegram's 64 bytes (names are <= 32)."""
    buttons = [button(("\u2713 " if c.name == current else "") + style_title(c, lang), PickStyle(c.name))
               for c in choices]
    return InlineKeyboardMarkup([buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])


async def _panel(update: Update, context: Context) -> tuple[str, InlineKeyboardMarkup]:
    styles, lang = context.services.styles, context.lang
    choices = await styles.available()
    current = await styles.current(context.person, context.place)
    shown = next((style_title(c, lang) for c in choices if c.name == current), current)
    key = "style_show_private" if context.place.type == ChatType.PRIVATE else "style_show_group"
    return t(lang, key, style=shown), keyboard(choices, current, lang)


async def _unknown(context: Context, name: str) -> str:
    lang = context.lang
    choices = await context.services.styles.available()
    names = ", ".join(c.name if style_title(c, lang) == c.name else f"{style_title(c, lang)} ({c.name})"
                      for c in choices)
    return t(lang, "style_unknown", name=name[:40], names=names)


async def style(update: Update, context: Context) -> None:
    """/style [name]: the styles as buttons, or pick one by name."""
    lang = context.lang
    if not context.argument:
        text, markup = await _panel(update, context)
        await reply(update, context, text, markup=markup)
        return
    name = typed_style(context.argument, await context.services.styles.available())
    chosen = await pick_style(update, context, name)
    if chosen == "unknown":
        await reply(update, context, await _unknown(context, name))
    elif chosen == "not_admin":
        await reply(update, context, t(lang, "style_admins_only"))
    else:
        await reply(update, context, t(lang, "style_set", style=style_title(chosen, lang)))


async def style_button(update: Update, context: Context) -> None:
    """A tap on a /style button: set the style, tick it, or say why not in a popup."""
    query = update.callback_query
    assert query is not None
    if await refuse_foreign(update, context, STYLE):  # forged under a lyric, or an inline message
        return
    lang = context.lang
    pressed = decode(query.data)
    name = pressed.name if isinstance(pressed, PickStyle) else ""
    chosen = await pick_style(update, context, name)
    if isinstance(chosen, str):
        why = await _unknown(context, name) if chosen == "unknown" else t(lang, "style_admins_only")
        with contextlib.suppress(BadRequest):
            await query.answer(why, show_alert=True)
        return
    with contextlib.suppress(BadRequest):
        await query.answer(t(lang, "style_set", style=style_title(chosen, lang)))
    text, markup = await _panel(update, context)
    with contextlib.suppress(BadRequest):  # unchanged (a second tap on the same style), or the message is gone
        await query.edit_message_text(text, reply_markup=markup)
