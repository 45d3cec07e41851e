"""The Yuan qu as sung verse: stage directions, role markers and spoken dialogue taken out.

The ``chinese-poetry`` Yuan qu mixes the arias of the zaju plays (and of a few nanxi plays) with their
drama: role markers and directions in brackets (``（正旦唱）``, ``(末云)``, ``(下)``, ``(见灯蛾科，云)``,
``［生上］``) and the dialogue spoken between arias. A model trained on it answers an everyday prompt
with ``(旦)…(合)…(末唱)``. The rules below were read off that file (``python -m charrnn fetch
yuanqu-sung`` prints what each removes); each says why it holds.

1. A bracketed group in a verse line is a role marker or a direction, never sung text: removed. A group may
   span one line break (the source splits lines at "。", also inside ``(旦上。\n云)``), and pairs may be
   mismatched (``(小旦云>``, ``<正末云)``). Tune names quoted in square or tortoise-shell brackets
   (``一曲［满庭芳］``, ``〔水调〕谁家唱``) are part of the verse: they keep their words, lose their brackets.
2. The marker's last speaking verb sets the voice: 唱 (sings) starts verse; 云, 白 or 念 (speaks, recites;
   诗云 and 词云 are recited verse) start speech, which runs across lines (the source cuts one speech into
   several lines) until the next 唱 marker or the end of the block: every block starts sung, since its
   title is the aria's tune. ``云了`` and ``云住`` ("another role speaks, not written down", as in the
   Yuan editions) are followed by the singer again, so they start verse. A bare role (``(生)``: the
   nanxi plays mark song and speech alike) leaves the voice as it was.
3. A lone bracket (its partner missing in the source: ``正末云)若主公``, ``(搽旦云，大人见的是。``) is a
   marker reaching back, or forward, to the nearest punctuation.
4. A title keeps its words and loses its brackets and what they hold: ``正宫・白鹤子（四首）``,
   ``张君瑞闹道场(第一本)・仙吕/赏花时``.
5. Characters the source could not encode and spelt from their parts (``<辶里>``, ``[A12N]``) become "□", the
   mark the corpora already use for a lost character (the sampler never writes it).
6. A line of web debris (an HTTP header pasted into one aria) goes whole.
7. Lines left empty, or with nothing but punctuation and "□", go; so do blocks left with no line.
8. A line's final "。" after another stop (``赏！。``, where ``赏！(众并下)。`` lost its marker, and as the source
   itself often writes it) goes: the model would learn "！。" as a line end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN = "(（［【〔<"
CLOSE = ")）］】〕>"
_NOT_BRACKET = "^()（）［］【】〔〕<>"
_PUNCTUATION = "，。！？；：、,.!?;:"
# A group holds at most 40 characters (the Yuan qu's longest: 25), line breaks included (rule 1). What the
# lone brackets of rule 3 reach stops at punctuation, a line break or another bracket.
TOKEN = re.compile(
    rf"(?P<group>[{OPEN}](?P<inside>[{_NOT_BRACKET}]{{0,40}}?)[{CLOSE}])"
    rf"|(?P<open>[{OPEN}](?P<after>[{_NOT_BRACKET}{_PUNCTUATION}\n]{{0,12}}))"
    rf"|(?P<close>(?P<before>[{_NOT_BRACKET}{_PUNCTUATION}\n]{{0,8}})[{CLOSE}])"
)
# A character spelt from its parts (a glyph the source's encoding lacked), or an encoder's code for one.
COMPOSED = re.compile(r"[<{][\u4e00-\u9fff\u2e80-\u2fdf]{2,3}[>}]|\[[A-Z0-9]{3,6}\]")
DEBRIS = re.compile(r"[A-Za-z]{4,}|=")
DOUBLED_STOP = re.compile(r"(?<=[，。！？；：、])。+$")
TITLE_GROUP = re.compile(r"[(（［【〔][^()（）［］【】〔〕\n]*[)）］】〕]")
STRAY = re.compile(r"[()（）［］【】〔〕\[\]<>]")

# The roles of zaju and nanxi (正末 the male lead, 正旦 the female lead, 净 and 丑 the comics, 孤 an
# official, 卜儿 an old woman, 孛老 an old man, 驾 the emperor...), 合 the chorus (合前: "the chorus as
# before"), 众 the crowd.
ROLES = (
    "正末|正旦|冲末|外末|副末|小末|大末|二末|三末|正未|搽旦|老旦|小旦|外旦|副旦|大旦|二旦|魂旦|旦儿|贴旦"
    "|卜儿|孛老儿|孛老|小生|合前|合同前|和同前|末|旦|生|外|净|丑|贴|孤|众|合|和|驾|卜"
)
# Verbs and words of stage business a direction ends with: speaks, sings, recites, enters, exits,
# "business" (科 in zaju, 介 in nanxi), done, stops.
DIRECTION_ENDS = "云唱白念上下科介了住前"
MARKER = re.compile(rf"(?:{ROLES})(?:[、，,](?:{ROLES}))*|.*[{DIRECTION_ENDS}]", re.DOTALL)
# A role and a speaking verb written without brackets (as a model without brackets may write them). Only
# the unambiguous ones: 孤云 is "a lone cloud", 外云 "beyond the clouds", 生唱 "sings all life long".
BARE_MARKER = re.compile(
    r"(?:正末|正旦|冲末|外末|副末|小末|搽旦|老旦|小旦|外旦|副旦|旦儿|卜儿|孛老|小生)[云唱白]|[末旦净丑贴]唱"
)
VOICE = re.compile(r"[唱云白念]")


@dataclass(frozen=True)
class Cleaning:
    """The cleaned text and what went, for the fetch command to print."""

    text: str
    blocks_before: int
    blocks_after: int
    lines_before: int  # verse lines, titles not counted
    lines_after: int
    chars_before: int
    chars_after: int
    markers: int  # role markers and directions removed
    marker_chars: int
    speech_chars: int  # spoken dialogue removed
    debris_lines: int

    def summary(self) -> str:
        """Lines and characters before and after, and what each rule took."""
        return (
            f"blocks {self.blocks_before:,} -> {self.blocks_after:,}; verse lines {self.lines_before:,} -> "
            f"{self.lines_after:,} ({self.lines_before - self.lines_after:,} removed); characters "
            f"{self.chars_before:,} -> {self.chars_after:,}\n"
            f"removed: {self.markers:,} role markers and directions ({self.marker_chars:,} characters), "
            f"{self.speech_chars:,} characters of spoken dialogue, {self.debris_lines} line(s) of web debris"
        )


def is_marker(inside: str) -> bool:
    """A bracket's content names roles, or ends with a verb or a word of stage business."""
    return MARKER.fullmatch(inside.strip(_PUNCTUATION + " \n")) is not None


def voice_of(marker: str) -> bool | None:
    """True: what follows is sung; False: spoken; None: as before (rule 2)."""
    verbs = list(VOICE.finditer(marker))
    if not verbs:
        return None
    last = verbs[-1]
    if last.group() == "唱":
        return True
    return marker[last.end() :].lstrip(_PUNCTUATION)[:1] in ("了", "住")


def stage_directions(text: str) -> int:
    """How many role markers and stage directions ``text`` holds: bracketed groups that are markers (rule 1),
    and a role with a speaking verb, unbracketed, where that cannot be verse (``正旦唱``, ``卜儿云``)."""
    groups = sum(1 for match in TOKEN.finditer(text) if match.group("group") and is_marker(match.group("inside")))
    return groups + len(BARE_MARKER.findall(TOKEN.sub("\n", text)))


def clean_title(title: str) -> str:
    """Rule 4 (and 5): the title's words without brackets or what they hold."""
    return STRAY.sub("", TITLE_GROUP.sub("", COMPOSED.sub("□", title))).strip()


@dataclass
class _Tally:
    markers: int = 0
    marker_chars: int = 0
    speech_chars: int = 0
    debris_lines: int = 0


def _is_verse(line: str) -> bool:
    """Rule 7: a line holds at least one letter or Han character other than the lost-character mark."""
    return any(ch.isalnum() for ch in line)


def clean_body(lines: list[str], tally: _Tally) -> list[str]:
    """The sung verses of one block (rules 1-3, 5-7), its lines kept apart."""
    kept_lines = []
    for line in lines:
        if DEBRIS.search(line):
            tally.debris_lines += 1
        else:
            kept_lines.append(COMPOSED.sub("□", line))
    text = "\n".join(kept_lines)
    out: list[str] = []
    sung = True
    position = 0

    def keep(piece: str) -> None:
        if sung:
            out.append(piece)
        else:
            tally.speech_chars += len(piece) - piece.count("\n")
            out.append("\n" * piece.count("\n"))

    for match in TOKEN.finditer(text):
        keep(text[position : match.start()])
        position = match.end()
        token = match.group()
        marker = match.group("inside") if match.group("group") else match.group("after") or match.group("before") or ""
        if match.group("group") and token[0] in "［【〔" and not is_marker(marker):
            keep(marker)  # a quoted tune name: part of the verse
            continue
        tally.markers += 1
        tally.marker_chars += len(token) - token.count("\n")
        out.append("\n" * token.count("\n"))
        voice = voice_of(marker)
        if voice is not None:
            sung = voice
    keep(text[position:])
    cleaned = (DOUBLED_STOP.sub("", line.strip()) for line in "".join(out).split("\n"))
    return [line for line in cleaned if _is_verse(line)]


def clean(text: str) -> Cleaning:
    """The sung verses of a corpus in block format (title line, then lines; blocks apart by a blank line)."""
    blocks = [block.split("\n") for block in text.strip("\n").split("\n\n")]
    tally = _Tally()
    out = []
    for title, *body in blocks:
        verses = clean_body(body, tally)
        if verses:
            out.append("\n".join([clean_title(title), *verses]))
    cleaned = "\n\n".join(out) + "\n" if out else ""
    return Cleaning(
        text=cleaned,
        blocks_before=len(blocks),
        blocks_after=len(out),
        lines_before=sum(len(block) - 1 for block in blocks),
        lines_after=sum(block.count("\n") for block in out),
        chars_before=len(text),
        chars_after=len(cleaned),
        markers=tally.markers,
        marker_chars=tally.marker_chars,
        speech_chars=tally.speech_chars,
        debris_lines=tally.debris_lines,
    )
