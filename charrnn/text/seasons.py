"""Seasons: the words of the corpora that belong to one season, so that a lyric keeps to one.

Blind readers of the base's ci named clashing seasons first among what breaks a poem's sense: 海棠 and 重阳
under one opening, 木落 in 槐夏, 黄花 at 清明. Real ci almost never mix them: of the 2,239 held-out Song ci,
2.4% hold words of opposite seasons; of the base's candidate ci, 30%. A word's season is read off the songs
themselves: how much more often than songs at large a song that holds the word names a season elsewhere in
it (东风 and 海棠 go with 春, 西风 and 黄花 with 秋; 秋千, the swing of Qingming, with 春, though it is spelt
with 秋). Spring and autumn, the seasons the ci sing of, clash; summer and winter are named in under 1% of the
ci, too few to learn their words from, and neighbours do not clash (a ci of late spring speaks of early summer).

``build_seasons`` makes the table shipped as ``charrnn/text/seasons.json`` (``python -m charrnn topics
seasons``, recorded in ``make topics``); ``clashes`` is what phrase ranking (``charrnn.generation.phrases``),
the bot's choice among candidates and the lyric benchmarks ask of a text.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from charrnn.text.topics import is_topic, songs_of, words_of

SEASONS_PATH = Path(__file__).with_name("seasons.json")
SEASONS = "春秋"  # the two the ci sing of; 夏 and 冬 are named in under 1% of them, too few to learn from
OPPOSITE = {"春": "秋", "秋": "春"}
MIN_SONGS = 20  # songs a word must be in before its season is read off them
LIFT = 1.6  # its songs name its season at least this many times as often as songs at large...
OPPOSITE_LIFT = 0.5  # ...and the opposite season at most half as often


def build_seasons(texts: Iterable[str]) -> dict[str, str]:
    """Each topic word (``charrnn.text.topics``) of ``MIN_SONGS`` songs or more whose songs lean to one season:
    word -> 春 or 秋, the most widespread words first."""
    songs_text = songs_of(texts)
    named = [{c for c in SEASONS if c in song} for song in songs_text]
    base = {c: sum(c in seasons for seasons in named) / max(1, len(named)) for c in SEASONS}
    spread: Counter[str] = Counter()
    naming: dict[str, Counter[str]] = {c: Counter() for c in SEASONS}
    for song, seasons in zip(songs_text, named, strict=True):
        for word in dict.fromkeys(w for w in sorted(words_of(song)) if is_topic(w)):
            spread[word] += 1
            rest = song.replace(word, "") if set(word) & seasons else song  # a season named elsewhere in the song
            naming_here = [c for c in seasons if c in rest]
            for c in naming_here:
                naming[c][word] += 1
    table = {}
    for word in sorted(spread, key=lambda w: (-spread[w], w)):
        if spread[word] < MIN_SONGS:
            continue
        lift = {c: (naming[c][word] + 1) / (spread[word] * base[c] + 1) for c in SEASONS}
        # Its songs name the season often (or the word does: 春风, 秋月) and the opposite one seldom (not 千秋, long
        # life, a birthday's wish in any season).
        leaning = [c for c in SEASONS if (lift[c] >= LIFT or c in word) and lift[OPPOSITE[c]] <= OPPOSITE_LIFT]
        if len(leaning) == 1:
            table[word] = leaning[0]
    return table


def save_seasons(table: dict[str, str], path: Path = SEASONS_PATH) -> None:
    path.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


@functools.cache
def seasons(path: Path = SEASONS_PATH) -> dict[str, str]:
    """The shipped table (read once); empty when it is missing: then nothing clashes."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def seasons_in(text: str, table: dict[str, str] | None = None) -> set[str]:
    """The seasons the words of ``text`` belong to."""
    table = seasons() if table is None else table
    return {table[w] for w in words_of(text) if w in table}


def clashes(text: str, table: dict[str, str] | None = None) -> bool:
    """Whether ``text`` holds words of opposite seasons."""
    found = seasons_in(text, table)
    return any(OPPOSITE[c] in found for c in found)
