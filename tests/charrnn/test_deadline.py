"""One deadline shared by the stages of a job (issue 18, item 9), on an injected clock: no test waits for real time."""

from __future__ import annotations

import pytest

from charrnn.deadline import Deadline
from charrnn.pipeline import train_model
from charrnn.train_config import MIN_VALIDATION_CHARS
from charrnn.train_events import EvalEvent, StepEvent, TrainEvent
from tests.helpers.models import LYRICS, TINY, fast


class FakeClock:
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_arithmetic_on_an_injected_clock() -> None:
    clock = FakeClock()
    deadline = Deadline.after(60, clock)
    clock.now += 20
    assert deadline.remaining() == 40 and not deadline.expired
    half = deadline.share(0.5)  # half of what is left, from now
    assert half.remaining() == 20
    assert deadline.earlier(10).remaining() == 30
    clock.now += 45
    assert deadline.remaining() == 0 and deadline.expired
    with pytest.raises(ValueError):
        Deadline.after(float("nan"), clock)
    with pytest.raises(ValueError):
        deadline.share(1.5)


def test_training_ends_by_its_deadline_final_evaluation_and_checkpoint_included() -> None:
    """Each step takes 1 s and handling an evaluation (checkpoint writes) 3 s, on the fake clock. The run must
    stop early enough that its last evaluation, and the writes after it, are done by the deadline too, and
    not much earlier than it needs to."""
    clock = FakeClock()
    deadline = Deadline.after(40, clock)
    events: list[TrainEvent] = []

    def slow(event: TrainEvent) -> None:
        events.append(event)
        clock.now += 1.0 if isinstance(event, StepEvent) else 3.0 if isinstance(event, EvalEvent) else 0.0

    result, _, _ = train_model(LYRICS, TINY, fast(epochs=100_000), callback=slow, deadline=deadline)
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert result.stopped == "time_budget" and evals[-1].final
    assert not deadline.expired or clock.now == deadline.at, clock.now - deadline.at
    assert deadline.remaining() < 1 + 3 + 1  # it used the time: at most a step and an evaluation's worth left


def test_a_validation_that_would_not_fit_is_cut_to_a_head_of_the_held_out_text() -> None:
    """No time left at all: one step, then a validation of MIN_VALIDATION_CHARS, not of the whole held-out tail."""
    clock = FakeClock()
    text = LYRICS * 80  # a held-out tail of some 5,500 characters
    result, _, _ = train_model(text, TINY, fast(epochs=100_000), deadline=Deadline.after(0, clock))
    assert result.stopped == "time_budget" and result.steps == 1
    assert result.val_chars == MIN_VALIDATION_CHARS
    whole, _, _ = train_model(text, TINY, fast(epochs=1))  # without a deadline: all of it, as before
    assert whole.val_chars > 5 * MIN_VALIDATION_CHARS
