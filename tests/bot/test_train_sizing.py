"""``lyricbot train --from-scratch`` sizes the model to the corpus and the budget, as ``charrnn train`` does."""

from __future__ import annotations

import json
from pathlib import Path

from bot.serving.model_store import ModelStore
from charrnn.model import ModelConfig
from charrnn.sizing import size_for_text
from tests.helpers.models import LYRICS

MINUTES = 0.05  # a few steps: the test reads the shape, not the quality


def trained_config(store: ModelStore, version: str) -> dict[str, object]:
    meta: dict[str, object] = json.loads((store.model_dir / version / "meta.json").read_text(encoding="utf-8"))
    return meta


def test_a_model_from_scratch_is_sized_unless_one_is_given(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LYRICS * 4, encoding="utf-8")
    store = ModelStore(tmp_path / "models", device="cpu")
    sized = size_for_text(LYRICS * 4, MINUTES)
    meta = trained_config(store, store.train_first(corpus, MINUTES, prefix="a"))
    model, train = meta["model_config"], meta["train_config"]
    assert isinstance(model, dict) and isinstance(train, dict)
    assert (model["hidden"], model["embed"], model["tie_weights"], model["dropout"]) == (
        sized.hidden, sized.embed, sized.tie, sized.dropout)
    assert (train["batch_size"], train["lr"], train["amp"]) == (sized.batch_size, sized.lr, sized.amp)

    mine = ModelConfig(vocab_size=1, hidden=40, embed=24, dropout=0.3)
    meta = trained_config(store, store.train_first(corpus, MINUTES, model_config=mine, prefix="b"))
    assert isinstance(meta["model_config"], dict)
    assert (meta["model_config"]["hidden"], meta["model_config"]["dropout"]) == (40, 0.3)
