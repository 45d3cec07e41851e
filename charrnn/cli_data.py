"""The command line's data commands: fetch corpora, build the tune-form and keyword tables, list a checkpoint's
words, export a checkpoint. Registered by ``charrnn.cli``."""

from __future__ import annotations

import argparse
import functools
import random
from collections import Counter
from pathlib import Path

from charrnn.checkpoint import add_words, load_checkpoint, resave, resolve
from charrnn.cli_options import read_corpus
from charrnn.fetch import fetch, remembering
from charrnn.files import write_atomic
from charrnn.form_mining import build as build_forms
from charrnn.generation.rows import PLANNED_LINES
from charrnn.music.corpus import TUNE_CORPUS as TUNES
from charrnn.music.corpus import build_tunes
from charrnn.text.forms import tunes
from charrnn.text.themes import build_themes, save_themes
from charrnn.text.topics import build_topics, keyword_plan, save_topics
from charrnn.text.words import corpus_words


def cmd_export(args: argparse.Namespace) -> int:
    out = resave(load_checkpoint(args.checkpoint), args.out, half=args.half)
    exported = load_checkpoint(out)
    size = sum(p.stat().st_size for p in resolve(out).iterdir())
    print(f"{out}: {size / 1e6:.1f} MB, weights SHA-256 {exported.weights_sha256}")
    return 0


def cmd_words(args: argparse.Namespace) -> int:
    """Record what a checkpoint written before words were recorded learnt: its corpora's English words."""
    texts = [read_corpus(name) for name in args.corpus]  # every file readable before the checkpoint changes
    words = add_words(args.checkpoint, frozenset().union(*map(corpus_words, texts)))
    print(f"{resolve(args.checkpoint)}: {len(words)} English words")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.out and len(args.name) > 1:
        raise ValueError("--out names one file: give one corpus, or --dir for several")
    download = remembering()  # the chinese-poetry corpora share one tarball
    source = Path(args.source) if args.source else None
    for name in args.name:
        out = Path(args.out) if args.out else Path(args.dir) / f"{name}.txt"
        if name == TUNES:
            text, _ = build_tunes(non_commercial=args.non_commercial, report=print)
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, functools.partial(Path.write_text, data=text, encoding="utf-8"))
            print(f"{name}: {out}")
            continue
        path = fetch(name, out, download=download, source=source, report=print)
        print(f"{name}: {path} ({len(path.read_text(encoding='utf-8')):,} characters)")
    return 0


def cmd_forms(args: argparse.Namespace) -> int:
    if args.forms_command == "build":
        if not Path(args.corpus).is_file():
            raise ValueError(f"{args.corpus}: no such file (the Song ci corpus, songci.txt)")
        table = build_forms(Path(args.corpus), Path(args.out))
        print(f"{len(table)} tunes written to {args.out}")
        return 0
    for tune in tunes().values():
        print(f"{tune.name}\t{tune.examples} examples, {tune.share:.0%} in this form\t{tune.pattern}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    if args.topics_command == "build":
        table = build_topics(read_corpus(name) for name in args.corpus)
        save_topics(table, Path(args.out))
        print(f"{len(table)} words with their related ones written to {args.out}")
        return 0
    if args.topics_command == "themes":
        themes = build_themes(read_corpus(name) for name in args.corpus)
        save_themes(themes, Path(args.out))
        counts = Counter(label for labels in themes.values() for label in labels)
        print(f"{len(themes)} words written to {args.out}: " + ", ".join(f"{n} {end}" for end, n in counts.items()))
        return 0
    print(" ".join(keyword_plan(args.prefix, PLANNED_LINES, random.Random(0))) or "(nothing in the table relates)")
    return 0
