"""The typed settings commands (/temp, /len, /rhyme): show a setting, or change it where the person may.

In private a person changes their own settings; in a group the command changes the group's, which only
its administrators may (``bot.telegram.permissions``). The /settings panel (``bot.telegram.handlers.settings``)
changes the same settings with buttons.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update

from bot.telegram.context import Context
from bot.telegram.delivery import reply
from bot.telegram.i18n import scoped, t
from bot.telegram.panels import SETTINGS, Setting, change_setting
from bot.telegram.permissions import may_change_chat_settings

log = logging.getLogger(__name__)

async def may_change(update: Update, context: Context, lang: str) -> bool:
    """A group's settings are changed only by its administrators; anyone else is told so, and nothing changes."""
    if await may_change_chat_settings(context.bot, update):
        return True
    log.info("refused a settings change in chat %s by %s: not an administrator", context.place.chat_id,
             context.person.user_id)
    await reply(update, context, t(lang, "settings_admins_only"))
    return False


async def _setting(update: Update, context: Context, setting: Setting, usage: dict[str, Any]) -> None:
    """/<command> [value]: show the setting (the person's, or in a group the group's); with a value, check it as
    strictly as the panel does (``bot.telegram.panels.SETTINGS``), then change it where the person may."""
    lang, place = context.lang, context.place
    if not context.argument:
        prefs = await context.services.preferences.current(context.person, place)
        shown = setting.show(lang, getattr(prefs, setting.field))
        await reply(update, context, t(lang, scoped(f"{setting.key}_show", place), value=shown))
        return
    value = setting.parse(context.services.preferences, context.argument)
    if value is None:
        await reply(update, context, t(lang, f"{setting.key}_usage", **usage))
        return
    if not await may_change(update, context, lang):
        return
    await reply(update, context, await change_setting(context, setting, value))


async def set_temperature(update: Update, context: Context) -> None:
    """/temp [value]: show or set the sampling temperature."""
    settings = context.services.settings
    await _setting(update, context, SETTINGS["t"], {"low": settings.min_temperature, "high": settings.max_temperature})


async def set_length(update: Update, context: Context) -> None:
    """/len [n]: show or set the answer length."""
    settings = context.services.settings
    await _setting(update, context, SETTINGS["l"], {"low": settings.min_length, "high": settings.max_length})


async def set_rhyme(update: Update, context: Context) -> None:
    """/rhyme [on|off]: show or set whether lines end on the song's rhyme."""
    await _setting(update, context, SETTINGS["r"], {})
