"""The command line's options, made from the config dataclasses, and its progress bar.

Sampling flags are generated from ``SampleConfig``'s fields, so every setting a program can pass is a
flag of the same name (``top_p`` is ``--top-p``), with the same default and the same validation.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from typing import Any

from tqdm import tqdm

from charrnn.config import MAX_LENGTH, MIN_TARGET, SampleConfig
from charrnn.data import demo_corpus_path, load_corpus
from charrnn.model import CELLS
from charrnn.text.forms import SONG_FORMS
from charrnn.train_config import TrainConfig
from charrnn.train_events import EvalEvent, SampleEvent, StepEvent, TrainEvent

# Older, shorter spellings that stay accepted.
SAMPLE_ALIASES = {"target_length": ["--length"], "stop_after_lines": ["--lines"]}
SAMPLE_HELP = {
    "force": "read this text instead of sampling; its log-likelihood is the score (teacher forcing)",
    "temperature": "below 1 safer, above 1 wilder",
    "top_k": "keep the k likeliest characters; 0: off",
    "top_p": "keep the smallest set holding this much probability; 1: off",
    "greedy": "always the likeliest character",
    "repetition_penalty": "divide the score of recently used characters by this",
    "repetition_window": "how many recent characters the penalty looks at",
    "no_repeat_ngram": "never repeat an n-gram of this length; 0: off",
    "repeated_word_penalty": "a two-character Chinese word already written is this many times less likely again; "
                             "1: off",
    "repeated_char_penalty": "each time a Chinese character is written it gets this many times less likely again "
                             "(right after itself, its use just before is not counted); 1: off",
    "max_length": f"new characters at most, 1 to {MAX_LENGTH}; a sample it stops ends at its last whole line",
    "stop_after_lines": "stop after this many lines; 0: no limit",
    "line_mode": "one line per sample (names, titles)",
    "stop_at_blank_line": "a blank line ends the song",
    "rhyme": "every rhyme position on its rhyme: each line end (the first sets it), or a tune's rhyme positions",
    # %% : argparse formats help strings with %.
    "target_length": f"the lyric's length in characters, whole lines, within 20%%; {MIN_TARGET} to {MAX_LENGTH}, "
                     "0: off",
    "form": "a ci tune, e.g. 浣溪沙: its lines, punctuation and rhymes (python -m charrnn forms list)",
    "pattern": "line lengths to write to, e.g. 7,7,5,7 or 4，5A。/7A。 (letters: rhyme groups)",
    "song": f"a song form: verses and a returning chorus, sized by --length ({', '.join(SONG_FORMS)})",
    "topics": "a keyword plan: a word related to the prefix for each Chinese line (charrnn.text.topics)",
    "one_script": "write in the prefix's script only: no Latin letters after Chinese, no Han after English",
    "look_ahead": "before a tune's rhyme, choose the character the rhyme can follow (one model step ahead)",
    "phrase_candidates": "write each clause this many times side by side and keep the likeliest; 1: off",
    "one_theme": "with --phrase-candidates, keep out clauses that bring the opposite season or mood if any can",
    "seed": "same seed, same text",
}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def corpus_repeat(text: str) -> tuple[str, int]:
    name, _, times = text.partition("=")
    if not name or not times:
        raise argparse.ArgumentTypeError(f"expected NAME=K (a corpus's file name without .txt), got {text!r}")
    return name, positive_int(times)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Model flags; the ones left out are sized to the corpus and the time budget (``charrnn.sizing``)."""
    sized = "default: sized to the corpus and --max-minutes"
    p.add_argument("--cell", choices=CELLS, default=None, help=sized)
    p.add_argument("--layers", type=positive_int, default=None, help=sized)
    p.add_argument("--hidden", type=positive_int, default=None, help=sized)
    p.add_argument("--embed", type=positive_int, default=None, help=sized)
    p.add_argument("--dropout", type=finite_float, default=None,
                   help=f"{sized}; with --init-from, the checkpoint's own")
    p.add_argument("--tie", action=argparse.BooleanOptionalAction, default=None,
                   help=f"one matrix for the input and output embeddings; {sized}")
    p.add_argument("--adaptive-softmax", type=cutoffs, default=(), metavar="CUTOFFS",
                   help="an adaptive softmax for large vocabularies, e.g. 1000,3000 (implies --no-tie)")


def cutoffs(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1000,3000, got {value!r}") from None
    if any(size < 1 for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"cutoffs must be increasing positive sizes, got {value!r}")
    return sizes


def add_train_args(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    sized = "default: sized to the corpus and --max-minutes"
    p.add_argument("--batch-size", type=positive_int, default=None, help=sized)
    p.add_argument("--seq-len", type=positive_int, default=None, help=sized)
    p.add_argument("--lr", type=finite_float, default=None, help=sized)
    p.add_argument("--weight-decay", type=finite_float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--clip", type=finite_float, default=d.clip)
    p.add_argument("--sampling", choices=("random", "consecutive"), default=d.sampling)
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping epochs; 0 disables")
    p.add_argument("--max-minutes", type=finite_float, default=None, help="time budget")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help=f"mixed precision (bfloat16 on CPUs that have it, float16 on CUDA); {sized}")
    p.add_argument("--unk-min-count", type=positive_int, default=d.unk_min_count)
    p.add_argument("--split", choices=("tail", "lines"), default=d.split)
    p.add_argument("--repeat", action="append", type=corpus_repeat, default=[], metavar="NAME=K",
                   help="with several corpora: read NAME's training part K times per epoch (repeatable)")
    p.add_argument("--sample-every", type=int, default=5, help="show samples every N epochs; 0: never")
    p.add_argument("--sample-prefix", action="append", default=None, help="repeatable")


def train_config_from(args: argparse.Namespace, sample_prefixes: tuple[str, ...]) -> TrainConfig:
    """The flags as a ``TrainConfig``; a sized flag left out takes ``TrainConfig``'s default (``Sizing``
    replaces those when the run is sized)."""
    d = TrainConfig()
    return TrainConfig(
        epochs=args.epochs,
        batch_size=d.batch_size if args.batch_size is None else args.batch_size,
        seq_len=d.seq_len if args.seq_len is None else args.seq_len,
        lr=d.lr if args.lr is None else args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        clip=args.clip,
        sampling=args.sampling,
        patience=args.patience,
        max_minutes=args.max_minutes,
        seed=args.seed,
        device=args.device,
        amp=d.amp if args.amp is None else args.amp,
        unk_min_count=args.unk_min_count,
        split=args.split,
        sample_every=args.sample_every,
        sample_prefixes=tuple(args.sample_prefix or sample_prefixes),
        corpus_repeats=tuple(args.repeat),
    )


def add_sample_args(p: argparse.ArgumentParser, **overrides: Any) -> None:
    """One flag per ``SampleConfig`` field; ``overrides`` change a default (the CLI rhymes by default)."""
    p.add_argument("--prefix", default="", help="the first words; they are part of the answer")
    defaults = SampleConfig()
    for field in dataclasses.fields(SampleConfig):
        name = field.name
        default = overrides.get(name, getattr(defaults, name))
        flags = ["--" + name.replace("_", "-"), *SAMPLE_ALIASES.get(name, [])]
        help_text = SAMPLE_HELP.get(name, "")
        if isinstance(default, bool):
            p.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif name == "seed":
            p.add_argument(*flags, dest=name, type=int, default=None, help=help_text)
        else:
            kind = str if isinstance(default, str) else int if isinstance(default, int) else float  # checked later
            p.add_argument(*flags, dest=name, type=kind, default=default, help=f"{help_text} (default {default})")


def sample_config_from(args: argparse.Namespace) -> SampleConfig:
    """The ``SampleConfig`` the flags describe; invalid values raise ``ValueError`` with the reason."""
    return SampleConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(SampleConfig)})


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


def read_corpus(name: str) -> str:
    return load_corpus(demo_corpus_path() if name == "demo" else name)
