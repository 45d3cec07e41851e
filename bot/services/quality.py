"""Choosing which candidate lyric a person sees: likely, not loopy, and never a copy of the corpus.

Copying a long run of the training songs back is dull and a copyright risk, so any candidate with a
verbatim run from the corpus (counting only runs that reach into the generated part: the person's own prefix may
quote a song, but the model may not carry on with the quote) is never shown.

A run is counted in words: ``threshold`` Han (or kana, hangul) characters, a syllable each, a line and a half of a
ci at 12; or two thirds as many words of an alphabetic script (8 at 12, about as many syllables: English words
average one and a third). It was counted in characters, and twelve letters of English are two or three common
words ("he night is ", "and by the k") that every English corpus holds and no reader would call a copy. Case,
spacing and punctuation do not make a copy new.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.serving.jobs import GenerationResult
from charrnn.generation.result import Generation
from charrnn.text.themes import clashing_axes
from charrnn.text.titles import titled

_SYLLABIC = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# One unit of a copied run: a character of a syllabic script, or a word of any other (letters and digits, with
# inner apostrophes: "o'er", "don't").
_UNIT = re.compile(f"[{_SYLLABIC}]|[^\\W_{_SYLLABIC}]+(?:'[^\\W_{_SYLLABIC}]+)*")
_SYLLABLE = re.compile(f"[{_SYLLABIC}]")


def word_threshold(threshold: int) -> int:
    """The words of an alphabetic script that make a copy, for ``threshold`` Han characters: two thirds as many."""
    return max(2, round(threshold * 2 / 3))


class _Runs:
    """A text's units (lowercased), where a run of them may be hashed as one slice (in C: the Song ci's two million
    characters are guarded in under a second), and which are words of an alphabetic script."""

    def __init__(self, units: Sequence[str]) -> None:
        self.spelled = "".join(u + "\0" for u in units)
        self.starts = [0, *itertools.accumulate(len(u) + 1 for u in units)]
        self.syllables = [0, *itertools.accumulate(bool(_SYLLABLE.match(u)) for u in units)]

    def __len__(self) -> int:
        return len(self.starts) - 1

    def hash(self, start: int, length: int) -> int:
        return hash(self.spelled[self.starts[start] : self.starts[start + length]])

    def words_only(self, start: int, length: int) -> bool:
        return self.syllables[start + length] == self.syllables[start]


class CopyGuard:
    """Remembers every copy-long run of the corpus (as hashes, to stay small): ``threshold`` units, and
    ``word_threshold`` of them where all are words of an alphabetic script."""

    def __init__(self, corpus: str, threshold: int) -> None:
        self.threshold = threshold
        self.words = word_threshold(threshold)
        self._runs: set[int] = set()
        self.add(corpus)

    def add(self, text: str) -> None:
        """Also guard ``text`` (corpus documents the model is fine-tuned on)."""
        runs = _Runs(_UNIT.findall(text.lower()))
        t, w = self.threshold, self.words
        self._runs.update(runs.hash(i, t) for i in range(len(runs) - t + 1))
        self._runs.update(runs.hash(i, w) for i in range(len(runs) - w + 1) if runs.words_only(i, w))

    def copied_run(self, prefix: str, continuation: str) -> int | None:
        """Start (a character of ``prefix + continuation``) of the first copied run that holds a unit the model
        wrote (one ending past the prefix)."""
        found = list(_UNIT.finditer(prefix + continuation))
        runs = _Runs([m.group().lower() for m in found])
        for i in range(len(found)):
            for length in (self.words, self.threshold):
                last = i + length - 1
                if last >= len(found) or found[last].end() <= len(prefix):
                    continue
                if (length == self.threshold or runs.words_only(i, length)) and runs.hash(i, length) in self._runs:
                    return found[i].start()
        return None


def repetition(text: str, n: int = 4) -> float:
    """Share of repeated character n-grams: 0 for fresh text, near 1 for a loop."""
    grams = [text[i : i + n] for i in range(len(text) - n + 1) if not text[i : i + n].isspace()]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


@dataclass(frozen=True)
class Ranked:
    text: str
    score: float
    skipped: tuple[str, ...]


# A lyric has lines: a candidate that stopped after one (a model of the Song ci often ends a poem on its
# first full stop) is shown only when no candidate has more, however likely its few characters are.
MIN_LINES = 2


def rank(candidates: Sequence[Generation], guard: CopyGuard | None) -> list[Ranked]:
    """Candidates worth showing, best first: those with at least ``MIN_LINES`` lines, then those that clash on the
    fewest axes of season and mood (``charrnn.text.themes``: 海棠 and 黄花 in one ci is what blind readers hear as
    nonsense first), then likelihood per character minus a loop penalty."""
    ranked = []
    for g in candidates:
        text = g.lyric  # clean lines: what the person will see
        if not g.continuation.strip() or (guard is not None and guard.copied_run(g.prefix, g.continuation) is not None):
            continue
        score = g.mean_logprob - 3.0 * repetition(g.continuation)
        ranked.append(Ranked(text, score, g.skipped))
    return sorted(ranked, key=lambda r: (len([line for line in r.text.split("\n") if line.strip()]) >= MIN_LINES,
                                         -clashing_axes(r.text), r.score), reverse=True)


@dataclass(frozen=True)
class Shown:
    """A candidate as a person sees it: titled (``text``), and its parts."""

    text: str
    lyric: str
    title: str | None
    skipped: tuple[str, ...]


def shown(result: GenerationResult, guard: CopyGuard | None) -> list[Shown]:
    """The result's candidates worth showing, best first (``rank``), each with the title fitted to it: what
    ``/write`` stores (the best and its spares) and inline mode offers."""
    titles = dict(zip((g.lyric for g in result.candidates), result.titles, strict=False))
    return [Shown(titled(r.text, titles.get(r.text)), r.text, titles.get(r.text), r.skipped)
            for r in rank(result.candidates, guard)]
