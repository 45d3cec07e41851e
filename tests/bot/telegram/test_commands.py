"""One command registry: the handlers, Telegram's menus (per language, wider for admins) and /help agree."""

from __future__ import annotations

from pathlib import Path

from telegram import BotCommandScopeChat
from telegram.ext import CommandHandler

from bot.settings import Settings
from bot.telegram.catalogue import COMMANDS, help_lines
from tests.helpers.bot import ask, bot_running, run

ADMIN, PERSON, GROUP = 42, 7, -100123
PUBLIC = [c.name for c in COMMANDS if not c.admin]
ADMIN_ONLY = [c.name for c in COMMANDS if c.admin]


def test_menus_per_language_and_for_admins_match_the_handlers(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, admin_ids=frozenset({ADMIN})) as h:
            bot = h.app.bot
            english = await bot.get_my_commands()
            chinese = await bot.get_my_commands(language_code="zh")
            admins = await bot.get_my_commands(scope=BotCommandScopeChat(ADMIN))
            admins_zh = await bot.get_my_commands(scope=BotCommandScopeChat(ADMIN), language_code="zh")
            assert [c.command for c in english] == [c.command for c in chinese] == PUBLIC
            assert [c.command for c in admins] == [c.command for c in admins_zh] == PUBLIC + ADMIN_ONLY
            assert all(any("\u4e00" <= ch <= "\u9fff" for ch in c.description) for c in chinese)
            assert not any(any("\u4e00" <= ch <= "\u9fff" for ch in c.description) for c in english)
            handled = {name for group in h.app.handlers.values() for handler in group
                       if isinstance(handler, CommandHandler) for name in handler.commands}
            assert handled == {n for c in COMMANDS for n in (c.name, *c.aliases)}

    run(scenario())


def test_help_lists_the_menu_in_the_persons_language(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, admin_ids=frozenset({ADMIN})) as h:
            h.fake.add_user(PERSON, "Ann", "en")
            h.fake.add_user(ADMIN, "Ada", "zh")
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            for lang, scope, chat, user in (("en", None, PERSON, PERSON), ("zh", BotCommandScopeChat(ADMIN), ADMIN,
                                                                            ADMIN)):
                menu = await h.app.bot.get_my_commands(scope=scope, language_code=lang if lang == "zh" else None)
                text = (await ask(h, "/help", chat=chat, user=user))["text"]
                lines = text.splitlines()
                for command in menu:  # every menu entry, in the menu's words, on a line of its own
                    assert any(line.startswith(f"/{command.command}") and line.endswith(command.description)
                               for line in lines), (command, text)
                assert ("/retrain" in text) == (user == ADMIN)
                assert f"@{h.fake.bot_user['username']}" in text  # how to reach inline mode, with the bot's name
            in_group = (await ask(h, "/help", chat=GROUP, user=ADMIN))["text"]
            assert "/write" in in_group and "/retrain" not in in_group  # admin commands stay out of groups
            assert "/start" not in h.fake.sent(PERSON)[-1]["text"]  # an alias, not a second menu entry

    run(scenario())


def test_help_in_chinese_names_every_argument_in_chinese() -> None:
    """Each usage hint is translated whole: "<first words>" is one hint, spaces and all."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    lines = help_lines("zh", settings, with_admin=True)
    assert any(line.startswith("/write <开头> - ") for line in lines), lines
    assert not [line for line in lines if any(hint in line for hint in ("words", "name", "style]", "version"))]
