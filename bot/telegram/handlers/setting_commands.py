"""The typed settings commands (/temp, /len, /rhyme): show a setting, or change it where the person may.

In private a person changes their own settings; in a group the command changes the group's, which only
its administrators may (``bot.telegram.permissions``). The /settings panel (``bot.telegram.handlers.settings``)
changes the same settings with buttons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from telegram import Update

from bot.telegram.context import Context
from bot.telegram.delivery import reply
from bot.telegram.i18n import scoped, t
from bot.telegram.permissions import may_change_chat_settings

log = logging.getLogger(__name__)

RHYME_WORDS = {"on": True, "off": False, "开": True, "关": False}  # what /rhyme takes, in both languages


async def may_change(update: Update, context: Context, lang: str) -> bool:
    """A group's settings are changed only by its administrators; anyone else is told so, and nothing changes."""
    if await may_change_chat_settings(context.bot, update):
        return True
    log.info("refused a settings change in chat %s by %s: not an administrator", context.place.chat_id,
             context.person.user_id)
    await reply(update, context, t(lang, "settings_admins_only"))
    return False


async def _setting(
    update: Update, context: Context, *, key: str, field: str, parse: Callable[[str], Any], usage: dict[str, Any],
    show: Callable[[str, Any], Any] = lambda lang, value: value,
) -> None:
    """/key [value]: show the setting ``field`` (the person's, or in a group the group's); with a value, check it
    as strictly as the panel does, then change it where the person may. ``key`` names the messages."""
    svc = context.services
    person, place = context.person, context.place
    lang = context.lang
    argument = context.argument
    if not argument:
        prefs = await svc.preferences.current(person, place)
        await reply(update, context, t(lang, scoped(f"{key}_show", place), value=show(lang, getattr(prefs, field))))
        return
    value = parse(argument)
    if value is None:
        await reply(update, context, t(lang, f"{key}_usage", **usage))
        return
    if not await may_change(update, context, lang):
        return
    await svc.preferences.change(person, place=place, **{field: value})
    await reply(update, context, t(lang, scoped(f"{key}_set", place), value=show(lang, value)))


async def set_temperature(update: Update, context: Context) -> None:
    """/temp [value]: show or set the sampling temperature."""
    s = context.services
    await _setting(update, context, key="temp", field="temperature", parse=s.preferences.parse_temperature,
                   usage={"low": s.settings.min_temperature, "high": s.settings.max_temperature})


async def set_length(update: Update, context: Context) -> None:
    """/len [n]: show or set the answer length."""
    s = context.services
    await _setting(update, context, key="len", field="length", parse=s.preferences.parse_length,
                   usage={"low": s.settings.min_length, "high": s.settings.max_length})


async def set_rhyme(update: Update, context: Context) -> None:
    """/rhyme [on|off]: show or set whether lines end on the song's rhyme."""
    await _setting(update, context, key="rhyme", field="rhyme", parse=lambda text: RHYME_WORDS.get(text.lower()),
                   usage={}, show=lambda lang, value: t(lang, "on" if value else "off"))

