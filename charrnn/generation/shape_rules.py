"""What may come next under a lyric's shape: the rules of ``charrnn.generation.shape`` as a logits processor.

``line_shape`` is the processor in ``charrnn.generation.processors.SHAPING``. For each row with a ``Shape`` it
forces what the plan has due (punctuation, a line break, a returning chorus), keeps a fixed clause to
Chinese characters and its rhyme position to its class (and its tone, where the form keeps one), and holds a
free line to its bounds and its rhyme (see ``charrnn.generation.shape`` for what that guarantees). Nothing here
looks at another row. The English rule is its own function (``english_rhyme_mask``) so that a vocabulary of real
words can narrow it.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING

import torch

from charrnn.generation.shape import OVERRUN, Shape, visible
from charrnn.text.forms import CLAUSE_ENDS, Clause
from charrnn.text.rhyme import THIRTEEN_CLASSES, TONES, ending_words, han_key, han_tone, last_unit, line_key, usable
from charrnn.text.words import LATIN, is_han, trailing_word
from charrnn.vocab import Vocab

if TYPE_CHECKING:
    pass

CLASSES = tuple(THIRTEEN_CLASSES)
SENTENCE_ENDS = "。！？；"
LATIN_MARGIN = 12  # an English line turns to its rhyming word this many characters before its ceiling
MAX_ENGLISH_MASKS = 65536  # cached English rhyme masks, before the cache starts over
RHYME_BOOST = 8.0  # how much likelier a rhyming character is, once a free line may end (measured: 4 and 8)


class ShapeTables:
    """What the shape rules need to know about a vocabulary, computed once per vocabulary."""

    def __init__(
        self, vocab: Vocab, device: torch.device, class_masks: torch.Tensor, corpus: frozenset[str] | None = None,
        ci: bool = False,
    ) -> None:
        self.size = len(vocab)
        # A model that writes ci (Checkpoint.register): its free lines keep the ci's rule, no rhyme character twice
        # (重韵); modern lyrics repeat theirs as a figure (Jay Chou's lines end on an earlier line's final 9.5% of
        # the time), so other models' free lines are left as they write.
        self.ci = ci
        # The model's English words (charrnn.text.words): an English line ends only on one of them; None: any word.
        self.corpus = corpus
        self.ids = {symbol: i for i, symbol in enumerate(vocab.symbols)}
        self.han = torch.tensor([is_han(s) for s in vocab.symbols], dtype=torch.bool, device=device)
        self.class_masks = class_masks  # (13, V)
        self.keyed = class_masks.any(dim=0)  # Chinese characters with a rhyme class
        self.has_class = class_masks.any(dim=1).tolist()  # the vocabulary has characters of that class
        self.has_keyed = any(self.has_class)
        # Each Chinese character's rhyme class, and each class's size: read in Python, so that a step asks the
        # device nothing (a read of one mask element waits for the GPU).
        self.class_of = {s: key for s in vocab.symbols if (key := han_key(s)) is not None}
        self.class_sizes = Counter(self.class_of.values())
        self.class_boosts = class_masks.float() * math.log(RHYME_BOOST)  # (13, V), added as they are
        tones = [han_tone(s) for s in vocab.symbols]
        # Each rhyme class's characters (None: any class's) in each tone, where the vocabulary has some: found
        # once, so that a rhyme position looks its mask up without a device sync.
        self.toned: dict[tuple[str | None, str], torch.Tensor] = {}
        for tone in TONES:
            in_tone = torch.tensor([tone == t for t in tones], dtype=torch.bool, device=device)
            for name, mask in [*zip(CLASSES, class_masks, strict=True), (None, self.keyed)]:
                if bool((mask & in_tone).any()):
                    self.toned[name, tone] = mask & in_tone
        self.line_break = self.ids.get("\n")
        self.space = self.ids.get(" ")
        self.stops = self._ids(SENTENCE_ENDS, device)
        # Where a Chinese line may end a phrase (``ends_clause``): any closing or separating punctuation of the
        # vocabulary (，。 and …, the ASCII , . ! ?), a space (modern lyrics); with the line break, or without it:
        # what may not open a Chinese line or follow a clause's end. Opening marks (《 “) may.
        self.clause_ends = torch.tensor([i for i, s in enumerate(vocab.symbols) if s != "\n" and ends_clause(s)],
                                        dtype=torch.long, device=device)
        self.clause_ends_and_break = torch.cat([self.clause_ends, self._ids("\n", device)])
        self.full_stop = self.ids.get("。")
        self.letters = {s: i for i, s in enumerate(vocab.symbols) if len(s) == 1 and s.isascii() and s.isalpha()}
        self.device = device
        # The characters an English rhyme allows by (rhyme key, word so far, after a word's end): found once each,
        # letter by letter in Python, kept as index lists (a whole mask each would be V bytes: 350 MB for the
        # base's 62k stems), turned into a mask by one indexing. Bounded by the rhyme words' stems.
        self.english_allowed: dict[tuple[str, str, bool, frozenset[str]], torch.Tensor | None] = {}
        self.fresh_words: dict[tuple[str, frozenset[str]], frozenset[str]] = {}  # a rhyme's words less the used

    def _ids(self, symbols: str, device: torch.device) -> torch.Tensor:
        return torch.tensor([self.ids[s] for s in symbols if s in self.ids], dtype=torch.long, device=device)


def constrain(shape: Shape, logits: torch.Tensor, tables: ShapeTables) -> None:
    """Mask or force this row's next character, in place on its ``(V,)`` logits."""
    if shape.done:
        _force(logits, tables.line_break)
        return
    if shape.pending:
        _force(logits, tables.ids.get(shape.pending[0]))
        return
    clause = shape.current_clause()
    if clause is not None and clause.fixed:
        if shape.rhyme and clause.rhyme is not None and shape.count == clause.low - 1:
            key = shape.keys.get(clause.rhyme)
            rhyming = _han_rhyme_mask(key, tables)
            toned = _toned(rhyming, key, shape.tones.get(clause.rhyme), tables)
            # The rhyme in its tone, then in any tone, each first without the song's rhymes so far (重韵).
            for allowed in (toned, rhyming) if rhyming is not None and toned is not None else ():
                if _restrict(logits, _fresh(allowed, shape, tables)) or _restrict(logits, allowed):
                    return
        _restrict(logits, tables.han)  # no rhyme here, or its class is missing or banned: any Chinese character
        return
    _constrain_free(shape, logits, tables, clause)

def _constrain_free(shape: Shape, logits: torch.Tensor, tables: ShapeTables, clause: Clause | None) -> None:
    text = shape.text
    brk = tables.line_break
    if not text.strip():
        if shape.owns_end and brk is not None:
            logits[brk] = -math.inf  # no blank line: sections get theirs from the plan
        if not shape.latin:
            logits[tables.clause_ends] = -math.inf  # a Chinese line starts with a word, not "，"
        return
    count, latin = visible(text), bool(LATIN.search(text))
    low, high = shape.bounds
    stop = None if latin else tables.full_stop  # a Chinese line ends its sentence before the break
    closing = brk if stop is None or ends_clause(text[-1]) else stop
    if shape.target:
        high = min(high, shape.ceiling() - shape.finished - (stop is not None))
    group = clause.rhyme if clause is not None else 0
    rhymed = shape.rhyme and group is not None
    key = shape.keys.get(group) if group is not None else None
    used = shape.rhyme_words if latin else frozenset()
    on_rhyme = not rhymed or _rhymes(text, key)
    again = rhymed and on_rhyme and (_used_again(text, key, used, tables) if latin
                                     else _han_used_again(text, key, shape, tables))
    # "，空" ends no clause, nor the line: one character is 0.01% of the Song ci's clauses, read as a fragment.
    last = _last_clause(text)
    lone = not latin and last < 2
    ends = on_rhyme and not again and not lone
    # At its ceiling a Chinese line ends on its rhyme even where it repeats one (the fresh were not possible).
    if count >= high + OVERRUN or (count >= high and (ends or (on_rhyme and not latin))):
        _force(logits, closing)
        return
    if rhymed and count >= high - (LATIN_MARGIN if latin else 1):
        mask = english_rhyme_mask(text, key, tables, used) if latin else _han_rhyme_mask(key, tables)
        # A ci model's Chinese line: its rhyme first without the characters the song's lines already ended on (重韵).
        tries = [] if mask is None else [_fresh(mask, shape, tables), mask] if tables.ci and not latin else [mask]
        for allowed in tries:
            if ends and closing is not None:
                allowed = allowed.clone()
                allowed[closing] = True
            if _restrict(logits, allowed):
                return
    if rhymed and not latin and count >= low and brk is not None:
        if ends:
            # The line is on its rhyme: where the model would end a clause, the line ends instead (with
            # the sentence's full stop first, where the vocabulary has one and the line has none yet).
            merged = torch.logsumexp(logits[tables.clause_ends_and_break], dim=0)
            logits[tables.clause_ends_and_break] = -math.inf
            logits[closing] = merged
            return
        # Help the line reach the rhyme before its ceiling must force one mid-phrase: rhyming characters
        # are likelier, and a sentence may not end (。！？) off the rhyme.
        if key in CLASSES:
            logits.add_(tables.class_boosts[CLASSES.index(key)])
            _unboost_used(logits, key, shape, tables)
        logits[tables.stops] = -math.inf
    if (count < low or not ends) and brk is not None:
        logits[brk] = -math.inf
    if not latin and (lone or ends_clause(text[-1]) or count >= high - 2):
        logits[tables.clause_ends] = -math.inf  # nor an empty clause, nor one too near the ceiling for two after it


def _used_again(line: str, key: str | None, used: frozenset[str], tables: ShapeTables) -> bool:
    """An English line would end on a word an earlier line of the song ended on ("thou ... thou ... thou", what
    blind readers named first), while its rhyme has words not used yet."""
    if not used or key is None or not key.startswith("en:") or last_unit(line).lower() not in used:
        return False
    return bool(_rhyme_words(key, tables) - used)


def _last_clause(line: str) -> int:
    """Characters of a Chinese line's last clause, its closing punctuation aside (between that and the one before)."""
    end = len(line)
    while end and ends_clause(line[end - 1]):
        end -= 1
    start = end
    while start and not ends_clause(line[start - 1]):
        start -= 1
    return end - start


@functools.cache
def ends_clause(symbol: str) -> bool:
    """A clause's closing mark: the form's punctuation, any other closing or separating punctuation (… , . ! ?),
    whitespace. Not an opening mark (《 “), which starts one."""
    if symbol in CLAUSE_ENDS or symbol.isspace():
        return True
    category = unicodedata.category(symbol) if len(symbol) == 1 else ""
    return category.startswith("P") and category not in ("Ps", "Pi")


def _han_used_again(line: str, key: str | None, shape: Shape, tables: ShapeTables) -> bool:
    """A ci model's Chinese line would end on a character an earlier line of the song ended on, while its rhyme
    has others in the vocabulary (重韵; ``_fresh``)."""
    if not tables.ci or not shape.rhymed or last_unit(line) not in shape.rhymed:
        return False
    return _has_fresh(key, shape, tables)


def _has_fresh(key: str | None, shape: Shape, tables: ShapeTables) -> bool:
    """The rhyme (any class, before the song has one) has characters the song's rhymes have not ended on."""
    if key is None:
        return len(tables.class_of) > len(shape.rhymed)
    return tables.class_sizes[key] > sum(tables.class_of.get(c) == key for c in shape.rhymed)


def _rhyme_words(key: str, tables: ShapeTables) -> frozenset[str]:
    """The words an English line may end on for ``key``: the model's corpus words on it, when it has a list."""
    return ending_words(key) if tables.corpus is None else corpus_endings(key, tables.corpus)


def _rhymes(line: str, key: str | None) -> bool:
    """The line ends on ``key`` (or, before the song has one, on any rhyme it can keep)."""
    own = line_key(line)
    return usable(own) if key is None else own == key


def _han_rhyme_mask(key: str | None, tables: ShapeTables) -> torch.Tensor | None:
    """The Chinese characters on ``key`` (any with a class before the song has one); None when there are none."""
    if key is None:
        return tables.keyed if tables.has_keyed else None
    if key in CLASSES and tables.has_class[CLASSES.index(key)]:
        return tables.class_masks[CLASSES.index(key)]
    return None


def _toned(mask: torch.Tensor | None, key: str | None, tone: str | None, tables: ShapeTables) -> torch.Tensor | None:
    """``mask`` (``_han_rhyme_mask(key)``)'s characters of ``tone`` (a tune's level or oblique rhyme), where the
    vocabulary has any; else ``mask`` as it is."""
    if mask is None or tone is None:
        return mask
    return tables.toned.get((key, tone), mask)


def english_rhyme_mask(
    line: str, key: str | None, tables: ShapeTables, used: frozenset[str] = frozenset()
) -> torch.Tensor | None:
    """(V,) the next characters that take an English line to its end on a word of rhyme ``key``.

    At a word boundary: the first letters of such words (after punctuation, a space first); inside a word
    that begins one of them: its continuations, and the line break once the word is whole; inside a word
    that begins none: a space, to start one that does. None when no word ends on ``key``. Words the song's
    lines already ended on (``used``) are left out while the rhyme has others.
    Kept apart from the Chinese rule so that a vocabulary of corpus words can narrow ``ending_words``.
    """
    if key is None or not key.startswith("en:"):
        return None
    words = _rhyme_words(key, tables)
    if not words:
        return None
    excluded = used & words if used else frozenset()
    if len(excluded) == len(words):  # every word of the rhyme used (or none): repeats come back
        excluded = frozenset()
    if excluded:
        if len(tables.english_allowed) > MAX_ENGLISH_MASKS:  # masks of used words come and go with the songs
            tables.english_allowed.clear()
            tables.fresh_words.clear()
        if (key, excluded) not in tables.fresh_words:  # one set per (rhyme, words used), so word_prefixes caches it
            tables.fresh_words[key, excluded] = words - excluded
        words = tables.fresh_words[key, excluded]
    word = current_word(line)
    if word and word not in word_prefixes(words):
        word = "-"  # a word that leads to no rhyme: whichever it is, the mask is the same (a space)
    after_word = not word and bool(line) and not line[-1].isspace()
    cache_key = (key, word, after_word, excluded)
    if cache_key not in tables.english_allowed:
        tables.english_allowed[cache_key] = _english_rhyme_allowed(word, after_word, words, tables)
    allowed = tables.english_allowed[cache_key]
    if allowed is None:
        return None
    mask = torch.zeros(tables.size, dtype=torch.bool, device=tables.device)
    mask[allowed] = True
    return mask


def _english_rhyme_allowed(
    word: str, after_word: bool, words: frozenset[str], tables: ShapeTables
) -> torch.Tensor | None:
    allowed: list[int | None]
    if after_word or word == "-":
        allowed = [tables.space]  # end the word (or the punctuation) first; the next one must rhyme
    elif not word:
        starts = {w[0] for w in words}
        allowed = [index for letter, index in tables.letters.items() if letter.lower() in starts]
    else:
        stems = word_prefixes(words)
        allowed = [index for letter, index in tables.letters.items() if letter.islower() and word + letter in stems]
        if word in words:
            allowed.append(tables.line_break)
    indices = [i for i in allowed if i is not None]
    return torch.tensor(indices, dtype=torch.long, device=tables.device) if indices else None


@functools.lru_cache(maxsize=256)
def corpus_endings(key: str, corpus: frozenset[str]) -> frozenset[str]:
    """The words ending on ``key`` that the model's corpus has (the only words its English may spell)."""
    return ending_words(key) & corpus


@functools.lru_cache(maxsize=64)
def word_prefixes(words: frozenset[str]) -> frozenset[str]:
    return frozenset(word[:end] for word in words for end in range(1, len(word) + 1))


def current_word(line: str) -> str:
    """The letters of the word being written at the end of ``line`` ('' at a word boundary), lower case."""
    return trailing_word(line).lower()


def next_rhyme_mask(shape: Shape, tables: ShapeTables) -> torch.Tensor | None:
    """When the character after the next one is a fixed clause's rhyme: the characters that rhyme will allow
    (``constrain``'s own choice); None otherwise. What ``charrnn.generation.lookahead`` steers the next
    character towards."""
    if shape.done or shape.pending or not shape.rhyme:
        return None
    clause = shape.current_clause()
    if clause is None or not clause.fixed or clause.rhyme is None or shape.count != clause.low - 2:
        return None
    key, tone = shape.keys.get(clause.rhyme), shape.tones.get(clause.rhyme)
    # The first rhyme: any class will do, in the group's tone if it keeps one.
    allowed = _toned(_han_rhyme_mask(key, tables), key, tone, tables) if key is not None or tone is not None else None
    if allowed is None:
        return None
    fresh = _fresh(allowed, shape, tables)
    return fresh if bool(fresh.any()) else allowed


def _fresh(mask: torch.Tensor, shape: Shape, tables: ShapeTables) -> torch.Tensor:
    """``mask`` without the characters the song's rhymes already ended on: a ci does not rhyme on one twice (重韵)
    while its rhyme has others. The caller falls back to ``mask`` when none of the others is possible. A ci model's
    free lines keep it too (``ShapeTables.ci``): the base's free lines ended on a character an earlier line had
    ended on in 36% of lines (处 six times in one lyric), the Song ci's held-out tail in 1.3%, Jay Chou's lyrics in
    9.5% (twelve-line windows, a repeated line not counted); English lines keep the same rule by word
    (``_used_again``)."""
    used = [tables.ids[c] for c in shape.rhymed if c in tables.ids]
    if not used:
        return mask
    fresh = mask.clone()
    fresh[used] = False
    return fresh


def _unboost_used(logits: torch.Tensor, key: str, shape: Shape, tables: ShapeTables) -> None:
    """Take the rhyme's boost back from the characters the song's lines already ended on, while the rhyme has
    others: the line may not end on one of them then (重韵), so leading it there would only make it run on."""
    if not tables.ci or not shape.rhymed:
        return
    used = [tables.ids[c] for c in shape.rhymed if tables.class_of.get(c) == key]
    if used and _has_fresh(key, shape, tables):
        logits[used] -= math.log(RHYME_BOOST)


def _force(logits: torch.Tensor, index: int | None) -> None:
    """Only ``index`` may come next (whatever earlier rules banned: the plan wins). No index: no change."""
    if index is not None:
        logits.fill_(-math.inf)
        logits[index] = 0.0


def _restrict(logits: torch.Tensor, allowed: torch.Tensor) -> bool:
    """Keep only ``allowed`` characters, if any of them is still possible; False (and no change) otherwise."""
    if not bool((allowed & torch.isfinite(logits)).any()):
        return False
    logits.masked_fill_(~allowed, -math.inf)
    return True
