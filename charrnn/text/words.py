"""Scripts and words: which script a character or a text is written in (the one place that decides Han, Latin
and English), English words as the corpora spell them, and where a text's last whole line or word ends.

A lyric is held to one script (``SampleConfig.one_script``), titled by its hook when it is English, rhymed by
pinyin finals when it is Chinese; every one of those decisions asks here, so they cannot disagree.

A checkpoint carries the English words of the corpora it learnt (``corpus_words``: maximal runs of ASCII
letters and apostrophes, lower-cased, so "o'er", "'tis" and "ne'er" stay as the corpus spells them); the
sampler writes through them as a trie (``charrnn.generation.word_trie``). The length limit never cuts a word or
a line: ``whole_lines_end`` is where such a sample ends.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Collection
from typing import Any

LATIN = re.compile(r"[A-Za-z]")
WORD_CHARS = frozenset(string.ascii_letters + "'")
_WORD = re.compile(r"[A-Za-z']*[A-Za-z][A-Za-z']*")  # a run of letters and apostrophes with a letter in it
_STORED = re.compile(r"[a-z']*[a-z][a-z']*")


def corpus_words(text: str) -> frozenset[str]:
    """The English words of a text, lower-cased: what a model trained on it may write."""
    return frozenset(word.lower() for word in _WORD.findall(text))


def merged(*word_sets: frozenset[str] | None) -> frozenset[str] | None:
    """The words of a model that learnt from several sources; None (unknown: no constraint) if any is unknown.

    A model fine-tuned from a checkpoint without words knows English nobody listed: constraining it to the
    new corpus's words alone would forbid what it learnt first.
    """
    known = [words for words in word_sets if words is not None]
    return frozenset().union(*known) if len(known) == len(word_sets) else None


def words_to_json(words: Collection[str]) -> list[str]:
    return sorted(words)


def words_from_json(data: Any) -> frozenset[str]:
    """The stored word list, checked: lower-case letters and apostrophes with a letter in each word."""
    if not isinstance(data, list) or not all(isinstance(w, str) and _STORED.fullmatch(w) for w in data):
        raise ValueError("words must be a list of lower-case English words")
    return frozenset(data)


def whole_lines_end(text: str) -> int:
    """Where a sample the length limit stopped should end: at its last line break (left out, as a stop at a
    line's end leaves it out) when a whole line comes before it, else after its last whole word; a word still
    being written is dropped."""
    line_end = text.rfind("\n")
    if line_end >= 0 and text[:line_end].strip():
        return line_end
    # No whole line written (at most the break that ended the prefix's line): its whole words, not nothing.
    word = trailing_word(text)
    return len(text[: len(text) - len(word)].rstrip()) if word else len(text)


def trailing_word(text: str) -> str:
    """The English word at the end of ``text`` as written (its letters and apostrophes); '' after anything else."""
    end = len(text)
    while end and text[end - 1] in WORD_CHARS:
        end -= 1
    return text[end:]


def is_han(char: str) -> bool:
    """A Chinese character (a CJK unified ideograph, extensions included)."""
    return len(char) == 1 and unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


def is_latin_letter(char: str) -> bool:
    """An ASCII letter: what the English words of the corpora are spelt with."""
    return len(char) == 1 and char.isascii() and char.isalpha()


def is_alphabetic_letter(symbol: str) -> bool:
    """A letter of a script with cases (Latin, Greek, Cyrillic...): Han, kana and hangul have none."""
    return symbol.isalpha() and symbol.lower() != symbol.upper()


def is_english(text: str) -> bool:
    """More Latin letters than Han characters: a text to title by its hook, not by a fitted phrase."""
    latin = sum(1 for c in text if is_latin_letter(c))
    return latin > sum(1 for c in text if is_han(c))


def script_of(text: str) -> str:
    """"zh" for text with Han characters and no Latin letter, "en" for the other way round, else ""."""
    han = any(is_han(c) for c in text)
    latin = any(is_latin_letter(c) for c in text)
    return "zh" if han and not latin else "en" if latin and not han else ""
