"""The one list of commands: Telegram's command menus and /help come from it, and every command in it has its
handler in ``bot.telegram.routes`` (a test holds the two together).

Menus are set per language (Telegram shows the one matching the person's app language) and, for each
admin, a wider one in their private chat (``BotCommandScopeChat``); /help lists the same commands with
the same words (``bot.telegram.i18n``: ``command_<name>``), so the menu and the help never disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import Application

from bot.settings import Settings
from bot.telegram.i18n import LANGUAGES, MESSAGES, t

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    name: str
    usage: str = ""  # argument hint shown in /help; {min_length}/{max_length} filled from the settings
    admin: bool = False
    aliases: tuple[str, ...] = field(default=())

    def description(self, lang: str) -> str:
        """The menu line, and the help line after the usage."""
        return t(lang, f"command_{self.name}")

    def usage_in(self, lang: str, settings: Settings) -> str:
        words = self.usage.format(min_length=settings.min_length, max_length=settings.max_length).split()
        return " ".join(MESSAGES.get(lang, {}).get(f"usage_{word}", word) for word in words)


COMMANDS: tuple[Command, ...] = (
    Command("write", usage="<first words>"),
    Command("temp", usage="[0.1-2.0]"),
    Command("len", usage="[{min_length}-{max_length}]"),
    Command("rhyme", usage="[on|off]"),
    Command("settings"),
    Command("style", usage="[name]"),
    Command("tune", usage="[words]"),
    Command("top"),
    Command("stats"),
    Command("help", aliases=("start",)),
    Command("addcorpus", usage="[style]", admin=True),
    Command("corpus", admin=True),
    Command("retrain", usage="[style]", admin=True),
    Command("jobs", admin=True),
    Command("models", admin=True),
    Command("rollback", usage="[style] [version]", admin=True),
    Command("delstyle", usage="<name>", admin=True),
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
