"""What a training run reports as it goes (steps, validations, samples) and when it ends (``TrainResult``): what
callbacks, checkpointing and the CLI's progress read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from charrnn.evaluate import EvalResult


@dataclass(frozen=True)
class StepEvent:
    step: int
    epoch: int
    loss: float
    lr: float
    chars_per_s: float
    progress: float  # 0..1 of the planned run (steps or time budget, whichever is further along)


@dataclass(frozen=True)
class EvalEvent:
    epoch: int
    step: int
    train_loss: float
    val: EvalResult
    is_best: bool
    final: bool  # the run ends after this event (done, early stop or time budget)


@dataclass(frozen=True)
class SampleEvent:
    epoch: int
    samples: dict[str, str]


@dataclass
class TrainResult:
    best_val_nll: float
    best_epoch: int
    epochs_run: int
    steps: int
    seconds: float
    chars_per_s: float
    stopped: Literal["epochs", "early_stop", "time_budget", "diverged"]
    history: list[dict[str, float]] = field(default_factory=list)
    # What the last validation took, and how many characters it scored: what scoring them again costs.
    val_seconds: float | None = None
    val_chars: int = 0

    @property
    def best_val_ppl(self) -> float:
        return math.exp(self.best_val_nll) if self.best_val_nll < 700 else math.inf


TrainEvent = StepEvent | EvalEvent | SampleEvent


Callback = Callable[[TrainEvent], None]
