"""A lyric as something to sing: its lines, their clauses, their syllables, and the mood that picks the key.

A Han character is a syllable. An English word has as many syllables as the CMU pronouncing dictionary says
(through ``pronouncing``), or as many vowel groups as it has when the dictionary does not know it; its spelling
is cut into that many pieces at the consonants between vowel groups ("beau-ti-ful"), which is how the ABC
``w:`` line puts each piece under its note. Punctuation inside a line ends a clause, which the melody ends on
a long note, as it does the line.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pronouncing

from charrnn.text.words import is_han

CLAUSE_ENDS = frozenset("，。、；：？！,.;:?!…—")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
VOWELS = re.compile(r"[aeiouy]+", re.IGNORECASE)
# Words that colour a lyric's mood: more of the first than of the second sets it in a minor key, slower.
SAD = frozenset("愁泪恨别离孤寂寒冷伤悲哀苦断残落死暮泣怨憔悴凄惆怅") | {
    "sad", "tears", "tear", "cry", "crying", "alone", "lonely", "lost", "die", "dead", "death", "cold", "dark",
    "gone", "farewell", "goodbye", "grief", "sorrow", "pain", "broken", "weep", "mourn", "grave", "never"}
GLAD = frozenset("春喜笑欢乐晴暖甜爱歌舞醉花光") | {
    "happy", "joy", "smile", "sun", "sunshine", "bright", "dance", "laugh", "spring", "sweet", "love", "light",
    "sing", "merry", "glad", "summer", "morning", "shine"}


@dataclass(frozen=True)
class SungLine:
    clauses: tuple[tuple[str, ...], ...]  # each clause's syllables, as written under the notes

    @property
    def syllables(self) -> tuple[str, ...]:
        return tuple(s for clause in self.clauses for s in clause)


def syllable_count(word: str) -> int:
    """An English word's syllables: the CMU dictionary's count, else its vowel groups (at least one). An
    apostrophe stands for a vowel left out, so it joins the groups on either side: o'er, ne'er, e'en are one."""
    phones = pronouncing.phones_for_word(word.lower())
    if phones:
        return max(1, int(pronouncing.syllable_count(phones[0])))
    spelled = word.lower().replace("'", "")
    groups = len(VOWELS.findall(spelled))
    if groups > 1 and spelled.endswith("e") and not spelled.endswith(("le", "ee")):
        groups -= 1  # a silent e
    return max(1, groups)


def split_word(word: str) -> tuple[str, ...]:
    """The spelling cut into ``syllable_count`` pieces, each but the last ending in "-" as the ``w:`` line
    writes them: "beautiful" -> beau-, ti-, ful."""
    count = syllable_count(word)
    groups = list(VOWELS.finditer(word))
    if count == 1 or len(groups) < 2:
        return (word,)
    cuts = []
    for left, right in itertools.pairwise(groups[:count]):
        between = right.start() - left.end()  # consonants between two vowel groups
        cuts.append(left.end() + (1 if between >= 2 else 0))
    pieces = [word[a:b] for a, b in zip([0, *cuts], [*cuts, len(word)], strict=True)]
    pieces = [p for p in pieces if p]
    return (*(p + "-" for p in pieces[:-1]), pieces[-1])


def sung_lines(lyric: str) -> list[SungLine]:
    """The lyric's non-empty lines as clauses of syllables; a line without a syllable is left out."""
    lines = []
    for text in lyric.splitlines():
        clauses: list[tuple[str, ...]] = []
        current: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            word = WORD.match(text, i)
            if word is not None:
                current.extend(split_word(word.group(0)))
                i = word.end()
                continue
            if is_han(char):
                current.append(char)
            elif char in CLAUSE_ENDS and current:
                clauses.append(tuple(current))
                current = []
            i += 1
        if current:
            clauses.append(tuple(current))
        if clauses:
            lines.append(SungLine(tuple(clauses)))
    return lines


def words_line(syllables: tuple[str, ...]) -> str:
    """An ABC ``w:`` line: a syllable under each note, a word's pieces joined by their hyphens."""
    return "".join(s if s.endswith("-") else s + " " for s in syllables).rstrip()


def is_sad(lyric: str) -> bool:
    """Whether the lyric's words lean to sorrow (minor key, slower) rather than gladness."""
    words = [w.lower() for w in WORD.findall(lyric)] + [c for c in lyric if is_han(c)]
    sad = sum(w in SAD for w in words)
    glad = sum(w in GLAD for w in words)
    return sad > glad
