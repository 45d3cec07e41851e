"""What a generation request is and what comes back, whatever runs it (the worker thread, a Celery worker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from charrnn.config import MIN_TARGET
from charrnn.generation.result import Generation
from charrnn.mixture import LanguageModel
from charrnn.vocab import Vocab


class QueueFull(Exception):
    """The queue is at capacity; ``wait_s`` is an honest guess of when to try again."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"generation queue is full; try again in about {wait_s:.0f} s")
        self.wait_s = wait_s


@dataclass(frozen=True)
class GenerationJob:
    prefix: str
    temperature: float
    length: int
    candidates: int = 1
    seed: int | None = None
    stop_after_lines: int = 0
    rhyme: bool = False
    # The model version to run on: the bot's jobs always name their style's; None: a worker's own (a test's, a
    # benchmark's), which a Celery worker does not have.
    version: str | None = None
    titles: int = 0  # the most words of a lyric fitted as its title (charrnn.text.titles); 0: no titles
    # The lyric's form (charrnn.text.forms), at most one of the two: a ci tune by its table name, or a pattern string.
    form: str = ""
    pattern: str = ""
    # Each clause of a lyric in lines written this many times side by side, the likeliest kept
    # (charrnn.generation.phrases); 1: written once (inline answers, which Telegram waits only seconds for).
    phrases: int = 1

    @property
    def rows(self) -> int:
        """Batch rows the job holds at its busiest: each candidate's clause siblings (a lyric in lines has them:
        a form, a pattern, a length of a line or more; ``bot.serving.lanes.lyric_config``), and its title fits
        after (a few steps each, counted once per title): what a worker's capacity estimates count."""
        lines = bool(self.form or self.pattern) or self.length >= MIN_TARGET
        return self.candidates * (self.phrases if lines else 1) + self.titles


@dataclass(frozen=True)
class GenerationResult:
    candidates: tuple[Generation, ...]
    model_version: str
    seconds: float
    titles: tuple[str | None, ...] = ()  # one per candidate when the job asked for titles


@dataclass(frozen=True)
class LoadedModel:
    model: LanguageModel
    vocab: Vocab
    version: str
    words: frozenset[str] | None = None  # its English words (Checkpoint.words): what its English may use
    register: str = ""  # read before a Chinese lyric without a tune (Checkpoint.register)


Loader = Callable[[str], LoadedModel]  # a model version's name -> the model, verified and ready
