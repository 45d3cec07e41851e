"""A terminal chat with the real bot, through the local Bot API server that ships with the package.

A product feature: ``make run`` / ``lyricbot run`` without a token, and ``lyricbot sandbox``, open it
(``bot.cli.cmd_sandbox``). Nothing is mocked but Telegram itself: the same ``Application``, worker, database
and model as in production, against the server the tests use (``bot.sandbox.server``). You type as a person
(``bot.sandbox.people``); ``!3`` presses button 3 under the bot's last lyric.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from pydantic import SecretStr

from bot.app import build_application, running
from bot.sandbox.server import FakeTelegram
from bot.settings import Settings

USER_ID = 1001
CHAT_ID = 1001
SANDBOX_DB = "sqlite+aiosqlite:///./var/sandbox.db"
INTRO = """lyricbot sandbox: you are chatting with the real bot through a local Bot API server.
Try: /write 分开   /write The night   /settings   /temp 0.8   /len 120   /top   /stats   /help
Press a button under the last lyric with !N (for example !5 for five stars, !6 to write again). /quit leaves.
Inline mode, as in any chat: @LyricBot 分开 offers three lyrics; #N sends one, and !N presses its buttons.
"""


def render(message: dict[str, object]) -> str:
    lines = [f"bot> {line}" for line in str(message.get("text", "")).splitlines() or [""]]
    markup = message.get("reply_markup")
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        buttons = [b for row in markup["inline_keyboard"] for b in row]
        lines.append("     " + "  ".join(f"[{i}] {b['text']}" for i, b in enumerate(buttons, 1)))
    return "\n".join(lines)


async def run_sandbox(settings: Settings, stdin: asyncio.StreamReader | None = None) -> None:
    fake = FakeTelegram()
    await fake.start()
    overrides: dict[str, object] = {
        "telegram_bot_token": SecretStr(fake.token),
        "telegram_base_url": fake.base_url,
        "telegram_base_file_url": fake.base_file_url,
    }
    if settings.database_url == Settings.model_fields["database_url"].default:
        overrides["database_url"] = SANDBOX_DB  # keep sandbox chats out of the real bot's history
    settings = settings.model_copy(update=overrides)
    fake.add_user(USER_ID, first_name="You", language_code="zh")
    try:
        async with running(build_application(settings)):
            print(INTRO, flush=True)
            await chat_loop(fake)
    finally:
        await fake.stop()


async def chat_loop(fake: FakeTelegram) -> None:
    loop = asyncio.get_running_loop()
    shown = 0
    last_keyboard: dict[str, object] | None = None
    offer: Offer | None = None  # the last inline query's id and results, which #N chooses from

    async def show_new(wait: float) -> None:
        nonlocal shown, last_keyboard
        deadline = loop.time() + wait
        while True:
            sent = fake.sent(CHAT_ID)
            for message in sent[shown:]:
                print(render(message), flush=True)
                if isinstance(message.get("reply_markup"), dict):
                    last_keyboard = message
            shown = len(sent)
            if loop.time() >= deadline:
                return
            await asyncio.sleep(0.1)

    while True:
        line = await loop.run_in_executor(None, _read_line)
        if line is None or line.strip() in {"/quit", "/exit"}:
            return
        text = line.rstrip("\n").replace("\\n", "\n")
        if not text.strip():
            continue
        before = len(fake.sent(CHAT_ID))
        if text.startswith("!") and text[1:].isdecimal():
            if last_keyboard is None:
                print("(no buttons to press yet)")
                continue
            markup = last_keyboard["reply_markup"]
            assert isinstance(markup, dict)
            buttons = [b for row in markup["inline_keyboard"] for b in row]
            index = int(text[1:]) - 1
            if not 0 <= index < len(buttons):
                print(f"(there are {len(buttons)} buttons)")
                continue
            if "callback_data" not in buttons[index]:  # "send to a chat": the inline query it pre-fills
                offer = await ask_inline(fake, str(buttons[index].get("switch_inline_query", "")))
                continue
            answered = len(fake.answered_callbacks)
            data = buttons[index]["callback_data"]
            if "inline_message_id" in last_keyboard:  # under a lyric sent through inline mode: no chat, no message
                fake.press_inline_button(USER_ID, str(last_keyboard["inline_message_id"]), data)
            else:
                fake.press_button(USER_ID, CHAT_ID, int(str(last_keyboard["message_id"])), data)
            while len(fake.answered_callbacks) == answered:
                await asyncio.sleep(0.05)
            popup = fake.answered_callbacks[answered].get("text")
            if popup:
                print(f"bot (popup)> {popup}")
            if data.startswith("s:"):  # the settings panel was redrawn in place: show it again
                panel = next(m for m in fake.sent(CHAT_ID) if m["message_id"] == last_keyboard["message_id"])
                print(render(panel), flush=True)
                last_keyboard = panel if isinstance(panel.get("reply_markup"), dict) else None
                continue
            if not data.startswith("a:"):
                continue  # a rating answers with a popup only
        elif text.startswith(f"@{fake.bot_user['username']}"):  # inline mode
            offer = await ask_inline(fake, text.removeprefix(f"@{fake.bot_user['username']}"))
            continue
        elif text.startswith("#") and text[1:].isdecimal():
            last_keyboard = choose(fake, offer, int(text[1:])) or last_keyboard
            continue
        else:
            fake.send_text(USER_ID, CHAT_ID, text)
        with contextlib.suppress(TimeoutError):
            await fake.wait_for_sent(CHAT_ID, before + 1, timeout=120)
        await show_new(0.3)


def _read_line() -> str | None:
    try:
        return input("you> ") + "\n"
    except EOFError:
        return None
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return None


Offer = tuple[str, list[dict[str, Any]]]


async def ask_inline(fake: FakeTelegram, words: str) -> Offer | None:
    """An inline query, and the results the bot offers for it, numbered for #N."""
    query_id = fake.send_inline_query(USER_ID, words.strip())
    try:
        answer = await fake.wait_for_inline_answer(query_id, timeout=30)
    except TimeoutError:
        print("(the bot did not answer the inline query)")
        return None
    for n, result in enumerate(answer["results"], 1):
        print(f"inline> [#{n}] {result.get('title', '')}  {result.get('description', '')}", flush=True)
    return query_id, answer["results"]


def choose(fake: FakeTelegram, offer: Offer | None, number: int) -> dict[str, object] | None:
    """Send inline result ``number`` into the chat; returns the sent message when it has buttons."""
    if offer is None or not 1 <= number <= len(offer[1]):
        print("(no such inline result: type @LyricBot and the first words first)")
        return None
    query_id, results = offer
    inline_message_id = fake.choose_inline_result(USER_ID, query_id, str(results[number - 1]["id"]))
    content = results[number - 1].get("input_message_content", {})
    print(render({"text": content.get("message_text", ""), "reply_markup": results[number - 1].get("reply_markup")}))
    return None if inline_message_id is None else dict(fake.inline_messages[inline_message_id])
