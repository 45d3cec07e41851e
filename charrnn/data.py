"""Corpora and batches: loading with clear errors, train/validation splits, the two d2l sampling schemes.

Every epoch's batch order is a pure function of ``(seed, epoch)``, so resuming a run only needs the
epoch and the step inside it: the batches are regenerated and the consumed ones skipped.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, Protocol

import torch

SplitMode = Literal["tail", "lines"]
Batch = tuple[torch.Tensor, torch.Tensor]  # inputs (B, T) and targets (B, T), both int64


class CorpusError(ValueError):
    """A corpus that cannot be trained on; the message is meant for the person who supplied it."""


def demo_corpus_path() -> Path:
    """The small original lyric corpus bundled with the package, so the demo works offline."""
    return Path(str(resources.files("charrnn") / "corpus" / "demo_lyrics.txt"))


def load_corpus(path: str | Path) -> str:
    """Read a UTF-8 text corpus, refusing what cannot be a corpus with a one-line reason."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"corpus not found: {path}") from None
    except IsADirectoryError:
        raise CorpusError(f"corpus is a directory, not a file: {path}") from None
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror}") from None
    return check_corpus_text(raw, name=str(path))


def check_corpus_text(raw: bytes, name: str = "corpus") -> str:
    """Decode and sanity-check corpus bytes: UTF-8, not binary, at least two characters."""
    if b"\x00" in raw:
        raise CorpusError(f"{name} looks binary (it contains NUL bytes), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name} is not valid UTF-8 (byte {exc.start}): convert it to UTF-8 first") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{name} is empty")
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\t")
    if control > len(text) // 100:
        raise CorpusError(f"{name} looks binary ({control} control characters), expected text")
    if len(set(text)) < 2:
        raise CorpusError(f"{name} has a single distinct character: nothing to learn")
    return text


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_corpus(text: str, val_fraction: float = 0.1, mode: SplitMode = "tail", seed: int = 0) -> tuple[str, str]:
    """Split into (train, validation).

    ``tail`` holds out the last ``val_fraction`` of the text, cut at a line boundary: songs follow each
    other in a lyric file, so the held-out part is new songs, which is what people will ask for.
    ``lines`` holds out a seeded random sample of lines instead (easier, optimistic).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if mode == "tail":
        cut = int(len(text) * (1.0 - val_fraction))
        newline = text.find("\n", cut)
        if 0 <= newline < len(text) - 1:
            cut = newline + 1
        train, val = text[:cut], text[cut:]
    elif mode == "lines":
        lines = text.splitlines(keepends=True)
        rng = random.Random(seed)
        held = set(rng.sample(range(len(lines)), max(1, round(len(lines) * val_fraction))))
        train = "".join(line for i, line in enumerate(lines) if i not in held)
        val = "".join(line for i, line in enumerate(lines) if i in held)
    else:
        raise ValueError(f"unknown split mode {mode!r}; choose 'tail' or 'lines'")
    if len(train) < 2 or len(val) < 2:
        raise CorpusError(f"corpus too short to split ({len(text)} characters)")
    return train, val


class BatchSource(Protocol):
    """What the trainer consumes: a fixed number of batches per epoch, regenerated per ``epoch``."""

    @property
    def carries_state(self) -> bool:
        """True when batch k+1 continues batch k row by row (truncated BPTT keeps the state)."""
        ...

    def batches_per_epoch(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Batch]: ...


def _check_shape(n_tokens: int, batch_size: int, seq_len: int) -> None:
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    if n_tokens < seq_len + 1:
        raise CorpusError(f"corpus of {n_tokens} characters is shorter than one window of {seq_len + 1}")


@dataclass(frozen=True)
class RandomSampling:
    """Independent windows at random positions (d2l ``seq_data_iter_random``); state resets per batch."""

    ids: torch.Tensor  # (N,) int64
    batch_size: int
    seq_len: int
    seed: int = 0

    def __post_init__(self) -> None:
        _check_shape(len(self.ids), self.batch_size, self.seq_len)

    @property
    def carries_state(self) -> bool:
        return False

    def _starts(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        offset = int(torch.randint(0, self.seq_len, (1,), generator=gen))
        n_windows = (len(self.ids) - 1 - offset) // self.seq_len
        if n_windows < 1:
            offset, n_windows = 0, (len(self.ids) - 1) // self.seq_len
        starts = offset + torch.arange(n_windows) * self.seq_len
        return starts[torch.randperm(n_windows, generator=gen)]

    def batches_per_epoch(self) -> int:
        return max(1, ((len(self.ids) - 1) // self.seq_len - 1) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        starts = self._starts(epoch)
        per_batch = min(self.batch_size, len(starts))
        cols = torch.arange(self.seq_len + 1)
        for b in range(self.batches_per_epoch()):
            chunk = starts[(b * per_batch) % len(starts) :][:per_batch]
            windows = self.ids[chunk[:, None] + cols]  # (B, T + 1)
            yield windows[:, :-1], windows[:, 1:]


@dataclass(frozen=True)
class ConsecutiveSampling:
    """The corpus as ``batch_size`` parallel streams read in order (d2l ``seq_data_iter_sequential``).

    Row i of batch k+1 continues row i of batch k, so the trainer carries the hidden state across
    batches and detaches it: truncated backpropagation through time.
    """

    ids: torch.Tensor
    batch_size: int
    seq_len: int
    seed: int = 0

    def __post_init__(self) -> None:
        _check_shape(len(self.ids), self.batch_size, self.seq_len)

    @property
    def carries_state(self) -> bool:
        return True

    def _streams(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        offset = int(torch.randint(0, self.seq_len, (1,), generator=gen))
        rows = min(self.batch_size, max(1, (len(self.ids) - 1 - offset) // self.seq_len))
        if (len(self.ids) - 1 - offset) // rows < self.seq_len:
            offset = 0
        usable = ((len(self.ids) - 1 - offset) // rows) * rows
        xs = self.ids[offset : offset + usable].reshape(rows, -1)
        ys = self.ids[offset + 1 : offset + 1 + usable].reshape(rows, -1)
        return xs, ys

    def batches_per_epoch(self) -> int:
        rows = min(self.batch_size, max(1, (len(self.ids) - 1) // self.seq_len))
        return max(1, ((len(self.ids) - 1 - self.seq_len) // rows) // self.seq_len)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        xs, ys = self._streams(epoch)
        for b in range(min(self.batches_per_epoch(), xs.shape[1] // self.seq_len)):
            cols = slice(b * self.seq_len, (b + 1) * self.seq_len)
            yield xs[:, cols], ys[:, cols]


@dataclass(frozen=True)
class ReplayMix:
    """Random windows from new text mixed with replay of the old corpus, for fine-tuning.

    Replaying old windows in every batch is what keeps a fine-tuned model from forgetting the corpus
    it was trained on (Ibrahim et al., 2024).
    """

    new: RandomSampling
    old: RandomSampling
    replay_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.replay_fraction < 1.0:
            raise ValueError(f"replay_fraction must be in [0, 1), got {self.replay_fraction}")
        if self.new.seq_len != self.old.seq_len:
            raise ValueError("new and old windows must have the same length")

    @property
    def carries_state(self) -> bool:
        return False

    def batches_per_epoch(self) -> int:
        return self.new.batches_per_epoch()

    def epoch(self, epoch: int) -> Iterator[Batch]:
        n_old = round(self.new.batch_size * self.replay_fraction)
        old_batches = _cycle(self.old, epoch)
        for x_new, y_new in self.new.epoch(epoch):
            if n_old == 0:
                yield x_new, y_new
                continue
            x_old, y_old = next(old_batches)
            keep = max(1, len(x_new) - n_old)
            yield torch.cat([x_new[:keep], x_old[:n_old]]), torch.cat([y_new[:keep], y_old[:n_old]])


def _cycle(source: RandomSampling, epoch: int) -> Iterator[Batch]:
    round_ = 0
    while True:
        yield from source.epoch(epoch * 997 + round_)
        round_ += 1
