"""The fixtures every test folder shares: the real corpora, a tiny trained model, the bot's trained store, and the
database URLs (a SQLite file and a fresh PostgreSQL database). Helpers that are not fixtures are in
``tests/helpers``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.serving.model_store import ModelStore
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.train_config import TrainConfig
from tests.helpers import pg
from tests.helpers.bot import CORPUS
from tests.helpers.corpora import real_corpus
from tests.helpers.models import LYRICS, Tiny


@pytest.fixture
def jaychou_path() -> Path:
    return real_corpus("jaychou_lyrics.txt")


@pytest.fixture
def shakespeare_path() -> Path:
    return real_corpus("tinyshakespeare.txt")


@pytest.fixture(scope="session")
def tiny_trained() -> Tiny:
    """A small GRU trained for a few seconds on a repeated lyric snippet: good enough to be non-uniform."""
    config = TrainConfig(
        epochs=200,
        batch_size=16,
        seq_len=24,
        lr=1e-2,
        warmup_steps=5,
        patience=0,
        unk_min_count=1,
        device="cpu",
        seed=0,
    )
    _, model, vocab = train_model(
        LYRICS, ModelConfig(vocab_size=1, cell="gru", layers=1, embed=16, hidden=48, dropout=0.0), config
    )
    return Tiny(model.eval(), vocab)


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
