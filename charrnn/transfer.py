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
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from charrnn.checkpoint import Checkpoint, load_checkpoint, save_mixture
from charrnn.data import sha256_text, split_corpus
from charrnn.deadline import Deadline
from charrnn.evaluate import HeldOut, position_logprobs, reference_vocab
from charrnn.mixture import MixtureLM, fit_weights, union_vocab
from charrnn.model import ModelConfig
from charrnn.pipeline import InitFrom, train_model
from charrnn.sizing import size_for_text
from charrnn.text.words import merged
from charrnn.train_config import TrainConfig, select_device
from charrnn.train_events import Callback


@dataclass(frozen=True)
class TransferConfig:
    minutes: float = 10.0  # for both components together
    corpus_share: float = 0.5  # of the time, for the corpus model; the rest adapts the base
    # The corpus model; None: sized to the corpus and its share of the time (``charrnn.sizing``: on the Jay
    # Chou lyrics, GRU 1x512, dropout 0.8, at 3e-3), with the base's embedding width, tied (it starts there).
    corpus_model: ModelConfig | None = None
    corpus_lr: float | None = None  # None: the sizing's
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


# Of the whole budget: at most this share goes to scoring the validation text for the mixture's weights.
WEIGHTS_SHARE = 0.1
# Writing the mixture's files (and renaming it into place): a few seconds, a little more for long budgets.
SAVE_SECONDS = 2.0
SAVE_SHARE = 0.01
MIN_FIT_CHARS = 256


@dataclass(frozen=True)
class TransferResult:
    checkpoint: Path
    weights: dict[str, float]
    val_ppl: dict[str, float]  # each component's and the mixture's, on the corpus's validation tail
    seconds: float


def transfer(
    text: str, base: Checkpoint, out_dir: str | Path, config: TransferConfig | None = None,
    base_name: str = "base", callback: Callback | None = None, deadline: Deadline | None = None,
) -> TransferResult:
    """Train both components on ``text``, fit their weights, and write the mixture to ``out_dir``.

    All of it, the mixture written, is done by ``deadline`` (default: ``config.minutes`` from now). Each stage
    gets what the ones before it left, less what the ones after it need: the weights' evaluation is kept
    to a share of the budget (a shorter piece of the validation text when time is short), then saving.
    """
    config = config or TransferConfig()
    out = Path(out_dir)
    started = time.perf_counter()
    deadline = deadline or Deadline.after(60 * config.minutes)
    budget = deadline.remaining()
    written_by = deadline.earlier(SAVE_SECONDS + SAVE_SHARE * budget)  # the mixture's files, written last
    weights_cap = WEIGHTS_SHARE * budget
    common = TrainConfig(epochs=1000, seed=config.seed, device=config.device, sample_every=0)
    adapted_by = written_by.earlier(weights_cap).share(1 - config.corpus_share)
    adapted_config = replace(common, lr=config.adapted_lr, warmup_steps=50, patience=4,
                             max_minutes=minutes_until(adapted_by))
    # The base, fine-tuned first; it is changed in place by fine-tuning: give it a copy.
    adapted_start = load_checkpoint(base.path, device=next(base.model.parameters()).device)
    adapted, _, _ = train_model(text, None, adapted_config, out_dir=out / "work" / "adapted", callback=callback,
                                init=InitFrom(adapted_start, base_name, dropout=config.adapted_dropout),
                                deadline=adapted_by)
    # The corpus model gets the rest of the budget: what early stopping left unused of the base's share too
    # (the corpus model is the one still improving when time runs out, on a CPU). Scoring the validation text
    # for the weights costs what the adapted model's validation did per character, and a little more for the
    # (smaller) corpus model.
    train_text, val_text = split_corpus(text, common.val_fraction, common.split, common.seed)
    weights_need = 1.5 * (adapted.val_seconds or 0.0) / max(1, adapted.val_chars) * len(val_text)
    weights_by = written_by.earlier(min(weights_cap, weights_need))
    corpus_config = replace(common, warmup_steps=100, patience=8, max_minutes=minutes_until(weights_by))
    corpus_model = config.corpus_model
    if corpus_model is None:
        sizing = size_for_text(text, corpus_config.max_minutes, select_device(config.device).type).override(
            embed=base.single.config.embed, tie=True)
        corpus_model, corpus_config = sizing.model_config(), sizing.train_config(corpus_config)
    if config.corpus_lr is not None:
        corpus_config = replace(corpus_config, lr=config.corpus_lr)
    corpus, _, _ = train_model(text, corpus_model, corpus_config, out_dir=out / "work" / "corpus",
                               callback=callback, init=InitFrom(base, base_name, embeddings_only=True),
                               deadline=weights_by)
    # The best checkpoints become the mixture's components where they are: written once, not copied.
    names = ("corpus", "adapted")
    (out / "mixture").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.rmtree(out / "mixture" / name, ignore_errors=True)  # an earlier transfer into the same place
        os.replace(out / "work" / name / "best", out / "mixture" / name)
    components = [(name, load_checkpoint(out / "mixture" / name)) for name in names]
    # Scored as in the components' own validations, which were timed: as much of the text as fits by then.
    per_char = 1.25 * sum((r.val_seconds or 0.0) / max(1, r.val_chars) for r in (adapted, corpus))
    fit_text = val_text[: MIN_FIT_CHARS + int(written_by.remaining() / max(per_char, 1e-9))]
    logprobs = component_logprobs([c for _, c in components], fit_text, reference_vocab(train_text))
    weights = fit_weights(logprobs)
    mixed = torch.logsumexp(logprobs.double() + torch.tensor(weights, dtype=torch.float64).log()[:, None], dim=0)
    val_ppl = {name: math.exp(-float(lp.mean())) for (name, _), lp in zip(components, logprobs, strict=True)}
    val_ppl["mixture"] = math.exp(-float(mixed.mean()))
    metrics: dict[str, Any] = {f"val_ppl_{k}": v for k, v in val_ppl.items()}
    metrics.update({f"weight_{name}": w for (name, _), w in zip(components, weights, strict=True)})
    metrics["weights_fit_chars"] = len(fit_text)  # less than the validation text when time was short
    save_mixture(out / "mixture", components, weights, train_config=common.to_json(), metrics=metrics,
                 corpus_sha256=sha256_text(text), parent=base.weights_sha256, extra={"init_from": base_name},
                 words=merged(*(c.words for _, c in components)))
    return TransferResult(out / "mixture", dict(zip([n for n, _ in components], weights, strict=True)), val_ppl,
                          time.perf_counter() - started)


def minutes_until(deadline: Deadline) -> float:
    """A stage's ``max_minutes``, which its learning-rate schedule runs over; never zero (a config refuses it)."""
    return max(deadline.remaining(), 0.1) / 60


def component_logprobs(components: list[Checkpoint], text: str, reference: frozenset[str]) -> torch.Tensor:
    """(K, N): each component's log-probability of each event of ``text``, as the mixture sees it (the
    union vocabulary: a component gives no probability to a symbol it lacks)."""
    union = union_vocab([c.vocab for c in components])
    # Each alone in the union: the log-probabilities it has in a mixture that weighs the others 0, without
    # running the others.
    alone = [MixtureLM([c.single], [c.vocab], [1.0], union=union) for c in components]
    held = HeldOut.of_text(text, union, reference)
    return torch.stack([position_logprobs(model, held) for model in alone])
