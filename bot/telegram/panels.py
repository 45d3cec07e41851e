"""What the button panels share: whether a tap came from under one of ours, and the one style picker.

Two panels change a chat's settings with buttons: ``/settings`` (``s:`` data) and ``/style`` (``st:``). A tap
acts only under a panel of its own kind (``refuse_foreign``): forged data under a lyric, or any data under an
inline message (which has no chat to change), is refused in a popup. Both panels pick a style through
``pick_style``, which checks in one order: the style exists, the person may change this chat's settings, the
choice is stored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from telegram import Message, Update
from telegram.error import BadRequest

from bot.services.preferences import PreferencesService
from bot.services.styles import DEFAULT_STYLE, StyleChoice
from bot.telegram.context import Context
from bot.telegram.i18n import MESSAGES, scoped, t
from bot.telegram.permissions import may_change_chat_settings

log = logging.getLogger(__name__)

Refusal = Literal["unknown", "not_admin"]


def on_off(lang: str, value: bool) -> str:
    return t(lang, "on" if value else "off")


def form_name(lang: str, form: str) -> str:
    return form or t(lang, "form_free")


@dataclass(frozen=True)
class Setting:
    """One setting as the typed commands and the /settings panel change it: the same parsing, the same words."""

    key: str  # its messages: <key>_show, <key>_set, <key>_usage (``bot.telegram.i18n``)
    field: str  # of ``Preferences``
    parse: Callable[[PreferencesService, str], Any]  # None: not a value a person could set
    show: Callable[[str, Any], object] = lambda lang, value: value


SETTINGS: Final = {  # by the panel's button letter (``PanelTap.what``)
    "t": Setting("temp", "temperature", PreferencesService.parse_temperature),
    "l": Setting("len", "length", PreferencesService.parse_length),
    "r": Setting("rhyme", "rhyme", PreferencesService.parse_rhyme, on_off),
    "f": Setting("form", "form", PreferencesService.parse_form, form_name),
}


async def change_setting(context: Context, setting: Setting, value: Any) -> str:
    """Store a value ``setting.parse`` gave (the person's setting, or in a group the group's: the caller checked
    that the person may); the words that say so."""
    preferences, lang, place = context.services.preferences, context.lang, context.place
    await preferences.change(context.person, place=place, **{setting.field: value})
    return t(lang, scoped(f"{setting.key}_set", place), value=setting.show(lang, value))


def is_panel(message: object, prefix: str) -> bool:
    """A message of ours with buttons whose data starts with ``prefix``: a forged tap under a lyric must not turn
    it into a panel. A message sent through inline mode never is one: the callback carries no message at all."""
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(isinstance(b.callback_data, str) and b.callback_data.startswith(prefix)
               for row in message.reply_markup.inline_keyboard for b in row)


async def refuse_foreign(update: Update, context: Context, prefix: str) -> bool:
    """Answer and log a tap that is not under one of our ``prefix`` panels; True when it was refused."""
    query = update.callback_query
    assert query is not None
    if is_panel(query.message, prefix):
        return False
    log.warning("refused button %r from %s: not under a %s panel", query.data, context.person.user_id, prefix)
    with contextlib.suppress(BadRequest):
        await query.answer(t(context.lang, "button_foreign"), show_alert=True)
    return True


def style_title(choice: StyleChoice, lang: str) -> str:
    """What a style's button and messages call it: its title, or "Default" in the person's language."""
    return choice.title if choice.title is not None and choice.name != DEFAULT_STYLE else t(lang, "style_default")


def typed_style(argument: str, choices: list[StyleChoice]) -> str:
    """The style a typed name means: its own name, or the title its button shows in any language (``默认``,
    ``Default``, ``Jay Chou``), case-insensitively; unchanged when nothing matches."""
    wanted = argument.strip().casefold()
    for choice in choices:
        shown = {choice.title} if choice.title is not None else {m["style_default"] for m in MESSAGES.values()}
        if wanted in {choice.name.casefold(), *(s.casefold() for s in shown)}:
            return choice.name
    return argument


async def pick_style(
    update: Update, context: Context, name: str, *, may_change: bool | None = None
) -> StyleChoice | Refusal:
    """Make ``name`` the style of this chat (the person's in private, the group's in a group). ``may_change``: the
    answer of ``may_change_chat_settings`` where the caller has it already (one ``getChatMember`` per tap)."""
    styles = context.services.styles
    if await styles.find(name) is None:  # deleted since the buttons were sent, or forged
        return "unknown"
    if not (may_change if may_change is not None else await may_change_chat_settings(context.bot, update)):
        log.info("refused a style change by %s in chat %s", context.person.user_id, context.place.chat_id)
        return "not_admin"
    chosen = await styles.choose(person=context.person, place=context.place, name=name)
    return "unknown" if chosen is None else chosen  # None: deleted between the two looks
