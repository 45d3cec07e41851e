"""A melody that fits a lyric, by construction: the grammar a tune row is held to while it is generated.

A lyric of lines of syllables becomes a ``MelodyPlan``: one phrase a line (a long line is cut into several
before: ``charrnn.music.sing.phrases_of``), each phrase whole bars of the meter,
one note a syllable, clause ends (rhymes and line ends) on a long note (a beat or more), the last note on the
tonic, pitches within a singer's range (G below middle C to the G an octave and a fifth above), no accidentals
(the corpus is written in the keys without a signature, so every note is in the key's scale). The tune model
writes the plain ABC dialect of ``charrnn.music.abc`` character by character; a ``MelodyCursor`` follows what it
wrote and says which characters may come next (``allowed``), so that whatever the model picks among them, the
tune fits: a note's length is only offered if the rest of the phrase can still be filled (``_fits``, exact, by
memoised search over (room left in the bar, bars left, next note)). The processor that applies it lives in
``charrnn.generation.processors`` (``melody_grammar``), in the same chain as every other rule, alone or in a batch.

The plan travels as text in ``SampleConfig.melody``: ``"4/4 C 3+4,7,5,7"`` is the meter, the tonic (``Am``:
A minor), and each line's syllables, ``+`` where a clause ends inside a line.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Lengths in sixteenths (half units of L:1/8) by how the dialect writes them.
LENGTHS = {"": 2, "/": 1, "2": 4, "3": 6, "3/": 3, "4": 8, "6": 12, "8": 16}
LOWEST, HIGHEST = 25, 39  # G, (G3) to g (G5), as diatonic steps (middle C = 28)
UPPER = "CDEFGAB"
LOWER = "cdefgab"
MAX_BARS = 8  # a phrase of more syllables than this many bars hold at a quarter each is too long to sing


class MelodyError(ValueError):
    """A plan that no melody can fit (a line too long to sing, a bad meter)."""


@dataclass(frozen=True)
class MelodyPlan:
    meter: str  # "4/4", "3/4", "6/8", "2/4"
    key: str  # "C" or "Am": the plain key the tune model writes in
    phrases: tuple[tuple[int, ...], ...]  # per line, its clauses' syllable counts

    # Cached: the grammar asks these tens of thousands of times a melody.
    @functools.cached_property
    def bar(self) -> int:
        return bar_length(self.meter)

    @functools.cached_property
    def long(self) -> int:
        return long_length(self.meter)

    @property
    def tonic(self) -> str:
        return self.key[0]

    def syllables(self, phrase: int) -> int:
        return self._syllables[phrase]

    def long_notes(self, phrase: int) -> frozenset[int]:
        """Indices (in the phrase) of the notes that end a clause."""
        return self._long_notes[phrase]

    @functools.cached_property
    def _syllables(self) -> tuple[int, ...]:
        return tuple(sum(phrase) for phrase in self.phrases)

    @functools.cached_property
    def _long_notes(self) -> tuple[frozenset[int], ...]:
        return tuple(frozenset(itertools.accumulate(c - 1 if i == 0 else c for i, c in enumerate(phrase)))
                     for phrase in self.phrases)

    def bars(self, phrase: int) -> int:
        return self._bars[phrase]

    @functools.cached_property
    def _bars(self) -> tuple[int, ...]:
        return tuple(phrase_bars(phrase, self.meter) for phrase in self.phrases)

    @property
    def header(self) -> str:
        """What the tune model reads before it writes the notes."""
        return f"X:1\nM:{self.meter}\nL:1/8\nK:{self.key}\n"


def bar_length(meter: str) -> int:
    """Sixteenths in a bar."""
    top, bottom = (int(x) for x in meter.split("/"))
    return top * 16 // bottom


def long_length(meter: str) -> int:
    """The shortest note a clause may end on, in sixteenths: a beat (a dotted quarter in 6/8, 9/8)."""
    top, bottom = (int(x) for x in meter.split("/"))
    return 6 if bottom == 8 and top % 3 == 0 else 4


def phrase_bars(clauses: Sequence[int], meter: str) -> int:
    """Whole bars for a phrase of these clauses' syllable counts: a quarter a syllable on average, and room for
    its clause ends' long notes ("Oh, my love" in 6/8: two dotted quarters and a sixteenth do not fit one bar)."""
    bar, long = bar_length(meter), long_length(meter)
    n, longs = sum(clauses), len(clauses)
    shortest = longs * long + (n - longs)
    return max(1, math.ceil(n * 4 / bar), math.ceil(shortest / bar))


def parse_melody(spec: str) -> MelodyPlan:
    """``"4/4 C 3+4,7"`` as a plan; ``MelodyError`` with the reason for anything else."""
    parts = spec.split()
    if len(parts) != 3:
        raise MelodyError(f"a melody plan is 'METER KEY COUNTS', got {spec!r}")
    meter, key, counts = parts
    if meter not in ("2/4", "3/4", "4/4", "6/8"):
        raise MelodyError(f"meter must be 2/4, 3/4, 4/4 or 6/8, got {meter!r}")
    if key not in ("C", "Am"):
        raise MelodyError(f"the tune model writes in C or Am, got {key!r}")
    try:
        phrases = tuple(tuple(int(c) for c in line.split("+")) for line in counts.split(","))
    except ValueError:
        raise MelodyError(f"syllable counts like 3+4,7,5 expected, got {counts!r}") from None
    if not phrases or any(c <= 0 for line in phrases for c in line):
        raise MelodyError(f"every clause needs a syllable, got {counts!r}")
    plan = MelodyPlan(meter, key, phrases)
    for i in range(len(phrases)):
        if plan.bars(i) > MAX_BARS:
            raise MelodyError(f"line {i + 1} has {plan.syllables(i)} syllables: too many to sing as one phrase")
    return plan


@functools.lru_cache(maxsize=4096)
def _fits(room: int, bars_left: int, index: int, count: int, longs: frozenset[int], bar: int, long: int) -> bool:
    """Whether notes ``index..count-1`` can fill ``room`` sixteenths of this bar and ``bars_left`` whole bars,
    each clause end at least ``long``, a rest allowed only after the last note and only in the last bar."""
    if index == count:
        return bars_left == 0 and room <= bar // 2  # a rest of at most half a bar ends the phrase
    for length in LENGTHS.values():
        if length > room or (index in longs and length < long):
            continue
        left = room - length
        if left == 0:
            if bars_left == 0:
                if index + 1 == count:
                    return True
                continue
            if _fits(bar, bars_left - 1, index + 1, count, longs, bar, long):
                return True
        elif _fits(left, bars_left, index + 1, count, longs, bar, long):
            return True
    return False


@dataclass
class MelodyCursor:
    """Where a tune row stands in its plan, character by character."""

    plan: MelodyPlan
    phrase: int = 0
    index: int = 0  # the next note of the phrase
    room: int = 0  # sixteenths left in the bar
    bars_left: int = 0  # whole bars of the phrase after this one
    token: str = ""  # the note or rest being written: its pitch, then its length so far
    closing: bool = False  # the phrase's last bar line is written: a line break or the end comes next
    done: bool = False
    notes: list[int] = field(default_factory=list)  # notes written per phrase (for tests and reports)
    _allowed: str | None = field(default=None, repr=False)  # what allowed() said for the state as it is

    def __post_init__(self) -> None:
        for i in range(len(self.plan.phrases)):
            if not self._fits_phrase(i):
                raise MelodyError(f"line {i + 1} cannot be sung in {self.plan.meter}")
        self._start_phrase()

    def _fits_phrase(self, phrase: int) -> bool:
        plan = self.plan
        return _fits(plan.bar, plan.bars(phrase) - 1, 0, plan.syllables(phrase), plan.long_notes(phrase), plan.bar,
                     plan.long)

    def _start_phrase(self) -> None:
        self.index, self.room, self.bars_left = 0, self.plan.bar, self.plan.bars(self.phrase) - 1
        self.notes.append(0)

    # What may come next -------------------------------------------------------------------------------

    def allowed(self) -> str:
        """The characters the tune may write next (never empty while the tune is not done). Kept until the next
        character: the processor asks, then ``observe`` checks, once each a step."""
        if self._allowed is None:
            self._allowed = self._compute_allowed()
        return self._allowed

    def _compute_allowed(self) -> str:
        if self.done:
            return ""
        if not self.token:
            return self._starts()
        rest = self.token[0] == "z"
        pitch_end = 1 + len(self.token[1:]) - len(self.token[1:].lstrip(",'"))
        written = self.token[pitch_end:]
        options = set()
        if not written and not rest:
            step = self._step(self.token)
            if self.token[0] in UPPER and step - 7 >= LOWEST and "," not in self.token[1:]:
                options.add(",")
        for text in LENGTHS:
            if text.startswith(written) and text != written and self._length_ok(LENGTHS[text], rest):
                options.add(text[len(written)])
        if written in LENGTHS and self._length_ok(LENGTHS[written], rest):
            options.update(self._after(LENGTHS[written], rest))
        return "".join(sorted(options))

    def _starts(self) -> str:
        plan = self.plan
        if self.closing:
            return "]" if self.phrase == len(plan.phrases) - 1 else "\n"
        if self.room == 0:
            return "|"
        count = plan.syllables(self.phrase)
        if self.index == count:
            return "z" if self.bars_left == 0 else ""
        last = self.phrase == len(plan.phrases) - 1 and self.index == count - 1
        letters = [c for c in UPPER + LOWER if LOWEST <= self._step(c) <= HIGHEST]
        if last:
            letters = [c for c in letters if c.upper() == plan.tonic]
        return "".join(c for c in letters if any(self._length_ok(n, False) for n in LENGTHS.values()))

    def _length_ok(self, length: int, rest: bool) -> bool:
        plan = self.plan
        if length > self.room:
            return False
        if rest:  # one rest as long as it can be, not a scatter of short ones
            return length == max(n for n in LENGTHS.values() if n <= self.room)
        count = plan.syllables(self.phrase)
        longs = plan.long_notes(self.phrase)
        if self.index in longs and length < plan.long:
            return False
        left = self.room - length
        if left == 0:
            if self.bars_left == 0:
                return self.index + 1 == count
            return _fits(plan.bar, self.bars_left - 1, self.index + 1, count, longs, plan.bar, plan.long)
        return _fits(left, self.bars_left, self.index + 1, count, longs, plan.bar, plan.long)

    def _after(self, length: int, rest: bool) -> set[str]:
        """What may start once a note or rest of ``length`` is complete."""
        probe = MelodyCursor.__new__(MelodyCursor)
        probe.plan, probe.phrase, probe.index, probe.room, probe.bars_left = (
            self.plan, self.phrase, self.index + (not rest), self.room - length, self.bars_left)
        probe.token, probe.closing, probe.done, probe.notes, probe._allowed = "", False, False, [], None
        return set(probe._starts())

    @staticmethod
    def _step(token: str) -> int:
        letter = token[0]
        step = UPPER.index(letter.upper()) + (28 if letter in UPPER else 35)
        return step - 7 * token.count(",")

    # What was written ---------------------------------------------------------------------------------

    def observe(self, char: str) -> bool:
        """Follow one written character; True once the tune is complete. A character ``allowed`` did not offer
        raises ``ValueError`` (a bug, never a model's choice: the processor masks everything else)."""
        if char not in self.allowed():
            raise ValueError(f"{char!r} does not fit the melody here (allowed: {self.allowed()!r})")
        self._allowed = None
        if self.token and char not in ",'/0123456789":
            self._finish_token()
        if char == "|":
            if self.bars_left > 0:
                self.room, self.bars_left = self.plan.bar, self.bars_left - 1
            else:
                self.closing = True
        elif char == "\n":
            self.phrase += 1
            self.closing = False
            self._start_phrase()
        elif char == "]":
            self.done = True
        else:
            self.token += char
        return self.done

    def _finish_token(self) -> None:
        rest = self.token[0] == "z"
        pitch_end = 1 + len(self.token[1:]) - len(self.token[1:].lstrip(",'"))
        self.room -= LENGTHS[self.token[pitch_end:]]
        if not rest:
            self.index += 1
            self.notes[-1] += 1
        self.token = ""
