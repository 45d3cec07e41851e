"""The one list of commands: handler registration, Telegram's command menus and /help all come from it.

Menus are set per language (Telegram shows the one matching the person's app language) and, for each
admin, a wider one in their private chat (``BotCommandScopeChat``); /help lists the same commands with
the same words, so the menu and the help never disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, filters

from bot import admin, handlers, settings_commands, settings_panel, song_handlers
from bot import styles as style_handlers
from bot.handlers import Handler
from bot.i18n import LANGUAGES, t
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    name: str
    callback: Handler
    description: dict[str, str]  # per language: the menu line, and the help line after the usage
    usage: str = ""  # argument hint shown in /help; {min_length}/{max_length} filled from the settings
    admin: bool = False
    aliases: tuple[str, ...] = field(default=())


COMMANDS: tuple[Command, ...] = (
    Command("write", handlers.write, {"en": "lyrics that continue your first words (or I pick a start)",
                                      "zh": "接着你的开头写歌词（不写开头就由我来起头）"}, usage="<first words>"),
    Command("temp", settings_commands.set_temperature, {"en": "how adventurous I am: lower is safer, higher is wilder",
                                               "zh": "创作的大胆程度：越低越稳，越高越野"}, usage="[0.1-2.0]"),
    Command("len", settings_commands.set_length, {"en": "the answer length in characters", "zh": "歌词长度（字数）"},
            usage="[{min_length}-{max_length}]"),
    Command("rhyme", settings_commands.set_rhyme, {"en": "end lines on the song's rhyme", "zh": "句尾押韵"},
            usage="[on|off]"),
    Command("settings", settings_panel.open_panel, {"en": "all the settings on one panel of buttons (a group's in a "
                                                          "group, changed by its admins)",
                                                    "zh": "用按钮调整所有设置（群里是群的设置，由管理员修改）"}),
    Command("style", style_handlers.style, {"en": "the style I write in: pick one (in groups, admins pick)",
                                            "zh": "写歌词的风格：选一个（群里由管理员选）"}, usage="[name]"),
    Command("tune", song_handlers.tune, {"en": "a melody for a lyric: reply /tune to it (or add the words)",
                                         "zh": "给歌词配旋律：用 /tune 回复它（或在后面写上歌词）"}, usage="[words]"),
    Command("top", handlers.top, {"en": "the best-rated lyrics", "zh": "评分最高的歌词"}),
    Command("stats", handlers.stats, {"en": "your own numbers", "zh": "你的统计"}),
    Command("help", handlers.start, {"en": "what I can do", "zh": "我能做什么"}, aliases=("start",)),
    Command("addcorpus", admin.add_corpus, {"en": "add corpus text (reply to a message, or send a .txt)",
                                            "zh": "添加语料（回复一条消息，或发送 .txt）"},
            usage="[style]", admin=True),
    Command("corpus", admin.corpus, {"en": "the corpus documents", "zh": "语料列表"}, admin=True),
    Command("retrain", admin.retrain, {"en": "fine-tune on the new corpus text now", "zh": "现在用新语料微调"},
            usage="[style]", admin=True),
    Command("jobs", admin.jobs, {"en": "the schedule and recent training runs", "zh": "定时任务和最近的训练"},
            admin=True),
    Command("models", admin.models, {"en": "model versions, perplexity and ratings", "zh": "模型版本、困惑度和评分"},
            admin=True),
    Command("rollback", admin.rollback, {"en": "serve the previous (or the named) model",
                                         "zh": "换回上一个（或指定的）模型"}, usage="[style] [version]", admin=True),
    Command("delstyle", admin.delete_style, {"en": "delete a style (its model versions stay on disk)",
                                             "zh": "删除一个风格（模型版本留在磁盘上）"}, usage="<name>", admin=True),
)


def register(application: Application) -> None:  # type: ignore[type-arg]
    """One handler per command; admin commands behind ``admin_only``; answers keep each chat's order."""
    new_messages = filters.UpdateType.MESSAGE  # an edited message never starts a second generation
    for command in COMMANDS:
        callback = admin.admin_only(command.callback) if command.admin else command.callback
        application.add_handler(CommandHandler([command.name, *command.aliases], handlers.in_order(callback),
                                               filters=new_messages, block=False))


def menu(lang: str, with_admin: bool) -> list[BotCommand]:
    return [BotCommand(c.name, c.description[lang]) for c in COMMANDS if with_admin or not c.admin]


def help_lines(lang: str, settings: Settings, with_admin: bool) -> list[str]:
    """The /help lines: the menu's commands, in its order and words, with their arguments."""
    lines = []
    for command in COMMANDS:
        if command.admin and not with_admin:
            continue
        usage = command.usage.format(min_length=settings.min_length, max_length=settings.max_length)
        if lang == "zh":
            usage = (usage.replace("<first words>", "<开头>").replace("[words]", "[歌词]")
                     .replace("[version]", "[版本]").replace("[style]", "[风格]").replace("[name]", "[名字]")
                     .replace("<name>", "<名字>"))
        lines.append(" ".join(filter(None, (f"/{command.name}", usage, "-", command.description[lang]))))
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
