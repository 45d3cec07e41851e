"""Free lines as the bot writes them: everyday openings, how often characters come back, and A/B sets for readers.

    python benchmarks/free_lines.py                                         # the bot's settings, seeds 1 and 2
    python benchmarks/free_lines.py --penalty 1 --out var/free-before.json  # characters free to come back
    python benchmarks/free_lines.py --ab var/free-before.json var/free-now.json --out var/ab

A plain Chinese ``/write`` (or a plain message) of 160 characters is free lines on the song's rhyme: four
candidates, each clause the best of ``phrase_candidates``, the bot's temperature, shown the best by the bot's
``rank``; ``lyric_config`` with ``ci`` set, as for the shipped base. Each opening of ``EVERYDAY`` is written once
per seed. Printed: the share of Chinese characters that are a character's second, third, fourth-or-more use in
its lyric (a reduplication's second character aside, 悠悠), beside the Song ci's held-out ci; ``--out`` keeps the
lyrics as JSON. ``--penalty`` sets ``repeated_char_penalty`` instead of the bot's
(``bot.serving.lanes.REPEATED_CHAR_PENALTY``).

``--ab A.json B.json --out DIR`` writes two readers' files of the same sets, X and Y in opposite orders
(``reader1.md``, ``reader2.md``), and ``key.json`` (where B stands in reader1's); a reader (a helper that sees
neither the key nor the code) answers per set which lyric is better and scores fluency, sense and craft 1-5, as
``[{"set": 1, "better": "X", "fluency": {"X": 3, "Y": 2}, "sense": {...}, "craft": {...}}, ...]``;
``--score KEY ANSWERS1 ANSWERS2`` prints how often B was preferred and B's mean score differences.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
from pathlib import Path

from common import corpus_path

from bot.services.quality import rank
from bot.serving.jobs import GenerationJob
from bot.serving.lanes import REPEATED_CHAR_PENALTY, lyric_config
from bot.settings import Settings
from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.data import load_corpus, split_corpus
from charrnn.form_mining import blocks_of
from charrnn.generation.batching import generate_many
from charrnn.text.lyrics import character_reuse

EVERYDAY = ("我想你", "窗外的麻雀", "秋风", "离别", "故乡的小河", "春天来了", "一个人走在路上", "我们的爱",
            "下雨天", "毕业", "月光", "回家")
CANDIDATES = 4
LENGTH = 160
USES = ("second", "third", "fourth or more")


def write(seeds: list[int], penalty: float) -> list[dict[str, str]]:
    """The lyric the bot would show for each opening and seed."""
    base = load_checkpoint(BASE)
    defaults = Settings.model_fields
    lyrics = []
    for seed in seeds:
        requests = []
        for n, prefix in enumerate(EVERYDAY):
            job = GenerationJob(prefix=prefix, temperature=defaults["default_temperature"].default, length=LENGTH,
                                candidates=CANDIDATES, rhyme=True, phrases=defaults["phrase_candidates"].default)
            for k in range(CANDIDATES):
                config = lyric_config(job, seed * 1000 + 10 * n + k, ci=bool(base.register))
                requests.append((prefix, dataclasses.replace(config, repeated_char_penalty=penalty)))
        generated = generate_many(base.model, base.vocab, requests, words=base.words, register=base.register)
        for n, prefix in enumerate(EVERYDAY):
            shown = rank(generated[n * CANDIDATES : (n + 1) * CANDIDATES], None)
            lyrics.append({"prefix": prefix, "seed": str(seed),
                           "lyric": shown[0].text if shown else generated[n * CANDIDATES].lyric})
    return lyrics


def ab_sets(first: Path, second: Path, out: Path) -> None:
    a = [item["lyric"] for item in json.loads(first.read_text(encoding="utf-8"))]
    b = [item["lyric"] for item in json.loads(second.read_text(encoding="utf-8"))]
    if len(a) != len(b):
        raise SystemExit(f"{first} holds {len(a)} lyrics, {second} {len(b)}: not the same sets")
    shuffle = random.Random(7)
    head = ("# Lyric sets\n\nEach set holds two lyrics (X and Y) written from the same opening words. "
            "Read both as song lyrics.\n")
    readers: tuple[list[str], list[str]] = ([head], [head])
    key = {}
    for n, (x, y) in enumerate(zip(a, b, strict=True), 1):
        b_first = shuffle.random() < 0.5
        key[n] = "X" if b_first else "Y"
        one, two = (y, x) if b_first else (x, y)
        readers[0].append(f"## Set {n}\n\nX:\n\n{one}\n\nY:\n\n{two}\n")
        readers[1].append(f"## Set {n}\n\nX:\n\n{two}\n\nY:\n\n{one}\n")
    out.mkdir(parents=True, exist_ok=True)
    for index, pages in enumerate(readers, 1):
        (out / f"reader{index}.md").write_text("\n".join(pages), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key), encoding="utf-8")
    print(f"{len(a)} sets in {out}/reader1.md and reader2.md; the key, for scoring only, in {out}/key.json")


def score(key_path: Path, answers: list[Path]) -> None:
    key = {int(n): side for n, side in json.loads(key_path.read_text(encoding="utf-8")).items()}
    preferred, differences = [], {"fluency": [], "sense": [], "craft": []}  # type: ignore[var-annotated]
    for reader, path in enumerate(answers):
        for answer in json.loads(path.read_text(encoding="utf-8")):
            b_side = key[int(answer["set"])]
            if reader % 2:  # reader2 saw every set the other way round
                b_side = "Y" if b_side == "X" else "X"
            a_side = "Y" if b_side == "X" else "X"
            preferred.append(answer["better"] == b_side)
            for measure, values in differences.items():
                values.append(answer[measure][b_side] - answer[measure][a_side])
    print(f"B preferred in {sum(preferred)} of {len(preferred)}")
    for measure, values in differences.items():
        error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
        print(f"{measure}: B - A {statistics.mean(values):+.2f} +- {error:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2", help="comma-separated; each writes every opening once")
    parser.add_argument("--penalty", type=float, default=REPEATED_CHAR_PENALTY,
                        help=f"repeated_char_penalty (default the bot's, {REPEATED_CHAR_PENALTY:g}; 1: off)")
    parser.add_argument("--out", type=Path, help="the lyrics as JSON (or, with --ab, the readers' folder)")
    parser.add_argument("--ab", nargs=2, type=Path, metavar=("A", "B"), help="A/B sets of two --out files")
    parser.add_argument("--score", nargs=3, type=Path, metavar=("KEY", "ANSWERS1", "ANSWERS2"))
    args = parser.parse_args()
    if args.score:
        score(args.score[0], list(args.score[1:]))
        return
    if args.ab:
        if args.out is None:
            parser.error("--ab needs --out, the readers' folder")
        ab_sets(args.ab[0], args.ab[1], args.out)
        return
    lyrics = write([int(seed) for seed in args.seeds.split(",")], args.penalty)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(lyrics, ensure_ascii=False, indent=1), encoding="utf-8")
    _, held = split_corpus(load_corpus(corpus_path("songci")))
    real = character_reuse(["\n".join(lines) for _, lines in blocks_of(held)])
    ours = character_reuse([item["lyric"] for item in lyrics])
    print(f"{len(lyrics)} free lyrics of {LENGTH} characters, repeated_char_penalty {args.penalty:g}")
    print("a character's use | ours | the Song ci's held-out ci")
    for name, mine, theirs in zip(USES, ours, real, strict=True):
        print(f"{name} | {mine:.1%} | {theirs:.1%}")


if __name__ == "__main__":
    main()
