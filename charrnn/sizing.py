"""The model and schedule ``charrnn train`` uses when the person does not choose: sized to the corpus and the clock.

One recipe does not fit every corpus. The one tuned on the 63k-character Jay Chou lyrics (a wide GRU with
dropout 0.8, small batches) is what a small corpus needs: it is read dozens of times and memorised unless
dropout is strong. Tiny Shakespeare (1.1M characters) on one CPU thread for 7.9 minutes is read a few
times at most: there the same recipe reached 2.21 nats per character, a GRU of half the width without
dropout 1.59. Two numbers place a run:

- **recurrent weights per corpus character**: how easily the model memorises the corpus;
- **what the budget lets the model read**, from a cost model of one CPU thread (``chars_per_second``,
  fitted on this project's machine). Without a budget, or on a GPU (where the clock is rarely what stops
  training), the epoch limit.

The rule (docs/testing.md, "Right size", has the measured points):

1. Hidden size: the widest of ``HIDDEN_SIZES`` that the corpus can feed (at most ``MAX_PARAMS_PER_CHAR``
   recurrent weights per character) and the budget lets read the corpus ``MIN_EPOCHS`` times, or
   ``READS_PER_PARAM`` characters per recurrent weight if that is less; the narrowest if none does.
2. Embedding: an alphabet (at most ``SMALL_ALPHABET`` distinct characters) gets a narrow untied one
   (``ALPHABET_EMBED``): its characters need no wide vectors, and a wide input costs as much as the
   recurrence. Chinese gets one as wide as the state, tied to the output layer (it regularises the rare
   characters).
3. Dropout, from recurrent weights per character: ``DROPOUT_BY_PARAMS_PER_CHAR``.
4. Batch and learning rate: a corpus small for its model gets the Jay Chou schedule (16 at 3e-3); where the
   clock limits, 64 at 5e-3 (larger products: more characters per second, and still enough steps).
5. float32 on CPUs: bfloat16 autocast halved the GRU's speed on this machine (AVX-512 BF16, no AMX);
   float16 autocast on CUDA.

Explicit choices always win: ``Sizing.override`` puts the person's values in place of the rule's.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from charrnn.model import CellType, ModelConfig
from charrnn.train_config import TrainConfig

HIDDEN_SIZES = (128, 256, 384, 512)
# Recurrent weights per corpus character that a corpus can feed: Jay Chou's GRU 512 has 1.57M for 63k (25).
MAX_PARAMS_PER_CHAR = 30.0
# What the budget must let a size read, by the cost model (an idle thread; the busy machine read from a quarter
# to two thirds of it): the corpus MIN_EPOCHS times, or READS_PER_PARAM characters per recurrent weight (Chinchilla's 20
# tokens per parameter), whichever is less. On tiny Shakespeare in 7.9 minutes GRU 256 (9 epochs by the
# model) beat 384 (6) and 512 (4); a corpus of millions of characters needs fewer epochs.
MIN_EPOCHS = 8.0
READS_PER_PARAM = 20.0
SMALL_ALPHABET = 256
ALPHABET_EMBED = 64
# (recurrent weights per corpus character at least, dropout): the last row the model reaches.
DROPOUT_BY_PARAMS_PER_CHAR = ((0.0, 0.0), (0.5, 0.1), (2.0, 0.2), (8.0, 0.5), (16.0, 0.8))
# From here a corpus is small for its model (read many times, memorised without strong dropout): the Jay
# Chou schedule, batches of 16 at 3e-3. Below it the clock limits: batches of 64 at 5e-3 read more per second.
SMALL_CORPUS_PARAMS_PER_CHAR = 8.0
# The cost model of one training step on one idle CPU thread of this project's machine (fitted to GRUs of
# 256 and 512 in float32): seconds per character = flops / FLOPS + STEP_SECONDS / batch (the recurrence
# runs time step by time step, at a fixed cost per step of the whole batch).
FLOPS = 60e9
STEP_SECONDS = 6e-4


@dataclass(frozen=True)
class Sizing:
    """A model and schedule for one corpus and budget; ``describe()`` is the line training starts with."""

    chars: int
    distinct: int
    minutes: float | None
    epochs: float  # what the budget lets this model read, in epochs (the epoch limit without a budget)
    hidden: int
    embed: int
    tie: bool
    dropout: float
    batch_size: int
    lr: float
    amp: bool
    cell: CellType = "gru"
    layers: int = 1
    seq_len: int = 64
    chosen: tuple[str, ...] = ()  # the fields a person set (``override``)

    def override(self, **explicit: Any) -> Sizing:
        """The person's choices (``None``: not chosen) in place of the rule's."""
        names = {f.name for f in fields(self)}
        if unknown := sorted(set(explicit) - names):
            raise ValueError(f"not a sizing field: {', '.join(unknown)}")
        given = {name: value for name, value in explicit.items() if value is not None}
        chosen = tuple(sorted(set(self.chosen) | set(given)))
        if "hidden" in given and "embed" not in given and self.embed == self.hidden:
            given["embed"] = given["hidden"]  # an embedding as wide as the state stays so
        return replace(self, **given, chosen=chosen)

    def model_config(self, vocab_size: int = 1) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, cell=self.cell, layers=self.layers, hidden=self.hidden,
                           embed=self.embed, dropout=self.dropout, tie_weights=self.tie)

    def train_config(self, base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (default ``TrainConfig()``) with the sized batch, window, learning rate and precision."""
        return replace(base or TrainConfig(), batch_size=self.batch_size, seq_len=self.seq_len, lr=self.lr,
                       amp=self.amp)

    def describe(self) -> str:
        budget = f"{self.minutes:g} min" if self.minutes is not None else "no time limit"
        embed = f"embed {self.embed}" + ("" if self.tie else " untied")
        line = (f"corpus {_amount(self.chars)} chars, {self.distinct:,} distinct, {budget}: "
                f"{self.cell.upper()} {self.layers}x{self.hidden} ({embed}), dropout {self.dropout:g}, "
                f"batch {self.batch_size}, seq {self.seq_len}, lr {self.lr:g}, "
                f"{'mixed precision' if self.amp else 'float32'}")
        if not self.chosen:
            return f"{line} (~{self.epochs:.0f} epochs)"
        return f"{line}; yours: {', '.join(self.chosen)}"


def size_for(chars: int, distinct: int, minutes: float | None, device: str = "cpu",
             max_epochs: int = TrainConfig.epochs) -> Sizing:
    """The rule (module docstring) for a corpus of ``chars`` characters, ``distinct`` of them different."""
    if chars < 1 or distinct < 1:
        raise ValueError(f"a corpus needs characters, got {chars} ({distinct} distinct)")
    small_alphabet = distinct <= SMALL_ALPHABET
    clocked = minutes is not None and device == "cpu"

    def embedding(hidden: int) -> tuple[int, bool]:
        return (ALPHABET_EMBED, False) if small_alphabet else (hidden, True)

    def epochs(hidden: int, batch: int) -> float:
        if not clocked:
            return float(max_epochs)
        assert minutes is not None
        embed, tie = embedding(hidden)
        return min(float(max_epochs), 60.0 * minutes * chars_per_second(hidden, embed, distinct, tie, batch) / chars)

    def per_char(hidden: int) -> float:
        return recurrent_parameters(hidden, embedding(hidden)[0]) / chars

    def fits(hidden: int) -> bool:
        enough = min(MIN_EPOCHS, READS_PER_PARAM * per_char(hidden))  # in epochs
        return per_char(hidden) <= MAX_PARAMS_PER_CHAR and epochs(hidden, 32) >= enough

    hidden = next((h for h in reversed(HIDDEN_SIZES) if fits(h)), HIDDEN_SIZES[0])
    embed, tie = embedding(hidden)
    load = per_char(hidden)
    dropout = DROPOUT_BY_PARAMS_PER_CHAR[bisect.bisect_right([p for p, _ in DROPOUT_BY_PARAMS_PER_CHAR], load) - 1][1]
    batch, lr = (16, 3e-3) if load >= SMALL_CORPUS_PARAMS_PER_CHAR else (64, 5e-3)
    return Sizing(chars=chars, distinct=distinct, minutes=minutes, epochs=epochs(hidden, batch), hidden=hidden,
                  embed=embed, tie=tie, dropout=dropout, batch_size=batch, lr=lr, amp=device == "cuda")


def size_for_text(text: str | Mapping[str, str], minutes: float | None, device: str = "cpu") -> Sizing:
    """``size_for`` of a corpus, or of several read together."""
    texts = [text] if isinstance(text, str) else list(text.values())
    return size_for(sum(map(len, texts)), len(set().union(*map(set, texts))), minutes, device)


def recurrent_parameters(hidden: int, embed: int, gates: int = 3) -> int:
    """The weights of one recurrent layer (a GRU has 3 gates): what a corpus must feed."""
    return gates * hidden * (hidden + embed)


def chars_per_second(hidden: int, embed: int, vocab: int, tie: bool, batch: int, gates: int = 3) -> float:
    """Training characters per second of a one-layer model on one CPU thread (the cost model above)."""
    out = embed if tie else hidden
    flops = 6.0 * (recurrent_parameters(hidden, embed, gates) + (hidden * embed if tie and hidden != embed else 0)
                   + out * vocab)
    return 1.0 / (flops / FLOPS + STEP_SECONDS / batch)


def _amount(chars: int) -> str:
    if chars >= 1_000_000:
        return f"{chars / 1e6:.1f}M"
    return f"{chars / 1e3:.0f}k" if chars >= 1000 else str(chars)

