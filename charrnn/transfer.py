"""Transfer from the pretrained base to any corpus: what made the base help, as one recipe.

Measured on the Jay Chou lyrics (README, "Lyrics"): fine-tuning the whole base on a 57k-character corpus
loses to a model trained from scratch, whatever its dropout or learning rate: the base's recurrent
dynamics are classical Chinese and Shakespeare, and the corpus is too small to re-learn them before it
overfits. What helps is two models that make different mistakes:

1. the small-corpus architecture trained on the corpus, with its character embeddings *started from the
   base's* (every character the base knows arrives with what it is like);
2. the base fine-tuned on the corpus;

mixed as probabilities, ``p = w * p_corpus + (1 - w) * p_adapted``, with ``w`` fitted by EM.

Both components train on the whole training part and are chosen and weighed on the corpus's validation
tail, as every ``charrnn train`` model is chosen on it. An earlier version kept a tenth of the training
part aside for that instead: on 57k characters the tenth cost more than the mixture gained (the tail of a
lyric corpus is its newest songs, the ones most like the songs that follow).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from charrnn.checkpoint import Checkpoint, load_checkpoint, save_mixture
from charrnn.data import sha256_text, split_corpus
from charrnn.evaluate import HeldOut, position_logprobs, reference_vocab
from charrnn.mixture import MixtureLM, fit_weights
from charrnn.model import ModelConfig
from charrnn.pipeline import InitFrom, train_model
from charrnn.train import Callback, TrainConfig


@dataclass(frozen=True)
class TransferConfig:
    minutes: float = 10.0  # for both components together
    corpus_share: float = 0.5  # of the time, for the corpus model; the rest adapts the base
    # The small-corpus architecture (ModelConfig's defaults: GRU 1x512, tied, dropout 0.8).
    corpus_model: ModelConfig = field(default_factory=lambda: ModelConfig(vocab_size=1))
    corpus_lr: float = 3e-3
    # The base, fine-tuned: more dropout than it was trained with (a small corpus), a gentle rate.
    adapted_dropout: float = 0.5
    adapted_lr: float = 1e-3
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes}")
        if not 0.0 < self.corpus_share < 1.0:
            raise ValueError(f"corpus_share must be between 0 and 1, got {self.corpus_share}")


@dataclass(frozen=True)
class TransferResult:
    checkpoint: Path
    weights: dict[str, float]
    val_ppl: dict[str, float]  # each component's and the mixture's, on the corpus's validation tail
    seconds: float


def transfer(
    text: str, base: Checkpoint, out_dir: str | Path, config: TransferConfig | None = None,
    base_name: str = "base", callback: Callback | None = None,
) -> TransferResult:
    """Train both components on ``text``, fit their weights, and write the mixture to ``out_dir``."""
    config = config or TransferConfig()
    out = Path(out_dir)
    started = time.perf_counter()
    common = TrainConfig(epochs=1000, seed=config.seed, device=config.device, sample_every=0)
    adapted_config = replace(common, lr=config.adapted_lr, warmup_steps=50, patience=4,
                             max_minutes=config.minutes * (1 - config.corpus_share))
    # The base, fine-tuned first; it is changed in place by fine-tuning: give it a copy.
    adapted_start = load_checkpoint(base.path, device=next(base.model.parameters()).device)
    train_model(text, None, adapted_config, out_dir=out / "work" / "adapted", callback=callback,
                init=InitFrom(adapted_start, base_name, dropout=config.adapted_dropout))
    # The corpus model gets the rest of the budget: what early stopping left unused of the base's share too
    # (the corpus model is the one still improving when time runs out, on a CPU).
    remaining = config.minutes - (time.perf_counter() - started) / 60
    corpus_config = replace(common, lr=config.corpus_lr, warmup_steps=100, patience=8,
                            max_minutes=max(config.minutes * config.corpus_share, remaining))
    train_model(text, config.corpus_model, corpus_config, out_dir=out / "work" / "corpus", callback=callback,
                init=InitFrom(base, base_name, embeddings_only=True))
    components = [("corpus", load_checkpoint(out / "work" / "corpus" / "best")),
                  ("adapted", load_checkpoint(out / "work" / "adapted" / "best"))]
    train_text, val_text = split_corpus(text, common.val_fraction, common.split, common.seed)
    logprobs = component_logprobs([c for _, c in components], val_text, reference_vocab(train_text))
    weights = fit_weights(logprobs)
    mixed = torch.logsumexp(logprobs.double() + torch.tensor(weights, dtype=torch.float64).log()[:, None], dim=0)
    val_ppl = {name: math.exp(-float(lp.mean())) for (name, _), lp in zip(components, logprobs, strict=True)}
    val_ppl["mixture"] = math.exp(-float(mixed.mean()))
    metrics: dict[str, Any] = {f"val_ppl_{k}": v for k, v in val_ppl.items()}
    metrics.update({f"weight_{name}": w for (name, _), w in zip(components, weights, strict=True)})
    save_mixture(out / "mixture", components, weights, train_config=common.to_json(), metrics=metrics,
                 corpus_sha256=sha256_text(text), parent=base.weights_sha256, extra={"init_from": base_name})
    return TransferResult(out / "mixture", dict(zip([n for n, _ in components], weights, strict=True)), val_ppl,
                          time.perf_counter() - started)


def component_logprobs(components: list[Checkpoint], text: str, reference: frozenset[str]) -> torch.Tensor:
    """(K, N): each component's log-probability of each event of ``text``, as the mixture sees it (the
    union vocabulary: a component gives no probability to a symbol it lacks)."""
    models = [c.single for c in components]
    vocabs = [c.vocab for c in components]
    rows = []
    for k in range(len(models)):
        alone = MixtureLM(models, vocabs, [1.0 if j == k else 0.0 for j in range(len(models))])
        rows.append(position_logprobs(alone, HeldOut.of_text(text, alone.vocab, reference)))
    return torch.stack(rows)
