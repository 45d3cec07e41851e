"""Count-based character n-gram baselines for judging the RNN.

A neural model's loss only means something next to what plain counting
achieves on the same split: if a character RNN cannot beat a smoothed
trigram, it has learned nothing beyond local spelling statistics.  These
baselines therefore work on the very same integer token ids the RNN sees
(unknown characters already folded into an ``<unk>`` id) and report loss in
the same unit, mean nats per token, so numbers compare directly.

Only the standard library is used so the baselines run anywhere the data
does, without a GPU or torch install.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "KneserNey",
    "bits_per_char",
    "kneser_ney_nll",
    "perplexity",
    "unigram_nll",
]

# Per context: (total count, number of distinct followers, follower counts).
_Table = dict[tuple[int, ...], tuple[int, int, dict[int, int]]]


def _check_vocab_size(vocab_size: int) -> None:
    # bool is an int subclass; accepting True as "one token" hides bugs.
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")


def _as_ids(seq: Sequence[int], vocab_size: int, name: str) -> tuple[int, ...]:
    """Normalise to a tuple of plain ints, rejecting ids outside the vocabulary.

    An out-of-range id means the caller skipped the vocabulary mapping, and
    silently scoring it would give a probability that does not exist in the
    model; failing loudly is the only honest answer.  ``operator.index``
    accepts numpy integers but rejects floats that ``int`` would truncate.
    """
    ids = tuple(operator.index(t) for t in seq)
    if ids:
        lo, hi = min(ids), max(ids)
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name} contains token id {bad} outside [0, {vocab_size}); "
                "map unknown characters to the <unk> id first"
            )
    return ids


def _check_held_out(held_out: tuple[int, ...]) -> None:
    # A mean over zero tokens is undefined; returning 0.0 would look perfect.
    if not held_out:
        raise ValueError("held_out must contain at least one token")


def unigram_nll(train: Sequence[int], held_out: Sequence[int], vocab_size: int) -> float:
    """Mean NLL (nats/token) of ``held_out`` under an add-one unigram fit on ``train``.

    This is the floor any sequence model must clear: it knows character
    frequencies but nothing about order.  Add-one smoothing keeps every id
    in the vocabulary scorable even if ``train`` never produced it.
    """
    _check_vocab_size(vocab_size)
    train_ids = _as_ids(train, vocab_size, "train")
    held = _as_ids(held_out, vocab_size, "held_out")
    _check_held_out(held)
    counts = Counter(train_ids)
    denom = len(train_ids) + vocab_size
    log_denom = math.log(denom)
    total = sum(log_denom - math.log(counts[t] + 1) for t in held)
    return total / len(held)


class KneserNey:
    """Interpolated Kneser-Ney language model (Chen & Goodman, 1998).

    Highest order uses raw counts; lower orders use continuation counts
    (how many distinct left neighbours an n-gram has), which is what keeps
    a token that is frequent only inside one fixed phrase from dominating
    the backoff distribution.  The unigram level interpolates with the
    uniform distribution over ``vocab_size`` so no id ever gets zero
    probability, and an unseen context backs off fully to the next lower
    order so each conditional distribution still sums to one.
    """

    def __init__(
        self,
        train: Sequence[int],
        vocab_size: int,
        order: int = 2,
        discount: float = 0.75,
    ) -> None:
        _check_vocab_size(vocab_size)
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        # D in (0, 1] keeps max(c - D, 0) = c - D for every seen count, which
        # is what makes the freed mass exactly D * N1+(h .) / c(h).
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        self.vocab_size = vocab_size
        self.order = order
        self.discount = float(discount)
        ids = _as_ids(train, vocab_size, "train")
        # _tables[k - 1] holds the level-k statistics, keyed by (k-1)-token contexts.
        self._tables: list[_Table] = [{} for _ in range(order)]

        top: Counter[tuple[int, ...]] = Counter(zip(*(ids[i:] for i in range(order)), strict=False))
        self._tables[order - 1] = self._index(top)
        # Distinct k-gram types, derived from the (k+1)-gram types by dropping
        # the first token.  Only the corpus-initial k-gram has no (k+1)-gram
        # extension, so it is added back to keep the type set exact.
        types = set(top)
        for k in range(order - 1, 0, -1):
            cont: Counter[tuple[int, ...]] = Counter(g[1:] for g in types)
            self._tables[k - 1] = self._index(cont)
            types = set(cont)
            if len(ids) >= k:
                types.add(ids[:k])

    @staticmethod
    def _index(grams: Counter[tuple[int, ...]]) -> _Table:
        """Group n-gram counts by context so ``prob`` needs one lookup per level."""
        followers: dict[tuple[int, ...], dict[int, int]] = {}
        for gram, count in grams.items():
            followers.setdefault(gram[:-1], {})[gram[-1]] = count
        return {ctx: (sum(nexts.values()), len(nexts), nexts) for ctx, nexts in followers.items()}

    def prob(self, token: int, context: Sequence[int] = ()) -> float:
        """P(token | context), using at most the last ``order - 1`` context ids.

        A shorter context is allowed so the start of a sequence can still be
        scored, with whatever history it actually has.
        """
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token id {token} outside [0, {self.vocab_size})")
        ctx = _as_ids(context, self.vocab_size, "context")
        return self._prob(token, ctx[max(0, len(ctx) - self.order + 1) :])

    def _prob(self, token: int, ctx: tuple[int, ...]) -> float:
        # Build up from uniform through each level; ctx is already trimmed.
        p = 1.0 / self.vocab_size
        d = self.discount
        n = len(ctx)
        for k in range(1, n + 2):
            entry = self._tables[k - 1].get(ctx[n - k + 1 :])
            if entry is None:
                continue  # unseen context: the lower-order estimate stands
            total, distinct, nexts = entry
            count = nexts.get(token, 0)
            p = (max(count - d, 0.0) + d * distinct * p) / total
        return p

    def nll(self, held_out: Sequence[int]) -> float:
        """Mean NLL (nats/token) over all of ``held_out``.

        Context comes from ``held_out`` itself, so the first ``order - 1``
        tokens are scored with the shorter history they really have rather
        than being skipped, which would flatter the model.
        """
        held = _as_ids(held_out, self.vocab_size, "held_out")
        _check_held_out(held)
        span = self.order - 1
        total = 0.0
        for i, token in enumerate(held):
            total -= math.log(self._prob(token, held[max(0, i - span) : i]))
        return total / len(held)


def kneser_ney_nll(
    train: Sequence[int],
    held_out: Sequence[int],
    vocab_size: int,
    order: int = 2,
    discount: float = 0.75,
) -> float:
    """Mean NLL (nats/token) of ``held_out`` under interpolated KN fit on ``train``.

    Interpolated KN is the strongest cheap count model, so it is the
    baseline an RNN's short-context gains are measured against.
    """
    _check_vocab_size(vocab_size)
    # Validate the cheap argument before paying for the counts.
    held = _as_ids(held_out, vocab_size, "held_out")
    _check_held_out(held)
    model = KneserNey(train, vocab_size, order=order, discount=discount)
    return model.nll(held)


def perplexity(nll: float) -> float:
    """exp(nll): the effective branching factor, the figure papers usually quote."""
    return math.exp(nll)


def bits_per_char(nll: float) -> float:
    """nll / ln 2: bits per token, the usual unit for character-level models."""
    return nll / math.log(2)
