"""Sample-and-rank by phrase: every clause written several times side by side in the running batch, the likeliest kept.

A form fixes how long each clause is, and the model does not know where its phrase will have to stop: blind
readers of the base's ci named lines that stop mid-phrase first ("一片烟波无", "对此景良"), and SongNet's sentence
integrity agreed (the base's probability that a clause ends where it ends: 0.40 in a tune, 0.73 in real ci).
So a request with ``SampleConfig.phrase_candidates`` = K runs as K siblings from one state, each with its own
random stream. A sibling that ends a clause (its punctuation or a line break) waits; once all K have, the one
scoring best is kept, copied K times, and they go on. Its score: the mean log-probability of its clause under
the untempered model, its ending included, plus that ending's once more, so a phrase the model expected to
go on loses to one it expected to end there. Before the score comes the text's clashes (a season or mood
opposite to one the text already has, 黄花 after 海棠, 断魂 in a birthday's 称觞: ``charrnn.text.themes``): the
siblings clashing on the fewest axes compete; blind readers named clashing seasons and drifting occasions first
among what breaks a ci's sense. Same processors, same batch: ``BatchGenerator`` drives it (``generate`` hands
such a request to one).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import statistics
from collections.abc import Callable

from charrnn.generation.rows import Fork, Row, Waiting


def best(fork: Fork, clashing: Callable[[Row], int] | None = None) -> Waiting:
    """The sibling whose clause scores best, among those whose text clashes on the fewest axes of season and mood
    (``clashing``: ``charrnn.text.themes.clashing_axes``); the lowest index among equals, so the choice is
    reproducible."""

    def key(index: int) -> tuple[int, float]:
        row = fork.waiting[index].row
        return -(clashing(row) if clashing is not None else 0), score(row.phrase)

    return fork.waiting[max(sorted(fork.waiting), key=key)]


def score(phrase: list[float]) -> float:
    """A clause's score from its characters' log-probabilities, its ending last (see the module's docstring)."""
    return statistics.fmean(phrase) + phrase[-1] if phrase else -math.inf


def branch(row: Row, fork: Fork) -> list[Row]:
    """``fork.size`` copies of ``row`` at a clause's start, each with its own random stream drawn from ``row``'s
    (so the text depends on the request's seed alone, not on its batch). What rows only read is shared; the
    n-gram table, most of a copy's size, is copied set by set (its keys are tuples of ids)."""
    seeds = [row.rng.getrandbits(64) for _ in range(fork.size)]
    shared: list[object] = [row.config, fork, row.rng]
    if row.shape is not None:
        shared += [row.shape.symbols, row.shape.plan]
    copies: list[Row] = []
    for index, seed in enumerate(seeds):
        memo = {id(item): item for item in shared}
        twin = copy.copy(row)
        for name in (f.name for f in dataclasses.fields(row)):
            value = getattr(row, name)
            if name in ("seen_ngrams", "seen_words"):
                setattr(twin, name, {gram: set(following) for gram, following in value.items()})
            elif name == "char_uses":
                setattr(twin, name, dict(value))
            elif id(value) not in memo:
                setattr(twin, name, copy.deepcopy(value, memo))
        twin.rng, twin.fork, twin.sibling, twin.phrase = random.Random(seed), fork, index, []
        copies.append(twin)
    return copies
