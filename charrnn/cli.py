"""``python -m charrnn train|generate|eval|fetch|demo``.

Every foreseeable mistake (bad corpus, bad number, missing or corrupted checkpoint) is one line on
stderr and exit code 2; a traceback means a bug in charrnn.
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
from typing import Any

import torch
from tqdm import tqdm

from charrnn.checkpoint import CheckpointError, load_checkpoint
from charrnn.data import CorpusError, demo_corpus_path, load_corpus, split_corpus
from charrnn.evaluate import evaluate
from charrnn.fetch import CORPORA, FetchError, fetch
from charrnn.model import CELLS, ModelConfig
from charrnn.pipeline import train_model
from charrnn.sample import MAX_LENGTH, SampleConfig, generate_many
from charrnn.train import EvalEvent, SampleEvent, StepEvent, TrainConfig, TrainEvent, select_device

DEMO_PREFIXES = ("我", "夜", "The ")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m charrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a text corpus")
    train.add_argument(
        "corpus", nargs="+", help="UTF-8 text file(s), or 'demo'; each keeps its own held-out tail"
    )
    train.add_argument("--out", required=True, help="checkpoint directory (best/ and last/ inside)")
    _add_model_args(train)
    _add_train_args(train)
    train.add_argument("--resume", action="store_true", help="continue from OUT/last exactly")
    train.add_argument("--json", action="store_true", help="print final metrics as JSON (last line)")

    gen = sub.add_parser("generate", help="sample lyrics from a checkpoint")
    gen.add_argument("checkpoint")
    _add_sample_args(gen)
    gen.add_argument("--num", type=positive_int, default=1, help="samples, generated as one batch")
    gen.add_argument("--device", default="auto")
    gen.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval", help="held-out perplexity and bits per character")
    ev.add_argument("checkpoint")
    ev.add_argument("corpus", help="the corpus; the held-out part is the same split as in training")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true")

    fe = sub.add_parser("fetch", help="download a public corpus (checksum-verified)")
    fe.add_argument("name", choices=sorted(CORPORA))
    fe.add_argument("--out", help="file to write (default: data/NAME.txt)")

    demo = sub.add_parser("demo", help="train a small model on the bundled demo corpus and sing")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--max-minutes", type=finite_float, default=1.5)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def _add_model_args(p: argparse.ArgumentParser) -> None:
    defaults = ModelConfig(vocab_size=1)
    p.add_argument("--cell", choices=CELLS, default=defaults.cell)
    p.add_argument("--layers", type=positive_int, default=defaults.layers)
    p.add_argument("--hidden", type=positive_int, default=defaults.hidden)
    p.add_argument("--embed", type=positive_int, default=defaults.embed)
    p.add_argument("--dropout", type=finite_float, default=defaults.dropout)
    p.add_argument("--no-tie", action="store_true", help="separate input and output embeddings")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--seq-len", type=positive_int, default=d.seq_len)
    p.add_argument("--lr", type=finite_float, default=d.lr)
    p.add_argument("--weight-decay", type=finite_float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--clip", type=finite_float, default=d.clip)
    p.add_argument("--sampling", choices=("random", "consecutive"), default=d.sampling)
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping epochs; 0 disables")
    p.add_argument("--max-minutes", type=finite_float, default=None, help="time budget")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps")
    p.add_argument("--unk-min-count", type=positive_int, default=d.unk_min_count)
    p.add_argument("--split", choices=("tail", "lines"), default=d.split)
    p.add_argument("--sample-every", type=int, default=5, help="show samples every N epochs; 0: never")
    p.add_argument("--sample-prefix", action="append", default=None, help="repeatable")


def _add_sample_args(p: argparse.ArgumentParser) -> None:
    d = SampleConfig()
    p.add_argument("--prefix", default="")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--top-k", type=int, default=d.top_k)
    p.add_argument("--top-p", type=float, default=d.top_p)
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    p.add_argument("--no-repeat-ngram", type=int, default=d.no_repeat_ngram)
    p.add_argument("--length", type=int, default=d.max_length, help=f"new characters, 1 to {MAX_LENGTH}")
    p.add_argument("--lines", type=int, default=0, help="stop after this many lines")
    p.add_argument("--line-mode", action="store_true", help="one line per sample (names, titles)")
    p.add_argument("--seed", type=int, default=None)


def _read_corpus(name: str) -> str:
    return load_corpus(demo_corpus_path() if name == "demo" else name)


def _read_corpora(names: Sequence[str]) -> str | dict[str, str]:
    """One text for one file; several files by name (their stem), each split on its own."""
    if len(names) == 1:
        return _read_corpus(names[0])
    corpora: dict[str, str] = {}
    for name in names:
        key = "demo" if name == "demo" else Path(name).stem
        if key in corpora:
            raise ValueError(f"two corpora are both named {key!r}")
        corpora[key] = _read_corpus(name)
    return corpora


def cmd_train(args: argparse.Namespace) -> int:
    text = _read_corpora(args.corpus)
    model_config = ModelConfig(
        vocab_size=1,
        cell=args.cell,
        layers=args.layers,
        embed=args.embed,
        hidden=args.hidden,
        dropout=args.dropout,
        tie_weights=not args.no_tie,
    )
    train_config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        clip=args.clip,
        sampling=args.sampling,
        patience=args.patience,
        max_minutes=args.max_minutes,
        seed=args.seed,
        device=args.device,
        unk_min_count=args.unk_min_count,
        split=args.split,
        sample_every=args.sample_every,
        sample_prefixes=tuple(args.sample_prefix or DEMO_PREFIXES[:2]),
    )
    select_device(train_config.device)  # fail fast on a device that is not there
    result, _, vocab = train_model(
        text, model_config, train_config, out_dir=args.out, callback=ProgressBar(train_config), resume=args.resume
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


class ProgressBar:
    """Shows loss, validation perplexity, chars/s and ETA, and prints sample lyrics as they come."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.bar: tqdm[Any] | None = None
        self.val_ppl = math.nan

    def __call__(self, event: TrainEvent) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=1000,
                unit="‰",
                dynamic_ncols=True,
                file=sys.stderr,
                bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
            )
        if isinstance(event, StepEvent):
            self.bar.update(max(0, int(event.progress * 1000) - self.bar.n))
            self.bar.set_description(f"epoch {event.epoch + 1}", refresh=False)
            self.bar.set_postfix_str(
                f"loss {event.loss:.3f} val_ppl {self.val_ppl:.1f} {event.chars_per_s:,.0f} chars/s", refresh=False
            )
        elif isinstance(event, EvalEvent):
            self.val_ppl = event.val.ppl
            if event.final:
                self.bar.update(1000 - self.bar.n)
                self.bar.close()
        elif isinstance(event, SampleEvent):
            lines = [f"--- samples after epoch {event.epoch}"]
            lines += [text.replace("\n", " / ") for text in event.samples.values()]
            tqdm.write("\n".join(lines), file=sys.stderr)


def _sample_config(args: argparse.Namespace, seed: int | None) -> SampleConfig:
    return SampleConfig(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram=args.no_repeat_ngram,
        max_length=args.length,
        stop_after_lines=args.lines,
        line_mode=args.line_mode,
        seed=seed,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    base = _sample_config(args, args.seed)  # validates before the (slower) checkpoint load
    device = select_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device=device)
    configs = [replace(base, seed=None if args.seed is None else args.seed + i) for i in range(args.num)]
    results = generate_many(ckpt.model, ckpt.vocab, [(args.prefix, c) for c in configs])
    if results and results[0].skipped:
        print(f"note: left out characters the model has never seen: {''.join(results[0].skipped)}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                [{"text": r.text, "mean_logprob": r.mean_logprob, "skipped": list(r.skipped)} for r in results],
                ensure_ascii=False,
            )
        )
    else:
        print("\n\n".join(r.text for r in results))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    device = select_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device=device)
    cfg = TrainConfig.from_json(ckpt.meta.get("train_config") or {})
    _, val_text = split_corpus(_read_corpus(args.corpus), cfg.val_fraction, cfg.split, cfg.seed)
    ids = torch.tensor(ckpt.vocab.encode(val_text), dtype=torch.long)
    result = evaluate(ckpt.model, ids, device)
    unknown = sum(1 for ch in val_text if ch not in ckpt.vocab)
    out = {
        "val_ppl": result.ppl,
        "val_nll": result.nll,
        "bpc": result.bpc,
        "chars": result.chars,
        "unknown_chars": unknown,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"perplexity {result.ppl:.2f}, {result.bpc:.3f} bits/char over {result.chars} held-out characters "
            f"({unknown} unknown, scored as <unk>)"
        )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    path = fetch(args.name, Path(args.out) if args.out else Path("data") / f"{args.name}.txt")
    print(f"{args.name}: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's first command: a small model on the bundled corpus, then a few lyrics."""
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
    for generation in generate_many(best.model, best.vocab, configs):
        print(generation.text.strip() + "\n")
    return 0


COMMANDS = {"train": cmd_train, "generate": cmd_generate, "eval": cmd_eval, "fetch": cmd_fetch, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CorpusError, CheckpointError, FetchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
