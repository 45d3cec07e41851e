"""The plain ABC dialect: folk ABC read into notes, written back, moved between keys; music21 reads it alike."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from charrnn.music.abc import AbcSkip, Key, parse_key, plain_key, read_tune, split_tunes, transpose
from charrnn.music.abc_write import write_tune

FOLK = """X:7
T:A test
R:reel
M:C|
L:1/8
Q:1/4=120
K:G
"G"~B2 (AG) {a}g>e d<B|[DGB]2 F=F F2 z2|]
"""


def test_a_folk_tune_is_read_as_its_melody() -> None:
    tune = read_tune(FOLK)
    assert tune.meter_text == "2/2" and str(tune.key) == "G" and tune.title == "A test"
    (line,) = tune.lines
    first, second = line
    # chord symbols, decorations, slurs and grace notes go; broken rhythm moves half a unit
    assert [(n.midi, n.length) for n in first] == [
        (71, 2), (69, 1), (67, 1), (79, Fraction(3, 2)), (76, Fraction(1, 2)), (74, Fraction(1, 2)),
        (71, Fraction(3, 2))]
    # a chord's top note; the signature's F sharp, then a natural that holds to the end of the bar
    assert [(None if n.rest else n.midi, n.length) for n in second] == [(71, 2), (66, 1), (65, 1), (65, 2), (None, 2)]


def test_written_in_the_plain_dialect_and_moved_to_c() -> None:
    tune = transpose(read_tune(FOLK), plain_key(Key("G", "")))
    assert write_tune(tune, 3) == "X:3\nM:2/2\nL:1/8\nK:C\ne2dcc'3/a/g/e3/|e2B_B_B2z2|]"


@pytest.mark.parametrize(("text", "reason"), [
    ("X:1\nM:6/8\nK:D\n(3abc d2|", "tuplets"),
    ("X:1\nM:6/8\nK:D\nV:1\nabc|", "several voices"),
    ("X:1\nK:D\nabc|", "no meter"),
    ("X:1\nM:3/4\nK:D\nabc|[K:G]abc|", "K: changes inside the tune"),
    ("X:1\nM:3/4\nK:Hp\nabc|", "key 'Hp'"),
])
def test_what_the_dialect_cannot_hold_is_skipped_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(AbcSkip, match=reason):
        read_tune(text)


@pytest.mark.parametrize(("text", "fifths", "name"), [
    ("G", 1, "G"), ("Ador", 1, "Ador"), ("F#m", 3, "F#m"), ("Bb Major", -2, "Bb"), ("E minor", 1, "Em"),
    ("Dmix", 1, "Dmix"),
])
def test_keys(text: str, fifths: int, name: str) -> None:
    key = parse_key(text)
    assert key.fifths == fifths and str(key) == name
    assert plain_key(key).fifths == 0 and plain_key(key).mode == key.mode


def tunes_of_the_corpus(count: int) -> list[str]:
    from charrnn.music.corpus import music21_corpus

    root = music21_corpus()
    texts = [t for path in sorted((root / "oneills1850").glob("*.abc"))
             for t in split_tunes(path.read_text(encoding="latin-1"))]
    return random.Random(0).sample(texts, count)


def test_moving_to_another_key_and_back_changes_nothing() -> None:
    moved = 0
    for text in tunes_of_the_corpus(120):
        try:
            tune = read_tune(text)
        except AbcSkip:
            continue
        for key in ("C", "Eb", "F#", "A"):
            there = transpose(tune, Key(key, tune.key.mode))
            shift = {b.midi - a.midi for a, b in zip(tune.notes, there.notes, strict=True) if not a.rest}
            assert len(shift) == 1 and abs(shift.pop()) <= 6  # every note moved alike, the shorter way
            back = transpose(there, tune.key)
            assert back.notes == tune.notes
        moved += 1
    assert moved >= 60  # of 120: the rest have tuplets


def test_music21_reads_what_we_write_as_the_same_notes() -> None:
    """An independent reader: the pitches and lengths music21 finds in our plain ABC are the notes we meant."""
    converter = pytest.importorskip("music21").converter
    checked = 0
    for text in tunes_of_the_corpus(60)[:25]:
        try:
            tune = transpose(read_tune(text), plain_key(read_tune(text).key))
        except AbcSkip:
            continue
        score = converter.parse(write_tune(tune), format="abc")
        theirs = [(n.pitch.midi if n.isNote else None, Fraction(n.quarterLength).limit_denominator(16))
                  for n in score.flatten().notesAndRests]
        ours = [(None if n.rest else n.midi, n.length / 2) for n in tune.notes]
        assert theirs == ours
        checked += 1
    assert checked >= 15
