"""Rhyme: which lines of a lyric rhyme, by the phonetics of their last syllable.

A Chinese line rhymes on the final (韵母) of its last character, read by pypinyin; finals are grouped
into the thirteen rhyme classes of modern lyrics and opera (十三辙), so 雨 (ü) rhymes with 你 (i) and
天 (ian) with 年 (ian) and 晚 (uan). An English line rhymes on its last word from the last stressed vowel
on (the CMU pronouncing dictionary, through ``pronouncing``): *night* with *light*; a word the
dictionary lacks falls back to its spelling from the last vowel group on.

A rhyme key is a string; two lines rhyme when their keys are equal and not None (a line that ends in
a digit, an emoji or nothing has no key).

A ci tune also keeps its rhyme's tone: 鹧鸪天 rhymes on level tones (平), 蝶恋花 on oblique ones (仄). A
character's tone class is its modern tone's (1 and 2 level, 3 and 4 oblique, ``han_tone``); the old entering
tone (入声), now spread over all four, leaves tunes that rhymed on it without a tone (``charrnn.form_mining``).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable

import pronouncing
from pypinyin import Style, lazy_pinyin

from charrnn.text.words import is_han

# 十三辙: the thirteen rhyme classes, by pypinyin's strict finals (ü written v).
THIRTEEN_CLASSES: dict[str, tuple[str, ...]] = {
    "发花": ("a", "ia", "ua"),
    "梭波": ("o", "uo", "e"),
    "乜斜": ("ie", "ve"),
    "一七": ("i", "v", "er"),
    "姑苏": ("u",),
    "怀来": ("ai", "uai"),
    "灰堆": ("ei", "uei", "ui"),
    "遥条": ("ao", "iao"),
    "由求": ("ou", "iou", "iu"),
    "言前": ("an", "ian", "uan", "van"),
    "人辰": ("en", "in", "uen", "un", "vn"),
    "江阳": ("ang", "iang", "uang"),
    "中东": ("eng", "ing", "ong", "iong", "ueng"),
}
_CLASS_OF_FINAL = {final: name for name, finals in THIRTEEN_CLASSES.items() for final in finals}
_ENGLISH_WORD = re.compile(r"[A-Za-z']+$")
_VOWELS = re.compile(r"[aeiouy]+[^aeiouy]*$")


@functools.lru_cache(maxsize=65536)
def han_key(char: str) -> str | None:
    """The rhyme class of a Chinese character (its most common reading), or None."""
    if not is_han(char):
        return None
    finals = lazy_pinyin(char, style=Style.FINALS, strict=True, errors="ignore")
    return _CLASS_OF_FINAL.get(finals[0]) if finals else None


TONES = ("平", "仄")  # level and oblique


@functools.lru_cache(maxsize=65536)
def han_tone(char: str) -> str | None:
    """平 or 仄 for a Chinese character (its most common reading's modern tone), None for the neutral tone or
    anything else."""
    if not is_han(char):
        return None
    syllables = lazy_pinyin(char, style=Style.TONE3, strict=True, errors="ignore", neutral_tone_with_five=True)
    tone = syllables[0][-1:] if syllables else ""
    return "平" if tone in ("1", "2") else "仄" if tone in ("3", "4") else None


def line_tone(line: str) -> str | None:
    """The tone class of a line's last character (None for an English line)."""
    unit = last_unit(line)
    return han_tone(unit) if is_han(unit[-1:]) else None


@functools.lru_cache(maxsize=65536)
def english_key(word: str) -> str | None:
    """``en:`` and the word's sounds from the last stressed vowel on (stress marks dropped)."""
    word = word.lower().strip("'")
    if not word:
        return None
    phones = pronouncing.phones_for_word(word)
    if phones:
        return "en:" + re.sub(r"\d", "", pronouncing.rhyming_part(phones[0]))
    spelled = _VOWELS.search(word)
    return "en~" + spelled.group() if spelled else None


def last_unit(line: str) -> str:
    """The line's last character (Chinese) or word (English), trailing spaces and punctuation dropped."""
    end = len(line)
    while end and not (line[end - 1].isalpha() or is_han(line[end - 1])):
        end -= 1
    if not end:
        return ""
    if is_han(line[end - 1]):
        return line[end - 1]
    word = _ENGLISH_WORD.search(line[:end])
    return word.group() if word else line[end - 1]


def line_key(line: str) -> str | None:
    """The rhyme key of a line: of its last character or word."""
    unit = last_unit(line)
    if not unit:
        return None
    return han_key(unit) if is_han(unit) else english_key(unit)


def rhyme_rate(texts: Iterable[str]) -> float | None:
    """Share of adjacent non-empty line pairs that rhyme, over all the texts; None with no pair."""
    pairs = rhyming = 0
    for text in texts:
        keys = [line_key(line) for line in text.splitlines() if line.strip()]
        for a, b in itertools.pairwise(keys):
            pairs += 1
            rhyming += a is not None and a == b
    return rhyming / pairs if pairs else None


@functools.lru_cache(maxsize=256)
def rhyming_words(key: str) -> frozenset[str]:
    """English words (lower case, letters and apostrophes) whose rhyme key is ``key``."""
    if key.startswith("en:"):
        pronouncing.init_cmu()
        words = {w for part, ws in pronouncing.rhyme_lookup.items() if re.sub(r"\d", "", part) == key[3:] for w in ws}
        return frozenset(w for w in words if re.fullmatch(r"[a-z']+", w))
    return frozenset()


MIN_RHYMING_WORDS = 10  # an English rhyme a song can keep: at least this many words end on it


@functools.lru_cache(maxsize=256)
def ending_words(key: str) -> frozenset[str]:
    """The words whose own rhyme key (``english_key``) is ``key``: the words a line on ``key`` may end on."""
    return frozenset(word for word in rhyming_words(key) if english_key(word) == key)


def usable(key: str | None) -> bool:
    """A rhyme a song can keep: a Chinese class, or an English sound that enough words end on (not a
    spelling fallback, which no dictionary word is known to share)."""
    if key is None:
        return False
    return key in THIRTEEN_CLASSES or (key.startswith("en:") and len(ending_words(key)) >= MIN_RHYMING_WORDS)


def free_rhymes(text: str) -> tuple[int, int]:
    """(rhyme positions on the song's rhyme, rhyme positions) of a free lyric.

    The rhyme positions of free lyrics are every line's end; the song's rhyme is the first line end that
    has one a song can keep (``usable``), and the lines from there on are counted.
    """
    keys = [line_key(line) for line in text.split("\n") if line.strip()]
    first = next((i for i, key in enumerate(keys) if usable(key)), None)
    if first is None:
        return 0, 0
    rest = keys[first + 1 :]
    return sum(key == keys[first] for key in rest), len(rest)
