"""Lyric forms as line plans: ci tunes mined from the Song ci corpus, explicit patterns, song forms.

A plan is what ``charrnn.generation.shape`` writes to: lines of clauses, each clause a length in characters (or
bounds, for a free line), the punctuation that ends it, and its rhyme group (None: not a rhyme position).
Plans travel as short pattern strings, so a request stays plain data (a bot stores it, a worker gets it
as JSON)::

    7A。/7A。/7A。/7，7A。/7A。 A=平         浣溪沙: the fourth line's first clause does not rhyme; the rhyme level
    7A。/7A。/5B。/5B。/5C。/5C。/5D。/5D。  菩萨蛮: the rhyme changes every two lines
    7,7,5,7                              four bare lines; with no letter at all, every line rhymes (A)
    4，4A|4，4A A=言前                    two sections, the rhyme given

A line is clauses ``<length><group letter?><punctuation?>`` (``_`` for a space); lines are separated
by ``/`` or an ASCII comma, sections (a verse, a chorus: structure only, no blank line is written) by
``|``. ``A=言前`` gives a group's rhyme (one of ``charrnn.text.rhyme.THIRTEEN_CLASSES``) instead of letting
its first rhyme position choose it, ``A=平`` (or ``A=仄``) the tone its rhymes keep (``charrnn.text.rhyme.han_tone``);
``-`` says no line rhymes. Fixed lengths count Chinese characters.

The tune table ships as ``charrnn/text/ci_forms.json``, built by ``python -m charrnn forms build songci.txt``
(``charrnn.form_mining``).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from charrnn.text.lyrics import lines_of
from charrnn.text.rhyme import THIRTEEN_CLASSES, TONES, line_key, line_tone

FORMS_PATH = Path(__file__).with_name("ci_forms.json")
CLAUSE_ENDS = "，、。？！；："
PHRASE_ENDS = frozenset(CLAUSE_ENDS + ",.;:?!\n")  # what ends a clause, in Chinese and English lyrics
# A clause of a modern lyric may end in a space (phrases are separated by spaces): "_" in a pattern.
_PIECES = re.compile(rf"([^{CLAUSE_ENDS} ]+)([{CLAUSE_ENDS} ]?)")
MAX_CLAUSE = 40
MAX_LINES = 400
TONE_RHYMES = 4  # rhyme positions that must all share a tone before pattern_of keeps it
_CLAUSE = re.compile(rf"(\d+)([A-Z]?)([{CLAUSE_ENDS}_]?)")
_GIVEN = re.compile(r"([A-Z])=(\S+)")


@dataclass(frozen=True)
class Clause:
    """``low`` to ``high`` characters, then ``punct`` ("" for none); ``low == high`` is a fixed length."""

    low: int
    high: int
    punct: str = ""
    rhyme: int | None = None  # the rhyme group whose rhyme this clause ends on; None: free

    @property
    def fixed(self) -> bool:
        return self.low == self.high


@dataclass(frozen=True)
class Line:
    clauses: tuple[Clause, ...]
    section_end: bool = False  # the last line of a section (a verse, a chorus)
    repeat_of: int | None = None  # an earlier line written again verbatim (the chorus that returns)


@dataclass(frozen=True)
class Plan:
    lines: tuple[Line, ...]
    keys: tuple[tuple[int, str], ...] = ()  # given rhymes: (group, key)
    tones: tuple[tuple[int, str], ...] = ()  # the tone (平 or 仄) a group's rhymes keep, where they keep one

    @property
    def groups(self) -> int:
        return 1 + max((c.rhyme for line in self.lines for c in line.clauses if c.rhyme is not None), default=-1)

    @property
    def fixed(self) -> bool:
        """Every line has its length: the plan, not a requested length, decides how long the lyric is."""
        return all(line.repeat_of is not None or all(c.fixed for c in line.clauses) for line in self.lines)


@dataclass(frozen=True)
class Tune:
    name: str
    pattern: str
    examples: int  # blocks of this tune in the corpus
    share: float  # of those, the share written to the prevailing pattern


# --- patterns ------------------------------------------------------------------------------------


def parse_pattern(text: str) -> Plan:
    """The plan a pattern string describes (see the module's docstring); ``ValueError`` says what is wrong."""
    body, *given = text.split() or [""]
    keys: list[tuple[int, str]] = []
    tones: list[tuple[int, str]] = []
    unrhymed = "-" in given
    for item in (item for item in given if item != "-"):
        match = _GIVEN.fullmatch(item)
        if not match or match.group(2) not in (*THIRTEEN_CLASSES, *TONES):
            raise ValueError(f"a given rhyme is like A=言前 (one of {', '.join(THIRTEEN_CLASSES)}) or a tone, A=平 "
                             f"or A=仄; got {item!r}")
        (tones if match.group(2) in TONES else keys).append((ord(match.group(1)) - ord("A"), match.group(2)))
    lines: list[Line] = []
    sections = body.split("|")
    for s, section in enumerate(sections):
        items = [item for item in re.split(r"[/,]", section) if item]
        for n, item in enumerate(items):
            clauses = _parse_line(item, text)
            lines.append(Line(clauses, section_end=n == len(items) - 1 and s < len(sections) - 1))
    if not lines or len(lines) > MAX_LINES:
        raise ValueError(f"a pattern has 1 to {MAX_LINES} lines, like 7,7,5,7; got {text!r}")
    if not unrhymed and not any(c.rhyme is not None for line in lines for c in line.clauses):
        # No letter: every line ends on the song's one rhyme, as modern lyrics do.
        lines = [Line((*line.clauses[:-1], _with(line.clauses[-1], 0)), line.section_end) for line in lines]
    plan = Plan(tuple(lines), tuple(keys), tuple(tones))
    used = {c.rhyme for line in plan.lines for c in line.clauses}
    # A rhyme for a letter past the pattern's last is refused, as ever (patterns people stored still parse); a tone
    # must name a group with rhyme positions.
    if any(group >= plan.groups for group, _ in keys) or any(group not in used for group, _ in tones):
        raise ValueError(f"a given rhyme names a group the pattern does not use: {text!r}")
    if len({g for g, _ in keys}) < len(keys) or len({g for g, _ in tones}) < len(tones):
        raise ValueError(f"a group's rhyme or tone is given twice: {text!r}")
    return plan


def _parse_line(item: str, text: str) -> tuple[Clause, ...]:
    if not re.fullmatch(f"(?:{_CLAUSE.pattern})+", item):
        raise ValueError(f"cannot read {item!r} in the pattern {text!r}: lines are like 7 or 4，5A。")
    clauses = []
    for length, letter, punct in _CLAUSE.findall(item):
        if not 1 <= int(length) <= MAX_CLAUSE:
            raise ValueError(f"clause lengths are 1 to {MAX_CLAUSE} characters, got {length} in {text!r}")
        group = ord(letter) - ord("A") if letter else None
        clauses.append(Clause(int(length), int(length), punct.replace("_", " "), group))
    return tuple(clauses)


def _with(clause: Clause, group: int) -> Clause:
    return Clause(clause.low, clause.high, clause.punct, group)


def format_pattern(plan: Plan) -> str:
    """The pattern string of a plan of fixed lines (the inverse of ``parse_pattern``)."""
    parts: list[str] = []
    for line in plan.lines:
        if not all(c.fixed for c in line.clauses):
            raise ValueError("only fixed lengths have a pattern string")
        item = "".join(f"{c.low}{_letter(c.rhyme)}{c.punct.replace(' ', '_')}" for c in line.clauses)
        parts.append(item + ("|" if line.section_end else "/"))
    body = "".join(parts).rstrip("/|")
    unrhymed = ["-"] if plan.groups == 0 else []  # else parsing it back would rhyme every line
    given = [f"{_letter(group)}={value}" for group, value in (*plan.keys, *plan.tones)]
    return " ".join([body, *unrhymed, *given])


def _letter(group: int | None) -> str:
    return "" if group is None else string.ascii_uppercase[group]


def pattern_of(lyric: str, keep_rhyme: bool = False) -> str:
    """The pattern of an existing lyric, to write new words to the same lengths (填词).

    Clauses are split at punctuation and at spaces (modern lyrics separate phrases with spaces); a blank
    line is a section break. The rhyme positions are the line ends that share the lyric's most common
    line-end rhyme (when at least two do), and keep their tone when all of them, ``TONE_RHYMES`` or more, have
    one (a ci's level or oblique rhyme); ``keep_rhyme`` also keeps that rhyme for the new words.
    """
    sections = [[line for line in block.split("\n") if line.strip()] for block in re.split(r"\n\s*\n", lyric)]
    sections = [section for section in sections if section]
    keys = [line_key(line) for section in sections for line in section]
    counted = [key for key in keys if key in THIRTEEN_CLASSES]
    main = max(set(counted), key=counted.count) if counted else None
    rhymed = main is not None and counted.count(main) >= 2
    lines: list[Line] = []
    rhyme_tones: list[str | None] = []  # of the rhyme positions the pattern keeps
    index = 0
    for s, section in enumerate(sections):
        for n, line in enumerate(section):
            clauses = _clauses_of(line, rhyme=0 if rhymed and keys[index] == main else None)
            index += 1
            if clauses:
                lines.append(Line(clauses, section_end=n == len(section) - 1 and s < len(sections) - 1))
                if clauses[-1].rhyme == 0:
                    rhyme_tones.append(line_tone(line))
    if not lines:
        raise ValueError("the lyric has no characters to measure")
    given = ((0, main),) if keep_rhyme and rhymed and main is not None and rhyme_tones else ()
    # A tone kept by every rhyme of a ci; two or three rhymes of a modern song share one by chance as often as not.
    tone = rhyme_tones[0] if len(rhyme_tones) >= TONE_RHYMES and len(set(rhyme_tones)) == 1 else None
    return format_pattern(Plan(tuple(lines), given, ((0, tone),) if tone is not None else ()))


def _clauses_of(line: str, rhyme: int | None) -> tuple[Clause, ...]:
    pieces = _PIECES.findall(" ".join(line.split()))
    clauses = [Clause(len(chars), len(chars), punct) for chars, punct in pieces]
    if clauses:
        clauses[-1] = _with(clauses[-1], rhyme) if rhyme is not None else clauses[-1]
    return tuple(c for c in clauses if c.low <= MAX_CLAUSE)


# --- ci tunes ------------------------------------------------------------------------------------


@functools.cache
def tunes() -> dict[str, Tune]:
    """The shipped tune table, by name."""
    data = json.loads(FORMS_PATH.read_text(encoding="utf-8"))
    return {name: Tune(name, **fields) for name, fields in data["tunes"].items()}


def tune_named(name: str) -> Tune | None:
    """The tune called ``name`` or known by it as one of its other names (``望江南・忆江南`` answers to both; of
    two tunes sharing a name, the one with more examples); None for anything else, near misses included."""
    table = tunes()
    name = name.strip()
    if name in table:
        return table[name]
    aliases = [tune for tune in table.values() if name in tune.name.split("・")]
    return max(aliases, key=lambda tune: tune.examples) if aliases else None


def find_tune(name: str) -> Tune:
    """A tune by its name or one of its other names (``tune_named``); ``ValueError`` lists close names for an
    unknown one."""
    tune = tune_named(name)
    if tune is not None:
        return tune
    table, name = tunes(), name.strip()
    names = list(table) + [alias for tune in table for alias in tune.split("・")]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.3)
    if not close:
        close = [tune.name for tune in sorted(table.values(), key=lambda tune: -tune.examples)[:5]]
    raise ValueError(f"unknown tune {name!r}; close ones: {', '.join(dict.fromkeys(close))} "
                     "(python -m charrnn forms list shows all)")


def tune_plan(name: str) -> Plan:
    return parse_pattern(find_tune(name).pattern)


# --- song forms ----------------------------------------------------------------------------------

SONG_FORMS = ("verse-chorus",)
# What a model that learnt the Song ci reads before a Chinese lyric without a tune of its own: a tune's name line, as
# its corpus heads every ci. Without it everyday openings (我想你, 我们的爱) fell into the Yuan qu's spoken register
# (也么哥, 儿女婿, 孩儿: 6 of 24 free lyrics of the base); after 浣溪沙 (lines of seven, no lead-in words), none, and
# lead-in words (待莫教、) opened 12% of lines instead of 35%. Two blind readers preferred it in 38 of 48 sets,
# fluency +0.79, sense +0.75, craft +0.83 (each +-0.15). 蝶恋花 and 念奴娇 led in more and kept some Yuan qu.
REGISTER_TUNE = "浣溪沙"
# Free lines: bounds and the usual length, in visible characters. A Chinese lyric line is a phrase or two
# (a ci sentence: the base writes 11 to 14, punctuation included); an English one is a few words.
CHINESE_LINE = (4, 24, 12)
LATIN_LINE = (12, 60, 32)
DEFAULT_SONG_LENGTH = 160


def song_plan(kind: str, target: int = 0, latin: bool = False) -> Plan:
    """Verses and a chorus that returns verbatim (verse, chorus, verse, chorus...), sized to ``target``.

    Sections have ``s`` lines and there are ``p`` verse-chorus pairs, both chosen so that ``2·p·s`` lines
    of the usual length come near the target (20 characters: one line each; 600: three pairs of eight);
    the lines themselves are free, ending on the song's rhyme when rhyme is on (every line is a rhyme
    position, group 0). Only the first chorus is written; later ones repeat it.
    """
    if kind not in SONG_FORMS:
        raise ValueError(f"unknown song form {kind!r}; choose one of {', '.join(SONG_FORMS)}")
    low, high, usual = LATIN_LINE if latin else CHINESE_LINE
    target = target or DEFAULT_SONG_LENGTH
    size = min(8, max(1, round(target / (4 * usual))))
    pairs = max(1, round(target / (2 * size * usual)))
    free = (Clause(low, high, "", 0),)
    lines: list[Line] = []
    chorus_start: int | None = None
    for section in range(2 * pairs):
        chorus = section % 2 == 1
        first_chorus = chorus and chorus_start is None
        if first_chorus:
            chorus_start = len(lines)
        for n in range(size):
            repeat = chorus_start + n if chorus and not first_chorus and chorus_start is not None else None
            lines.append(Line(free, section_end=n == size - 1 and section < 2 * pairs - 1, repeat_of=repeat))
    return Plan(tuple(lines))


def plan_of(form: str = "", pattern: str = "", song: str = "", target: int = 0, latin: bool = False) -> Plan | None:
    """The plan a request names (at most one of a tune, a pattern and a song form), or None."""
    named = [name for name, value in (("form", form), ("pattern", pattern), ("song", song)) if value]
    if len(named) > 1:
        raise ValueError(f"choose one of a tune, a pattern and a song form, not {' and '.join(named)}")
    if form:
        return tune_plan(form)
    if pattern:
        return parse_pattern(pattern)
    if song:
        return song_plan(song, target, latin)
    return None


# --- checking a lyric against its plan ------------------------------------------------------------


def follows(text: str, plan: Plan, punctuation: bool = True) -> bool:
    """The lyric has the plan's lines: each fixed clause exactly its length (and its punctuation, unless
    ``punctuation`` is False: a vocabulary without "，" separates clauses with a space), each returning
    line a verbatim copy."""
    lines = lines_of(text)
    if len(lines) != len(plan.lines):
        return False
    for line, spec in zip(lines, plan.lines, strict=True):
        if spec.repeat_of is not None:
            if line != lines[spec.repeat_of]:
                return False
        elif all(c.fixed for c in spec.clauses):
            pieces = _PIECES.findall(line)
            if [(len(chars), punct if punctuation else "") for chars, punct in pieces] != [
                (c.low, c.punct if punctuation else "") for c in spec.clauses
            ]:
                return False
    return True


def plan_rhymes(text: str, plan: Plan) -> tuple[int, int]:
    """(rhyme positions on their group's rhyme, rhyme positions) of a lyric written to ``plan``.

    A group's rhyme is the given one, or its first position's (which is then not counted). Returning
    lines are not counted again.
    """
    keys = dict(plan.keys)
    hits = total = 0
    for line, spec in zip(lines_of(text), plan.lines, strict=False):
        if spec.repeat_of is not None:
            continue
        ends = [chars for chars, _ in _PIECES.findall(line)]
        clauses = spec.clauses
        if len(ends) != len(clauses) or not all(c.fixed for c in clauses):
            ends, clauses = [line], clauses[-1:]  # a free line (or a broken one): its end is what rhymes
        for chars, clause in zip(ends, clauses, strict=True):
            if clause.rhyme is None:
                continue
            key = line_key(chars)
            if clause.rhyme not in keys:
                if key is not None:
                    keys[clause.rhyme] = key
                continue
            total += 1
            hits += key == keys[clause.rhyme]
    return hits, total


def plan_tones(text: str, plan: Plan) -> tuple[int, int]:
    """(rhyme positions on their group's tone, rhyme positions of a group that keeps one) of a lyric written to
    ``plan``'s fixed lines."""
    tones = dict(plan.tones)
    hits = total = 0
    for line, spec in zip(lines_of(text), plan.lines, strict=False):
        ends = [chars for chars, _ in _PIECES.findall(line)]
        if spec.repeat_of is not None or len(ends) != len(spec.clauses):
            continue
        for chars, clause in zip(ends, spec.clauses, strict=True):
            if clause.rhyme in tones:
                total += 1
                hits += line_tone(chars) == tones[clause.rhyme]
    return hits, total
