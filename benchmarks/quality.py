"""Held-out quality of the default model against count-based baselines, on the same split.

    python benchmarks/quality.py                      # Jay Chou, then tiny Shakespeare, 10 min each
    python benchmarks/quality.py --corpus jaychou --minutes 2

The default model is the one ``charrnn train --max-minutes MINUTES`` chooses for the corpus
(``charrnn.sizing``). Every model sees the same split (the last 10% of the corpus, whole songs) and the
same unknown-character rule (characters seen fewer than ``unk_min_count`` times in training are ``<unk>``).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import torch
from common import corpus_path, print_table

from charrnn.data import load_corpus
from charrnn.ngram import kneser_ney_nll, unigram_nll
from charrnn.pipeline import prepare_corpus, train_model
from charrnn.sizing import size_for_text
from charrnn.train_config import TrainConfig


def run(name: str, minutes: float, dropout: float | None) -> None:
    text = load_corpus(corpus_path(name))
    # The model and schedule `charrnn train --max-minutes MINUTES` would choose (charrnn.sizing).
    sizing = size_for_text(text, minutes, "cpu").override(dropout=dropout)
    model_config, train_config = sizing.model_config(), sizing.train_config(TrainConfig(device="cpu"))
    corpus = prepare_corpus(text, train_config)
    train, val, v = corpus.train_ids.tolist(), corpus.val_ids.tolist(), len(corpus.vocab)
    baselines = {
        "unigram (add-one)": unigram_nll(train, val, v),
        "Kneser-Ney bigram": kneser_ney_nll(train, val, v, order=2),
        "Kneser-Ney trigram": kneser_ney_nll(train, val, v, order=3),
    }
    print(
        f"\n== {name}: {len(text):,} characters, {len(val):,} held out, vocabulary {v} "
        f"(<unk> below {train_config.unk_min_count} occurrences), budget {minutes:g} min, "
        f"{torch.get_num_threads()} threads\n{sizing.describe()}"
    )
    started = time.perf_counter()
    result, model, _ = train_model(text, model_config, replace(train_config, max_minutes=minutes))
    seconds = time.perf_counter() - started
    c = model.config
    which = f"default, dropout {c.dropout:g}" if not sizing.chosen else f"dropout {c.dropout:g}"
    label = f"{c.cell.upper()} {c.layers}x{c.hidden} ({which}, {result.epochs_run} epochs, {seconds:.0f} s)"
    rows = [(label, math.exp(result.best_val_nll), result.best_val_nll, result.best_val_nll / math.log(2), 1.0)]
    for baseline, nll in baselines.items():
        rows.append((baseline, math.exp(nll), nll, nll / math.log(2), math.exp(nll - result.best_val_nll)))
    print_table(["model", "perplexity", "nats/char", "bits/char", "ppl vs default"], rows)
    print(f"training throughput {result.chars_per_s:,.0f} chars/s; stopped by {result.stopped}")
    kn = baselines["Kneser-Ney bigram"]
    verdict = "beats" if result.best_val_nll < kn else "does NOT beat"
    print(f"default model {verdict} the Kneser-Ney bigram: perplexity ratio {math.exp(result.best_val_nll - kn):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["jaychou", "shakespeare", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--dropout", type=float, default=None, help="override the default dropout")
    args = parser.parse_args()
    names = ["jaychou", "shakespeare"] if args.corpus == "both" else [args.corpus]
    for name in names:
        run(name, args.minutes, args.dropout)


if __name__ == "__main__":
    main()
