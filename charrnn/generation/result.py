"""A request's answer (``Generation``), as ``generate`` and ``BatchGenerator`` return it."""

from __future__ import annotations

from dataclasses import dataclass

from charrnn.config import FinishReason
from charrnn.generation.rows import Row
from charrnn.text.lyrics import tidy
from charrnn.text.words import whole_lines_end
from charrnn.vocab import Vocab


@dataclass(frozen=True)
class Generation:
    prefix: str
    continuation: str
    skipped: tuple[str, ...]  # prefix characters the model has never seen, left out of its context
    logprob: float  # log-likelihood of the continuation under the untempered model, nats
    finish_reason: FinishReason

    @property
    def text(self) -> str:
        return self.prefix + self.continuation

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, len(self.continuation))

    @property
    def lyric(self) -> str:
        """The text as people should see it: clean lines (``charrnn.text.lyrics.tidy``)."""
        return tidy(self.text)


def result(row: Row, reason: FinishReason, vocab: Vocab) -> Generation:
    """The request's answer. One the length limit stopped ends at its last whole line (or word), never in the
    middle of one; a teacher-forced row is scored on all of its text."""
    text = vocab.decode(row.generated)
    if reason != "length" or row.forced:
        return Generation(row.prefix, text, row.skipped, row.logprob, reason)
    end = whole_lines_end(text)
    return Generation(row.prefix, text[:end], row.skipped, sum(row.logprobs[:end]), reason)
