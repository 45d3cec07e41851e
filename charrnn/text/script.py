"""Which script a character or a text is written in: the one place that decides Han, Latin and English.

A lyric is held to one script (``SampleConfig.one_script``), titled by its hook when it is English, rhymed by
pinyin finals when it is Chinese; every one of those decisions asks here, so they cannot disagree.
"""

from __future__ import annotations

import re
import unicodedata

LATIN = re.compile(r"[A-Za-z]")


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
