"""Large vocabularies: the plain softmax against the adaptive softmax, on the Song ci (about 6,000 symbols).

    python benchmarks/large_vocab.py                  # 4 minutes of training each
    python benchmarks/large_vocab.py --minutes 1 --cutoffs 500,2000

With thousands of Chinese characters the output layer costs more than the recurrent layers. Both rows
are the base model's architecture (LSTM 2x512, embeddings 512), the same split, batch and schedule, the
same time budget, trained one after the other in this process: training throughput (chars/s), held-out
perplexity reached in the budget (same vocabulary, so directly comparable), and sampling throughput
(a batch of 32 lyrics of 200 characters). Ratios are against the plain softmax of the same run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from common import corpus_path, print_table

from charrnn.cli_options import cutoffs
from charrnn.config import SampleConfig
from charrnn.data import load_corpus
from charrnn.generation.batching import generate_many
from charrnn.model import ModelConfig, count_parameters
from charrnn.pipeline import train_model
from charrnn.train_config import TrainConfig

BASE_SHAPE = ModelConfig(vocab_size=1, cell="lstm", layers=2, embed=512, hidden=512, dropout=0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of each model")
    parser.add_argument("--cutoffs", type=cutoffs, default=(1000, 3000))
    parser.add_argument("--batch", type=int, default=32, help="lyrics sampled together")
    args = parser.parse_args()
    text = load_corpus(corpus_path("songci"))
    train_config = TrainConfig(batch_size=32, seq_len=128, lr=2e-3, warmup_steps=100, epochs=1000, patience=0,
                               max_minutes=args.minutes, device="cpu", sample_every=0)
    variants = [
        ("plain softmax (tied)", BASE_SHAPE),
        (f"adaptive softmax {','.join(map(str, args.cutoffs))}",
         replace(BASE_SHAPE, tie_weights=False, adaptive_cutoffs=args.cutoffs)),
    ]
    print(f"Song ci: {len(text):,} characters; {args.minutes:g} min of training each; "
          f"{torch.get_num_threads()} threads")
    rows: list[list[object]] = []
    reference: tuple[float, float, float] | None = None
    for label, config in variants:
        result, model, vocab = train_model(text, config, train_config)
        model.eval()
        sample = replace(SampleConfig(), max_length=200, stop_at_blank_line=False)
        requests = [("春风", replace(sample, seed=seed)) for seed in range(args.batch)]
        started = time.perf_counter()
        with torch.no_grad():
            generated = generate_many(model, vocab, requests)
        sample_rate = sum(len(g.continuation) for g in generated) / (time.perf_counter() - started)
        figures = (result.chars_per_s, result.best_val_ppl, sample_rate)
        reference = reference or figures
        rows.append([label, f"{len(vocab):,}", f"{count_parameters(model) / 1e6:.2f}M", result.chars_per_s,
                     f"{figures[0] / reference[0]:.2f}x", result.best_val_ppl, f"{figures[1] / reference[1]:.2f}x",
                     sample_rate, f"{figures[2] / reference[2]:.2f}x"])
    print()
    print_table(["output layer", "vocabulary", "parameters", "train chars/s", "ratio", "held-out ppl", "ratio",
                 "sample chars/s", "ratio"], rows)


if __name__ == "__main__":
    main()
