"""The shipped base in both languages: English words after an English prefix, Chinese after a Chinese one.

    python benchmarks/base_languages.py            # the figures in docs/charrnn.md ("The shipped base model")
    python benchmarks/base_languages.py --base runs/base3/best

English: the real-word rate, the share of the words written after ``The `` that are words of tiny
Shakespeare (the issue's target: at least 85%), at the default sampling settings, at temperature 0.5 and
at 1.5; 16 samples of 120 characters, seeds 1 to 16; with the checkpoint's English words off (the model
alone) and on (``charrnn.text.words``: what the bot does). Chinese: the share of Han characters written after
``天青色等烟雨``, and whether every character of the prefix was known.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace

from common import corpus_path, print_table

from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.data import load_corpus
from charrnn.generation.batching import generate_many
from charrnn.text.lyrics import english_words, known_words

HAN = re.compile(r"[\u4e00-\u9fff]")
SAMPLES = 16
LENGTH = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE, help="a checkpoint (default: the shipped base)")
    args = parser.parse_args()
    base = load_checkpoint(args.base, device="cpu")
    vocabulary = english_words(load_corpus(corpus_path("shakespeare")))
    rows: list[list[object]] = []
    for temperature in (SampleConfig().temperature, 0.5, 1.5):
        config = replace(SampleConfig(), temperature=temperature, max_length=LENGTH)
        for prefix, words in (("The ", None), ("The ", base.words), ("天青色等烟雨", base.words)):
            requests = [(prefix, replace(config, seed=seed)) for seed in range(1, SAMPLES + 1)]
            generations = generate_many(base.model.eval(), base.vocab, requests, words=words)
            texts = [g.continuation for g in generations]
            if prefix == "The ":
                share, count = known_words(texts, vocabulary)
                rows.append([prefix, temperature, "off" if words is None else "on",
                             f"{share:.1%} of {count} words are Shakespeare's", "-"])
            else:
                written = "".join(texts).replace("\n", "")
                han = len(HAN.findall(written)) / max(1, len(written))
                skipped = sorted({c for g in generations for c in g.skipped})
                rows.append([prefix, temperature, "on", f"{han:.1%} of {len(written)} characters are Han",
                             "".join(skipped) or "none"])
    print_table(["prefix", "temperature", "corpus words", "what it writes (English: the real-word rate)",
                 "prefix characters skipped"], rows)


if __name__ == "__main__":
    main()
