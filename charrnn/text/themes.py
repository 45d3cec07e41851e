"""Themes: the words of the corpora that belong to one season or one mood, so that a lyric keeps to one.

Blind readers of the base's ci named first, among what breaks a poem's sense, seasons that clash (海棠 and
重阳 under one opening, 木落 in 槐夏, 黄花 at 清明) and occasions that drift (a birthday ci "drowned in farewell
imagery"). Real ci seldom mix them. Two axes, each two opposite ends, are read off the songs themselves:

- seasons, 春 against 秋 (the seasons the ci sing of; 夏 and 冬 are named in under 1% of them, too few to
  learn from, and neighbouring seasons do not clash: a ci of late spring speaks of early summer);
- mood, 喜 (a birthday's, a feast's joy) against 愁 (parting and longing).

A word belongs to an end when its songs name that end's character elsewhere in them ``lift`` times as often
as songs at large (or the word itself names it: 春风, 闲愁) and the opposite end's at most ``opposite_lift``
times as often: 东风, 秋千 (the swing of Qingming, though it is spelt with 秋), 寒食, 海棠 spring; 西风, 黄花,
重阳 autumn; 千岁, 称觞, 蟠桃 joy; 相思, 南浦, 断魂 sorrow. A text clashes when it holds words of both ends of an
axis. Of the 2,239 held-out Song ci, 4.0% clash on seasons and 0.9% on mood; of the base's candidate ci, 29% and
9% (measured with the spring words of the older, stricter table).

``build_themes`` makes the table shipped as ``charrnn/text/themes.json`` (``python -m charrnn topics themes``,
recorded in ``make topics``); ``clashing_axes`` is what phrase ranking (``charrnn.generation.phrases``) and the
bot's choice among candidates minimise, ``clashes`` what the lyric benchmarks count.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from charrnn.text.topics import is_topic, songs_of, words_of

THEMES_PATH = Path(__file__).with_name("themes.json")
MIN_SONGS = 20  # songs a word must be in before its theme is read off them


@dataclass(frozen=True)
class Axis:
    ends: tuple[str, str]  # the characters that name its two opposite ends
    lift: float  # a word's songs name its end at least this many times as often as songs at large...
    opposite_lift: tuple[float, float]  # ...and the opposite end at most this many times (for each end's words)


# Thresholds chosen on the held-out ci against the base's candidates (docs/charrnn.md): seasons at 1.6 / 0.5
# at first (real ci clash 2.2%, the base 29%); mood, whose words are commoner on both sides, at 2.0 / 0.4 (0.9%, 9%;
# at 1.6 / 0.5 real ci would clash 11%). A spring word's songs name 秋 more than an autumn word's name 春, in
# antitheses (春花秋月, 春去秋来): at 0.5 for both, 梨花, 海棠, 寒食, 杏花, 清明 (0.6-0.9) were no spring words,
# and blind readers kept hearing 寒食 and 梨花 beside 黄花; at 0.8 for spring's, real ci clash 4.0%.
AXES = (Axis(("春", "秋"), 1.6, (0.8, 0.5)), Axis(("喜", "愁"), 2.0, (0.4, 0.4)))


def build_themes(texts: Iterable[str], axes: tuple[Axis, ...] = AXES) -> dict[str, str]:
    """Each topic word (``charrnn.text.topics``) of ``MIN_SONGS`` songs or more that leans to one end of an axis:
    word -> the ends it belongs to (春, 愁, 春愁...), the most widespread words first."""
    songs = songs_of(texts)
    anchors = "".join(end for axis in axes for end in axis.ends)
    named = [{c for c in anchors if c in song} for song in songs]
    base = {c: sum(c in ends for ends in named) / max(1, len(named)) for c in anchors}
    spread: Counter[str] = Counter()
    naming: dict[str, Counter[str]] = {c: Counter() for c in anchors}
    for song, ends in zip(songs, named, strict=True):
        for word in dict.fromkeys(w for w in sorted(words_of(song)) if is_topic(w)):
            spread[word] += 1
            rest = song.replace(word, "") if set(word) & ends else song  # an end named elsewhere in the song
            for c in ends:
                if c in rest:
                    naming[c][word] += 1
    table = {}
    for word in sorted(spread, key=lambda w: (-spread[w], w)):
        if spread[word] < MIN_SONGS:
            continue
        lift = {c: (naming[c][word] + 1) / (spread[word] * base[c] + 1) for c in anchors}
        labels = ""
        for axis in axes:
            leaning = [end for (end, other), most in zip((axis.ends, axis.ends[::-1]), axis.opposite_lift, strict=True)
                       if (lift[end] >= axis.lift or end in word) and lift[other] <= most]
            labels += leaning[0] if len(leaning) == 1 else ""
        if labels:
            table[word] = labels
    return table


def save_themes(table: dict[str, str], path: Path = THEMES_PATH) -> None:
    path.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


@functools.cache
def themes(path: Path = THEMES_PATH) -> dict[str, str]:
    """The shipped table (read once); empty when it is missing: then nothing clashes."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def themes_in(text: str, table: dict[str, str] | None = None) -> set[str]:
    """The axis ends the words of ``text`` belong to."""
    table = themes() if table is None else table
    return {label for w in words_of(text) if w in table for label in table[w]}


def clashing_axes(text: str, table: dict[str, str] | None = None, axes: tuple[Axis, ...] = AXES) -> int:
    """On how many axes ``text`` holds words of both ends: what a choice between texts minimises, so that a lyric
    whose seasons already clash (or whose opening's do) still keeps its mood."""
    found = themes_in(text, table)
    return sum(set(axis.ends) <= found for axis in axes)


def clashes(text: str, table: dict[str, str] | None = None, axes: tuple[Axis, ...] = AXES) -> bool:
    """Whether ``text`` holds words of both ends of an axis (spring and autumn, joy and sorrow)."""
    return clashing_axes(text, table, axes) > 0
