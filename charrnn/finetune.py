"""Continue training a checkpoint on new text, with replay of the old corpus.

The vocabulary grows append-only for characters the new text brings; the model's embedding and
output rows grow with it, the old rows copied, so before any training step the grown model answers
old-vocabulary prompts exactly as the checkpoint did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from charrnn.checkpoint import Checkpoint, save_checkpoint
from charrnn.data import RandomSampling, ReplayMix, sha256_text, split_corpus
from charrnn.evaluate import EvalResult, HeldOut, evaluate, reference_vocab
from charrnn.model import CharRNN
from charrnn.pipeline import sampler_for
from charrnn.train import Callback, EvalEvent, TrainConfig, Trainer, TrainEvent, TrainResult, select_device
from charrnn.vocab import Vocab


@dataclass(frozen=True)
class FinetuneResult:
    model: CharRNN
    vocab: Vocab
    added_chars: tuple[str, ...]
    before_old: EvalResult
    before_new: EvalResult
    after_old: EvalResult
    after_new: EvalResult
    train: TrainResult


def grow_vocab(model: CharRNN, vocab: Vocab, text: str, min_count: int = 1) -> tuple[Vocab, tuple[str, ...]]:
    """Extend ``vocab`` with the new characters of ``text`` and grow ``model`` to match, in place."""
    grown = vocab.extend(text, min_count=min_count)
    model.grow_vocab(len(grown))
    return grown, grown.symbols[len(vocab) :]


def finetune(
    checkpoint: Checkpoint,
    new_text: str,
    old_text: str,
    config: TrainConfig,
    replay_fraction: float = 0.5,
    new_val_text: str | None = None,
    old_val_text: str | None = None,
    callback: Callback | None = None,
    out_dir: str | Path | None = None,
) -> FinetuneResult:
    """Fine-tune ``checkpoint`` on ``new_text`` mixed with windows of ``old_text``.

    Held-out texts default to the tail split of each text. The trainer's early stopping watches the
    two held-out texts together; the result reports each before and after, which is what a promotion
    gate needs (no forgetting on the old text, improvement on the new).
    """
    device = select_device(config.device)
    model = checkpoint.model.to(device)
    if new_val_text is None:
        new_text, new_val_text = split_corpus(new_text, config.val_fraction, config.split, config.seed)
    if old_val_text is None:
        old_text, old_val_text = split_corpus(old_text, config.val_fraction, config.split, config.seed)
    vocab, added = grow_vocab(model, checkpoint.vocab, new_text, min_count=config.unk_min_count)

    def ids(text: str) -> torch.Tensor:
        return torch.tensor(vocab.encode(text), dtype=torch.long)

    # Each held-out text is scored against its own corpus's reference vocabulary, so the parent (before)
    # and the grown child (after) are charged for the same events.
    new_val = HeldOut.of_text(new_val_text, vocab, reference_vocab(new_text))
    old_val = HeldOut.of_text(old_val_text, vocab, reference_vocab(old_text))
    before_old, before_new = evaluate(model, old_val, device), evaluate(model, new_val, device)
    new_ids = ids(new_text)
    seq_len = max(1, min(config.seq_len, len(new_ids) - 2))
    source = ReplayMix(
        new=RandomSampling(new_ids, config.batch_size, seq_len, config.seed),
        old=RandomSampling(ids(old_text), config.batch_size, seq_len, config.seed + 1),
        replay_fraction=replay_fraction,
    )
    trainer = Trainer(
        model,
        source,
        HeldOut.of_texts([(new_val_text, reference_vocab(new_text)), (old_val_text, reference_vocab(old_text))],
                         vocab),
        config,
        device=device,
        sampler=sampler_for(vocab, config.sample_length, config.seed),
    )
    best: dict[str, torch.Tensor] = {}

    def keep_best(event: TrainEvent) -> None:
        if isinstance(event, EvalEvent) and event.is_best:
            best.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        if callback is not None:
            callback(event)

    result = trainer.run(keep_best)
    if best:
        trainer.model.load_state_dict(best)
    after_old, after_new = evaluate(trainer.model, old_val, device), evaluate(trainer.model, new_val, device)
    outcome = FinetuneResult(trainer.model, vocab, added, before_old, before_new, after_old, after_new, result)
    if out_dir is not None:
        save_checkpoint(
            out_dir,
            trainer.model,
            vocab,
            train_config=config.to_json(),
            metrics=finetune_metrics(outcome),
            corpus_sha256=sha256_text(old_text + old_val_text + new_text + new_val_text),
            parent=checkpoint.weights_sha256,
        )
    return outcome


def finetune_metrics(result: FinetuneResult) -> dict[str, float]:
    return {
        "old_ppl_before": result.before_old.ppl,
        "new_ppl_before": result.before_new.ppl,
        "old_ppl_after": result.after_old.ppl,
        "new_ppl_after": result.after_new.ppl,
        "best_val_nll": result.train.best_val_nll,
        "seconds": result.train.seconds,
        "added_chars": float(len(result.added_chars)),
    }
