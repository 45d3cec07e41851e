"""End-to-end harness: the real Application against the local Bot API server, a real SQLite file and
a real (tiny) model trained once per session; and the database every database test runs on, twice:
a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application

from bot.app import build_application, running
from bot.sandbox import FakeTelegram
from bot.serving.models import ModelStore
from bot.settings import Settings
from charrnn.model import ModelConfig
from charrnn.train import TrainConfig

from ..charrnn.conftest import LYRICS
from . import pg

CORPUS = LYRICS + "窗外的麻雀 在电线杆上多嘴\n你说这一句 很有夏天的感觉\n" * 6


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test; skipped (failed in CI) without a server."""
    with pg.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database tests' URL: SQLite stays the default, and PostgreSQL must behave the same."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'bot.db'}"  # var/ does not exist yet: make_engine creates it


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model dir, corpus file) with a tiny GRU trained on a short lyric corpus."""
    root = tmp_path_factory.mktemp("model")
    corpus = root / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    store = ModelStore(root / "models", device="cpu")
    store.train_first(
        corpus,
        minutes=1.0,
        model_config=ModelConfig(vocab_size=1, layers=1, embed=32, hidden=64, dropout=0.0),
        train_config=TrainConfig(
            epochs=60, batch_size=16, seq_len=32, lr=1e-2, warmup_steps=5, patience=0, unk_min_count=1, seed=0
        ),
    )
    return root / "models", corpus


def make_settings(tmp_path: Path, trained_store: tuple[Path, Path], fake: FakeTelegram, **overrides: Any) -> Settings:
    model_dir, corpus = trained_store
    values: dict[str, Any] = {
        "telegram_bot_token": fake.token,
        "telegram_base_url": fake.base_url,
        "telegram_base_file_url": fake.base_file_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "model_dir": model_dir,
        "corpus_path": corpus,
        "device": "cpu",
        "candidates": 2,
        "default_length": 40,
        "min_length": 10,
        "rate_limit_per_minute": 1000,
        "copy_threshold": 40,  # the tiny model memorises its corpus; the copy filter has its own tests
        "title_candidates": 0,  # titles have their own tests (test_titles.py); others read the lyric's first words
        # A generous ceiling, not Telegram's 8 s: a busy test machine must not turn answers into "took too long".
        "inline_timeout_s": 120.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Harness:
    fake: FakeTelegram
    app: Application  # type: ignore[type-arg]
    settings: Settings
    db_path: Path

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the real SQLite file, as an operator would."""
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()


@asynccontextmanager
async def bot_running(
    tmp_path: Path, trained_store: tuple[Path, Path], fake: FakeTelegram | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    own_fake = fake is None
    fake = fake or FakeTelegram()
    if own_fake:
        await fake.start()
    try:
        settings = make_settings(tmp_path, trained_store, fake, **overrides)
        async with running(build_application(settings)) as app:
            yield Harness(fake, app, settings, tmp_path / "bot.db")
    finally:
        if own_fake:
            await fake.stop()
