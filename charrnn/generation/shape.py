"""The shape of a lyric as it is written: line plans, rhyme by construction, and a length to aim at.

A ``Shape`` is one request's progress through its plan (``charrnn.text.forms``), its rhymes and its length;
``charrnn.generation.shape_rules.line_shape``, one processor of the sampling chain, masks or forces each row's next
character from that row's own shape, inside the running batch. What they guarantee:

- a fixed clause (a ci tune, a pattern) has exactly its length in Chinese characters: before it, only
  Chinese characters; at it, the clause's punctuation and the plan's line breaks are forced;
- a rhyme position ends on its group's rhyme: the clause's last character is drawn from the group's
  rhyme class (set by the group's first rhyme position, or given);
- a free line (a song's, or any line when only rhyme or a length is asked) may end only right after a
  character or word on the song's rhyme, and has a ceiling where only rhyming characters (Chinese) or
  the letters of rhyming words (English) and then the line end are allowed. The rhyme positions of free
  lyrics are every line's end: modern lyrics keep one rhyme through a song (一韵到底). So that lines
  reach the rhyme where a phrase ends rather than at the ceiling, once a Chinese line may end its
  rhyming characters are likelier (``RHYME_BOOST``), a sentence may not end off the rhyme, and on the
  rhyme the model's wish to end a phrase ends the line (after a full stop, for a model that writes one);
- a chorus line that returns is forced character by character from its first writing;
- with a target length L (and no plan of fixed lines): no end before 0.8·L; the lyric ends at the line end
  that lands nearest L, never past 1.2·L (a line's ceiling drops as the budget runs out).

When the model's vocabulary has no character of the needed class (a tiny vocabulary), the rule falls back
to any Chinese character rather than to nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from charrnn.text.forms import (
    CHINESE_LINE,
    DEFAULT_SONG_LENGTH,
    LATIN_LINE,
    Clause,
    Plan,
    find_tune,
    plan_of,
    tune_named,
)
from charrnn.text.rhyme import last_unit, line_key, usable
from charrnn.text.words import LATIN, is_han

if TYPE_CHECKING:
    from charrnn.config import SampleConfig

OVERRUN = 24  # past its ceiling, a free line that found no rhyme ends anyway


def visible(text: str) -> int:
    """Characters people see on a line: a run of spaces counts once, the ends' not at all."""
    return len(" ".join(text.split()))


def lyric_length(text: str) -> int:
    """A lyric's length as ``SampleConfig.target_length`` counts it: what people see, line by line."""
    return sum(visible(line) for line in text.split("\n"))


@dataclass
class Shape:
    """One request's progress through its plan (None: free lines without end), its rhymes and its length."""

    plan: Plan | None
    rhyme: bool
    target: int  # visible characters to aim at; 0: none
    latin: bool  # the prefix is English: free lines get English bounds
    symbols: frozenset[str]  # the vocabulary's: only these can be forced
    keys: dict[int, str] = field(default_factory=dict)  # rhyme group -> its key
    tones: dict[int, str] = field(default_factory=dict)  # rhyme group -> the tone its rhymes keep (the plan's)
    rhymed: set[str] = field(default_factory=set)  # the Chinese characters its rhymes ended on: not again (重韵)
    rhyme_words: frozenset[str] = frozenset()  # the English words its lines ended on: not again (read every step)
    line: int = 0  # plan line
    clause: int = 0
    count: int = 0  # Chinese characters of the current fixed clause
    text: str = ""  # the current physical line, since the last line break
    plan_text: str = ""  # the current plan line, punctuation included (what a chorus repeats)
    texts: list[str] = field(default_factory=list)  # the finished plan lines
    pending: list[str] = field(default_factory=list)  # what must be written next (punctuation, breaks, a chorus)
    finished: int = 0  # visible characters of the finished lines
    lengths: list[int] = field(default_factory=list)  # visible lengths of the finished non-empty lines
    bounds: tuple[int, int] = CHINESE_LINE[:2]  # the current free line's, steered towards the target
    done: bool = False

    def __post_init__(self) -> None:
        if self.plan is not None:
            self.keys.update(self.plan.keys)
            self.tones.update(self.plan.tones)
        self._begin_line()

    @property
    def owns_end(self) -> bool:
        """The plan or the target decides where the lyric ends (not a blank line or ``max_length``)."""
        return self.plan is not None or self.target > 0

    @property
    def limit(self) -> int:
        """A ceiling on generated characters that a working plan never reaches (a guard, not a rule)."""
        lines = len(self.plan.lines) if self.plan is not None else 0
        return 4 * self.target + lines * (LATIN_LINE[1] + OVERRUN + 4) + 200

    def ceiling(self) -> int:
        return math.floor(1.2 * self.target)

    def current_clause(self) -> Clause | None:
        """The clause being written; None on a free line past (or without) a plan."""
        if self.plan is None or self.line >= len(self.plan.lines):
            return None
        return self.plan.lines[self.line].clauses[self.clause]

    # --- reading what was written ----------------------------------------------------------------

    def observe(self, symbol: str) -> bool:
        """Take in the next character (of the prefix, or generated); True when the lyric is complete.

        Lenient on purpose: a prefix may run past a clause without its punctuation, and a fallback may
        have written what was not planned; counting goes on from what is there.
        """
        if self.done:
            return True
        if self.pending:
            if symbol == self.pending[0]:
                self.pending.pop(0)
                self._record(symbol)
                if not self.pending:
                    self._next()
                return self.done
            if symbol == "\n" or not is_han(symbol):
                self._record(symbol)
                return self.done
            self.pending.clear()  # a prefix went on where punctuation was due: count from here
            self._next()
            if self.done:
                return True
        clause = self.current_clause()
        if clause is not None and clause.fixed:
            self._record(symbol)
            if is_han(symbol):
                self.count += 1
                if self.count >= clause.low:
                    self._close_clause(clause, symbol)
            return self.done
        if symbol != "\n":
            self._record(symbol)
            return self.done
        line, blank = self.text, not self.text.strip()
        self._record(symbol)
        if not blank:
            self._close_free_line(clause, line)
        return self.done

    def _record(self, symbol: str) -> None:
        if symbol == "\n":
            if self.text.strip():
                self.lengths.append(visible(self.text))
            self.finished += visible(self.text)
            self.text = ""
        else:
            self.text += symbol
            self.plan_text += symbol

    def _close_clause(self, clause: Clause, char: str) -> None:
        if clause.rhyme is not None:
            self.rhymed.add(char)
        if clause.rhyme is not None and clause.rhyme not in self.keys:
            key = line_key(char)
            if key is not None:
                self.keys[clause.rhyme] = key
        assert self.plan is not None
        line = self.plan.lines[self.line]
        last = self.clause == len(line.clauses) - 1
        # A vocabulary without the clause's punctuation (a modern corpus's) separates clauses with a space.
        punct = clause.punct if clause.punct in self.symbols else "" if last else " "
        self.pending = [s for s in [punct, *(self._breaks() if last else [])] if s and s in self.symbols]
        if not self.pending:
            self._next()

    def _breaks(self) -> list[str]:
        """The line break after the current plan line (none after the last).

        Sections get no blank line: in every corpus the models learn from, a blank line ends a song, and
        the line after it is a new song's title."""
        assert self.plan is not None
        return [] if self.line == len(self.plan.lines) - 1 else ["\n"]

    def _close_free_line(self, clause: Clause | None, line: str) -> None:
        group = clause.rhyme if clause is not None else 0
        key = line_key(line)
        if group is not None and self.rhyme:
            if self.latin:
                self.rhyme_words |= {last_unit(line).lower()}
            elif is_han(last := last_unit(line)):
                self.rhymed.add(last)
        if group is not None and group not in self.keys and usable(key):
            assert key is not None
            self.keys[group] = key
        if self.target and self._should_end():
            self.done = True
            return
        if clause is None:
            self._begin_line()
            return
        self._next()

    def _should_end(self) -> bool:
        """At a line end, with a target: end here when this end lands nearer the target than the next would."""
        written, low = self.finished, self.bounds[0]
        if self.ceiling() - written < low:
            return True
        if self.plan is not None or written < 0.8 * self.target:
            return False
        usual = sum(self.lengths) / len(self.lengths) if self.lengths else CHINESE_LINE[2]
        return written + usual / 2 >= self.target

    def _next(self) -> None:
        """The clause is complete, punctuation and breaks included: on to the next clause or line."""
        assert self.plan is not None
        self.count = 0
        if self.clause + 1 < len(self.plan.lines[self.line].clauses):
            self.clause += 1
            return
        self.texts.append(self.plan_text)
        self.plan_text = ""
        self.line, self.clause = self.line + 1, 0
        if self.line >= len(self.plan.lines):
            self.done = True
            return
        source = self.plan.lines[self.line].repeat_of
        if source is not None:
            self.pending = [s for s in [*self.texts[source], *self._breaks()] if s in self.symbols]
            if not self.pending:
                self._next()
            return
        self._begin_line()

    def _begin_line(self) -> None:
        """A free line's bounds: the plan's (or the script's), steered so the lines left meet the target."""
        clause = self.current_clause()
        if clause is not None and clause.fixed:
            return
        script = LATIN_LINE if self.latin else CHINESE_LINE
        low, high = (clause.low, clause.high) if clause is not None else script[:2]
        if self.target and self.plan is not None:
            known, weights = self._rest()
            if weights:
                share = (self.target - self.finished - known) / weights
                tolerance = max(3, round(share / 3))
                low = max(low, min(high - 1, round(share) - tolerance))
                high = min(high, max(low + 1, round(share) + tolerance))
        self.bounds = (low, high)

    def _rest(self) -> tuple[int, int]:
        """(visible characters already decided among the lines left, free lines left counting repeats)."""
        assert self.plan is not None
        known = weights = 0
        for line in self.plan.lines[self.line :]:
            source = line.repeat_of
            if source is not None:
                if source < len(self.texts):
                    known += visible(self.texts[source])
                else:
                    weights += 1
            elif all(c.fixed for c in line.clauses):
                known += sum(c.low + len(c.punct) for c in line.clauses)
            else:
                weights += 1
        return known, weights


def hint_for(prefix: str, config: SampleConfig, register: str = "") -> str:
    """What the model reads before the prefix, not part of the text. The corpus heads every ci with its tune's
    name: read first, it tells the model which form it writes. A Chinese lyric without a tune reads the model's
    ``register`` line (``Checkpoint.register``), unless its prefix heads itself with a tune's name; English,
    teacher-forced text, a line of its own (a name, a title) and a melody read nothing."""
    if config.form:
        return find_tune(config.form).name + "\n"
    if not register or config.force or config.line_mode or config.melody or LATIN.search(prefix):
        return ""
    head, newline, _ = prefix.partition("\n")
    return "" if newline and tune_named(head.strip()) is not None else register


def start_shape(prefix: str, config: SampleConfig, symbols: frozenset[str]) -> Shape | None:
    """A request's shape, the prefix already read into it; None when it asks for none."""
    if config.line_mode or config.force:
        return None
    latin = bool(LATIN.search(prefix))
    plan = plan_of(config.form, config.pattern, config.song, config.target_length, latin)
    if plan is None and not config.rhyme and not config.target_length:
        return None
    if plan is not None and plan.fixed:
        target = 0  # a tune or a pattern has its own length
    elif config.song:
        target = config.target_length or DEFAULT_SONG_LENGTH
    else:
        target = config.target_length
    shape = Shape(plan, config.rhyme, target, latin, symbols)
    for symbol in prefix:
        shape.observe(symbol)
    return shape
