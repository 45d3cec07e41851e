"""Titles for lyrics, from the lyric's own words.

A song is titled by its words: the phrase it keeps returning to (the hook), its opening phrase when that is
short (《晴天》, 《我想你》, and the Book of Songs, whose 关雎 is the first words of 关关雎鸠), and otherwise
one of its short phrases. Which one is the model's choice: every lyric corpus the base learned puts a
song's title on the line after a blank one, so each phrase is read as a title line and the one under which
the model finds the lyric's opening likeliest (``log p(head | title)``) is kept: the title that "predicts"
the song. The phrases are whole (a phrase never cuts a word); a lyric of long lines offers the units where
verse breaks them instead.

A tune's name (词牌) titles a lyric only when the lyric is in that tune's form (``form_title``); a tune name
on any other lyric would misname it. English lyrics are titled the way pop songs are: by the line they
repeat, or else their first words (a whole clause's, never ending on "of" or "the").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from charrnn.config import SampleConfig
from charrnn.text.forms import find_tune, tune_named
from charrnn.text.lyrics import lines_of
from charrnn.text.words import is_english
from charrnn.vocab import Vocab

TITLE_CONTEXT = "\n\n"  # a blank line: in every lyric corpus, the title line comes next
MAX_TITLE_CHARS = 12
SHORT_OPENING = 6  # an opening phrase this short (in Han characters) is the song's title as it stands
# How much of a lyric a title is scored against: about its first line. Each (lyric, title) pair is a
# teacher-forced row in the running batch for this many steps: what titles cost the worker.
HEAD_CHARS = 10
# Lines in the title position that are not titles: Yuan qu's "the same tune again" and coda markers.
NOT_TITLES = frozenset({"前腔", "幺篇", "么篇", "幺", "么", "尾声", "煞尾", "同前", "尾"})
_TITLE_PUNCTUATION = frozenset("·・、 '-")  # allowed inside a title: 木兰花・忆秦娥, Don't Stop
_ENGLISH_WORDS = 6
MAX_ENGLISH_TITLE_CHARS = 40  # six words of a hook
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_CLAUSE_END = re.compile(r"[,.;:!?，。；：！？]")
# Words a title cut at six words does not end on: the cut often leaves one ("Rain on the windows noble of").
_DANGLING = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "if", "when", "where", "while", "though", "of", "in", "on", "at",
    "to", "by", "for", "from", "with", "into", "onto", "upon", "under", "over", "beneath", "above", "below",
    "through", "across", "against", "among", "about", "after", "before", "behind", "between", "without", "within",
    "till", "until", "toward", "towards", "than", "as", "that", "which", "who", "whom", "whose", "my", "your", "his",
    "its", "our", "their", "thy",
    # a verb's helper or its subject, waiting for the verb ("O what a noble mind is", "When all at once I")
    "am", "is", "are", "was", "were", "art", "have", "has", "had", "hath", "do", "does", "did", "doth", "dost",
    "shall", "shalt", "will", "wilt", "would", "should", "can", "could", "may", "might", "must", "i", "we", "he",
    "she", "they", "thou", "ye", "not", "so", "very",
})
_HAN_PHRASE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")  # a clause: Han characters between punctuation
LEAD_IN = "、"  # after a ci line's leading words (领字: 待莫教、 问何处、): they lead into a line, name nothing


def _named_phrases(text: str) -> list[str]:
    """The clauses of ``text`` that can name it: not the leading words a 、 hands on to the rest of the line
    (《待莫教》, 《记当年》 were titles while the base's lines led in with them)."""
    return [m.group() for m in _HAN_PHRASE.finditer(text) if not text.startswith(LEAD_IN, m.end())]


def is_title(text: str) -> bool:
    """A name, not a sentence: letters (and the joining marks titles use), no sentence punctuation, no
    speaker's colon, not one of the corpora's structural markers."""
    text = text.strip()
    limit = MAX_ENGLISH_TITLE_CHARS if is_english(text) else MAX_TITLE_CHARS
    if not text or len(text) > limit or text in NOT_TITLES:
        return False
    return all(unicodedata.category(c).startswith("L") or c in _TITLE_PUNCTUATION for c in text)


def hook_title(lyric: str) -> str | None:
    """The hook: the line sung most often (when one repeats), else the first line; its first few words."""
    lines = lines_of(lyric)
    if not lines:
        return None
    counts = Counter(line.lower() for line in lines)
    line, times = counts.most_common(1)[0]
    chosen = next(x for x in lines if x.lower() == line) if times > 1 else lines[0]
    if is_english(chosen):  # its English words only: a line that mixes scripts is titled in one
        return english_title(chosen)
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", chosen)
    return "".join(words)[:MAX_TITLE_CHARS] or None


def english_title(line: str) -> str | None:
    """A line's first words as a title: its first clause (two words at least: "Hey, Jude" rather than "Hey"), at
    most six words; where six cut it, never ending on a word that leaves it hanging (an article, a preposition,
    "that"). A clause that ends by itself keeps its last word ("Let it be", "Hold on")."""
    words: list[str] = []
    for clause in _CLAUSE_END.split(line):
        words += _LATIN_WORD.findall(clause)
        if len(words) >= 2:
            break
    title_words = words[:_ENGLISH_WORDS]
    if len(words) > _ENGLISH_WORDS:
        while len(title_words) > 1 and title_words[-1].lower() in _DANGLING:
            title_words.pop()
    title = " ".join(title_words)[:MAX_ENGLISH_TITLE_CHARS].strip()
    return title[0].upper() + title[1:] if title else None


def own_title(lyric: str, prefix: str = "") -> str | None:
    """A title read straight off the lyric, when it has one: an English lyric's hook; a Chinese lyric's phrase
    that returns (its chorus), else its opening phrase when that is short (and no line's leading words, unless
    they are all the person's own ``prefix``: 《我想你》 of 我想你、此身无一事, not 《我记当年》 of 我 + 记当年、).
    None: a Chinese lyric whose title is one of its words, chosen by the model (``title_options``)."""
    if is_english(lyric):
        return hook_title(lyric)
    phrases: list[str] = [p for p in _named_phrases(lyric) if is_title(p) and not is_tune_name(p)]
    returning = [p for p, times in Counter(phrases).items() if times > 1 and len(p) >= 2]
    if returning:
        return max(returning, key=len)  # the longest that returns: the chorus line, not a word within it
    first = _HAN_PHRASE.search(lyric)
    if first is None or (lyric.startswith(LEAD_IN, first.end()) and first.end() > len(prefix.rstrip())):
        return None
    opening = first.group()
    return opening if 2 <= len(opening) <= SHORT_OPENING and is_title(opening) and not is_tune_name(opening) else None


def title_options(lyric: str, limit: int, vocab: Vocab | None = None) -> list[str]:
    """The words a Chinese lyric without its ``own_title`` may be titled by, in order, at most ``limit``: its
    short phrases (whole: a phrase never cuts a word; not a line's leading words before a 、), line by line from
    the first; while there are none, the units of its long ones, where verse breaks a line (the first two
    characters and the last three of a line of five or seven, 炊烟 and 千万里 of 炊烟袅袅隔江千万里). Never a
    tune's name, never a structural marker, and with ``vocab``, only words the model can read."""

    def named(words: list[str]) -> list[str]:  # and spelt in characters the model knows, when that is given
        return [w for w in dict.fromkeys(words) if is_title(w) and not is_tune_name(w)
                and (vocab is None or all(c in vocab for c in w))]

    phrases = [p for line in lines_of(lyric) for p in _named_phrases(line)]
    short = named([p for p in phrases if 2 <= len(p) <= SHORT_OPENING])
    return (short or named([w for p in phrases if len(p) > SHORT_OPENING for w in (p[:2], p[-3:])]))[:limit]


def is_tune_name(text: str) -> bool:
    """A ci tune's name (or one of its other names): the title of a lyric in that tune's form, and of no other."""
    return bool(text.strip()) and tune_named(text) is not None


def form_title(form: str) -> str:
    """The title of a lyric written in a ci tune's form: the tune's name, as every Song ci is titled."""
    return find_tune(form).name


def fitted(lyric: str, vocab: Vocab, prefix: str = "") -> bool:
    """Whether a lyric's title is chosen by the model among its words: Chinese, with no ``own_title``, and
    with characters the model knows."""
    return not is_english(lyric) and own_title(lyric, prefix) is None and any(c in vocab for c in lyric)


def fit_requests(lyric: str, titles: Sequence[str], head_chars: int = HEAD_CHARS) -> list[tuple[str, SampleConfig]]:
    """One teacher-forced request per title: read the title line, then score the lyric's head
    (``Generation.logprob`` = log p(head | title)). They run in the batch like any other request."""
    head = lyric[:head_chars]
    config = SampleConfig(force=head, max_length=max(1, len(head)), stop_at_blank_line=False, repetition_penalty=1.0)
    return [("\n" + title + "\n", config) for title in titles]  # the row reads a line break first: "\n\n" title


def pick(lyric: str, titles: Sequence[str], scores: Sequence[float], prefix: str = "") -> str | None:
    """The lyric's ``own_title``, else the best-scored of its ``title_options``, else its hook."""
    own = own_title(lyric, prefix)
    if own is not None:
        return own
    if not titles:
        return hook_title(lyric)
    return max(zip(scores, titles, strict=True), key=lambda pair: pair[0])[1]  # the first of equals: max keeps it


def title_requests(
    lyric: str, vocab: Vocab, limit: int, prefix: str = ""
) -> tuple[list[str], list[tuple[str, SampleConfig]]]:
    """The words of ``lyric`` that may title it (at most ``limit``, each spelt in characters the model knows) and
    one fit request per word; nothing for a lyric that needs no fitting (``fitted``). The options come from the
    lyric as written (leaving an unknown character out would join two phrases into a word it never had); the
    head they are scored against is what the model can read of it."""
    if not fitted(lyric, vocab, prefix):
        return [], []
    options = title_options(lyric, limit, vocab)
    return options, fit_requests("".join(c for c in lyric if c in vocab), options)


def untitled(text: str) -> tuple[str, str]:
    """``titled`` undone: (title, lyric) for a text that starts with a title line (in 《》, or a short English
    line) and a blank line; ("", text) for any other."""
    head, blank, rest = text.strip().partition("\n\n")
    if not blank or "\n" in head or not rest.strip():
        return "", text
    if head.startswith("《") and head.endswith("》"):
        return head[1:-1], rest
    if is_english(head) and len(head.split()) <= 6 and rest.count("\n") >= 1:
        return head, rest
    return "", text


def titled(lyric: str, title: str | None) -> str:
    """The lyric as shown: its title on the first line (in 《》 where the title is Chinese), a blank line, the lyric."""
    if not title:
        return lyric
    return f"{title if is_english(title) else f'《{title}》'}\n\n{lyric}"
