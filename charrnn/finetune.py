"""Continue training a checkpoint on new text, with replay of the old corpus.

The vocabulary grows append-only for characters the new text brings; the model's embedding and
output rows grow with it, the old rows copied, so before any training step the grown model answers
old-vocabulary prompts exactly as the checkpoint did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from charrnn.checkpoint import REGISTER, Checkpoint, load_checkpoint, save_checkpoint, save_mixture
from charrnn.data import RandomSampling, ReplayMix, sha256_text, split_corpus
from charrnn.evaluate import EvalResult, HeldOut, evaluate, reference_vocab
from charrnn.mixture import LanguageModel, MixtureLM
from charrnn.model import CharRNN
from charrnn.pipeline import sampler_for
from charrnn.text.words import corpus_words, merged
from charrnn.train import Trainer
from charrnn.train_config import TrainConfig, select_device
from charrnn.train_events import Callback, EvalEvent, TrainEvent, TrainResult
from charrnn.vocab import Vocab


@dataclass(frozen=True)
class FinetuneResult:
    model: LanguageModel
    vocab: Vocab
    added_chars: tuple[str, ...]
    before_old: EvalResult
    before_new: EvalResult
    after_old: EvalResult
    after_new: EvalResult
    train: TrainResult
    # A mixture's components after the run (one of them fine-tuned), and its weights; empty for one model.
    components: tuple[tuple[str, Checkpoint], ...] = ()
    weights: tuple[float, ...] = ()
    # The checkpoint's English words and the new text's (charrnn.text.words); None if the checkpoint had none.
    words: frozenset[str] | None = None
    register: str = ""  # the checkpoint's (Checkpoint.register): a fine-tuned ci model still writes ci


def grow_vocab(model: CharRNN, vocab: Vocab, text: str, min_count: int = 1) -> tuple[Vocab, tuple[str, ...]]:
    """Extend ``vocab`` with the new characters of ``text`` and grow ``model`` to match, in place.

    An adaptive-softmax model cannot grow: it keeps its vocabulary and reads new characters as ``<unk>``.
    """
    if model.config.adaptive:
        return vocab, ()
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
    gate needs (no forgetting on the old text, improvement on the new). A mixture (``charrnn.transfer``)
    fine-tunes its adapted component and keeps its weights; it is scored as a whole, before and after.
    """
    device = select_device(config.device)
    # Of the whole text, before a split that may fall inside a word.
    new_words = corpus_words(new_text if new_val_text is None else new_text + "\n" + new_val_text)
    if new_val_text is None:
        new_text, new_val_text = split_corpus(new_text, config.val_fraction, config.split, config.seed)
    if old_val_text is None:
        old_text, old_val_text = split_corpus(old_text, config.val_fraction, config.split, config.seed)
    # Each held-out text is scored against its own corpus's reference vocabulary, so the parent (before)
    # and the grown child (after) are charged for the same events.
    new_reference, old_reference = reference_vocab(new_text), reference_vocab(old_text)

    def scores(model: LanguageModel, vocab: Vocab) -> tuple[EvalResult, EvalResult]:
        old = evaluate(model, HeldOut.of_text(old_val_text, vocab, old_reference), device)
        return old, evaluate(model, HeldOut.of_text(new_val_text, vocab, new_reference), device)

    before_old, before_new = scores(checkpoint.model.to(device), checkpoint.vocab)
    if isinstance(checkpoint.model, MixtureLM):
        parts = [(str(e["name"]), load_checkpoint(checkpoint.path / str(e["name"]), device=device))
                 for e in checkpoint.meta["components"]]
        tunable = str(checkpoint.meta.get("tunable", parts[-1][0]))
        index = [name for name, _ in parts].index(tunable)
    else:
        parts, index = [("model", checkpoint)], 0
    model, vocab, added, train = _train(parts[index][1], new_text, old_text, new_val_text, old_val_text, config,
                                        replay_fraction, device, callback)
    tuned = Checkpoint(model=model, vocab=vocab, meta={"parent": parts[index][1].weights_sha256}, path=Path(),
                       words=merged(parts[index][1].words, new_words))
    if isinstance(checkpoint.model, MixtureLM):
        components = tuple((name, tuned if i == index else part) for i, (name, part) in enumerate(parts))
        known = set(checkpoint.vocab.symbols)  # the mixture's vocabulary grows append-only too
        union = Vocab(checkpoint.vocab.symbols + tuple(s for s in vocab.symbols[1:] if s not in known))
        weights = checkpoint.model.config.weights
        served: LanguageModel = MixtureLM([c.single for _, c in components], [c.vocab for _, c in components],
                                          weights, union=union).to(device)
        result_vocab = union
    else:
        components, weights, served, result_vocab = (), (), model, vocab
    after_old, after_new = scores(served, result_vocab)
    outcome = FinetuneResult(served, result_vocab, added, before_old, before_new, after_old, after_new, train,
                             components, weights, merged(checkpoint.words, new_words), checkpoint.register)
    if out_dir is not None:
        save_finetuned(outcome, out_dir, train_config=config.to_json(),
                       corpus_sha256=sha256_text(old_text + old_val_text + new_text + new_val_text),
                       parent=checkpoint.weights_sha256)
    return outcome


def _train(
    checkpoint: Checkpoint, new_text: str, old_text: str, new_val_text: str, old_val_text: str, config: TrainConfig,
    replay_fraction: float, device: torch.device, callback: Callback | None,
) -> tuple[CharRNN, Vocab, tuple[str, ...], TrainResult]:
    """Grow one model's vocabulary, fine-tune it with replay, and keep its best weights."""
    model = checkpoint.single.to(device)
    vocab, added = grow_vocab(model, checkpoint.vocab, new_text, min_count=config.unk_min_count)

    def ids(text: str) -> torch.Tensor:
        return torch.tensor(vocab.encode(text), dtype=torch.long)

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
        # The new text and the old count equally, however short the new one is: early stopping keeps the
        # epoch best for both, not the one best for the (usually much longer) old text.
        [HeldOut.of_text(new_val_text, vocab, reference_vocab(new_text)),
         HeldOut.of_text(old_val_text, vocab, reference_vocab(old_text))],
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
    return trainer.model, vocab, added, result


def save_finetuned(
    result: FinetuneResult, directory: str | Path, *, train_config: dict[str, Any], corpus_sha256: str | None,
    parent: str | None, metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the fine-tuned model: one checkpoint, or a mixture with its components."""
    metrics = metrics if metrics is not None else finetune_metrics(result)
    if result.components:
        return save_mixture(directory, list(result.components), result.weights, train_config=train_config,
                            metrics=metrics, corpus_sha256=corpus_sha256, parent=parent, words=result.words)
    assert isinstance(result.model, CharRNN)
    return save_checkpoint(directory, result.model, result.vocab, train_config=train_config, metrics=metrics,
                           corpus_sha256=corpus_sha256, parent=parent, words=result.words,
                           extra={REGISTER: result.register} if result.register else None)


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
