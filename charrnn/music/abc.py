"""ABC notation, read and written in the one plain dialect our tune corpus and our melodies share.

Folk ABC is rich (chords, grace notes, ornaments, slurs, repeats, tuplets, inline key changes); a melody for
a lyric needs little of it. ``read_tune`` turns one tune of any ABC file into a ``Tune``: its meter, its key
and its notes (pitch and length), line by line and bar by bar, or says why it cannot (``AbcSkip``: several
voices, a key or meter change, tuplets...). ``charrnn.music.abc_write`` writes notes back in the plain dialect: the
unit length is always an eighth (``L:1/8``), notes are letters with ``^ _ =`` and ``, '`` and a length (``/`` half a
unit, ``3/`` one and a half, ``2`` two), ``z`` rests, ``-`` ties, ``|`` bars, ``|]`` at the end, one source line
a line. What it leaves out, by rule: chord symbols, decorations, grace notes, slurs, spaces (the writer of a
lead sheet puts them back at the beats), repeat signs and ending brackets (the bars stay, in printed order);
of a chord, the top note (the melody). ``transpose`` moves a tune between keys by letter and semitone, so
that the corpus can be written in the keys without a signature (C major, A minor, D dorian...) and a melody
moved to the key a person asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

LETTERS = "CDEFGAB"
NATURAL = (0, 2, 4, 5, 7, 9, 11)  # semitones of C D E F G A B above C
FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}
# Where each mode's tonic sits among the fifths of its signature's major key (A minor: three below C major).
MODES = {"": 0, "maj": 0, "ion": 0, "m": -3, "min": -3, "aeo": -3, "dor": -2, "phr": -4, "lyd": 1, "mix": -1,
         "loc": -5}
MODE_NAMES = {0: "", -3: "m", -2: "dor", -4: "phr", 1: "lyd", -1: "mix", -5: "loc"}
UNIT = Fraction(1, 8)  # L:1/8, the unit length of everything we write
# A note's written length must be a whole number of 32nds (a third, as in a tuplet, skips the tune); a broken
# rhythm or a chord's length may then cut it finer (C/>>D: 7/8 and 1/8 of a unit), written as it is.
WRITABLE = frozenset(Fraction(n, d) for d in (1, 2, 4) for n in range(1, 33))


class AbcSkip(ValueError):
    """A tune the plain dialect cannot hold; the message is the reason, counted by the corpus builder."""


@dataclass(frozen=True)
class Key:
    tonic: str  # a letter, with "#" or "b": "F#"
    mode: str  # "" (major), "m", "dor", "mix"...

    @property
    def fifths(self) -> int:
        """The signature: sharps (positive) or flats (negative)."""
        return _tonic_fifths(self.tonic) + MODES[self.mode]

    def alter(self, letter: str) -> int:
        """What the signature does to a letter: +1 sharp, -1 flat, 0."""
        order = "FCGDAEB"
        if self.fifths > 0:
            return 1 if order.index(letter) < self.fifths else 0
        return -1 if order[::-1].index(letter) < -self.fifths else 0

    def __str__(self) -> str:
        return self.tonic + self.mode


@dataclass(frozen=True)
class Note:
    step: int  # diatonic: letter index + 7 * octave, middle C (ABC "C") = 28
    alter: int  # semitones from the natural letter
    length: Fraction  # in units (eighths)
    rest: bool = False
    tie: bool = False  # tied to the next note

    @property
    def midi(self) -> int:
        return 12 * (self.step // 7) + NATURAL[self.step % 7] + self.alter + 12  # step 28 -> 60


@dataclass(frozen=True)
class Tune:
    meter: Fraction  # the bar's length as a fraction of a whole note (6/8 -> 3/4)
    meter_text: str  # as written: "6/8"
    key: Key
    lines: tuple[tuple[tuple[Note, ...], ...], ...]  # lines of bars of notes
    title: str = ""

    @property
    def notes(self) -> list[Note]:
        return [note for line in self.lines for bar in line for note in bar]


def parse_key(text: str) -> Key:
    """``K:`` as folk ABC writes it: "G", "Ador", "F#m", "Bb Major", "E minor"."""
    match = re.fullmatch(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)\s*", text)
    if match is None:
        raise AbcSkip(f"key {text.strip()!r}")
    mode = match.group(3).lower()[:3]
    mode = "m" if mode == "m" else mode
    if mode not in MODES:
        raise AbcSkip(f"key {text.strip()!r}")
    key = Key(match.group(1).upper() + match.group(2), MODE_NAMES[MODES[mode]])
    if not -7 <= key.fifths <= 7:
        raise AbcSkip(f"key {text.strip()!r}")
    return key


def parse_meter(text: str) -> tuple[Fraction, str]:
    text = text.strip()
    written = {"C": "4/4", "C|": "2/2"}.get(text, text)
    match = re.fullmatch(r"(\d+)/(\d+)", written)
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) not in (2, 4, 8, 16):
        raise AbcSkip(f"meter {text!r}")
    return Fraction(int(match.group(1)), int(match.group(2))), written


def split_tunes(text: str) -> Iterator[str]:
    """The tunes of an ABC file, each from its ``X:`` line to the blank line that ends it."""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        start = re.search(r"^X:", block, flags=re.MULTILINE)
        if start is not None:
            yield block[start.start():]


def read_tune(text: str) -> Tune:
    """One tune in any folk ABC, in the plain dialect's terms (or ``AbcSkip`` with the reason)."""
    fields: dict[str, str] = {}
    body: list[str] = []
    for raw in text.split("\n"):
        line = raw.split("%", 1)[0].rstrip() if not raw.startswith("%%") else ""
        field = re.match(r"([A-Za-z]):(?![|:])(.*)", line)  # "B:|c2|" is music (a note and a repeat)
        if (field and not body) or (field and field.group(1) in "KML" and body):
            name, value = field.group(1), field.group(2).strip()
            if body:
                raise AbcSkip(f"{name}: changes inside the tune")
            if name == "K":
                fields["K"] = value
                body.append("")  # K: ends the header
            else:
                fields.setdefault(name, value)
        elif field:
            if field.group(1) == "V":
                raise AbcSkip("several voices")
            continue  # w:, W:, P:, N:... inside the body
        elif body and line.strip():
            body.append(line)
    if "K" not in fields:
        raise AbcSkip("no K: line")
    if "M" not in fields or fields["M"].strip().lower() == "none":
        raise AbcSkip("no meter")
    meter, meter_text = parse_meter(fields["M"])
    key = parse_key(fields["K"])
    unit = _unit_length(fields.get("L"), meter)
    source = "\n".join(line for line in body if line).replace("\\\n", "")
    lines = _read_body(source, key, unit / UNIT)
    if not lines:
        raise AbcSkip("no notes")
    return Tune(meter, meter_text, key, lines, fields.get("T", ""))


def _unit_length(text: str | None, meter: Fraction) -> Fraction:
    if text is None:  # ABC's default: an eighth, a sixteenth for meters under 3/4
        return Fraction(1, 16) if meter < Fraction(3, 4) else Fraction(1, 8)
    match = re.fullmatch(r"\s*1/(\d+)\s*", text)
    if match is None:
        raise AbcSkip(f"unit length {text!r}")
    return Fraction(1, int(match.group(1)))


_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-gzx])([,']*)(\d*)(/*)(\d*)")


def _read_body(source: str, key: Key, scale: Fraction) -> tuple[tuple[tuple[Note, ...], ...], ...]:
    lines: list[tuple[tuple[Note, ...], ...]] = []
    for text in source.split("\n"):
        bars: list[tuple[Note, ...]] = []
        bar: list[Note] = []
        accidentals: dict[int, int] = {}  # step -> alter written earlier in this bar
        broken = Fraction(1)  # what ">" or "<" left for the next note
        i = 0
        while i < len(text):
            c = text[i]
            if c in "|:[]" and _bar_line(text, i):
                end = _bar_line(text, i)
                if bar:
                    bars.append(tuple(bar))
                bar, accidentals = [], {}
                i = end
                continue
            if c == '"':
                i = _closing(text, i, '"')
            elif c in "!+":
                i = _closing(text, i, c)
            elif c == "{":
                i = _closing(text, i, "}")
            elif c == "(":
                if i + 1 < len(text) and text[i + 1].isdigit():
                    raise AbcSkip("tuplets")
                i += 1
            elif c == "[":
                if re.match(r"\[[A-Za-z]:", text[i:]):
                    field = text[i + 1]
                    if field in "KMLV":
                        raise AbcSkip(f"{field}: changes inside the tune")
                    i = _closing(text, i, "]")
                    continue
                chord = re.match(r"\[([^\]]*)\]([\d/]*)", text[i:])
                if chord is None:
                    raise AbcSkip("an unclosed chord")
                notes = [_note(m, key, scale, accidentals) for m in _NOTE.finditer(chord.group(1))]
                if not notes:
                    raise AbcSkip("an empty chord")
                top = max(notes, key=lambda n: n.midi)
                top = replace(top, length=notes[0].length * _length(chord.group(2)) * broken,
                              tie="-" in chord.group(1))
                bar.append(top)
                broken = Fraction(1)
                i += chord.end()
            elif c in "^_=ABCDEFGabcdefgzx":
                match = _NOTE.match(text, i)
                if match is None:
                    raise AbcSkip(f"a stray {c!r}")
                bar.append(_note(match, key, scale, accidentals, broken))
                broken = Fraction(1)
                i = match.end()
            elif c == "-":
                if bar:
                    bar[-1] = replace(bar[-1], tie=True)
                i += 1
            elif c in "<>":
                count = len(re.match(r"[<>]+", text[i:]).group(0))  # type: ignore[union-attr]
                if not bar:
                    raise AbcSkip("a broken rhythm without a note")
                short = Fraction(1, 2**count)
                first, second = (2 - short, short) if c == ">" else (short, 2 - short)
                bar[-1] = replace(bar[-1], length=bar[-1].length * first)
                broken = second
                i += count
            elif c == "Z":
                raise AbcSkip("multi-bar rests")
            else:  # spaces, ties' dots, decorations (~ . H L M O P S T u v), spacers (y), slurs' ")", "`"
                i += 1
        if bar:
            bars.append(tuple(bar))
        if bars:
            lines.append(tuple(bars))
    return tuple(lines)


def _bar_line(text: str, i: int) -> int:
    """The end of the bar line (repeats, endings, thick bars) that starts at ``i``, or 0 when there is none."""
    match = re.match(r":*\|+\]?:*\d*|:*\[\|:*|::|\[\d+|\|\]", text[i:])
    if match is None or (text[i] == "[" and not re.match(r"\[\d|\[\|", text[i:])):
        return 0
    return i + match.end()


def _closing(text: str, i: int, mark: str) -> int:
    end = text.find(mark, i + 1)
    if end < 0:
        raise AbcSkip(f"an unclosed {text[i]!r}")
    return end + 1


def _length(text: str) -> Fraction:
    match = re.fullmatch(r"(\d*)(/*)(\d*)", text)
    if match is None:
        raise AbcSkip(f"a length {text!r}")
    number, slashes, under = match.groups()
    value = Fraction(int(number) if number else 1)
    if slashes:
        value /= int(under) if under else 2 ** len(slashes)
    return value


def _note(match: re.Match[str], key: Key, scale: Fraction, accidentals: dict[int, int],
          broken: Fraction = Fraction(1)) -> Note:
    mark, letter, octave, number, slashes, under = match.groups()
    length = _length(number + slashes + under) * scale * broken
    if length not in WRITABLE:
        raise AbcSkip(f"a note of {length} eighths")
    if letter in "zx":
        return Note(0, 0, length, rest=True)
    step = LETTERS.index(letter.upper()) + 7 * (4 if letter.isupper() else 5)
    step += 7 * (octave.count("'") - octave.count(","))
    if mark:
        alter = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}[mark]
        accidentals[step] = alter
    else:
        alter = accidentals.get(step, key.alter(LETTERS[step % 7]))
    return Note(step, alter, length)


def _tonic_fifths(tonic: str) -> int:
    return FIFTHS[tonic[0]] + 7 * tonic.count("#") - 7 * tonic.count("b")


def transpose(tune: Tune, key: Key) -> Tune:
    """The tune in ``key`` (same mode expected), moved the shorter way (at most a tritone), notes spelt by
    letter: a tune in G moved to C has its F sharps as B naturals."""
    if key.mode != tune.key.mode:
        raise ValueError(f"cannot move a tune in {tune.key} to {key}: another mode")
    old_tonic = LETTERS.index(tune.key.tonic[0])
    semitones = (_pitch_class(key.tonic) - _pitch_class(tune.key.tonic)) % 12
    if semitones > 6:
        semitones -= 12
    # The letters move by the diatonic steps whose natural span is nearest the semitones: E to Eb is no step
    # and one semitone down, not a seventh.
    ahead = (LETTERS.index(key.tonic[0]) - old_tonic) % 7
    if semitones == 6 and ahead > 3:  # a tritone: up by a fourth's letters, down by a fifth's (so back is back)
        semitones = -6

    def span(steps: int) -> int:
        start = 28 + old_tonic
        return _natural_midi(start + steps) - _natural_midi(start)

    steps = min((ahead, ahead - 7), key=lambda s: abs(span(s) - semitones))

    def moved(note: Note) -> Note:
        if note.rest:
            return note
        step = note.step + steps
        midi = note.midi + semitones
        alter = midi - _natural_midi(step)
        if abs(alter) > 2:
            raise AbcSkip("a note that cannot be spelt")
        return replace(note, step=step, alter=alter)

    lines = tuple(tuple(tuple(moved(n) for n in bar) for bar in line) for line in tune.lines)
    return replace(tune, key=key, lines=lines)


def plain_key(key: Key) -> Key:
    """The key of ``key``'s mode without sharps or flats: G -> C, Em -> Am, Ador -> Ddor."""
    return Key("FCGDAEB"[1 - MODES[key.mode]], key.mode)  # the tonic sits where the mode puts it from C


def _natural_midi(step: int) -> int:
    return 12 * (step // 7) + NATURAL[step % 7] + 12


def _pitch_class(tonic: str) -> int:
    return (NATURAL[LETTERS.index(tonic[0])] + tonic.count("#") - tonic.count("b")) % 12








