"""English that is words: the corpus's own words as a trie over a vocabulary, which the sampler writes through.

While a request writes an English word, the ``real_words`` rule (``charrnn.generation.processors``) allows only
the letters that keep it the start of one of the model's words, and lets it end (a space, punctuation, a line
break, a digit, a Chinese character: anything but a letter or an apostrophe) only where it is a whole one. Every
word written is a corpus word by construction, whatever the temperature. Case is free ("The" and "the" are one
word), so the corpus's capitalisations ("I", names, sentence starts) stay possible; a word in capitals only where
the person began one (the corpus's are speakers' names, "WARWICK:", a play's, not a song's).

A word the person left unfinished at the end of the prefix is completed to a corpus word when one starts
with it; one that no corpus word starts with is left alone until it ends; one that is a whole word already
stays as it was typed (people type whole words: "My heart" is not a start of "hearts", nor of "heart's"),
unless the rules before leave it nowhere to go but on. A word of English the corpus lacks is whole
too ("hi" went on as "hire", "hello" as "Hellood"): the CMU dictionary's words count as typed whole.
Chinese, digits and other scripts are never constrained. A checkpoint without words (older ones) generates
exactly as before.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass

import numpy as np
import pronouncing
import torch

from charrnn.text.words import WORD_CHARS, trailing_word
from charrnn.vocab import Vocab

ALPHABET = string.ascii_lowercase + "'"  # the trie's edges: a letter in either case, or the apostrophe
_EDGE = {ch: i for i, ch in enumerate(ALPHABET)}
ROOT = 0  # between words
_VOWEL = re.compile(r"[aeiouy]", re.IGNORECASE)


@dataclass
class WordCursor:
    """Where a row is in the word trie, and how much of its context it has followed."""

    node: int  # ROOT between words, a trie node inside one, WordTables.free in a word of no corpus
    read: int  # context ids followed so far
    typed_whole: bool = False  # at the person's last word, a whole one: it ends here unless nothing else may come


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
        # A word keeps its case once it has a small letter ("The", not "havE"), and its own words are never all
        # capitals (processors._keeping_case).
        self.lower_ids = frozenset(i for i, symbol in enumerate(vocab.symbols) if symbol in string.ascii_lowercase)
        self.upper_set = frozenset(i for i, symbol in enumerate(vocab.symbols) if symbol in string.ascii_uppercase)
        self.upper_ids = torch.tensor(sorted(self.upper_set), dtype=torch.long, device=device)
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

    def start(self, prefix: str) -> WordCursor:
        """Where a row is after the person's text (``read`` still to be set): an unfinished last word continues to
        a corpus word ("the nig" -> "the night"), one no corpus word starts with is left free, and a whole one is
        ``typed_whole``: it stays as typed ("My heart" does not become "My hearts")."""
        word = trailing_word(prefix)
        if not word.strip("'"):  # an opening quote ("He said '") starts any word, not only 'tis and 'twas
            return WordCursor(ROOT, 0)
        node = self.find(word)
        # A corpus word, or a word of English the corpus lacks ("hi", "hello"): whole as typed; where the rules
        # before leave it only letters, it goes on along the trie as any word would (off it, "hello", freely).
        whole = (node is not None and bool(self.may_end[node])) or is_english_word(word)
        return WordCursor(self.free if node is None else node, 0, typed_whole=whole)

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


@functools.lru_cache(maxsize=4096)
def is_english_word(word: str) -> bool:
    """A word of the CMU pronouncing dictionary (134k words of American English, names among them) with a vowel
    (not its abbreviations: "th", "st") and no apostrophe last: what a person typed whole even where the model's
    corpus lacks it."""
    if word.endswith("'") or not _VOWEL.search(word):  # O' (for o'er), don' are being typed
        return False
    return bool(pronouncing.phones_for_word(word.lower()))


@functools.lru_cache(maxsize=8)
def word_tables(words: frozenset[str], vocab: Vocab, device: torch.device) -> WordTables:
    """Built once per model and vocabulary: ``generate`` makes new ``VocabTables`` for every request."""
    return WordTables(words, vocab, device)
