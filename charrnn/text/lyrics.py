"""What a person sees of a lyric, and how a lyric's quality is measured.

``tidy`` is the one place that turns generated text into clean lines. The measures are the columns of
the quality benchmark: distinct n-grams, loops, verbatim copies of the corpus, line lengths, and the
rhyme rate (``charrnn.text.rhyme``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence

from charrnn.text.words import is_han

_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but the line break, full-width spaces included
_LOOP = re.compile(r"(.{4,}?)\1\1", re.DOTALL)  # a unit of 4 characters or more, three times running
_WORD = re.compile(r"[A-Za-z']+")


def tidy(text: str) -> str:
    """One space between phrases, no space at a line's ends, no empty lines but one between stanzas.

    Lyric corpora separate phrases with runs of spaces (Jay Chou's uses two or three, and full-width
    ones), which a model reproduces; people should read clean lines.
    """
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):  # a blank line only after a line with words: one stanza break
            out.append(line)
    return "\n".join(out).strip("\n")


def lines_of(text: str) -> list[str]:
    return [line for line in (line.strip() for line in text.split("\n")) if line]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct character n-grams over all n-grams (line breaks and spaces excluded): variety of wording."""
    grams: list[str] = []
    for text in texts:
        for line in lines_of(text):
            compact = line.replace(" ", "")
            grams.extend(compact[i : i + n] for i in range(len(compact) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def character_reuse(texts: Iterable[str]) -> list[float]:
    """Shares of Chinese characters that are their text's second, third, fourth-or-later use of the character (a
    reduplication's second character, 悠悠, aside): how often a lyric comes back to its characters."""
    total, again = 0, [0, 0, 0]
    for text in texts:
        seen: dict[str, int] = {}
        for previous, char in zip(" " + text, text, strict=False):
            if is_han(char):
                total += 1
                uses = seen.get(char, 0)
                if uses and char != previous:
                    again[min(uses, 3) - 1] += 1
                seen[char] = uses + 1
    return [count / max(1, total) for count in again]


def has_loop(text: str) -> bool:
    """A unit of four or more characters repeated three times running: the char-RNN's stuck record."""
    return _LOOP.search(text) is not None


def longest_copied_run(text: str, corpus: str) -> int:
    """Length of the longest stretch of ``text`` found verbatim in ``corpus``.

    Two pointers: if text[i:j] occurs in the corpus, so does text[i+1:j], so each start only extends the
    previous match; about 2 * len(text) substring searches, each in C.
    """
    best = j = 0
    for i in range(len(text)):
        j = max(j, i)
        while j < len(text) and text[i : j + 1] in corpus:
            j += 1
        best = max(best, j - i)
    return best


def mean_line_length(texts: Iterable[str]) -> float:
    lengths = [len(line) for text in texts for line in lines_of(text)]
    return statistics.fmean(lengths) if lengths else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def english_words(text: str) -> set[str]:
    """The lower-cased English words of a text: a vocabulary to check generated words against."""
    return {word.lower() for word in _WORD.findall(text)}


def known_words(texts: Iterable[str], vocabulary: set[str]) -> tuple[float, int]:
    """The share of the words written that are words of ``vocabulary`` (the real-word rate), and how many
    were written. Every word counts, the last one too: the length limit never cuts a word off."""
    words = [word.lower() for text in texts for word in _WORD.findall(text)]
    return (sum(word in vocabulary for word in words) / len(words) if words else 0.0), len(words)
