"""One wall-clock deadline that the stages of a job share, each given what the stages before it left.

A budget per stage adds up wrong: every stage overruns by its own last evaluation and checkpoint
writes, and the stages after it do not know. ``lyricbot train --minutes 10`` took 14 minutes that way on
a busy machine. A deadline passed down instead lets each stage plan with the time that really remains,
and hold back what the work after it needs (an evaluation, fitting weights, saving).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """A moment on a monotonic clock (injectable, so tests need not wait for real time to pass)."""

    at: float
    clock: Clock = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"a deadline needs a finite, non-negative number of seconds, got {seconds}")
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at

    def earlier(self, seconds: float) -> Deadline:
        """This deadline moved ``seconds`` earlier: what a stage gets when later work needs that long."""
        return Deadline(self.at - max(0.0, seconds), self.clock)

    def share(self, fraction: float) -> Deadline:
        """The moment ``fraction`` of the way from now to this deadline: one stage's part of what is left."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a share of the remaining time must be between 0 and 1, got {fraction}")
        return Deadline(self.clock() + fraction * self.remaining(), self.clock)
