"""Tests for the count-based n-gram baselines in charrnn.ngram."""

from __future__ import annotations

import math
import random

import pytest

from charrnn.ngram import (
    KneserNey,
    bits_per_char,
    kneser_ney_nll,
    perplexity,
    unigram_nll,
)

V = 7


def _corpus(n: int = 400, seed: int = 0) -> list[int]:
    """Random-ish but skewed ids, so some contexts are frequent and some rare.

    Id 6 never occurs, so contexts containing it are genuinely unseen.
    """
    rng = random.Random(seed)
    return rng.choices(range(V - 1), weights=[8, 4, 2, 1, 1, 1], k=n)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_conditional_distributions_sum_to_one(order: int) -> None:
    model = KneserNey(_corpus(), V, order=order)
    contexts: list[tuple[int, ...]] = [
        (),
        (0,),
        (5,),
        (6,),  # unseen
        (0, 0),
        (0, 1),
        (3, 4),
        (6, 6),  # unseen
        (0, 6),  # unseen bigram, seen last token
        (6, 0),  # unseen first token, seen last token
        (1, 2, 0, 0),  # longer than needed: trimmed to the tail
    ]
    for ctx in contexts:
        probs = [model.prob(t, ctx) for t in range(V)]
        assert all(p > 0.0 for p in probs), (ctx, probs)
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-9), ctx


def test_trigram_matches_textbook_formula() -> None:
    """Compare against a direct, slow transcription of interpolated KN."""
    train = _corpus(300, seed=3)
    d = 0.75
    model = KneserNey(train, V, order=3, discount=d)
    tri: dict[tuple[int, ...], int] = {}
    for i in range(len(train) - 2):
        gram = tuple(train[i : i + 3])
        tri[gram] = tri.get(gram, 0) + 1
    bigram_types = {tuple(train[i : i + 2]) for i in range(len(train) - 1)}

    def n_uni(w: int) -> int:  # N1+(. w)
        return sum(1 for g in bigram_types if g[1] == w)

    def n_bi(b: int, w: int) -> int:  # N1+(. b w)
        return sum(1 for g in tri if g[1:] == (b, w))

    def interp(counts: list[int], lower: list[float]) -> list[float]:
        total = sum(counts)
        if total == 0:
            return lower
        seen = sum(1 for c in counts if c > 0)
        return [(max(c - d, 0.0) + d * seen * lo) / total for c, lo in zip(counts, lower, strict=True)]

    p1 = interp([n_uni(w) for w in range(V)], [1.0 / V] * V)
    for a in range(V):
        for b in range(V):
            p2 = interp([n_bi(b, w) for w in range(V)], p1)
            p3 = interp([tri.get((a, b, w), 0) for w in range(V)], p2)
            for w in range(V):
                assert model.prob(w, (a, b)) == pytest.approx(p3[w], abs=1e-12)


def test_unseen_token_still_has_probability() -> None:
    model = KneserNey(_corpus(), V, order=3)
    assert 0.0 < model.prob(6, (0, 0)) < model.prob(0, (0, 0))


def test_empty_train_is_uniform() -> None:
    model = KneserNey([], V, order=3)
    assert model.prob(2, (1, 1)) == pytest.approx(1.0 / V)


def test_nll_matches_prob() -> None:
    train = _corpus()
    held = _corpus(50, seed=1)
    model = KneserNey(train, V, order=3)
    expected = -sum(math.log(model.prob(t, held[max(0, i - 2) : i])) for i, t in enumerate(held)) / len(held)
    assert model.nll(held) == pytest.approx(expected, rel=1e-12)
    assert kneser_ney_nll(train, held, V, order=3) == pytest.approx(expected, rel=1e-12)


def test_unigram_uniform_gives_log_v() -> None:
    uniform = list(range(V)) * 5
    assert unigram_nll(uniform, uniform, V) == pytest.approx(math.log(V))
    # Add-one smoothing: with no training data the model is also uniform.
    assert unigram_nll([], [3], V) == pytest.approx(math.log(V))


def test_kn_beats_unigram_on_pattern() -> None:
    pattern = [0, 1, 2] * 200
    held = [0, 1, 2] * 20
    uni = unigram_nll(pattern, held, V)
    bi = kneser_ney_nll(pattern, held, V, order=2)
    assert bi < 0.5 * uni
    # Once the pattern is established the next id is near-certain.
    assert KneserNey(pattern, V, order=2).prob(2, (1,)) > 0.99


def test_higher_order_helps_when_context_matters() -> None:
    # After 0 comes 1 or 2 depending on what preceded 0: only a trigram sees it.
    seq = [3, 0, 1, 4, 0, 2] * 200
    held = [3, 0, 1, 4, 0, 2] * 20
    assert kneser_ney_nll(seq, held, V, order=3) < kneser_ney_nll(seq, held, V, order=2)


def test_conversions() -> None:
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(V)) == pytest.approx(V)
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(math.log(256)) == pytest.approx(8.0)


@pytest.mark.parametrize("vocab_size", [0, -3])
def test_bad_vocab_size(vocab_size: int) -> None:
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        unigram_nll([0], [0], vocab_size)
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        kneser_ney_nll([0], [0], vocab_size)
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        KneserNey([0], vocab_size)


@pytest.mark.parametrize(
    ("train", "held_out", "bad"),
    [([0, 7], [0], 7), ([0], [1, -1], -1), ([0], [V + 5], V + 5)],
)
def test_out_of_range_ids(train: list[int], held_out: list[int], bad: int) -> None:
    pattern = rf"token id {bad} outside \[0, {V}\)"
    with pytest.raises(ValueError, match=pattern):
        unigram_nll(train, held_out, V)
    with pytest.raises(ValueError, match=pattern):
        kneser_ney_nll(train, held_out, V, order=3)


def test_prob_rejects_out_of_range() -> None:
    model = KneserNey([0, 1], V)
    with pytest.raises(ValueError, match="outside"):
        model.prob(V, (0,))
    with pytest.raises(ValueError, match="outside"):
        model.prob(0, (V,))


def test_empty_held_out() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        unigram_nll([0, 1], [], V)
    with pytest.raises(ValueError, match="at least one token"):
        kneser_ney_nll([0, 1], [], V)


@pytest.mark.parametrize("discount", [0.0, -0.5, 1.5])
def test_bad_discount(discount: float) -> None:
    with pytest.raises(ValueError, match="discount"):
        KneserNey([0, 1], V, discount=discount)


def test_bad_order() -> None:
    with pytest.raises(ValueError, match="order"):
        KneserNey([0, 1], V, order=0)
