"""The /settings panel as a person uses it: tap a button, read the panel back, see what is ticked."""

from __future__ import annotations

from typing import Any

from tests.helpers.bot import Harness, eventually

WORDS = {
    "en": {"private": "Your settings", "group": "This group's settings", "admins_only": "Only this group's admin",
           "stale": "out of date", "foreign": "does not belong", "styles": "Pick a style"},
    "zh": {"private": "你的设置", "group": "这个群的设置", "admins_only": "只有这个群的管理员",
           "stale": "过时", "foreign": "不属于", "styles": "选一个风格"},
}  # fmt: skip


async def tap(h: Harness, user: int, chat: int, message_id: int, data: str, forge: bool = False) -> dict[str, Any]:
    """Press a button (or send forged callback data) and return the bot's answer to the query."""
    answered = len(h.fake.answered_callbacks)
    if forge:
        h.fake.forge_callback(user, chat, message_id, data)
    else:
        h.fake.press_button(user, chat, message_id, data)
    await eventually(lambda: len(h.fake.answered_callbacks) > answered)
    return h.fake.answered_callbacks[answered]


def message(h: Harness, chat: int, message_id: int) -> dict[str, Any]:
    return next(m for m in h.fake.sent(chat) if m["message_id"] == message_id)


def ticked(panel: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in panel["reply_markup"]["inline_keyboard"] for b in row
            if b["text"].startswith("\u2713")]  # fmt: skip
