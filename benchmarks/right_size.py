"""Right-sized by default: ``charrnn train`` with no flags against nanoGPT's CPU baby GPT, on one clock.

    python benchmarks/right_size.py                                 # Jay Chou, then tiny Shakespeare, 7.9 min
    python benchmarks/right_size.py --corpus jaychou --minutes 1    # a smoke run
    python benchmarks/right_size.py --gpt-steps 2000                # the transformer stops at nanoGPT's 2,000

Per corpus, two processes start together and run side by side, one thread each, for the same wall time:
``python -m charrnn train CORPUS --max-minutes M`` with no other flag (the defaults, which
``charrnn.sizing`` fits to the corpus and the budget), and the transformer of ``tiny_gpt.py`` (nanoGPT's
CPU configuration, 0.8M parameters) on the same character vocabulary and the same split (the last 10%
held out, ``<unk>`` below 3 occurrences). Each keeps its best weights by held-out loss (charrnn's best
epoch; the transformer's best check), and both are then scored on the whole held-out text by one rule,
``charrnn.evaluate`` (mean nats per character). The target: charrnn's loss at most 0.8x the transformer's.
By default the transformer, like charrnn, trains for the whole time; nanoGPT's README run stops it at 2,000
steps (``--gpt-steps 2000``), which on an idle thread come well before 7.9 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import corpus_path, print_table
from tiny_gpt import GPTConfig, GPTTrainConfig, TinyGPT, train_gpt

from charrnn.checkpoint import load_checkpoint
from charrnn.data import load_corpus, split_corpus
from charrnn.evaluate import HeldOut, evaluate, reference_vocab
from charrnn.model import count_parameters
from charrnn.pipeline import prepare_corpus
from charrnn.train_config import TrainConfig

HERE = Path(__file__).resolve().parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TARGET = 0.8


def run_gpt(name: str, minutes: float, steps: int, result_path: Path) -> None:
    """The transformer's process: train for ``minutes`` (or ``steps``), score, write the result as JSON."""
    torch.set_num_threads(1)
    corpus = prepare_corpus(load_corpus(corpus_path(name)), TrainConfig())
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=len(corpus.vocab)))
    result = train_gpt(model, corpus.train_ids, corpus.val, 60 * minutes, GPTTrainConfig(max_steps=steps))
    result_path.write_text(json.dumps({"parameters": count_parameters(model), "steps": result.steps,
                                       "seconds": result.seconds, "best_step": result.best_step,
                                       "val_nll": result.val_nll}))


def compare(name: str, minutes: float, gpt_steps: int, work: Path, extra: list[str]) -> float:
    """Both processes on ``name``; prints the table and returns charrnn's loss over the transformer's."""
    path = corpus_path(name)
    env = {**os.environ, **ONE_THREAD}
    train = [sys.executable, "-m", "charrnn", "train", str(path), "--out", str(work / "charrnn"),
             "--max-minutes", f"{minutes:g}", "--device", "cpu", "--json", *extra]
    gpt = [sys.executable, str(HERE / "right_size.py"), "--worker", "gpt", "--corpus", name,
           "--minutes", f"{minutes:g}", "--gpt-steps", str(gpt_steps), "--result", str(work / "gpt.json")]
    limit = f" (the transformer at most {gpt_steps} steps)" if gpt_steps else ""
    print(f"\n== {name}: {minutes:g} minutes each{limit}, started together, one thread each", flush=True)
    print("   $ " + " ".join(train[1:]), flush=True)
    started = time.perf_counter()
    with open(work / "charrnn.log", "w") as log:
        processes = [subprocess.Popen(train, env=env, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=log, text=True),
                     subprocess.Popen(gpt, env=env, cwd=HERE.parent)]
        out, _ = processes[0].communicate()
        processes[1].wait()
    for process, what in zip(processes, ("charrnn train", "the transformer"), strict=True):
        if process.returncode != 0:
            sys.exit(f"{what} failed (exit {process.returncode}); see {work}")
    print(f"   both done in {time.perf_counter() - started:.0f} s", flush=True)
    sizing = next((line for line in (work / "charrnn.log").read_text().splitlines() if line.startswith("corpus ")),
                  "")
    summary = json.loads(out.strip().splitlines()[-1])
    gpt_result = json.loads((work / "gpt.json").read_text())

    torch.set_num_threads(1)
    ckpt = load_checkpoint(work / "charrnn" / "best")  # scored as `charrnn eval` scores it
    config = TrainConfig.from_json(ckpt.meta["train_config"])
    train_text, val_text = split_corpus(load_corpus(path), config.val_fraction, config.split, config.seed)
    charrnn_nll = evaluate(ckpt.model, HeldOut.of_text(val_text, ckpt.vocab, reference_vocab(train_text))).nll
    c = ckpt.model.config
    ratio = charrnn_nll / gpt_result["val_nll"]
    rows = [
        (f"charrnn train {'with your flags' if extra else 'defaults'}: {c.cell.upper()} {c.layers}x{c.hidden}",
         count_parameters(ckpt.model),
         summary["steps"], charrnn_nll, ratio),
        ("transformer: nanoGPT CPU baby GPT, 4x128", gpt_result["parameters"], gpt_result["steps"],
         gpt_result["val_nll"], 1.0),
    ]
    print(f"   {sizing}")
    print(f"   {len(val_text):,} held-out characters, vocabulary {len(ckpt.vocab)}")
    print_table(["model", "parameters", "steps", "held-out nats/char", "vs transformer"], rows)
    verdict = "meets" if ratio <= TARGET else "does NOT meet"
    print(f"charrnn/transformer {ratio:.3f}: {verdict} the target of {TARGET}x", flush=True)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["jaychou", "shakespeare", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=7.9, help="wall time of each of the two processes")
    parser.add_argument("--gpt-steps", type=int, default=0,
                        help="stop the transformer after this many steps if the time lasts longer (nanoGPT's README "
                             "run: 2000); 0: it trains for the whole time, as charrnn does")
    parser.add_argument("--charrnn-args", default="", help="flags added to charrnn train (to compare a choice)")
    parser.add_argument("--worker", choices=["gpt"], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "gpt":
        run_gpt(args.corpus, args.minutes, args.gpt_steps, args.result)
        return
    names = ["jaychou", "shakespeare"] if args.corpus == "both" else [args.corpus]
    with tempfile.TemporaryDirectory(prefix="right_size-") as tmp:
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            compare(name, args.minutes, args.gpt_steps, work, args.charrnn_args.split())


if __name__ == "__main__":
    main()
