"""Topic words: what else a song about the person's words talks of, from the corpora's own co-occurrence.

A char-RNN strings a corpus's words together without a subject: each line follows the last, none follows
the song. Poetry generators that plan (Wang et al. 2016, "Chinese Poetry Generation with Planning based
Neural Network") choose one keyword per line before writing, words related to the request, and write each
line around its word. This is that plan, for Chinese: the words are character pairs inside a phrase (a
classical word is mostly two characters), and "related" is how often two words share a song compared with
how common each is (``count(a, b) / sqrt(count(a) * count(b))``, over songs of the corpora).

``build_topics`` makes the table shipped as ``charrnn/text/topics.json`` (``python -m charrnn topics build``,
recorded as ``make topics``); ``keyword_plan`` chooses a request's words from it; the ``topic_words``
processor (``charrnn.generation.processors``) steers each line towards its word.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

TOPICS_PATH = Path(__file__).with_name("topics.json")
WORDS = 3000  # the most common words of the corpora are the ones a plan may use
NEIGHBOURS = 12  # related words kept per word
MIN_SHARED = 4  # songs two words share before they count as related
COHESION = 2.5  # nats: how much more often than chance a character pair must occur to be a word
_PHRASE = re.compile(r"[\u4e00-\u9fff]+")
# Characters that make a pair a grammatical frame, not a topic: negation, pronouns, particles, "how", "not yet".
FUNCTION_CHARS = frozenset("不无未莫勿休之乎者也矣焉哉兮而其何谁此彼我你他她吾汝尔君是为以于与且亦又还却便就都只"
                           "了着的得么呢吧啊个些这那里")


def words_of(text: str) -> set[str]:
    """The two-character words of a text: every adjacent pair of Han characters inside one phrase."""
    return {phrase[i : i + 2] for phrase in _PHRASE.findall(text) for i in range(len(phrase) - 1)}


def is_topic(word: str) -> bool:
    return len(word) == 2 and not (set(word) & FUNCTION_CHARS)


def songs_of(texts: Iterable[str]) -> list[str]:
    """The songs of lyric corpora, without their titles: blocks between blank lines, less the first line (a
    tune's name, a title: 水调歌头 would make 调歌 and 歌头 related to every word of every such song)."""
    blocks = [block.strip() for text in texts for block in re.split(r"\n\s*\n", text)]
    return [block.split("\n", 1)[1] for block in blocks if "\n" in block]


def cohesive(texts: Iterable[str], threshold: float = COHESION) -> frozenset[str]:
    """The character pairs that are words rather than the seam between two: pairs met ``threshold`` times (in
    nats) more often than their characters' own frequencies predict (明月, 相思; not 月清 of 明月清风)."""
    pairs: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for text in texts:
        for phrase in _PHRASE.findall(text):
            chars.update(phrase)
            pairs.update(phrase[i : i + 2] for i in range(len(phrase) - 1))
    total = sum(chars.values())
    return frozenset(p for p, n in pairs.items() if n >= MIN_SHARED
                     and math.log(n * total / (chars[p[0]] * chars[p[1]])) >= threshold)


def build_topics(texts: Iterable[str], words: int = WORDS, neighbours: int = NEIGHBOURS) -> dict[str, list[str]]:
    """For each of the ``words`` most widespread topic words, its ``neighbours`` most related ones, best first;
    the most widespread words first."""
    songs_text = songs_of(texts)
    real = cohesive(songs_text)
    songs = [{w for w in words_of(song) if is_topic(w) and w in real} for song in songs_text]
    spread = Counter(w for song in songs for w in song)
    kept = {w for w, _ in spread.most_common(words)}
    shared: Counter[tuple[str, str]] = Counter()
    for song in songs:
        present = sorted(song & kept)
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                shared[a, b] += 1
    related: dict[str, list[tuple[float, str]]] = {w: [] for w in kept}
    for (a, b), n in shared.items():
        if n >= MIN_SHARED:
            score = n / math.sqrt(spread[a] * spread[b])
            related[a].append((score, b))
            related[b].append((score, a))
    order = sorted(related, key=lambda w: (-spread[w], w))
    return {w: [b for _, b in sorted(related[w], reverse=True)[:neighbours]] for w in order if related[w]}


def save_topics(table: dict[str, list[str]], path: Path = TOPICS_PATH) -> None:
    path.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n",
                    encoding="utf-8")


@functools.cache
def topics(path: Path = TOPICS_PATH) -> dict[str, tuple[str, ...]]:
    """The shipped table (read once); empty when it is missing: then no plan is made."""
    if not path.is_file():
        return {}
    return {word: tuple(related) for word, related in json.loads(path.read_text(encoding="utf-8")).items()}


def keyword_plan(prefix: str, count: int, rng: random.Random, table: dict[str, tuple[str, ...]] | None = None,
                 allowed: frozenset[str] | None = None, fits: Callable[[str], bool] | None = None) -> list[str]:
    """``count`` topic words for a song that opens with ``prefix``, one per line, drawn from the words most
    related to the prefix's own (or, when it has none in the table, to the table's words sharing one of its
    characters); none already in the prefix, each spelt with ``allowed`` characters. [] when nothing relates.

    ``fits`` (``charrnn.text.themes``: no clash): a word is kept only while the prefix (when it fits itself) and the
    words kept so far still fit with it. Words related to 秋风 are 黄花 and 寒食, 梨花 and 芳草: a plan of both
    seasons led every line to a clash the rest of the ranking then had to undo."""
    table = topics() if table is None else table
    own = [w for w in words_of(prefix) if w in table]
    if not own:  # 秋天的雨 has no classical pair of the table: the words of 秋 and 雨
        own = [w for c in dict.fromkeys(prefix) if "\u4e00" <= c <= "\u9fff" and c not in FUNCTION_CHARS
               for w in _words_with(c, table)[:3]]
    votes: Counter[str] = Counter()
    for word in own:
        for rank, other in enumerate(table[word]):
            votes[other] += len(table[word]) - rank  # the most related count most
    candidates = [w for w, _ in votes.most_common() if w not in prefix and w not in own
                  and (allowed is None or set(w) <= allowed)][: 2 * count]
    rng.shuffle(candidates)
    if fits is None:
        return candidates[:count]
    kept: list[str] = []
    opening = [prefix] if fits(prefix) else []
    for word in candidates:
        if len(kept) < count and fits("，".join([*opening, *kept, word])):
            kept.append(word)
    return kept


def _words_with(char: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    """The table's words with ``char``, the most widespread first (the table's own order)."""
    return [w for w in table if char in w]
