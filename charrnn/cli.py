"""``python -m charrnn train|transfer|generate|eval|export|words|fetch|forms|topics|demo``.

Every foreseeable mistake (bad corpus, bad number, missing or corrupted checkpoint) is one line on
stderr and exit code 2; a traceback means a bug in charrnn. ``base`` names the pretrained model shipped
with the package wherever a checkpoint is expected.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from charrnn.checkpoint import BASE, CheckpointError, load_checkpoint
from charrnn.cli_data import cmd_export, cmd_fetch, cmd_forms, cmd_topics, cmd_words
from charrnn.cli_options import (
    ProgressBar,
    add_model_args,
    add_sample_args,
    add_train_args,
    finite_float,
    positive_int,
    read_corpus,
    sample_config_from,
    train_config_from,
)
from charrnn.config import SampleConfig
from charrnn.data import CorpusError, demo_corpus_path, load_corpus, split_corpus
from charrnn.evaluate import REFERENCE_MIN_COUNT, HeldOut, evaluate, reference_vocab
from charrnn.fetch import CORPORA, FetchError
from charrnn.generation.batching import choose_titles, generate_many
from charrnn.model import ModelConfig
from charrnn.music import cli as music_cli
from charrnn.music.corpus import TUNE_CORPUS as TUNES
from charrnn.pipeline import InitFrom, train_model
from charrnn.sizing import size_for_text
from charrnn.text.forms import FORMS_PATH
from charrnn.text.themes import THEMES_PATH
from charrnn.text.titles import form_title, titled
from charrnn.text.topics import TOPICS_PATH
from charrnn.train_config import TrainConfig, select_device
from charrnn.transfer import TransferConfig, transfer

DEMO_PREFIXES = ("我", "夜", "The ")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m charrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a text corpus")
    train.add_argument("corpus", nargs="+", help="UTF-8 text file(s), or 'demo'; each keeps its own held-out tail")
    train.add_argument("--out", required=True, help="checkpoint directory (best/ and last/ inside)")
    add_model_args(train)
    add_train_args(train)
    train.add_argument("--init-from", metavar="CHECKPOINT",
                       help=f"start from a trained model ('{BASE}': the shipped one) instead of random weights")
    train.add_argument("--replay", metavar="FILE", help="with --init-from: old text mixed into every batch")
    train.add_argument("--replay-fraction", type=finite_float, default=0.5)
    train.add_argument("--resume", action="store_true", help="continue from OUT/last exactly")
    train.add_argument("--json", action="store_true", help="print final metrics as JSON (last line)")

    tr = sub.add_parser("transfer", help="the pretrained base, transferred to a corpus (charrnn.transfer)")
    tr.add_argument("corpus", help="UTF-8 text file; its last 10%% stays held out, as in training")
    tr.add_argument("--out", required=True, help="work directory; the model is written to OUT/mixture")
    tr.add_argument("--init-from", default=BASE, metavar="CHECKPOINT", help=f"the pretrained model (default {BASE})")
    tr.add_argument("--minutes", type=finite_float, default=10.0, help="for both components together")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--json", action="store_true")

    music_cli.add_parser(sub)

    gen = sub.add_parser("generate", help="sample lyrics from a checkpoint")
    gen.add_argument("checkpoint", help=f"a checkpoint directory, or '{BASE}'")
    add_sample_args(gen)
    gen.add_argument("--num", type=positive_int, default=1, help="samples, generated as one batch")
    gen.add_argument("--raw", action="store_true", help="the text as generated, spaces and empty lines kept")
    gen.add_argument("--titles", type=positive_int, default=0, metavar="N",
                     help="title each lyric by its own words: the phrase it repeats, its short opening, or the "
                          "best fitting of up to N of its phrases")
    gen.add_argument("--device", default="auto")
    gen.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval", help="held-out perplexity and bits per character")
    ev.add_argument("checkpoint", help=f"a checkpoint directory, or '{BASE}'")
    ev.add_argument("corpus", help="the corpus; the held-out part is its tail, as in training")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="copy a checkpoint, optionally in half precision (half the size)")
    ex.add_argument("checkpoint")
    ex.add_argument("out")
    ex.add_argument("--half", action="store_true", help="float16 weights; loading widens them to float32")

    wo = sub.add_parser("words", help="add the English words of corpora to a checkpoint (its weights unchanged)")
    wo.add_argument("checkpoint", help="a checkpoint directory (written in place)")
    wo.add_argument("corpus", nargs="+", help="UTF-8 text file(s) it was trained on")

    fe = sub.add_parser("fetch", help="download public corpora (checksum-verified)")
    fe.add_argument("name", nargs="+", choices=sorted([*CORPORA, TUNES]),
                    help=f"{TUNES}: folk tunes in ABC from the installed music21 package (charrnn.music.corpus)")
    fe.add_argument("--out", help="file to write, for one NAME (default: DIR/NAME.txt)")
    fe.add_argument("--dir", default="data", help="folder of the files (default: data)")
    fe.add_argument("--from", dest="source", metavar="FILE",
                    help="make it from this file instead of downloading (works offline): the chinese-poetry npm "
                         "tarball, or for a derived corpus its source's text (yuanqu-sung: yuanqu.txt)")
    fe.add_argument("--non-commercial", action="store_true",
                    help=f"{TUNES}: add the collections licensed for non-commercial use only (Essen folksongs)")

    forms = sub.add_parser("forms", help="the ci tune forms: list them, or mine them from the Song ci corpus")
    forms_sub = forms.add_subparsers(dest="forms_command", required=True)
    forms_sub.add_parser("list", help="the shipped tunes with their pattern")
    build = forms_sub.add_parser("build", help="mine the tune table from songci.txt (what ships was made so)")
    build.add_argument("corpus", help="the Song ci corpus (../shared/data/songci.txt)")
    build.add_argument("--out", default=str(FORMS_PATH), help="default: the package's table")

    topics_parser = sub.add_parser("topics", help="the keyword plan's table of related words (charrnn.text.topics)")
    topics_sub = topics_parser.add_subparsers(dest="topics_command", required=True)
    topics_build = topics_sub.add_parser("build", help="count which words share songs in lyric corpora")
    topics_build.add_argument("corpus", nargs="+", help="lyric corpora, songs between blank lines, title first")
    topics_build.add_argument("--out", default=str(TOPICS_PATH), help="default: the package's table")
    topics_sub.add_parser("show", help="a prefix's keyword plan").add_argument("prefix")
    topics_themes = topics_sub.add_parser("themes", help="words of one season or one mood (charrnn.text.themes)")
    topics_themes.add_argument("corpus", nargs="+", help="lyric corpora, songs between blank lines, title first")
    topics_themes.add_argument("--out", default=str(THEMES_PATH), help="default: the package's table")

    demo = sub.add_parser("demo", help="train a small model on the bundled demo corpus and sing")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--max-minutes", type=finite_float, default=1.5)
    demo.add_argument("--seed", type=int, default=0)
    return parser




def _read_corpora(names: Sequence[str]) -> str | dict[str, str]:
    """One text for one file; several files by name (their stem), each split on its own."""
    if len(names) == 1:
        return read_corpus(names[0])
    corpora: dict[str, str] = {}
    for name in names:
        key = "demo" if name == "demo" else Path(name).stem
        if key in corpora:
            raise ValueError(f"two corpora are both named {key!r}")
        corpora[key] = read_corpus(name)
    return corpora


def cmd_train(args: argparse.Namespace) -> int:
    text = _read_corpora(args.corpus)
    train_config = train_config_from(args, DEMO_PREFIXES[:2])
    device = select_device(train_config.device)  # fail fast on a device that is not there
    init = None
    if args.init_from:
        replay = read_corpus(args.replay) if args.replay else None
        init = InitFrom(load_checkpoint(args.init_from, device=device), args.init_from, args.dropout, replay,
                        args.replay_fraction)
        model_config = None  # the checkpoint's own
    elif args.replay:
        raise ValueError("--replay mixes old text into fine-tuning: it needs --init-from")
    else:
        sizing = size_for_text(text, train_config.max_minutes, device.type).override(
            cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed, dropout=args.dropout,
            tie=False if args.adaptive_softmax else args.tie, batch_size=args.batch_size, seq_len=args.seq_len,
            lr=args.lr, amp=args.amp,
        )
        print(sizing.describe(), file=sys.stderr)
        model_config = replace(sizing.model_config(), adaptive_cutoffs=args.adaptive_softmax)
        train_config = sizing.train_config(train_config)
    result, _, vocab = train_model(
        text, model_config, train_config, out_dir=args.out, callback=ProgressBar(train_config), resume=args.resume,
        init=init,
    )
    summary = {
        "val_ppl": result.best_val_ppl,
        "val_nll": result.best_val_nll,
        "val_bpc": result.best_val_nll / math.log(2),
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_run,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "chars_per_s": round(result.chars_per_s, 1),
        "stopped": result.stopped,
        "vocab_size": len(vocab),
        "checkpoint": str(Path(args.out) / "best"),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"best validation perplexity {summary['val_ppl']:.2f} at epoch {summary['best_epoch']} "
            f"({result.stopped}); {summary['chars_per_s']:.0f} chars/s; checkpoint {summary['checkpoint']}"
        )
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    text = read_corpus(args.corpus)
    config = TransferConfig(minutes=args.minutes, device=args.device)  # validates before the load
    base = load_checkpoint(args.init_from, device=select_device(args.device))
    result = transfer(text, base, args.out, config, base_name=args.init_from,
                      callback=ProgressBar(TrainConfig(max_minutes=args.minutes)))
    summary = {"checkpoint": str(result.checkpoint), "weights": result.weights, "val_ppl": result.val_ppl,
               "seconds": round(result.seconds, 1)}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        parts = ", ".join(f"{name} {w:.2f}" for name, w in result.weights.items())
        print(f"mixture of {parts}; validation perplexity {result.val_ppl['mixture']:.1f} "
              f"(parts: {', '.join(f'{k} {v:.1f}' for k, v in result.val_ppl.items() if k != 'mixture')}); "
              f"checkpoint {result.checkpoint}; `eval {result.checkpoint} {args.corpus}` scores its held-out tail")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    base = sample_config_from(args)  # validates before the (slower) checkpoint load
    device = select_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device=device)
    configs = [replace(base, seed=None if args.seed is None else args.seed + i) for i in range(args.num)]
    results = generate_many(ckpt.model, ckpt.vocab, [(args.prefix, c) for c in configs], words=ckpt.words,
                            register=ckpt.register)
    titles: list[str | None] = []
    if args.titles:  # a tune's lyric is titled by its tune, any other by its own words
        titles = ([form_title(base.form)] * len(results) if base.form
                  else choose_titles(ckpt.model, ckpt.vocab, [r.lyric for r in results], args.titles,
                                     [r.prefix for r in results]))
    if results and results[0].skipped:
        print(f"note: left out characters the model has never seen: {''.join(results[0].skipped)}", file=sys.stderr)
    texts = [r.text if args.raw else r.lyric for r in results]
    if args.json:
        rows = [{"text": text, "mean_logprob": r.mean_logprob, "skipped": list(r.skipped)}
                | ({"title": titles[i]} if titles else {})
                for i, (text, r) in enumerate(zip(texts, results, strict=True))]
        print(json.dumps(rows, ensure_ascii=False))
    else:
        print("\n\n".join(titled(text, titles[i]) if titles else text for i, text in enumerate(texts)))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Perplexity on the corpus's held-out tail, under the one scoring rule (``charrnn.evaluate``)."""
    device = select_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device=device)
    cfg = TrainConfig.from_json(ckpt.meta.get("train_config") or {})
    train_text, val_text = split_corpus(read_corpus(args.corpus), cfg.val_fraction, cfg.split, cfg.seed)
    reference = reference_vocab(train_text)
    result = evaluate(ckpt.model, HeldOut.of_text(val_text, ckpt.vocab, reference), device)
    unknown = sum(1 for ch in val_text[1:] if ch not in reference)
    out = {
        "val_ppl": result.ppl,
        "val_nll": result.nll,
        "bpc": result.bpc,
        "chars": result.chars,
        "unknown_chars": unknown,
        "reference_vocab": len(reference),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"perplexity {result.ppl:.2f}, {result.bpc:.3f} bits/char over {result.chars} held-out characters "
            f"({unknown} outside the {len(reference)} characters seen {REFERENCE_MIN_COUNT}+ times in training: "
            "scored as one 'unknown')"
        )
    return 0












def cmd_demo(args: argparse.Namespace) -> int:
    """Train a small model on the bundled corpus, then sing a few lyrics: the library in one minute."""
    text = load_corpus(demo_corpus_path())
    model_config = ModelConfig(vocab_size=1, cell="gru", layers=1, embed=128, hidden=256, dropout=0.2)
    train_config = TrainConfig(
        epochs=400,
        batch_size=32,
        seq_len=48,
        lr=4e-3,
        max_minutes=args.max_minutes,
        seed=args.seed,
        warmup_steps=20,
        patience=15,
        unk_min_count=1,
        sample_every=10,
        sample_prefixes=DEMO_PREFIXES[:2],
    )
    print(
        f"training a small GRU on the bundled demo corpus ({len(text):,} characters) "
        f"for at most {args.max_minutes:g} minutes ...",
        file=sys.stderr,
    )
    started = time.perf_counter()
    result, _model, _vocab = train_model(
        text, model_config, train_config, out_dir=args.out, callback=ProgressBar(train_config)
    )
    best = load_checkpoint(Path(args.out) / "best")
    print(
        f"\ntrained in {time.perf_counter() - started:.0f} s; held-out perplexity {result.best_val_ppl:.1f}; "
        f"checkpoint {Path(args.out) / 'best'}\n"
    )
    configs = [
        (p, SampleConfig(temperature=0.8, stop_after_lines=4, max_length=120, seed=args.seed + i))
        for i, p in enumerate(DEMO_PREFIXES)
    ]
    for generation in generate_many(best.model, best.vocab, configs, words=best.words):
        print(generation.lyric + "\n")
    return 0


COMMANDS = {"train": cmd_train, "transfer": cmd_transfer, "generate": cmd_generate, "eval": cmd_eval,
            "export": cmd_export, "words": cmd_words, "fetch": cmd_fetch, "forms": cmd_forms, "topics": cmd_topics,
            "demo": cmd_demo, "sing": music_cli.run}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CorpusError, CheckpointError, FetchError, ValueError) as exc:  # SingError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
