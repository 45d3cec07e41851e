"""Writing our plain ABC dialect: note lengths in L:1/8, accidentals against the key and the bar, a tune's header
and body. ``charrnn.music.abc`` reads what this writes."""

from __future__ import annotations

from fractions import Fraction

from charrnn.music.abc import LETTERS, Key, Note, Tune


def length_text(length: Fraction) -> str:
    """A length in units as the plain dialect writes it: "" 1, "2", "/" a half, "3/" one and a half, "/4"."""
    if length == 1:
        return ""
    if length.denominator == 1:
        return str(length.numerator)
    if length.denominator == 2:
        return "/" if length.numerator == 1 else f"{length.numerator}/"
    return f"{length.numerator if length.numerator != 1 else ''}/{length.denominator}"


def note_text(note: Note, key: Key, accidentals: dict[int, int]) -> str:
    """One note, with its accidental wherever it is off the signature (or back on it within the bar)."""
    if note.rest:
        return "z" + length_text(note.length)
    signature = key.alter(LETTERS[note.step % 7])
    earlier = accidentals.get(note.step, signature)
    # Written again on every note off the signature: ABC carries an accidental to the end of the bar, but not
    # every reader does (music21 does not), and a repeated one is unambiguous to all.
    marked = note.alter != signature or note.alter != earlier
    mark = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}[note.alter] if marked else ""
    accidentals[note.step] = note.alter
    octave, index = divmod(note.step, 7)
    letter = LETTERS[index] if octave <= 4 else LETTERS[index].lower()
    marks = "," * (4 - octave) if octave < 4 else "'" * (octave - 5) if octave > 5 else ""
    return mark + letter + marks + length_text(note.length) + ("-" if note.tie else "")


def write_body(tune: Tune) -> str:
    """The tune's notes in the plain dialect, a source line a line, ``|]`` at the very end."""
    out = []
    for line in tune.lines:
        bars = []
        for bar in line:
            accidentals: dict[int, int] = {}
            bars.append("".join(note_text(note, tune.key, accidentals) for note in bar))
        out.append("|".join(bars) + "|")
    return "\n".join(out)[:-1] + "|]"


def write_tune(tune: Tune, number: int = 1, title: str = "") -> str:
    """A whole tune: ``X:``, an optional ``T:``, ``M:``, ``L:1/8``, ``K:``, then its body."""
    head = [f"X:{number}"] + ([f"T:{title}"] if title else []) + [f"M:{tune.meter_text}", "L:1/8", f"K:{tune.key}"]
    return "\n".join([*head, write_body(tune)])
