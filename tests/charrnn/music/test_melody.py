"""The melody grammar: whatever the tune model picks among what it allows, the melody fits the lyric."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from charrnn.config import SampleConfig
from charrnn.music.abc import read_tune
from charrnn.music.melody import HIGHEST, LOWEST, MelodyCursor, MelodyError, parse_melody

SPECS = ["4/4 C 3+4,7,5,7", "3/4 Am 4,4,4,4", "6/8 C 5,5,7,5", "2/4 C 11,2", "4/4 Am 1,12,2+2+2", "3/4 C 9+9",
         "6/8 C 1+2,1+1+1", "2/4 Am 1+1+1+1"]  # clause ends that need more bars than the syllables alone


def walk(spec: str, seed: int) -> str:
    """A tune written by a writer that picks any allowed character: the worst a model can do."""
    cursor, rng, out = MelodyCursor(parse_melody(spec)), random.Random(seed), ""
    while not cursor.done:
        allowed = cursor.allowed()
        assert allowed, f"a dead end after {out!r}"
        char = rng.choice(allowed)
        cursor.observe(char)
        out += char
    return out


@pytest.mark.parametrize("spec", SPECS)
def test_any_walk_the_grammar_allows_is_a_melody_that_fits(spec: str) -> None:
    plan = parse_melody(spec)
    bar = Fraction(plan.bar, 2)  # in eighths
    for seed in range(40):
        tune = read_tune(plan.header + walk(spec, seed))
        assert len(tune.lines) == len(plan.phrases)  # a phrase a line
        for phrase, line in enumerate(tune.lines):
            notes = [n for b in line for n in b if not n.rest]
            assert len(notes) == plan.syllables(phrase)  # a note a syllable
            assert len(line) == plan.bars(phrase) and all(sum(n.length for n in b) == bar for b in line)
            for index in plan.long_notes(phrase):  # clause ends on a beat or longer
                assert notes[index].length * 2 >= plan.long
            rests = [n for b in line for n in b if n.rest]
            assert all(n is not notes[0] for n in rests) and sum(n.length for n in rests) <= bar / 2
            assert all(n.alter == 0 and LOWEST <= n.step <= HIGHEST for n in notes)  # in the scale, singable
        last_note = [n for n in tune.notes if not n.rest][-1]
        assert "CDEFGAB"[last_note.step % 7] == plan.tonic


def test_a_character_the_grammar_did_not_offer_is_refused() -> None:
    cursor = MelodyCursor(parse_melody("4/4 C 4"))
    assert "|" not in cursor.allowed() and "^" not in cursor.allowed()
    with pytest.raises(ValueError, match="does not fit"):
        cursor.observe("|")


@pytest.mark.parametrize(("spec", "reason"), [
    ("4/4 C", "METER KEY COUNTS"),
    ("5/4 C 4", "meter"),
    ("4/4 G 4", "C or Am"),
    ("4/4 C 4,x", "syllable counts"),
    ("4/4 C 4,0", "every clause"),
    ("2/4 C 40", "too many to sing"),
])
def test_bad_plans_are_refused_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(MelodyError, match=reason):
        parse_melody(spec)
    with pytest.raises(ValueError, match=reason):
        SampleConfig(melody=spec)
