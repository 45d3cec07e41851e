"""Corpus to checkpoint in one call: split, vocabulary, batches, training, best/last checkpoints.

The CLI, the benchmarks and the bot all train through here, so they agree on the held-out split and
the unknown-character rule, and ``eval`` measures exactly what ``train`` reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from charrnn.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from charrnn.config import SampleConfig
from charrnn.data import BatchSource, ConsecutiveSampling, RandomSampling, ReplayMix, sha256_text, split_corpus
from charrnn.deadline import Deadline
from charrnn.evaluate import HeldOut, reference_vocab
from charrnn.generation.sample import generate
from charrnn.model import CharRNN, ModelConfig
from charrnn.text.words import corpus_words, merged
from charrnn.train import Trainer
from charrnn.train_config import TrainConfig, select_device
from charrnn.train_events import Callback, EvalEvent, TrainEvent, TrainResult
from charrnn.vocab import Vocab

Corpora = str | Mapping[str, str]  # one text, or several by name (each split on its own)


@dataclass(frozen=True)
class PreparedCorpus:
    vocab: Vocab
    train_text: str
    val_text: str
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    sha256: str
    val: HeldOut  # the held-out text(s) under the scoring rule, each corpus against its own reference
    # name -> SHA-256 of each corpus, when several were given; empty for a single text.
    parts: dict[str, str] = field(default_factory=dict)


def corpora_sha256(corpora: Corpora) -> str:
    """One fingerprint for one text (its SHA-256) or for several (of their names and SHA-256s, in order)."""
    if isinstance(corpora, str):
        return sha256_text(corpora)
    return sha256_text("\n".join(f"{name}:{sha256_text(text)}" for name, text in sorted(corpora.items())))


def prepare_corpus(
    text: Corpora, config: TrainConfig, vocab: Vocab | None = None, extend: Vocab | None = None
) -> PreparedCorpus:
    """Split and encode; the vocabulary comes from the training part only (``vocab`` as given, or
    ``extend`` grown append-only with the training part's characters, or a new one).

    Several corpora are split one by one, so every corpus keeps its own held-out tail (the one
    ``eval CHECKPOINT CORPUS`` measures later), then the training parts are joined in name order.
    """
    if isinstance(text, str):
        if config.corpus_repeats:
            raise ValueError("--repeat weighs one corpus against others: give several")
        splits = [split_corpus(text, config.val_fraction, config.split, config.seed)]
        train_text, val_text = splits[0]
        known_text = train_text
        parts: dict[str, str] = {}
    else:
        if not text:
            raise ValueError("no corpus given")
        repeats = dict(config.corpus_repeats)
        if unknown := sorted(set(repeats) - set(text)):
            raise ValueError(f"--repeat names a corpus that is not given: {', '.join(unknown)}")
        names = sorted(text)
        splits = [split_corpus(text[name], config.val_fraction, config.split, config.seed) for name in names]
        pieces = [train.rstrip("\n") + "\n" for train, _ in splits]
        times = [repeats.get(name, 1) for name in names]
        train_text = "\n".join(piece for piece, k in zip(pieces, times, strict=True) for _ in range(k))
        # Reading a part more often changes how often its characters are seen, not which ones are known.
        known_text = "\n".join(pieces)
        val_text = "".join(val for _, val in splits)
        parts = {name: sha256_text(text[name]) for name in names}
    if vocab is None:
        base = extend or Vocab.build("")
        vocab = base.extend(known_text, min_count=config.unk_min_count)
    val = HeldOut.of_texts([(held, reference_vocab(train)) for train, held in splits], vocab)
    return PreparedCorpus(
        val=val,
        vocab=vocab,
        train_text=train_text,
        val_text=val_text,
        train_ids=torch.tensor(vocab.encode(train_text), dtype=torch.long),
        val_ids=torch.tensor(vocab.encode(val_text), dtype=torch.long),
        sha256=corpora_sha256(text),
        parts=parts,
    )


def make_source(ids: torch.Tensor, config: TrainConfig) -> BatchSource:
    # Short corpora cannot fill a long window; shrink it rather than refuse a small demo file.
    seq_len = max(1, min(config.seq_len, len(ids) - 2))
    if config.sampling == "consecutive":
        return ConsecutiveSampling(ids, config.batch_size, seq_len, config.seed)
    return RandomSampling(ids, config.batch_size, seq_len, config.seed)


def copy_embeddings(source: Checkpoint, model: CharRNN, vocab: Vocab) -> int:
    """Start ``model``'s embedding rows as ``source``'s for the characters both vocabularies have.

    A character's embedding says what it is like; learnt from millions of characters, it is worth more
    than anything a small corpus can teach about its rarer characters. Returns how many rows were copied.
    """
    donor = source.single
    if donor.config.embed != model.config.embed:
        raise ValueError(f"embeddings of size {donor.config.embed} cannot start a model with size {model.config.embed}")
    copied = 0
    with torch.no_grad():
        for index, symbol in enumerate(vocab.symbols):
            if index and symbol in source.vocab:
                model.embedding.weight[index] = donor.embedding.weight[source.vocab.encode(symbol)[0]]
                copied += 1
    return copied


def replay_source(ids: torch.Tensor, old_ids: torch.Tensor, config: TrainConfig, fraction: float) -> BatchSource:
    """Windows of the new corpus with ``fraction`` of every batch replayed from old text."""
    seq_len = max(1, min(config.seq_len, len(ids) - 2, len(old_ids) - 2))
    return ReplayMix(
        new=RandomSampling(ids, config.batch_size, seq_len, config.seed),
        old=RandomSampling(old_ids, config.batch_size, seq_len, config.seed + 1),
        replay_fraction=fraction,
    )


def sampler_for(
    vocab: Vocab, length: int, seed: int, words: frozenset[str] | None = None
) -> Callable[[CharRNN, str], str]:
    """What the trainer calls to show progress samples: fixed seed, so epochs are comparable."""

    def sample(model: CharRNN, prefix: str) -> str:
        return generate(model, vocab, prefix, SampleConfig(max_length=length, seed=seed), words).text

    return sample


def checkpointing(
    out_dir: Path, trainer: Trainer, vocab: Vocab, extra_meta: dict[str, Any], every_s: float = 30.0
) -> Callback:
    """A callback that keeps ``out_dir/best`` (lowest validation loss) and ``out_dir/last`` (resumable).

    The best weights are copied in memory at every improvement but written at most every ``every_s``
    seconds and at the end: on a small corpus an epoch takes a second, a checkpoint write far longer.
    """
    best: dict[str, Any] = {}
    last_write = time.monotonic()

    def on_event(event: TrainEvent) -> None:
        nonlocal last_write
        if not isinstance(event, EvalEvent):
            return
        metrics = {
            "val_nll": event.val.nll,
            "val_ppl": event.val.ppl,
            "val_bpc": event.val.bpc,
            "val_chars": event.val.chars,
            "train_loss": event.train_loss,
            "epoch": event.epoch,
            "step": event.step,
        }
        if event.is_best:
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best.update(weights=state, metrics=metrics, pending=True)
        if not event.final and time.monotonic() - last_write < every_s:
            return
        common = {"model": trainer.model, "vocab": vocab, **extra_meta}
        save_checkpoint(out_dir / "last", metrics=metrics, train_state=trainer.state_dict(), **common)
        if best.get("pending"):
            save_checkpoint(out_dir / "best", metrics=best["metrics"], weights=best["weights"], **common)
            best["pending"] = False
        last_write = time.monotonic()

    return on_event


@dataclass(frozen=True)
class InitFrom:
    """Start from a trained checkpoint instead of random weights (transfer to a new corpus)."""

    checkpoint: Checkpoint
    name: str  # how it was named (``base`` or a path), kept in the new checkpoint's meta
    dropout: float | None = None  # None: the checkpoint's own
    replay: str | None = None  # old text mixed into every batch, against forgetting; None: no replay
    replay_fraction: float = 0.5
    # Only the character embeddings: a new model of ``model_config`` (the corpus's own vocabulary) whose
    # embedding rows start as the checkpoint's for the characters both know. The rest learns from scratch.
    embeddings_only: bool = False


def train_model(
    text: Corpora,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    callback: Callback | None = None,
    resume: bool = False,
    checkpoint_every_s: float = 30.0,
    init: InitFrom | None = None,
    deadline: Deadline | None = None,
) -> tuple[TrainResult, CharRNN, Vocab]:
    """Train on ``text``; with ``out_dir``, keep best/last checkpoints there (and resume from last).
    With ``deadline``, training, its last validation and its checkpoints are done by then.

    With ``init``, the model starts as that checkpoint, its vocabulary grown append-only with the new
    corpus's characters (old prompts keep their outputs until training moves them).

    The checkpoints record the English words of ``text`` (``charrnn.text.words``), and the ``init`` checkpoint's when
    the model grows from it (none at all if it has none: its English is unknown); a model that only borrows
    its embeddings (``embeddings_only``) has its corpus's alone.
    """
    train_config = train_config or TrainConfig()
    device = select_device(train_config.device)
    last = Path(out_dir) / "last" if out_dir is not None else None
    resumed = None
    if resume and last is not None and (last / "meta.json").exists():
        resumed = load_checkpoint(last, device=device, with_train_state=True)
        if resumed.meta.get("corpus_sha256") != corpora_sha256(text):
            raise CheckpointError(f"cannot resume {last}: it was trained on a different corpus")
        saved = TrainConfig.from_json(resumed.meta["train_config"])
        # The plan (schedule, epochs) is the saved one; only the time budget may be extended.
        train_config = replace(saved, max_minutes=train_config.max_minutes or saved.max_minutes)
    grow = init is not None and not init.embeddings_only
    # An adaptive-softmax model cannot grow its vocabulary: it reads the corpus's new characters as <unk>.
    donor = init.checkpoint.model if init is not None and grow else None
    fixed = isinstance(donor, CharRNN) and donor.config.adaptive
    corpus = prepare_corpus(
        text, train_config, vocab=resumed.vocab if resumed else init.checkpoint.vocab if init and fixed else None,
        extend=init.checkpoint.vocab if init is not None and grow and not fixed else None,
    )
    model: CharRNN
    if resumed is not None:
        model = resumed.single
    elif init is not None and grow:
        model = init.checkpoint.single
        model.grow_vocab(len(corpus.vocab))
        if init.dropout is not None:
            model.set_dropout(init.dropout)
    else:
        base = model_config or ModelConfig(vocab_size=len(corpus.vocab))
        torch.manual_seed(train_config.seed)  # the initial weights are part of a reproducible run
        model = CharRNN(replace(base, vocab_size=len(corpus.vocab)))
        if init is not None:
            copy_embeddings(init.checkpoint, model, corpus.vocab)
    words: frozenset[str] | None = corpus_words(text if isinstance(text, str) else "\n".join(text.values()))
    if init is not None and grow:
        words = merged(init.checkpoint.words, words)
    source = make_source(corpus.train_ids, train_config)
    if init is not None and init.replay is not None:
        source = replay_source(corpus.train_ids, torch.tensor(corpus.vocab.encode(init.replay)), train_config,
                               init.replay_fraction)
    trainer = Trainer(
        model,
        source,
        corpus.val,
        train_config,
        device=device,
        sampler=sampler_for(corpus.vocab, train_config.sample_length, train_config.seed, words),
    )
    if resumed is not None and resumed.train_state is not None:
        trainer.load_state_dict(*resumed.train_state)
    callbacks = [callback] if callback else []
    if out_dir is not None:
        extra: dict[str, Any] = {"train_config": train_config.to_json(), "corpus_sha256": corpus.sha256,
                                 "words": words}
        if corpus.parts:
            extra["extra"] = {"corpora": corpus.parts}
        if init is not None:
            extra["parent"] = init.checkpoint.weights_sha256
            extra.setdefault("extra", {})["init_from"] = init.name
        callbacks.insert(0, checkpointing(Path(out_dir), trainer, corpus.vocab, extra, checkpoint_every_s))

    def fan_out(event: TrainEvent) -> None:
        for cb in callbacks:
            cb(event)

    result = trainer.run(fan_out, deadline)
    return result, trainer.model, corpus.vocab
