"""The fine-tuning job that runs in a spawned child process.

It imports charrnn only: the bot's event loop, database and model stay in the parent, which never
blocks on the child and can kill it. Everything crosses the process boundary as files: a JSON spec in,
a checkpoint directory and a JSON result out, each written atomically, so a child killed at any
moment leaves no half-written candidate and the parent just sees no result.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from charrnn.checkpoint import load_checkpoint
from charrnn.data import demo_corpus_path, load_corpus, split_corpus
from charrnn.files import write_atomic
from charrnn.finetune import finetune, finetune_metrics, save_finetuned
from charrnn.train_config import TrainConfig
from charrnn.train_events import EvalEvent, TrainEvent


@dataclass(frozen=True)
class FinetuneSpec:
    parent_dir: str
    out_dir: str
    result_path: str
    old_corpus_path: str | None
    new_train_text: str
    new_holdout_text: str
    minutes: float
    epochs: int = 10
    patience: int = 3  # evaluations without improvement before it stops early; 0: never
    replay_fraction: float = 0.5
    seed: int = 0
    device: str = "auto"
    threads: int = 1  # leave the other core to the bot: it keeps answering while this trains
    nice: int = 10  # and let the bot win every contest for the CPU


def split_document(text: str, holdout_every: int = 10) -> tuple[str, str]:
    """(train, held-out) lines of one corpus document, chosen by a stable hash of each line.

    The same line always lands on the same side, across runs and restarts, so the held-out slice
    measures text the model never trained on.
    """
    train: list[str] = []
    held: list[str] = []
    for line in text.splitlines(keepends=True):
        digest = hashlib.sha256(line.strip().encode("utf-8")).digest()
        (held if digest[0] % holdout_every == 0 else train).append(line)
    if not held and len(train) > 1:
        held.append(train.pop())
    return "".join(train), "".join(held)


def run_job(spec_path: str, **overrides: Any) -> None:
    """Child entry point: fine-tune, save the candidate, write the result.

    ``overrides``: spec fields the machine that runs it decides (a training worker's own ``device``,
    ``threads`` and ``nice``), not the bot that wrote the spec.
    """
    spec = FinetuneSpec(**(json.loads(Path(spec_path).read_text(encoding="utf-8")) | overrides))
    if spec.nice and hasattr(os, "nice"):
        os.nice(spec.nice)
    torch.set_num_threads(spec.threads)
    parent = load_checkpoint(spec.parent_dir)
    parent_config = TrainConfig.from_json(parent.meta.get("train_config") or {})
    old_text = load_corpus(spec.old_corpus_path or demo_corpus_path())
    old_train, old_val = split_corpus(old_text, parent_config.val_fraction, parent_config.split, parent_config.seed)
    config = TrainConfig(
        **{
            **parent_config.to_json(),
            "epochs": spec.epochs,
            "max_minutes": spec.minutes,
            "lr": parent_config.lr / 3,  # re-warm to a lower peak: the model is already trained
            "warmup_steps": 20,
            "patience": spec.patience,
            "seed": spec.seed,
            "device": spec.device,
            "sampling": "random",
            "sample_every": 0,
        }
    )
    history: list[dict[str, float]] = []

    def record(event: TrainEvent) -> None:
        if isinstance(event, EvalEvent):
            history.append({"epoch": event.epoch, "train_loss": event.train_loss, "val_nll": event.val.nll})

    new_train = spec.new_train_text if len(spec.new_train_text) > 2 else spec.new_holdout_text
    result = finetune(parent, new_train, old_train, config, replay_fraction=spec.replay_fraction,
                      new_val_text=spec.new_holdout_text or new_train, old_val_text=old_val, callback=record)
    metrics = finetune_metrics(result)
    temp = Path(spec.out_dir + ".partial")
    shutil.rmtree(temp, ignore_errors=True)
    save_finetuned(result, temp, train_config=config.to_json(), metrics=metrics,
                   corpus_sha256=parent.meta.get("corpus_sha256"), parent=Path(spec.parent_dir).name)
    os.replace(temp, spec.out_dir)  # the candidate appears whole or not at all
    weights = load_checkpoint(spec.out_dir).weights_sha256
    outcome: dict[str, Any] = {
        "metrics": {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
        "history": history,
        "added_chars": list(result.added_chars),
        "weights_sha256": weights,
        "spec": asdict(spec) | {"new_train_text": len(spec.new_train_text),
                                "new_holdout_text": len(spec.new_holdout_text)},
    }
    write_atomic(Path(spec.result_path), lambda p: p.write_text(json.dumps(outcome), encoding="utf-8"))


def gate(metrics: dict[str, float | None], max_old_regression: float) -> tuple[bool, str]:
    """Promote only a candidate that is finite, no worse on the old text, and better on the new."""
    values = {k: metrics.get(k) for k in ("old_ppl_before", "old_ppl_after", "new_ppl_before", "new_ppl_after")}
    if any(v is None or not math.isfinite(v) for v in values.values()):
        return False, "a perplexity is not finite"
    old_before, old_after = values["old_ppl_before"], values["old_ppl_after"]
    new_before, new_after = values["new_ppl_before"], values["new_ppl_after"]
    assert old_before is not None and old_after is not None and new_before is not None and new_after is not None
    if old_after > old_before * (1.0 + max_old_regression):
        return False, f"old-text perplexity regressed {old_before:.1f} -> {old_after:.1f}"
    if new_after >= new_before:
        return False, f"new-text perplexity did not improve ({new_before:.1f} -> {new_after:.1f})"
    return True, f"old {old_before:.1f} -> {old_after:.1f}, new {new_before:.1f} -> {new_after:.1f}"


if __name__ == "__main__":
    run_job(sys.argv[1])
