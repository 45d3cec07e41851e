"""Mining ci tune forms (词牌) from the Song ci corpus: each tune's prevailing pattern and its rhymes.

The corpus is blocks separated by a blank line: the tune's name, then lines that each end in "。", with
clauses split by "，" and "、". A block's *signature* is its sequence of clause lengths, punctuation and
line breaks. A tune's form is its most common signature, kept when the tune has at least
``MIN_EXAMPLES`` blocks and that signature is at least ``MIN_SHARE`` of them.

Rhymes are found among the examples written to that signature: for every pair of clause ends, the
share of examples where both ends fall in the same of the thirteen rhyme classes (``charrnn.text.rhyme``).
Groups grow from the last clause end (a ci always ends on its rhyme) backwards: a clause end joins the
group of the latest free one when they agree in at least ``RHYME_AGREEMENT`` of the examples; a group
of one is no rhyme. The threshold is not "most examples" because the classes are modern readings:
words of the old entering tone (入声: 月, 雪, 说, 客) that rhymed in Song times fall into several modern
classes, so the rhyme positions of 满江红 and 念奴娇 agree in 43-60% of examples, against at most 18% for
positions that do not rhyme (chance is about 10%).

A group keeps a tone when at least ``TONE_AGREEMENT`` of its rhymes in those examples have it
(``charrnn.text.rhyme.han_tone``): 浣溪沙, 鹧鸪天, 临江仙 rhyme level (96-97%), 蝶恋花, 点绛唇, 卜算子 oblique
(94-95%), 菩萨蛮 changes from oblique to level to oblique to level with its rhyme. Tunes that rhymed on the
entering tone (满江红 36% level, 念奴娇 33%) and 西江月 (level and oblique on one rhyme, 66%) keep none.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from charrnn.text.forms import CLAUSE_ENDS, Clause, Line, Plan, format_pattern
from charrnn.text.rhyme import han_key, han_tone

MIN_EXAMPLES = 10
MIN_SHARE = 0.3
RHYME_AGREEMENT = 0.35
TONE_AGREEMENT = 0.85
# Names of no tune: "the tune's name is lost".
NOT_TUNES = frozenset({"失调名"})

Signature = tuple[tuple[tuple[int, str], ...], ...]  # lines of (length, punctuation) clauses
_PIECE = re.compile(rf"([^{CLAUSE_ENDS}]+)([{CLAUSE_ENDS}])")


def blocks_of(text: str) -> list[tuple[str, list[str]]]:
    """(tune name, lines) for every block of the corpus."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        name, *lines = [line.strip() for line in block.split("\n") if line.strip()]
        blocks.append((name, lines))
    return blocks


def clauses_of(lines: Sequence[str]) -> list[list[str]] | None:
    """Each line's clauses, punctuation included; None when a line does not end in punctuation."""
    out = []
    for line in lines:
        pieces = [chars + punct for chars, punct in _PIECE.findall(line)]
        if "".join(pieces) != line:
            return None
        out.append(pieces)
    return out


def signature(clauses: list[list[str]]) -> Signature:
    return tuple(tuple((len(piece) - 1, piece[-1]) for piece in line) for line in clauses)


def rhyme_groups(examples: Sequence[Sequence[str]], threshold: float = RHYME_AGREEMENT) -> list[int | None]:
    """Each clause end's rhyme group (numbered in order of appearance), None where it does not rhyme.

    ``examples``: for every example, its clause-end characters in order (all of the same length).
    """
    keys = [[han_key(char) for char in ends] for ends in examples]
    count = len(keys[0]) if keys else 0

    def agreement(i: int, j: int) -> float:
        return sum(k[i] is not None and k[i] == k[j] for k in keys) / len(keys)

    group_of: list[int | None] = [None] * count
    seeds: list[int] = []
    for seed in reversed(range(count)):
        if group_of[seed] is not None:
            continue
        members = [j for j in range(count) if group_of[j] is None and j != seed and agreement(seed, j) >= threshold]
        if members:
            for j in [seed, *members]:
                group_of[j] = len(seeds)
            seeds.append(seed)
    # Number the groups by where they first appear, as people read them (A, B, C...).
    order = {group: n for n, group in enumerate(dict.fromkeys(g for g in group_of if g is not None))}
    return [None if g is None else order[g] for g in group_of]


def rhyme_tones(examples: Sequence[Sequence[str]], groups: Sequence[int | None],
                threshold: float = TONE_AGREEMENT) -> tuple[tuple[int, str], ...]:
    """(group, tone) for each rhyme group whose rhymes, over the examples' clause-end characters, hold one tone
    (平 or 仄) at least ``threshold`` of the time."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for ends in examples:
        for char, group in zip(ends, groups, strict=True):
            tone = han_tone(char)
            if group is not None and tone is not None:
                counts[group][tone] += 1
    kept = []
    for group in sorted(counts):
        tone, hits = counts[group].most_common(1)[0]
        if hits >= threshold * sum(counts[group].values()):
            kept.append((group, tone))
    return tuple(kept)


def mine(text: str) -> dict[str, dict[str, object]]:
    """Every tune with a prevailing form: its pattern string, examples and the pattern's share."""
    by_tune: dict[str, list[list[list[str]] | None]] = defaultdict(list)
    for name, lines in blocks_of(text):
        if name not in NOT_TUNES:
            by_tune[name].append(clauses_of(lines))
    table: dict[str, dict[str, object]] = {}
    for name, examples in by_tune.items():
        if len(examples) < MIN_EXAMPLES:
            continue
        signatures = Counter(signature(ex) for ex in examples if ex)
        if not signatures:
            continue
        top, hits = signatures.most_common(1)[0]
        share = hits / len(examples)
        if share < MIN_SHARE:
            continue
        ends = [[piece[-2] for piece in itertools.chain(*ex)] for ex in examples if ex and signature(ex) == top]
        groups = rhyme_groups(ends)
        numbered = iter(groups)
        plan = Plan(tuple(Line(tuple(Clause(n, n, punct, next(numbered)) for n, punct in line)) for line in top),
                    tones=rhyme_tones(ends, groups))
        table[name] = {"pattern": format_pattern(plan), "examples": len(examples), "share": round(share, 3)}
    return dict(sorted(table.items(), key=lambda item: (-int(str(item[1]["examples"])), item[0])))


def build(corpus: Path, out: Path) -> dict[str, dict[str, object]]:
    """Mine ``corpus`` and write the table (one tune a line, so that a change reads as a small diff)."""
    raw = corpus.read_bytes()
    table = mine(raw.decode("utf-8"))
    header = {"corpus": corpus.name, "sha256": hashlib.sha256(raw).hexdigest(), "min_examples": MIN_EXAMPLES,
              "min_share": MIN_SHARE, "rhyme_agreement": RHYME_AGREEMENT, "tone_agreement": TONE_AGREEMENT}
    rows = ",\n".join(f"  {json.dumps(name, ensure_ascii=False)}: {json.dumps(entry, ensure_ascii=False)}"
                      for name, entry in table.items())
    head = json.dumps(header, ensure_ascii=False)[1:-1]
    out.write_text(f"{{{head},\n\"tunes\": {{\n{rows}\n}}}}\n", encoding="utf-8")
    return table
