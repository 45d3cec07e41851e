"""The one list of commands: each names its handler, and the routes, Telegram's command menus and /help all come from
it. A new command is a handler (``bot.telegram.handlers``), a row here, and its words in ``bot.telegram.i18n``
(``command_<name>``).

Menus are set per language (Telegram shows the one matching the person's app language) and, for each
admin, a wider one in their private chat (``BotCommandScopeChat``); /help lists the same commands with
the same words (``bot.telegram.i18n``: ``command_<name>``), so the menu and the help never disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.domain import group_id
from bot.settings import Settings
from bot.telegram.context import Context
from bot.telegram.delivery import Handler, reply
from bot.telegram.handlers import admin, info, setting_commands, settings, songs, styles, write
from bot.telegram.i18n import LANGUAGES, MESSAGES, t

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    usage: str = ""  # argument hint shown in /help; {min_length}/{max_length} filled from the settings
    admin: bool = False
    aliases: tuple[str, ...] = field(default=())

    def description(self, lang: str) -> str:
        """The menu line, and the help line after the usage."""
        return t(lang, f"command_{self.name}")

    def usage_in(self, lang: str, settings: Settings) -> str:
        usage = self.usage.format(min_length=settings.min_length, max_length=settings.max_length)
        for key, words in MESSAGES.get(lang, {}).items():  # "<first words>" -> "<开头>": whole hints, spaces and all
            if key.startswith("usage_"):
                usage = usage.replace(key.removeprefix("usage_"), words)
        return usage


async def show_help(update: Update, context: Context) -> None:
    """/help (and /start): what the bot does, in the person's language, with the settings that apply here."""
    person, place, lang, services = context.person, context.place, context.lang, context.services
    prefs = await services.preferences.current(person, place)
    chat = update.effective_chat
    # Admin commands are listed only to an admin, and only in private: a group need not learn them.
    with_admin = person.user_id in services.settings.admin_ids and chat is not None and chat.type == "private"
    text = help_text(lang, services.settings, with_admin, group=group_id(place) is not None,
                     bot_username=context.bot.username, temperature=prefs.temperature, length=prefs.length,
                     rhyme=t(lang, "on" if prefs.rhyme else "off"))
    await reply(update, context, text)


COMMANDS: tuple[Command, ...] = (
    Command("write", write.write, usage="<first words>"),
    Command("temp", setting_commands.set_temperature, usage="[0.1-2.0]"),
    Command("len", setting_commands.set_length, usage="[{min_length}-{max_length}]"),
    Command("rhyme", setting_commands.set_rhyme, usage="[on|off]"),
    Command("settings", settings.open_panel),
    Command("style", styles.style, usage="[name]"),
    Command("tune", songs.tune, usage="[words]"),
    Command("top", info.top),
    Command("stats", info.stats),
    Command("help", show_help, aliases=("start",)),
    Command("addcorpus", admin.add_corpus, usage="[style]", admin=True),
    Command("corpus", admin.corpus, admin=True),
    Command("retrain", admin.retrain, usage="[style]", admin=True),
    Command("jobs", admin.jobs, admin=True),
    Command("models", admin.models, admin=True),
    Command("rollback", admin.rollback, usage="[style] [version]", admin=True),
    Command("delstyle", admin.delete_style, usage="<name>", admin=True),
)


def menu(lang: str, with_admin: bool) -> list[BotCommand]:
    return [BotCommand(c.name, c.description(lang)) for c in COMMANDS if with_admin or not c.admin]


def help_lines(lang: str, settings: Settings, with_admin: bool) -> list[str]:
    """The /help lines: the menu's commands, in its order and words, with their arguments."""
    lines = []
    for command in COMMANDS:
        if command.admin and not with_admin:
            continue
        usage = command.usage_in(lang, settings)
        lines.append(" ".join(filter(None, (f"/{command.name}", usage, "-", command.description(lang)))))
    return lines


async def set_menus(application: Application, settings: Settings) -> None:  # type: ignore[type-arg]
    """Everyone's menu per language, and each admin's wider one in their private chat."""
    bot = application.bot
    for lang in LANGUAGES:
        code = None if lang == "en" else lang  # English is the default for every other language
        try:
            await bot.set_my_commands(menu(lang, with_admin=False), language_code=code)
        except TelegramError as exc:
            log.warning("could not set the %s command menu: %s", lang, exc)
        for admin_id in sorted(settings.admin_ids):
            try:
                await bot.set_my_commands(menu(lang, with_admin=True), scope=BotCommandScopeChat(admin_id),
                                          language_code=code)
            except TelegramError as exc:  # an admin who never opened a chat with the bot: "chat not found"
                log.warning("could not set admin %s's %s command menu: %s", admin_id, lang, exc)


def help_text(
    lang: str, settings: Settings, with_admin: bool, group: bool = False, bot_username: str = "LyricBot",
    **values: object,
) -> str:
    """/help: the intro, the menu's commands, the settings now (the person's, or in a ``group`` the group's, said
    so), and (for admins) the admin ones."""
    parts = (
        t(lang, "help_intro"),
        "\n".join(help_lines(lang, settings, with_admin=False)),
        t(lang, "help_now_group" if group else "help_now", **values),
        "\n".join([t(lang, "help_admin"), *help_lines(lang, settings, with_admin=True)[len(menu(lang, False)):]])
        if with_admin else "",
        t(lang, "help_footer", bot=bot_username),  # how to reach inline mode: @ and the bot's own name
    )
    return "\n\n".join(part for part in parts if part)
