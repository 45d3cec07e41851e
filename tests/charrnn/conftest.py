from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from charrnn.model import CharRNN, ModelConfig
from charrnn.pipeline import train_model
from charrnn.train import TrainConfig
from charrnn.vocab import Vocab

LYRICS = (
    "我不要再想你\n我不能再想\n天青色等烟雨\n而我在等你\n炊烟袅袅升起\n隔江千万里\n"
    "the night is long\nthe road is gone\nI sing along\n"
) * 8


@dataclass(frozen=True)
class Tiny:
    model: CharRNN
    vocab: Vocab


def tiny_untrained(cell: str = "gru", seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    vocab = Vocab.build(LYRICS)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), cell=cell, layers=1, embed=16, hidden=32, dropout=0.0))  # type: ignore[arg-type]
    return Tiny(model.eval(), vocab)


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
