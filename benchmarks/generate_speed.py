"""Generation throughput: 64 concurrent requests, batched together against one at a time.

    python benchmarks/generate_speed.py [--checkpoint DIR] [--requests 64] [--length 120]

Same model for both: a checkpoint, or the default architecture trained for ``--train-minutes`` on
the Jay Chou corpus (sampling cost depends on how peaked the distributions are, so an untrained model
would mislead). Every request generates exactly ``--length`` characters (and keeps those up to its last
whole line). Latency is from the moment all requests arrive to each one's answer, so one-at-a-time
latency includes waiting for the requests ahead. Each precision is compared with one-at-a-time in the
same precision, and the fastest batched mode with the fastest one-at-a-time mode. When the checkpoint has
English words (``charrnn.text.words``), the batched run is timed with them off and on: what keeping every
English word a corpus word costs.

The shape rules (``charrnn.generation.shape``: rhyme by construction and a target length) are timed too: the same
requests batched with ``rhyme=True, target_length=--length``, their characters counted as written (the
target ends each on a whole line, so they vary), against the plain batched run in the serving precision.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import percentile, print_table, train_default_model

from charrnn.checkpoint import load_checkpoint
from charrnn.config import SampleConfig
from charrnn.generation.batching import BatchGenerator
from charrnn.generation.sample import serving_dtype
from charrnn.model import CharRNN
from charrnn.vocab import Vocab

PREFIXES = ["我", "天青色等烟雨", "夜", "在风里", "你说", "", "窗外的麻雀", "雨下了整夜"]


def run_batched(
    model: CharRNN, vocab: Vocab, configs: list[SampleConfig], max_batch: int, dtype: torch.dtype,
    words: frozenset[str] | None = None,
) -> list[float]:
    return run_counted(model, vocab, configs, max_batch, dtype, words)[0]


def run_counted(
    model: CharRNN, vocab: Vocab, configs: list[SampleConfig], max_batch: int, dtype: torch.dtype,
    words: frozenset[str] | None = None,
) -> tuple[list[float], int]:
    """Each request's latency, and the characters written in all."""
    generator = BatchGenerator(model, vocab, max_batch=max_batch, dtype=dtype, words=words)
    started = time.perf_counter()
    ids = {generator.submit(PREFIXES[i % len(PREFIXES)], c): i for i, c in enumerate(configs)}
    latency = [0.0] * len(configs)
    chars = 0
    while not generator.idle():
        for rid, generation in generator.step():
            latency[ids[rid]] = time.perf_counter() - started
            chars += len(generation.continuation)
    return latency, chars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-minutes", type=float, default=1.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or train_default_model(Path(tmp), args.train_minutes)
        ckpt = load_checkpoint(checkpoint, device=device)
    model, vocab = ckpt.model.eval(), ckpt.vocab
    configs = [SampleConfig(max_length=args.length, stop_at_blank_line=False, seed=i) for i in range(args.requests)]
    chars = args.requests * args.length
    rows = []
    words_cost = []
    for dtype in dict.fromkeys([torch.float32, serving_dtype(device)]):
        # Warm up at full batch, both ways: the first 64-row steps pay for allocations the timed runs must not.
        warm = [replace(c, max_length=8) for c in configs]
        for words in dict.fromkeys([None, ckpt.words]):
            run_batched(model, vocab, warm, max_batch=args.requests, dtype=dtype, words=words)
        batched = run_batched(model, vocab, configs, max_batch=args.requests, dtype=dtype)
        name = str(dtype).removeprefix("torch.")
        modes = [(f"batched ({args.requests} together)", batched)]
        if ckpt.words is not None:  # right after the same run without them: the machine's load drifts
            worded = run_batched(model, vocab, configs, max_batch=args.requests, dtype=dtype, words=ckpt.words)
            modes.append((f"batched ({args.requests} together), corpus words", worded))
            words_cost.append(f"{name} {max(batched) / max(worded):.2f}x")
        one_by_one = run_batched(model, vocab, configs, max_batch=1, dtype=dtype)  # same requests, one at a time
        modes.insert(0, ("one at a time", one_by_one))
        base = chars / max(one_by_one)
        for mode, latency in modes:
            total = max(latency)
            rows.append((f"{name}, {mode}", chars / total, total, statistics.median(latency),
                         percentile(latency, 0.95), chars / total / base))
    c = model.config
    print(f"{args.requests} requests x {args.length} characters, {c.cell.upper()} {c.layers}x{c.hidden}, "
          f"vocabulary {len(vocab)}, device {args.device}, {torch.get_num_threads()} threads")
    print_table(["precision, mode", "chars/s", "total s", "p50 latency s", "p95 latency s",
                 "throughput vs one at a time (same precision)"], rows)
    best_single = max(r[1] for r in rows if "one at a time" in r[0])
    best_batched = max(r[1] for r in rows if "batched" in r[0])
    print(f"fastest batched vs fastest one at a time: {best_batched / best_single:.1f}x the throughput")
    if words_cost:
        print(f"batched throughput with corpus words on / off ({len(ckpt.words or ())} words): {', '.join(words_cost)}")
    dtype = serving_dtype(device)
    plain, plain_chars = run_counted(model, vocab, configs, args.requests, dtype, ckpt.words)
    shaped_configs = [SampleConfig(target_length=args.length, rhyme=True, seed=i) for i in range(args.requests)]
    shaped, shaped_chars = run_counted(model, vocab, shaped_configs, args.requests, dtype, ckpt.words)
    ratio = (shaped_chars / max(shaped)) / (plain_chars / max(plain))
    print(f"shape rules (rhyme, target length {args.length}), batched in {str(dtype).removeprefix('torch.')}: "
          f"{shaped_chars / max(shaped):,.0f} chars/s against {plain_chars / max(plain):,.0f} without: {ratio:.2f}x")


if __name__ == "__main__":
    main()
