"""What a /write asks for besides its words: a ci tune by name, a pattern of line lengths, or the lines of the
lyric it replies to (填词). Plain strings out (``charrnn.text.forms`` reads them), so a request stays plain data.

``/write 浣溪沙：一曲新词`` (or ``浣溪沙: …``) writes that tune; ``/write 7,7,5,7：春风`` (full-width ``，`` too)
writes four lines of those lengths. Only the text before the first colon is looked at, and it is a form only
when it is one: a known tune name always is, a pattern only when it has two lines or more (``12:30`` is a
time, ``他说：`` is words), so a prefix may contain a colon. People also leave the colon out: a tune's name
standing alone (``/write 菩萨蛮``) is that tune, opened by the model (before words it stays words: 一剪梅 and 长相思
are also a pop song's and everyday words), and three line lengths or more, alone or before Chinese words
(``7,7,5,7 秋夜``; each 2 to 40, so ``3,4 个人``, ``1,000 miles`` and ``2,3 years`` stay words), a pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charrnn.text.forms import Plan, format_pattern, parse_pattern, pattern_of, tune_named
from charrnn.text.words import LATIN

COLONS = ":："
_BARE_PATTERN = re.compile(r"\d+(?:\s*[,，]\s*\d+)+")  # 7，7，5，7: full-width commas separate lines here
_PATTERN_START = re.compile(r"\d")
# Without a colon: three line lengths or more, then a space and the words, or nothing.
_SPACED_PATTERN = re.compile(r"([0-9]+(?:\s*[,，]\s*[0-9]+){2,})(?:\s+(.*))?", re.DOTALL)
SPACED_LINE_CHARS = range(2, 41)


@dataclass(frozen=True)
class Asked:
    """A /write: the words to continue, and at most one of a tune (its table name) and a pattern."""

    words: str
    form: str = ""
    pattern: str = ""


def known_tune(name: str) -> str | None:
    """The table name of a tune called ``name`` (or by one of its other names); None for anything else, near
    misses of a tune's name included: words are not a misspelt tune."""
    tune = tune_named(name) if len(name) <= 32 else None
    return tune.name if tune is not None else None


def written_form(setting: str, asked: Asked) -> Asked:
    """The form ``asked`` is written in: its own tune or pattern when it names one, else the tune of the person's
    or group's form setting (``setting``, a table name or "" for free lines), for Chinese words only: a ci tune
    is Chinese, and an English opening ("I miss you") is no ci's first line."""
    if asked.form or asked.pattern or not setting or LATIN.search(asked.words):
        return asked
    return Asked(asked.words, form=setting)


def pattern_text(text: str) -> str | None:
    """``text`` as a pattern string of two lines or more, or None when it is not one."""
    text = text.strip()
    if not _PATTERN_START.match(text):
        return None
    if _BARE_PATTERN.fullmatch(text):
        text = re.sub(r"\s*[,，]\s*", ",", text)
    try:
        plan = parse_pattern(text)
    except ValueError:
        return None
    return text if len(plan.lines) >= 2 else None


def parse_write(text: str) -> Asked:
    """What ``text`` (the words after /write, or a private message) asks for."""
    cut = next((i for i, c in enumerate(text) if c in COLONS), None)
    if cut is not None:
        head, words = text[:cut].strip(), text[cut + 1 :].strip()
        if (form := known_tune(head)) is not None:
            return Asked(words, form=form)
        if (pattern := pattern_text(head)) is not None:
            return Asked(words, pattern=pattern)
    if (form := known_tune(text.strip())) is not None:
        return Asked("", form=form)
    spaced = _SPACED_PATTERN.fullmatch(text.strip())
    if spaced is not None:
        head, words = spaced.group(1), (spaced.group(2) or "").strip()
        lengths_ok = all(int(n) in SPACED_LINE_CHARS for n in re.findall(r"[0-9]+", head))
        if lengths_ok and not LATIN.search(words) and (pattern := pattern_text(head)) is not None:
            return Asked(words, pattern=pattern)
    return Asked(text)


def lines_pattern(text: str, max_chars: int) -> str | None:
    """The pattern of a lyric of two lines or more (``pattern_of``: its rhyme's tone kept, if one), cut to its whole
    lines within ``max_chars`` visible characters; None for a single line, which stays a prefix as before."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return None
    try:
        plan = parse_pattern(pattern_of(text))
    except ValueError:
        return None
    kept, total = [], 0
    for line in plan.lines:
        total += sum(c.low + len(c.punct.strip()) for c in line.clauses)
        if total > max_chars:
            break
        kept.append(line)
    if len(kept) < 2:
        return None
    groups = {c.rhyme for line in kept for c in line.clauses}
    return format_pattern(Plan(tuple(kept), tones=tuple((g, t) for g, t in plan.tones if g in groups)))


def pattern_chars(pattern: str) -> int:
    """Visible characters a lyric written to ``pattern`` has (punctuation included): what it costs to write."""
    plan = parse_pattern(pattern)
    return sum(c.low + len(c.punct.strip()) for line in plan.lines for c in line.clauses)


def lyric_body(text: str, notes: tuple[str, ...] = ()) -> str:
    """The lyric of one of the bot's messages: without its title (the first block, when it is one line) and
    without the notes appended after it (blocks starting with one of ``notes``)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    if len(blocks) > 1 and "\n" not in blocks[0].strip():
        blocks = blocks[1:]
    return without_notes("\n\n".join(blocks), notes)


def without_notes(text: str, notes: tuple[str, ...]) -> str:
    """The text without the notes the bot appends under a lyric (its last blocks starting with one of ``notes``)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    while len(blocks) > 1 and any(blocks[-1].startswith(note) for note in notes if note):
        blocks = blocks[:-1]
    return "\n\n".join(blocks)

