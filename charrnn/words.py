"""English that is words: the corpus's own words, as a trie the sampler writes through.

A checkpoint carries the English words of the corpora it learnt (``corpus_words``: maximal runs of ASCII
letters and apostrophes, lower-cased, so "o'er", "'tis" and "ne'er" stay as the corpus spells them). While
a request writes an English word, ``real_words`` allows only the letters that keep it the start of one of
those words, and lets it end (a space, punctuation, a line break, a digit, a Chinese character: anything
but a letter or an apostrophe) only where it is a whole one. Every word written is a corpus word by
construction, whatever the temperature. Case is free ("THE", "The" and "the" are one word), so the corpus's
capitalisations (speaker names in capitals, "I", sentence starts) all stay possible.

A word the person left unfinished at the end of the prefix is completed to a corpus word when one starts
with it; one that no corpus word starts with is left alone until it ends. Chinese, digits and other scripts
are never constrained. A checkpoint without words (older ones) generates exactly as before.

The length limit never cuts a word or a line either: ``whole_lines_end`` is where such a sample ends.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from charrnn.vocab import Vocab

if TYPE_CHECKING:
    from charrnn.processors import Batch, Row

WORD_CHARS = frozenset(string.ascii_letters + "'")
ALPHABET = string.ascii_lowercase + "'"  # the trie's edges: a letter in either case, or the apostrophe
_EDGE = {ch: i for i, ch in enumerate(ALPHABET)}
_WORD = re.compile(r"[A-Za-z']*[A-Za-z][A-Za-z']*")  # a run of letters and apostrophes with a letter in it
_STORED = re.compile(r"[a-z']*[a-z][a-z']*")
ROOT = 0  # between words


def corpus_words(text: str) -> frozenset[str]:
    """The English words of a text, lower-cased: what a model trained on it may write."""
    return frozenset(word.lower() for word in _WORD.findall(text))


def merged(*word_sets: frozenset[str] | None) -> frozenset[str] | None:
    """The words of a model that learnt from several sources; None (unknown: no constraint) if any is unknown.

    A model fine-tuned from a checkpoint without words knows English nobody listed: constraining it to the
    new corpus's words alone would forbid what it learnt first.
    """
    known = [words for words in word_sets if words is not None]
    return frozenset().union(*known) if len(known) == len(word_sets) else None


def words_to_json(words: Collection[str]) -> list[str]:
    return sorted(words)


def words_from_json(data: Any) -> frozenset[str]:
    """The stored word list, checked: lower-case letters and apostrophes with a letter in each word."""
    if not isinstance(data, list) or not all(isinstance(w, str) and _STORED.fullmatch(w) for w in data):
        raise ValueError("words must be a list of lower-case English words")
    return frozenset(data)


@dataclass
class WordCursor:
    """Where a row is in the word trie, and how much of its context it has followed."""

    node: int  # ROOT between words, a trie node inside one, WordTables.free in a word of no corpus
    read: int  # context ids followed so far


class WordTables:
    """A word list's trie as tensors over one vocabulary, built once per (words, vocabulary).

    Words the vocabulary cannot spell (a letter it lacks) are left out: the trie must never lead into a
    word the model cannot finish. Per node: which of the 27 edges exist, and whether a word may end there.
    """

    def __init__(self, words: frozenset[str], vocab: Vocab, device: torch.device) -> None:
        edge_of = np.full(len(vocab), -1, dtype=np.int64)  # vocabulary id -> trie edge, -1: not a word char
        for index, symbol in enumerate(vocab.symbols):
            if symbol in WORD_CHARS:
                edge_of[index] = _EDGE[symbol.lower()]
        spellable = {ALPHABET[e] for e in edge_of if e >= 0}
        self.words = frozenset(w for w in words if set(w) <= spellable)
        children: list[dict[int, int]] = [{}]  # per node: edge -> node
        ends = [True]  # the root: between words, anything that is not a letter may come
        for word in sorted(self.words):
            node = ROOT
            for ch in word:
                following = children[node].get(_EDGE[ch])
                if following is None:
                    following = children[node][_EDGE[ch]] = len(children)
                    children.append({})
                    ends.append(False)
                node = following
            ends[node] = True
        # One more node, after all of the trie's: a word the person typed that no corpus word starts with.
        self.free = len(children)
        children.append({})
        ends.append(True)
        self.child = np.full((len(children), len(ALPHABET)), -1, dtype=np.int64)  # (N, 27), -1: no such edge
        parents = [node for node, edges in enumerate(children) for _ in edges]
        self.child[parents, [edge for edges in children for edge in edges]] = [
            node for edges in children for node in edges.values()
        ]
        allowed = torch.from_numpy(self.child >= 0)
        allowed[self.free] = True
        self.edge_of = edge_of
        self.letter_ids = torch.from_numpy(np.flatnonzero(edge_of >= 0)).to(device)  # (W,)
        self.letter_edges = torch.from_numpy(edge_of[edge_of >= 0]).to(device)  # (W,)
        self.allowed = allowed.to(device)  # (N, 27)
        self.may_end = torch.tensor(ends, device=device)  # (N,)
        self.size = len(vocab)
        # Where every symbol is a letter no word can ever end: such a vocabulary is left unconstrained.
        self.can_end = any(symbol not in WORD_CHARS for symbol in vocab.symbols[1:])
        self._among: dict[frozenset[str], frozenset[str]] = {}

    def find(self, word: str) -> int | None:
        """The node of ``word`` (any case) if some corpus word starts with it."""
        node = ROOT
        for ch in word.lower():
            node = int(self.child[node, _EDGE[ch]])
            if node < 0:
                return None
        return node

    def start(self, prefix: str) -> int:
        """The node after the person's text: an unfinished last word continues, or is left free."""
        node = self.find(trailing_word(prefix))
        return self.free if node is None else node

    def follow(self, node: int, token: int) -> int:
        """The node after one more character."""
        edge = int(self.edge_of[token])
        if edge < 0:
            return ROOT
        if node == self.free:
            return node
        following = int(self.child[node, edge])
        return self.free if following < 0 else following  # only off the trie where a row was forced

    def masks(self, nodes: torch.Tensor) -> torch.Tensor:
        """(B, V) what may come next: at a node, its letters, and everything else where a word may end."""
        mask = self.may_end[nodes][:, None].repeat(1, self.size)
        mask[:, self.letter_ids] = self.allowed[nodes][:, self.letter_edges]
        return mask

    def among(self, words: frozenset[str]) -> frozenset[str]:
        """Those of ``words`` this trie holds (the rhyme rule's candidates), remembered per set."""
        if words not in self._among:
            self._among[words] = words & self.words
        return self._among[words]


@functools.lru_cache(maxsize=8)
def word_tables(words: frozenset[str], vocab: Vocab, device: torch.device) -> WordTables:
    """Built once per model and vocabulary: ``generate`` makes new ``VocabTables`` for every request."""
    return WordTables(words, vocab, device)


def real_words(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Only corpus words: inside an English word, letters that keep it the start of one; an end only at a
    whole one. Rows that are teacher-forced, or of a model without words, are left as they are.

    Only what can change is touched: the letter columns, and the whole row of one inside a word that may not
    end yet (a full (B, V) mask and ``torch.where`` cost more than the rest of the rule together).
    """
    tables = batch.tables.words
    if tables is None or not tables.can_end:
        return logits
    nodes = torch.tensor([_node(row, tables) for row in batch.rows], device=logits.device)
    letters = logits.index_select(1, tables.letter_ids)  # (B, W)
    inner = (~tables.may_end[nodes]).nonzero().squeeze(1)  # rows in a word not whole yet: only its letters
    if len(inner):
        logits.index_fill_(0, inner, -math.inf)
    allowed = tables.allowed[nodes][:, tables.letter_edges]  # (B, W)
    logits.index_copy_(1, tables.letter_ids, torch.where(allowed, letters, -math.inf))
    stuck = logits.amax(dim=1) == -math.inf  # (B,); isfinite().any() costs 20 times as much on a CPU
    if bool(stuck.any()):
        # The rules before this one (the n-gram ban) ruled out every letter that goes on with the word: the
        # word still comes first, among its own letters as likely as each other.
        usable = tables.masks(nodes[stuck])
        usable[:, batch.tables.never] = False
        logits[stuck] = torch.where(usable, 0.0, -math.inf)
    return logits


def _node(row: Row, tables: WordTables) -> int:
    """The row's node now, following the characters it read since the last step."""
    if row.forced:
        return tables.free
    cursor = row.word
    if cursor is None:
        cursor = row.word = WordCursor(tables.start(row.prefix), len(row.context) - len(row.generated))
    for token in row.context[cursor.read :]:
        cursor.node = tables.follow(cursor.node, token)
    cursor.read = len(row.context)
    return cursor.node


def whole_lines_end(text: str) -> int:
    """Where a sample the length limit stopped should end: at its last line break (left out, as a stop at a
    line's end leaves it out) when a whole line comes before it, else after its last whole word; a word still
    being written is dropped."""
    line_end = text.rfind("\n")
    if line_end >= 0 and text[:line_end].strip():
        return line_end
    # No whole line written (at most the break that ended the prefix's line): its whole words, not nothing.
    word = trailing_word(text)
    return len(text[: len(text) - len(word)].rstrip()) if word else len(text)


def trailing_word(text: str) -> str:
    """The English word at the end of ``text`` as written (its letters and apostrophes); '' after anything else."""
    end = len(text)
    while end and text[end - 1] in WORD_CHARS:
        end -= 1
    return text[end:]
