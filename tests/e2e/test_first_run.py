"""A fresh install: the shipped base is served at once, and ``lyricbot train`` transfers from it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.sandbox import FakeTelegram
from charrnn.checkpoint import BASE, load_checkpoint, pretrained_path
from tests.helpers.bot import ask, bot_running, served_in
from tests.helpers.corpora import han_share
from tests.helpers.models import LYRICS

USER = 601
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_first_run_serves_the_shipped_base_at_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LYRICS, encoding="utf-8")
    store = (tmp_path / "models", corpus)

    async def scenario() -> None:
        fake = FakeTelegram()
        await fake.start()
        try:
            async with bot_running(tmp_path, store, fake, copy_threshold=12) as h:
                version = h.served()  # the bot gave the default style the shipped base on its first start
                assert version is not None and version.startswith(f"{BASE}-")
                assert (tmp_path / "models" / version / "meta.json").is_file()
                h.fake.add_user(USER, "Mei", "zh")
                lyric = (await ask(h, "/write 天青色等烟雨", chat=USER, user=USER))["text"]
                assert lyric.startswith("天青色等烟雨"), lyric
                assert "没学过" not in lyric  # the base knows every character of the prefix
                lines = [line for line in lyric.split("\n") if line.strip()]
                assert len(lines) >= 2, lyric
                assert han_share(lyric) >= 0.95, lyric
                english = (await ask(h, "/write The night", chat=USER, user=USER))["text"]
                assert english.startswith("The night") and not HAN.search(english), english
        finally:
            await fake.stop()

    asyncio.run(scenario())


def test_lyricbot_train_transfers_from_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LYRICS * 4, encoding="utf-8")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("DEVICE", "cpu")
    assert main(["train", "--corpus", str(corpus), "--minutes", "0.1"]) == 0
    version = served_in(tmp_path / "bot.db")  # the default style serves what it trained
    assert version is not None and version in capsys.readouterr().out
    model = load_checkpoint(tmp_path / "models" / version)
    assert model.meta["kind"] == "mixture" and model.meta["parent"] == load_checkpoint(pretrained_path()).weights_sha256
    weights = model.meta["weights"]
    assert len(weights) == 2 and abs(sum(weights) - 1.0) < 1e-6
