"""How a training run is set up (``TrainConfig``: budget, schedule, batches, validation, seed), and on which device."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

# With a deadline, one validation takes at most this share of the time the run has: longer held-out text is
# cut to its head (the same head at every epoch, so epochs still compare), never below MIN_VALIDATION_CHARS.
VALIDATION_SHARE = 0.2


MIN_VALIDATION_CHARS = 1024


Sampling = Literal["random", "consecutive"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    # Small batches mean more, noisier steps: better generalisation on a small corpus than 32 or 64.
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 3e-3
    # Strong decay suits a small corpus; AdamW applies it decoupled, so it does not fight Adam's scaling.
    weight_decay: float = 0.1
    clip: float = 1.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    # Consecutive windows carry the state like evaluation does (whole songs of context).
    sampling: Sampling = "consecutive"
    # Epochs without a better validation perplexity before stopping; 0 disables early stopping.
    patience: int = 8
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    # Mixed precision only ever applies on CUDA; the CPU path stays in float32.
    amp: bool = True
    sample_every: int = 0
    sample_prefixes: tuple[str, ...] = ()
    sample_length: int = 60
    val_fraction: float = 0.1
    split: Literal["tail", "lines"] = "tail"
    # Characters seen fewer times than this in training text become <unk>, so <unk> gets a learnt
    # probability and held-out text with new characters is not scored as impossible.
    unk_min_count: int = 3
    # The embedding's learning rate relative to the rest: below 1 keeps transferred embeddings close to
    # what the pretrained model learnt (ULMFiT's discriminative rates).
    embedding_lr_scale: float = 1.0
    # With several corpora: (name, k) reads that corpus's training part k times per epoch. A corpus
    # that is a small share of the characters (Shakespeare beside the Song ci) gets more of the steps.
    corpus_repeats: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip must be a positive number, got {self.clip}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes > 0):
            raise ValueError(f"max_minutes must be a positive number, got {self.max_minutes}")
        if self.sampling not in ("random", "consecutive"):
            raise ValueError(f"unknown sampling {self.sampling!r}; choose 'random' or 'consecutive'")
        for name, times in self.corpus_repeats:
            if times < 1:
                raise ValueError(f"corpus {name!r} must be read at least once per epoch, got {times}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample_prefixes"] = list(self.sample_prefixes)
        data["corpus_repeats"] = [list(pair) for pair in self.corpus_repeats]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["sample_prefixes"] = tuple(data.get("sample_prefixes", ()))
        data["corpus_repeats"] = tuple((str(name), int(times)) for name, times in data.get("corpus_repeats", ()))
        return cls(**data)


def select_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps was asked for but MPS is not available")
    return device


