"""Titles for lyrics: sampled in line mode at a song's start, then chosen by how well each fits the lyric.

Every lyric corpus the base model learned from puts a song's title on the line after a blank one: the tune
name (词牌) of a Song ci, the title of a Yuan qu or of a song in the Book of Songs. A model asked for one
line after a blank line (``line_mode``) therefore writes a title, but one that knows nothing of the lyric
that will follow, since titles come first. So several are sampled and the one under which the model finds
the lyric's opening most likely (``log p(lyric | title)``) is kept: the title that "predicts" the song.

English corpora have no titles (tiny Shakespeare's blocks open with a speaker's name), so an English lyric
is titled the way pop songs usually are: by its hook, the line it repeats, or else its first words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from charrnn.batching import generate_many
from charrnn.forms import find_tune, tunes
from charrnn.lyrics import lines_of
from charrnn.mixture import LanguageModel
from charrnn.sample import SampleConfig
from charrnn.vocab import Vocab

TITLE_CONTEXT = "\n\n"  # a blank line: in every lyric corpus, the title line comes next
MAX_TITLE_CHARS = 12
# How much of a lyric a title is scored against: about its first line. Each (lyric, title) pair is a
# teacher-forced row in the running batch for this many steps: what titles cost the worker.
HEAD_CHARS = 10
# Lines in the title position that are not titles: Yuan qu's "the same tune again" and coda markers.
NOT_TITLES = frozenset({"前腔", "幺篇", "么篇", "幺", "么", "尾声", "煞尾", "同前", "尾"})
_TITLE_PUNCTUATION = frozenset("·・、 '-")  # allowed inside a title: 木兰花・忆秦娥, Don't Stop
_ENGLISH_WORDS = 6
MAX_ENGLISH_TITLE_CHARS = 40  # six words of a hook
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def title_config(seed: int | None, max_chars: int = MAX_TITLE_CHARS, temperature: float = 0.8) -> SampleConfig:
    """How a title candidate is sampled: one short line, plain temperature (no rhyme, no line rules)."""
    return SampleConfig(temperature=temperature, max_length=max_chars, line_mode=True, seed=seed,
                        repetition_penalty=1.0)


def is_title(text: str) -> bool:
    """A name, not a sentence: letters (and the joining marks titles use), no sentence punctuation, no
    speaker's colon, not one of the corpora's structural markers."""
    text = text.strip()
    limit = MAX_ENGLISH_TITLE_CHARS if is_english(text) else MAX_TITLE_CHARS
    if not text or len(text) > limit or text in NOT_TITLES:
        return False
    return all(unicodedata.category(c).startswith("L") or c in _TITLE_PUNCTUATION for c in text)


def is_english(text: str) -> bool:
    """More Latin letters than CJK characters: titled by its hook rather than by a sampled name."""
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return latin > cjk


def hook_title(lyric: str) -> str | None:
    """The hook: the line sung most often (when one repeats), else the first line; its first few words."""
    lines = lines_of(lyric)
    if not lines:
        return None
    counts = Counter(line.lower() for line in lines)
    line, times = counts.most_common(1)[0]
    chosen = next(x for x in lines if x.lower() == line) if times > 1 else lines[0]
    if is_english(chosen):  # its English words only: a line that mixes scripts is titled in one
        title = " ".join(_LATIN_WORD.findall(chosen)[:_ENGLISH_WORDS])[:MAX_ENGLISH_TITLE_CHARS].strip()
        return title[0].upper() + title[1:] if title else None
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", chosen)
    return "".join(words)[:MAX_TITLE_CHARS] or None


def is_tune_name(text: str) -> bool:
    """A ci tune's name (or one of its other names): the title of a lyric in that tune's form, and of no other."""
    return text.strip() in _tune_names()


@functools.cache
def _tune_names() -> frozenset[str]:
    return frozenset(alias for name in tunes() for alias in (name, *name.split("・")))


def title_options(candidates: Sequence[str]) -> list[str]:
    """The sampled candidates that read as titles, each once, in order. Only Chinese ones: titles are fitted to
    Chinese lyrics alone (``scored``), and a model that learned both languages samples both. Never a tune's name:
    the lyric is not written in that tune's form (one that is is titled by its tune, ``form_title``)."""
    return list(dict.fromkeys(c.strip() for c in candidates
                              if is_title(c) and not is_english(c) and not is_tune_name(c)))


def form_title(form: str) -> str:
    """The title of a lyric written in a ci tune's form: the tune's name, as every Song ci is titled."""
    return find_tune(form).name


def scored(lyric: str, vocab: Vocab) -> bool:
    """Whether a lyric's title is chosen by fit (a Chinese lyric with characters the model knows), not by hook."""
    return not is_english(lyric) and any(c in vocab for c in lyric)


def fit_requests(lyric: str, titles: Sequence[str], head_chars: int = HEAD_CHARS) -> list[tuple[str, SampleConfig]]:
    """One teacher-forced request per title: read the title line, then score the lyric's head
    (``Generation.logprob`` = log p(head | title)). They run in the batch like any other request."""
    head = lyric[:head_chars]
    config = SampleConfig(force=head, max_length=max(1, len(head)), stop_at_blank_line=False, repetition_penalty=1.0)
    return [("\n" + title + "\n", config) for title in titles]  # the row reads a line break first: "\n\n" title


def pick(lyric: str, titles: Sequence[str], scores: Sequence[float]) -> str | None:
    """The best-fitting of the ``title_options``, or the lyric's hook when there are none."""
    if not titles:
        return hook_title(lyric)
    return max(zip(scores, titles, strict=True), key=lambda pair: pair[0])[1]  # the first of equals: max keeps it


def choose_titles(
    model: LanguageModel, vocab: Vocab, lyrics: Sequence[str], candidates: Sequence[str]
) -> list[str | None]:
    """One title per lyric, fitted in one batch (``generate_many``); the serving worker does the same in its
    running batch."""
    titles = title_options(candidates)
    heads = {i: "".join(c for c in lyric if c in vocab) for i, lyric in enumerate(lyrics) if scored(lyric, vocab)}
    requests = [r for i in heads for r in fit_requests(heads[i], titles)]
    results = iter(generate_many(model, vocab, requests)) if titles else iter(())
    chosen: list[str | None] = []
    for i, lyric in enumerate(lyrics):
        scores = [next(results).logprob for _ in titles] if i in heads and titles else []
        chosen.append(pick(lyric, titles if scores else [], scores))
    return chosen

def titled(lyric: str, title: str | None) -> str:
    """The lyric as shown: its title on the first line (in 《》 where the title is Chinese), a blank line, the lyric."""
    if not title:
        return lyric
    return f"{title if is_english(title) else f'《{title}》'}\n\n{lyric}"
