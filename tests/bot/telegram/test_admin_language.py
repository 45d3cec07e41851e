"""The admin commands answer in the admin's language, like everything else the bot says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers.bot import ask, bot_running

ADMIN = 42


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", ["语料里还没有加入任何文档。", "当前模型训练之后没有新的语料", "用法：/delstyle <名字>",
                "用 /addcorpus 回复一条文字消息", "还没有训练记录。"]),
        ("en", ["The corpus has no added documents yet.", "nothing to do", "Usage: /delstyle <name>",
                "Reply /addcorpus to a text message", "No training runs yet."]),
    ],
)  # fmt: skip
def test_admin_replies_come_in_the_admins_language(
    tmp_path: Path, trained_store: tuple[Path, Path], language: str, expected: list[str]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, admin_ids=frozenset({ADMIN})) as h:
            h.fake.add_user(ADMIN, "Root", language)
            answers = [(await ask(h, command, chat=ADMIN, user=ADMIN))["text"]
                       for command in ("/corpus", "/retrain", "/delstyle", "/addcorpus", "/jobs")]  # fmt: skip
            for answer, words in zip(answers, expected, strict=True):
                assert words in answer, answers

    asyncio.run(scenario())
