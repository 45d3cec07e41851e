"""A lyric as syllables: a Han character each, English words by the CMU dictionary, clause ends at punctuation."""

from __future__ import annotations

import pytest

from charrnn.music.lyric import is_sad, split_word, sung_lines, syllable_count, words_line


def test_chinese_lines_are_characters_and_clauses_end_at_punctuation() -> None:
    (line,) = sung_lines("一曲新词酒一杯，去年天气旧亭台。")
    assert line.clauses == (tuple("一曲新词酒一杯"), tuple("去年天气旧亭台"))
    assert sung_lines("\n\n，。\n") == []  # nothing to sing


@pytest.mark.parametrize(("word", "count", "pieces"), [
    ("beautiful", 3, ("beau-", "ti-", "ful")),
    ("remember", 3, ("re-", "mem-", "ber")),
    ("love", 1, ("love",)),
    ("I", 1, ("I",)),
    ("zorbling", 2, ("zor-", "bling")),  # not in the dictionary: its vowel groups
    ("o'er", 1, ("o'er",)),  # Shakespeare's elisions: the apostrophe joins the vowels around it
    ("whate'er", 2, ("wha-", "te'er")),
])
def test_english_words_by_the_dictionary(word: str, count: int, pieces: tuple[str, ...]) -> None:
    assert syllable_count(word) == count
    assert split_word(word) == pieces
    assert "".join(p.rstrip("-") for p in pieces) == word


def test_the_w_line_joins_a_words_pieces() -> None:
    (line,) = sung_lines("Yesterday, all my troubles")
    assert line.clauses == (("Yes-", "ter-", "day"), ("all", "my", "troub-", "les"))
    assert words_line(line.syllables) == "Yes-ter-day all my troub-les"


def test_the_mood() -> None:
    assert is_sad("泪满衣襟别离时") and is_sad("I cry alone in the cold")
    assert not is_sad("春风拂面笑开颜") and not is_sad("Sunshine and love")
