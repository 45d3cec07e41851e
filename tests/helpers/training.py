"""Fine-tuning in the bot's tests: a new song to learn, a store of one's own, fast runs, a stand-in trainer."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.services.training import TrainingService

ADMIN = 42  # the admin of FAST's bots
# Thirty distinct lines from six phrases: the lines a run holds out share their characters with the rest.
PHRASES = [
    "蒲公英的约定", "一起长大的约定", "说好要一起旅行", "是你如今唯一坚持的任性", "在走廊上罚站", "我们都是好孩子",
]
NEW_SONG = "".join(f"{a} {b}\n" for a in PHRASES for b in PHRASES if a != b)


def copy_store(trained_store: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """Runs change MODEL_DIR: give each test its own copy of the session's trained model."""
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")
    return tmp_path / "models", corpus


def run_instead(service: TrainingService, job: Callable[[Path], Awaitable[int | None]]) -> None:
    """Replace the fine-tune process with ``job`` (which writes the candidate and result files itself)."""

    class Instead:
        async def run(self, spec_path: Path) -> int | None:
            return await job(spec_path)

        def interrupt(self) -> None:
            pass

    service.runner = Instead()


def training(h: Any) -> TrainingService:
    return h.app.bot_data.services.training  # type: ignore[no-any-return]


# Short runs of the tiny test model, which cannot learn a song without forgetting some of its own
# corpus: the gate's old-text margin is wide here (its own tests check it), so promotion can be tested.
FAST = {"admin_ids": frozenset({ADMIN}), "finetune_minutes": 0.2, "finetune_epochs": 30, "max_old_regression": 1.0}


def last_user_message_id(h: Any, chat_id: int) -> int:
    """The id of the newest message a person sent in ``chat_id`` (the fake numbers messages per chat)."""
    ids = [m["message_id"] for m in h.fake.messages(chat_id) if not m["from"]["is_bot"]]
    return int(max(ids))
