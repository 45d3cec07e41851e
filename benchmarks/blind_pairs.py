"""Blind pairs: a held-out real lyric beside ours from the same opening, for a reader who is not told which is which.

    python benchmarks/blind_pairs.py --out var/blind                          # 10 Song ci pairs, the shipped base
    python benchmarks/blind_pairs.py --out var/blind-jay --corpus jaychou --checkpoint DIR   # a Jay Chou model
    python benchmarks/blind_pairs.py --score var/blind/answers.json --key var/blind/key.json

Numbers cannot see sense, so a reader judges it (issue 17). Each pair is a piece of the corpus's held-out tail
(never trained on) and the model's lyric from the same opening, in the same form: the real one's lines, clause
lengths and rhyme positions (``pattern_of``, as the bot's 填词 writes to a replied lyric; a tune's table form
could differ from this ci's variant of it). Ours is what the bot would show: the best of four candidates (the bot's
``rank``), rhyme on, each clause the best of ``--phrases`` (``charrnn.generation.phrases``), titles left off
both. The order within each pair is shuffled by a seed and written to
``key.json``, apart from ``pairs.md``, which is all the reader gets.

The reader answers, per pair, which text is the machine's, how sure (0.5-1), and 1-5 scores of fluency, sense
and craft for each text, as JSON::

    [{"pair": 1, "machine": "A", "confidence": 0.9,
      "fluency": {"A": 2, "B": 5}, "sense": {"A": 1, "B": 5}, "craft": {"A": 2, "B": 4}}, ...]

``--score`` prints the share of pairs it got right at 80% confidence or more (the issue's "detected"), at any
confidence, and the mean scores of the machine's texts beside the real ones.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from pathlib import Path

from common import corpus_path

from bot.services.quality import rank
from bot.serving.lanes import REPEATED_WORD_PENALTY
from bot.settings import Settings
from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.data import load_corpus, split_corpus
from charrnn.form_mining import blocks_of
from charrnn.generation.batching import generate_many
from charrnn.text.forms import pattern_of, tunes

CANDIDATES = 4
PHRASE_CANDIDATES = Settings.model_fields["phrase_candidates"].default  # as the bot's /write
PASSAGE_LINES = 8  # a Jay Chou passage: about a verse and a chorus
SURE = 0.8
_FIRST_CLAUSE = re.compile(r"^[^，。、；！？,.;!? ]+")


def opening_of(line: str, most: int = 4) -> str:
    """The first words of a lyric: its first clause, at most ``most`` characters (the rest is the model's)."""
    match = _FIRST_CLAUSE.match(line.strip())
    return (match.group(0) if match else line.strip())[:most]


def songci_pieces(count: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    """(real lyric, how ours is asked for) for held-out Song ci of a known tune, spread over the tail (where the
    spread starts depends on the seed: another seed, other ci)."""
    _, held = split_corpus(load_corpus(corpus_path("songci")))
    table = tunes()
    blocks = [(name, lines) for name, lines in blocks_of(held) if name in table and 2 <= len(lines) <= 12]
    step = max(1, len(blocks) // count)
    chosen = blocks[seed % step :: step][:count]
    return [(text, {"pattern": pattern_of(text)}) for text in ("\n".join(lines) for _, lines in chosen)]


def jaychou_pieces(count: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    """(real passage, its line lengths) for passages of the held-out Jay Chou songs, no line repeated within."""
    _, held = split_corpus(load_corpus(corpus_path("jaychou")))
    lines = [" ".join(line.split()) for line in held.split("\n") if line.strip()]
    passages = []
    for start in range(0, len(lines) - PASSAGE_LINES, PASSAGE_LINES):
        passage = lines[start : start + PASSAGE_LINES]
        if len(set(passage)) == len(passage) and all(len(line.replace(" ", "")) >= 4 for line in passage):
            passages.append("\n".join(passage))
    step = max(1, len(passages) // count)
    return [(text, {"pattern": pattern_of(text)}) for text in passages[seed % step :: step][:count]]


def build(args: argparse.Namespace) -> None:
    pieces = (songci_pieces if args.corpus == "songci" else jaychou_pieces)(args.pairs, args.seed)
    ckpt = load_checkpoint(args.checkpoint)
    requests = [(opening_of(real), SampleConfig(rhyme=True, no_repeat_ngram=8, seed=args.seed * 1000 + 10 * n + k,
                                                repeated_word_penalty=REPEATED_WORD_PENALTY if ckpt.register else 1.0,
                                                temperature=args.temperature,
                                                topics=args.topics, phrase_candidates=args.phrases,
                                                **asked))  # type: ignore[arg-type]
                for n, (real, asked) in enumerate(pieces) for k in range(CANDIDATES)]
    generated = generate_many(ckpt.model, ckpt.vocab, requests, words=ckpt.words, register=ckpt.register)
    shuffle = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key, pages = {}, [f"# {len(pieces)} pairs\n\nIn each pair one text is a real lyric and one was written by a "
                      "machine from the same opening words, in the same form.\n"]
    for n, (real, _) in enumerate(pieces):
        ranked = rank(generated[n * CANDIDATES : (n + 1) * CANDIDATES], None)
        ours = ranked[0].text if ranked else generated[n * CANDIDATES].lyric
        machine = shuffle.choice("AB")
        texts = {machine: ours, "B" if machine == "A" else "A": real}
        key[str(n + 1)] = machine
        pages.append(f"## Pair {n + 1}\n\nA:\n\n{texts['A']}\n\nB:\n\n{texts['B']}\n")
    (out / "pairs.md").write_text("\n".join(pages), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
    print(f"{len(pieces)} pairs in {out / 'pairs.md'}; the key, for scoring only, in {out / 'key.json'}")


def score(answers_path: Path, key_path: Path) -> None:
    answers = json.loads(answers_path.read_text(encoding="utf-8"))
    key = json.loads(key_path.read_text(encoding="utf-8"))
    if {str(a["pair"]) for a in answers} != set(key):
        sys.exit(f"the answers cover pairs {sorted(str(a['pair']) for a in answers)}, the key {sorted(key)}")
    right = [a for a in answers if a["machine"] == key[str(a["pair"])]]
    sure = [a for a in right if float(a["confidence"]) >= SURE]
    print(f"detected at {SURE:.0%} confidence or more: {len(sure)} of {len(answers)} ({len(sure) / len(answers):.0%}); "
          f"right at any confidence: {len(right)} of {len(answers)}")
    for measure in ("fluency", "sense", "craft"):
        machine = [a[measure][key[str(a["pair"])]] for a in answers]
        real = [a[measure]["B" if key[str(a["pair"])] == "A" else "A"] for a in answers]
        print(f"{measure}: machine {statistics.mean(machine):.1f}, real {statistics.mean(real):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="where pairs.md and key.json go")
    parser.add_argument("--corpus", choices=("songci", "jaychou"), default="songci")
    parser.add_argument("--checkpoint", default=BASE, help="the model that writes ours (default: the shipped base)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--topics", action="store_true", help="write ours with a keyword plan (charrnn.text.topics)")
    parser.add_argument("--phrases", type=int, default=PHRASE_CANDIDATES,
                        help=f"candidates per clause (charrnn.generation.phrases; default {PHRASE_CANDIDATES}, as the "
                             "bot writes a tune or a pattern; 1: each clause written once)")
    parser.add_argument("--temperature", type=float, default=Settings.model_fields["default_temperature"].default,
                        help="the sampling temperature (default: the bot's)")
    parser.add_argument("--score", type=Path, metavar="ANSWERS", help="score a reader's answers against --key")
    parser.add_argument("--key", type=Path)
    args = parser.parse_args()
    if args.score:
        if args.key is None:
            parser.error("--score needs --key")
        score(args.score, args.key)
    elif args.out:
        build(args)
    else:
        parser.error("give --out to build pairs, or --score with --key")


if __name__ == "__main__":
    main()
