"""The training loop: AdamW, clipping, warmup + cosine schedule, early stopping, exact resume.

The loop does no I/O (minGPT's ``Trainer``): it reports through a callback, and the caller decides
what to print, log or checkpoint. Its whole state (weights, optimizer, schedule position, RNG, place in
the epoch) round-trips through ``state_dict`` so an interrupted run continues exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from charrnn.data import BatchSource
from charrnn.deadline import Clock, Deadline
from charrnn.evaluate import EvalResult, HeldOut, estimate_seconds, evaluate
from charrnn.model import CharRNN, State, detach_state
from charrnn.train_config import MIN_VALIDATION_CHARS, VALIDATION_SHARE, TrainConfig, select_device
from charrnn.train_events import Callback, EvalEvent, SampleEvent, StepEvent, TrainResult

Validation = HeldOut | torch.Tensor | Sequence[HeldOut]
















class Trainer:
    """Trains a ``CharRNN`` on a batch source, evaluating on held-out ids after every epoch."""

    def __init__(
        self,
        model: CharRNN,
        source: BatchSource,
        val: Validation,
        config: TrainConfig,
        device: torch.device | None = None,
        sampler: Callable[[CharRNN, str], str] | None = None,
    ) -> None:
        self.config = config
        self.device = device or select_device(config.device)
        self.model = model.to(self.device)
        self.source = source
        # Held-out text under the scoring rule, or ids in the model's own vocabulary, or several texts
        # that count equally however long each is (fine-tuning: the new text and the old).
        self.val = val
        self.sampler = sampler
        # Mixed precision: float16 with loss scaling on CUDA; bfloat16 (no scaling needed) on CPUs that
        # do it natively (AVX-512 BF16 / AMX). Weights, optimizer state and the loss stay float32.
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.use_amp = config.amp and (
            self.device.type == "cuda"
            or (self.device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        )
        embedding = [p for n, p in model.named_parameters() if "embedding" in n]
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 and "embedding" not in n]
        # Discriminative learning rates (ULMFiT): transferred character embeddings move more slowly.
        self.lr_scales = [config.embedding_lr_scale, 1.0, 1.0]
        self.optimizer = torch.optim.AdamW(
            [{"params": embedding, "weight_decay": 0.0}, {"params": decay, "weight_decay": config.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
            betas=(0.9, 0.99),
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.device.type == "cuda")
        self.total_steps = config.epochs * source.batches_per_epoch()
        # Position and bookkeeping; everything here is saved by state_dict().
        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.elapsed = 0.0
        self.resumed_at = 0.0  # elapsed seconds when this process took over, for an honest chars/s
        self.carry: State | None = None  # the hidden state between consecutive batches
        self.best_val_nll = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.history: list[dict[str, float]] = []
        # What one validation, and the callback's handling of its event (checkpoint writes), took last:
        # the time a run with a deadline keeps for them after its last step. Not saved: a resumed run
        # measures again.
        self.val_seconds: float | None = None
        self.val_chars = 0
        self.eval_event_seconds = 0.0
        torch.manual_seed(config.seed)

    def _validate(self, clock: Clock) -> EvalResult:
        started = clock()
        result = self._evaluate()
        self.val_seconds, self.val_chars = clock() - started, result.chars
        return result

    def _evaluate(self) -> EvalResult:
        if isinstance(self.val, HeldOut | torch.Tensor):
            return evaluate(self.model, self.val, self.device)
        results = [evaluate(self.model, part, self.device) for part in self.val]
        return EvalResult(nll=sum(r.nll for r in results) / len(results), chars=sum(r.chars for r in results))

    def _fit_validation(self, seconds: float) -> None:
        """Make one validation fit ``VALIDATION_SHARE`` of ``seconds``, estimated from its first window; on a
        busy machine, scoring a large model on all of a long held-out text can take longer than the run."""
        parts = [self.val] if isinstance(self.val, HeldOut | torch.Tensor) else list(self.val)
        estimate = sum(estimate_seconds(self.model, part, self.device) for part in parts)
        fraction = min(1.0, VALIDATION_SHARE * seconds / max(estimate, 1e-9))
        if fraction < 1.0:
            self.val = _head(self.val, fraction)
        self.val_seconds = estimate * fraction

    def _finish_seconds(self, step_seconds: float) -> float:
        """What a run with a deadline must keep after this step: one more step (the check comes after it),
        the final validation (as long as the last one, or as estimated) with a quarter more for a busier
        machine, and the checkpoint writes that follow it."""
        return step_seconds + 1.25 * (self.val_seconds or 0.0) + self.eval_event_seconds

    def lr_at(self, progress: float) -> float:
        """Linear warmup, then cosine decay to ``min_lr_ratio`` of the peak."""
        cfg = self.config
        if self.step < cfg.warmup_steps:
            return cfg.lr * (self.step + 1) / cfg.warmup_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine)

    def _progress(self) -> float:
        by_steps = self.step / max(1, self.total_steps)
        if self.config.max_minutes is None:
            return by_steps
        return max(by_steps, self.elapsed / (60.0 * self.config.max_minutes))

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, state: State | None) -> tuple[float, State]:
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        lr = self.lr_at(self._progress())
        for group, scale in zip(self.optimizer.param_groups, self.lr_scales, strict=True):
            group["lr"] = lr * scale
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            loss, state = self.model.loss(x, y, state)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach()), detach_state(state)

    def run(self, callback: Callback | None = None, deadline: Deadline | None = None) -> TrainResult:
        """Train until the epochs, early stopping, ``max_minutes`` or ``deadline`` end it.

        ``deadline`` bounds the whole call, the last validation and the callback's handling of its event
        included: training stops early enough for them to end by then (a first step always runs).
        """
        emit = callback or (lambda event: None)
        # What the run keeps time for is timed on the deadline's own clock.
        clock = deadline.clock if deadline is not None else time.perf_counter
        cfg = self.config
        budget = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
        chars_per_batch = cfg.batch_size * cfg.seq_len
        stopped: Literal["epochs", "early_stop", "time_budget", "diverged"] = "epochs"
        started = time.perf_counter() - self.elapsed
        chars_seen = 0
        if deadline is not None and self.val_seconds is None:
            self._fit_validation(deadline.remaining())
        self.model.train()
        while self.epoch < cfg.epochs:
            losses: list[float] = []
            # Mid-epoch resume of consecutive batches needs the state the rows had reached.
            state: State | None = self.carry if self.step_in_epoch > 0 else None
            for index, (x, y) in enumerate(self.source.epoch(self.epoch)):
                if index < self.step_in_epoch:
                    continue  # resuming: these batches were consumed before the interruption
                step_started = clock()
                loss, new_state = self._train_step(x, y, state if self.source.carries_state else None)
                state = new_state
                self.carry = state if self.source.carries_state else None
                self.step += 1
                self.step_in_epoch = index + 1
                chars_seen += x.numel()
                losses.append(loss)
                self.elapsed = time.perf_counter() - started
                rate = chars_seen / max(1e-9, self.elapsed - self.resumed_at)
                emit(StepEvent(self.step, self.epoch, loss, self.lr_at(self._progress()), rate, self._progress()))
                if not math.isfinite(loss):
                    stopped = "diverged"
                    break
                if budget is not None and self.elapsed >= budget:
                    stopped = "time_budget"
                    break
                step_seconds = clock() - step_started
                if deadline is not None and deadline.remaining() <= self._finish_seconds(step_seconds):
                    stopped = "time_budget"
                    break
            finished_epoch = stopped not in ("time_budget", "diverged")
            if finished_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
                self.carry = None
            val = self._validate(clock)
            is_best = math.isfinite(val.nll) and val.nll < self.best_val_nll
            if is_best:
                self.best_val_nll, self.best_epoch, self.bad_epochs = val.nll, self.epoch, 0
            elif finished_epoch:
                self.bad_epochs += 1
            if cfg.patience and self.bad_epochs >= cfg.patience and stopped == "epochs":
                stopped = "early_stop"
            train_loss = sum(losses) / len(losses) if losses else math.nan
            self.history.append(
                {
                    "epoch": float(self.epoch),
                    "step": float(self.step),
                    "train_loss": train_loss,
                    "val_nll": val.nll,
                    "val_ppl": val.ppl,
                    "seconds": self.elapsed,
                }
            )
            final = stopped != "epochs" or self.epoch >= cfg.epochs
            emitting = clock()
            emit(EvalEvent(self.epoch, self.step, train_loss, val, is_best, final))
            self.eval_event_seconds = max(self.eval_event_seconds, clock() - emitting)
            if (
                self.sampler
                and cfg.sample_every
                and cfg.sample_prefixes
                and (final or self.epoch % cfg.sample_every == 0)
            ):
                emit(SampleEvent(self.epoch, {p: self.sampler(self.model, p) for p in cfg.sample_prefixes}))
                self.model.train()
            if final:
                break
        seconds = self.elapsed
        return TrainResult(
            best_val_nll=self.best_val_nll,
            best_epoch=self.best_epoch,
            epochs_run=self.epoch,
            steps=self.step,
            seconds=seconds,
            chars_per_s=self.step * chars_per_batch / max(seconds, 1e-9),
            stopped=stopped,
            history=self.history,
            val_seconds=self.val_seconds,
            val_chars=self.val_chars,
        )

    # --- exact resume -------------------------------------------------------------------------------

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors (for safetensors) and JSON-able data that together restore this run exactly."""
        tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if isinstance(self.carry, tuple):
            tensors["carry.h"], tensors["carry.c"] = self.carry
        elif self.carry is not None:
            tensors["carry.h"] = self.carry
        optim = self.optimizer.state_dict()
        for param_id, slots in optim["state"].items():
            for name, value in slots.items():
                tensors[f"optim.{param_id}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        meta = {
            "param_groups": optim["param_groups"],
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "elapsed": self.elapsed,
            "best_val_nll": self.best_val_nll if math.isfinite(self.best_val_nll) else None,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if "carry.h" in tensors:
            h = tensors["carry.h"].to(self.device)
            self.carry = (h, tensors["carry.c"].to(self.device)) if "carry.c" in tensors else h
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, param_id, name = key.split(".", 2)
                state.setdefault(int(param_id), {})[name] = value.to(self.device) if name != "step" else value
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if meta.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(meta["scaler"])
        self.step, self.epoch, self.step_in_epoch = meta["step"], meta["epoch"], meta["step_in_epoch"]
        self.elapsed = meta["elapsed"]
        self.resumed_at = meta["elapsed"]
        self.best_val_nll = math.inf if meta["best_val_nll"] is None else meta["best_val_nll"]
        self.best_epoch, self.bad_epochs = meta["best_epoch"], meta["bad_epochs"]
        self.history = list(meta["history"])


def _head(val: Validation, fraction: float) -> Validation:
    """``fraction`` of each held-out text, from its start; ``MIN_VALIDATION_CHARS`` at least."""

    def chars(n: int) -> int:
        return max(MIN_VALIDATION_CHARS, int(fraction * n))

    if isinstance(val, torch.Tensor):
        return val[: chars(len(val) - 1) + 1]
    if isinstance(val, HeldOut):
        return val.head(chars(len(val.targets)))
    return [part.head(chars(len(part.targets))) for part in val]
