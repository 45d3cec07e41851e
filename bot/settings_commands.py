"""The typed settings commands (/temp, /len, /rhyme): show a setting, or change it where the person may.

In private a person changes their own settings; in a group the command changes the group's, which only
its administrators may (``bot.permissions``). The /settings panel (``bot.settings_panel``) changes the same
settings with buttons.
"""

from __future__ import annotations

import logging

from telegram import Update

from bot.context import Context
from bot.handlers import command_argument, person_of, place_of, reply, services
from bot.i18n import language, t
from bot.permissions import may_change_chat_settings
from bot.services.lyrics import Place, group_id

log = logging.getLogger(__name__)


def scoped(key: str, place: Place) -> str:
    """A settings message in the group's words in a group ("This group's temperature..."), else the person's."""
    return f"{key}_group" if group_id(place) is not None else key


async def may_change(update: Update, context: Context, lang: str) -> bool:
    """A group's settings are changed only by its administrators; anyone else is told so, and nothing changes."""
    if await may_change_chat_settings(context.bot, update):
        return True
    log.info("refused a settings change in chat %s by %s: not an administrator", place_of(update).chat_id,
             person_of(update).user_id)
    await reply(update, context, t(lang, "settings_admins_only"))
    return False


async def set_temperature(update: Update, context: Context) -> None:
    """/temp [value]: show or set the sampling temperature (the person's, or in a group the group's)."""
    svc = services(context)
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    argument = command_argument(update.effective_message) if update.effective_message else ""
    if not argument:
        prefs = await svc.lyrics.preferences(person, place)
        await reply(update, context, t(lang, scoped("temp_show", place), value=prefs.temperature))
        return
    value = svc.lyrics.parse_temperature(argument)
    if value is None:
        s = svc.settings
        await reply(update, context, t(lang, "temp_usage", low=s.min_temperature, high=s.max_temperature))
        return
    if not await may_change(update, context, lang):
        return
    await svc.lyrics.set_preferences(person, place=place, temperature=value)
    await reply(update, context, t(lang, scoped("temp_set", place), value=value))


async def set_length(update: Update, context: Context) -> None:
    """/len [n]: show or set the answer length (the person's, or in a group the group's)."""
    svc = services(context)
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    argument = command_argument(update.effective_message) if update.effective_message else ""
    if not argument:
        prefs = await svc.lyrics.preferences(person, place)
        await reply(update, context, t(lang, scoped("len_show", place), value=prefs.length))
        return
    value = svc.lyrics.parse_length(argument)
    if value is None:
        await reply(update, context, t(lang, "len_usage", low=svc.settings.min_length, high=svc.settings.max_length))
        return
    if not await may_change(update, context, lang):
        return
    await svc.lyrics.set_preferences(person, place=place, length=value)
    await reply(update, context, t(lang, scoped("len_set", place), value=value))


async def set_rhyme(update: Update, context: Context) -> None:
    """/rhyme [on|off]: show or set whether lines end on the song's rhyme (the person's, or the group's)."""
    svc = services(context)
    person, place = person_of(update), place_of(update)
    lang = language(person.language_code)
    argument = command_argument(update.effective_message).lower() if update.effective_message else ""
    if not argument:
        prefs = await svc.lyrics.preferences(person, place)
        shown = t(lang, "on" if prefs.rhyme else "off")
        await reply(update, context, t(lang, scoped("rhyme_show", place), value=shown))
        return
    value = {"on": True, "off": False, "开": True, "关": False}.get(argument)
    if value is None:
        await reply(update, context, t(lang, "rhyme_usage"))
        return
    if not await may_change(update, context, lang):
        return
    await svc.lyrics.set_preferences(person, place=place, rhyme=value)
    await reply(update, context, t(lang, scoped("rhyme_set", place), value=t(lang, "on" if value else "off")))
