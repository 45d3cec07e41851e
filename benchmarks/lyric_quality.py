"""What the lyrics are worth: scratch, the shipped base, and the base transferred, with rhyme off and on.

    python benchmarks/lyric_quality.py                 # Jay Chou, 10 CPU minutes per trained model
    python benchmarks/lyric_quality.py --minutes 2 --samples 10

One table ("Lyric quality" in docs/testing.md), one row per model and rhyme setting:

- held-out perplexity on the last 10% of the Jay Chou lyrics (new songs), under the one scoring rule
  (``charrnn.evaluate``: the same events for every vocabulary);
- distinct-1/2 of the samples (variety of wording), the share of samples with a loop (a unit of four
  or more characters three times running), the longest stretch copied verbatim from the corpus
  (median and max over samples), the adjacent-line rhyme rate, the mean line length;
- stage directions per 1,000 samples (``charrnn.drama.stage_directions``: role markers such as "(正末唱)",
  the Yuan drama the base learnt from its Yuan qu);
- what the sampling rules cost in likelihood: the samples' mean log-probability under the model itself
  (nats per character; rhyme trades some of it for the rhyme);
- the shape of the lyrics (``lyric_shape.py``): rhyme accuracy (rhyme positions on the song's rhyme / all
  rhyme positions, every line end of a free lyric), format accuracy (the share of ``--form`` lyrics on
  held-out Song ci tunes whose clause lengths are exact; a vocabulary without "，" separates clauses with
  a space, so punctuation is not compared) and length accuracy (the share of lyrics within 20% of a target
  length of 20, 60, 160, 300 or 600 characters).

Samples: ``--samples`` lyrics of 200 characters at the bot's default sampling settings, each from a
two-character prefix taken from the start of a held-out line, one seed each. The corpus's own figures
(its held-out part, cut into the same number of 200-character pieces) are the first row.

Every model trains on the corpus's training part and is chosen on its held-out part, as every ``charrnn
train`` model is: the scratch model stops early there, the transfer's two components too, and the
mixture's weights are fitted there. That choice favours each model a little. How much of the mixture's
gain is its weights' fit to the held-out text itself is printed too: the weights fitted on one half of
the held-out songs and scored on the other (and the other way round).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import corpus_path, print_table
from lyric_shape import (
    chinese_openings,
    corpus_format,
    format_accuracy,
    held_out_tunes,
    length_accuracy,
    rhyme_accuracy,
)

from charrnn.checkpoint import BASE, load_checkpoint, pretrained_path
from charrnn.config import SampleConfig
from charrnn.data import load_corpus, split_corpus
from charrnn.drama import stage_directions
from charrnn.evaluate import HeldOut, evaluate, reference_vocab
from charrnn.generation.batching import generate_many
from charrnn.generation.result import Generation
from charrnn.mixture import LanguageModel, fit_weights
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.text.lyrics import distinct_n, has_loop, longest_copied_run, mean_line_length, median
from charrnn.text.rhyme import free_rhymes, rhyme_rate
from charrnn.train_config import TrainConfig
from charrnn.transfer import TransferConfig, component_logprobs, transfer
from charrnn.vocab import Vocab

LENGTH = 200


def prefixes_of(test_text: str, count: int) -> list[str]:
    """Two-character openings of held-out lines (spaces dropped), spread over the held-out songs."""
    lines = [line.replace(" ", "") for line in test_text.split("\n")]
    openings = [line[:2] for line in lines if len(line) >= 4]
    step = max(1, len(openings) // count)
    return [openings[(i * step) % len(openings)] for i in range(count)]


def quality_row(label: str, texts: list[str], corpus: str, ppl: float | None, logprob: float | None,
                shape: tuple[str, str, str] = ("-", "-", "-")) -> list[object]:
    """The row's columns; ``shape``: its rhyme, format and length accuracy, formatted."""
    copies = [longest_copied_run(text, corpus) for text in texts]
    rate = rhyme_rate(texts)
    return [
        label,
        "-" if ppl is None else ppl,
        distinct_n(texts, 1),
        distinct_n(texts, 2),
        f"{sum(map(has_loop, texts)) / len(texts):.0%}",
        f"{median(copies):g} / {max(copies)}",
        "-" if rate is None else f"{rate:.0%}",
        mean_line_length(texts),
        f"{1000 * sum(map(stage_directions, texts)) / len(texts):,.0f}",
        "-" if logprob is None else logprob,
        *shape,
    ]


def shape_columns(model: LanguageModel, vocab: Vocab, generations: list[Generation], rhyme: bool,
                  blocks: list[tuple[str, list[str]]], openings: list[str]) -> tuple[str, str, str]:
    """Rhyme accuracy of the samples, format accuracy on held-out tunes, length accuracy (see the docstring)."""
    hits, total = rhyme_accuracy(generations)
    exact = format_accuracy(model, vocab, blocks, use_form=True, rhyme=rhyme, punctuation=False).exact
    lengths = length_accuracy(model, vocab, openings, rhyme)
    within = statistics.fmean(share for share, _, _ in lengths.values())
    return (f"{hits / total:.0%}" if total else "-"), f"{exact:.0%}", f"{within:.0%}"


def cross_fitted_ppl(logprobs: torch.Tensor) -> float:
    """The mixture's perplexity when each half of the text is scored with weights fitted on the other."""
    half = logprobs.shape[1] // 2
    total = 0.0
    for fit, score in ((slice(None, half), slice(half, None)), (slice(half, None), slice(None, half))):
        weights = torch.tensor(fit_weights(logprobs[:, fit]), dtype=torch.float64)
        total += float(torch.logsumexp(logprobs[:, score].double() + weights.log()[:, None], dim=0).sum())
    return math.exp(-total / logprobs.shape[1])


def samples(model: LanguageModel, vocab: Vocab, prefixes: list[str], rhyme: bool) -> list[Generation]:
    config = replace(SampleConfig(), max_length=LENGTH, stop_at_blank_line=False, rhyme=rhyme)
    requests = [(prefix, replace(config, seed=seed)) for seed, prefix in enumerate(prefixes)]
    return generate_many(model, vocab, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each trained model")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--base", default=BASE, help="the pretrained base (default: the shipped one)")
    args = parser.parse_args()
    if str(args.base) == BASE and not (pretrained_path() / "meta.json").is_file():
        sys.exit("the shipped base is missing: make pretrained")
    torch.manual_seed(0)
    text = load_corpus(corpus_path("jaychou"))
    split = TrainConfig()
    train_text, test_text = split_corpus(text, split.val_fraction, split.split, split.seed)
    reference = reference_vocab(train_text)
    prefixes = prefixes_of(test_text, args.samples)
    print(f"Jay Chou: {len(train_text):,} training characters, {len(test_text):,} held out; reference vocabulary "
          f"{len(reference)}; {args.minutes:g} min per trained model; {args.samples} samples of {LENGTH} "
          f"characters; {torch.get_num_threads()} threads", file=sys.stderr)

    models: list[tuple[str, LanguageModel, Vocab]] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train_model(text, ModelConfig(vocab_size=1), TrainConfig(max_minutes=args.minutes, device="cpu"),
                    out_dir=Path(tmp) / "scratch")
        scratch = load_checkpoint(Path(tmp) / "scratch" / "best")
        print(f"scratch trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        models.append(("scratch (default GRU)", scratch.model, scratch.vocab))
        base = load_checkpoint(args.base)
        models.append(("base, zero-shot", base.model, base.vocab))
        started = time.perf_counter()
        result = transfer(text, load_checkpoint(args.base), Path(tmp) / "transfer",
                          TransferConfig(minutes=args.minutes, device="cpu"))
        mixed = load_checkpoint(result.checkpoint)
        weights = ", ".join(f"{k} {w:.2f}" for k, w in result.weights.items())
        print(f"transfer in {time.perf_counter() - started:.0f} s; mixture weights {weights}", file=sys.stderr)
        models.append(("base + transfer", mixed.model, mixed.vocab))
        parts = {name: load_checkpoint(result.checkpoint / name) for name in result.weights}
        for name, part in parts.items():
            alone = evaluate(part.model.eval(), HeldOut.of_text(test_text, part.vocab, reference)).ppl
            print(f"  the {name} part alone: held-out ppl {alone:.1f}", file=sys.stderr)
        crossed = cross_fitted_ppl(component_logprobs(list(parts.values()), test_text, reference))
        print(f"  the mixture with weights fitted on the other half of the held-out songs: {crossed:.1f}",
              file=sys.stderr)

    pieces = [test_text[i : i + LENGTH] for i in range(0, len(test_text) - LENGTH, LENGTH)][: args.samples]
    blocks, openings = held_out_tunes(args.samples), chinese_openings(max(2, args.samples // 5))
    share = corpus_format(blocks, base).exact
    corpus_rhyme = sum(free_rhymes(p)[0] for p in pieces) / max(1, sum(free_rhymes(p)[1] for p in pieces))
    rows = [quality_row("corpus (held-out part)", pieces, train_text, None, None,
                        (f"{corpus_rhyme:.0%}", f"{share:.0%} (Song ci)", "-"))]
    ppl_of: dict[str, float] = {}
    for label, model, vocab in models:
        model.eval()
        ppl_of[label] = evaluate(model, HeldOut.of_text(test_text, vocab, reference)).ppl
        for rhyme in (False, True):
            generations = samples(model, vocab, prefixes, rhyme)
            logprob = statistics.fmean(g.mean_logprob for g in generations)
            shape = shape_columns(model, vocab, generations, rhyme, blocks, openings)
            rows.append(quality_row(f"{label}, rhyme {'on' if rhyme else 'off'}", [g.lyric for g in generations],
                                    train_text, ppl_of[label], logprob, shape))
    print()
    print_table(["model", "held-out ppl", "distinct-1", "distinct-2", "loops", "copied run (median / max)",
                 "rhyme rate", "line length", "stage directions per 1,000 samples", "sample logprob",
                 "rhyme accuracy", "format (held-out tunes)", "length within 20%"], rows)
    ratio = ppl_of["base + transfer"] / ppl_of["scratch (default GRU)"]
    print(f"\nbase + transfer / scratch perplexity: {ratio:.2f}x (target at most 0.9x); with cross-fitted "
          f"weights {crossed / ppl_of['scratch (default GRU)']:.2f}x")
    for label, _, _ in models:
        on = next(r for r in rows if r[0] == f"{label}, rhyme on")
        print(f"{label}, rhyme on: rhyme rate {on[6]}, loops {on[4]}, copied run {on[5]}")
    print("\nA sample of each, rhyme on, first prefix:")
    for label, model, vocab in models:
        lyric = samples(model, vocab, prefixes[:1], True)[0].lyric
        print(f"-- {label}\n{lyric}\n")
    if not math.isfinite(ratio):
        sys.exit(1)


if __name__ == "__main__":
    main()
