"""Character vocabulary: append-only, with an ``<unk>`` symbol.

Indices never move once assigned, because every checkpoint's embedding and output rows are keyed by
them: nanoGPT's ``sorted(set(text))`` silently renumbers everything when one new character appears.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNK = "<unk>"
UNK_ID = 0


@dataclass(frozen=True)
class Vocab:
    """An ordered tuple of symbols; index 0 is always ``<unk>``."""

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.symbols or self.symbols[0] != UNK:
            raise ValueError("a vocabulary must start with the <unk> symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("a vocabulary may not list a symbol twice")
        for symbol in self.symbols[1:]:
            if len(symbol) != 1:
                raise ValueError(f"vocabulary symbols must be single characters, got {symbol!r}")
        # A frozen dataclass can still cache a lookup table; it is derived, never compared.
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.symbols)})

    @classmethod
    def build(cls, text: str, min_count: int = 1) -> Vocab:
        """Vocabulary of the characters seen at least ``min_count`` times, most frequent first.

        Characters rarer than ``min_count`` stay out, so training maps them to ``<unk>`` and the model
        learns what probability an unseen character deserves. Ties keep first-appearance order so the
        same text always gives the same indices.
        """
        return cls((UNK,)).extend(text, min_count=min_count)

    def extend(self, text: str, min_count: int = 1) -> Vocab:
        """A new vocabulary with the frequent-enough characters of ``text`` appended; old indices stay."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(text)
        first_seen = {ch: i for i, ch in reversed(list(enumerate(text)))}
        new = [ch for ch, n in counts.items() if n >= min_count and ch not in self._lookup]
        new.sort(key=lambda ch: (-counts[ch], first_seen[ch]))
        return Vocab(self.symbols + tuple(new))

    @property
    def _lookup(self) -> dict[str, int]:
        return self.__dict__["_index"]  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, char: object) -> bool:
        return char in self._lookup and char != UNK

    def encode(self, text: str) -> list[int]:
        """Ids for ``text``; characters outside the vocabulary become ``UNK_ID``."""
        lookup = self._lookup
        return [lookup.get(ch, UNK_ID) for ch in text]

    def decode(self, ids: Iterable[int], unk: str = "\N{REPLACEMENT CHARACTER}") -> str:
        """Text for ``ids``; ``<unk>`` is shown as ``unk`` (sampling never emits it)."""
        symbols = self.symbols
        return "".join(unk if i == UNK_ID else symbols[i] for i in ids)

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of ``text`` this vocabulary lacks, in order of appearance."""
        seen: dict[str, None] = {}
        for ch in text:
            if ch not in self._lookup:
                seen.setdefault(ch)
        return list(seen)

    def to_json(self) -> list[str]:
        return list(self.symbols)

    @classmethod
    def from_json(cls, data: Sequence[str]) -> Vocab:
        if not isinstance(data, list | tuple) or not all(isinstance(s, str) for s in data):
            raise ValueError("a vocabulary must be a list of strings")
        return cls(tuple(data))
