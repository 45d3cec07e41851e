"""nanoGPT's CPU "baby GPT" in plain PyTorch: the yardstick ``right_size.py`` holds ``charrnn train`` to.

The configuration is the one nanoGPT's README gives for a CPU (4 layers, 4 heads, 128 wide, block 64,
batch 12, no dropout, AdamW at 1e-3 with cosine decay to 1e-4, 0.8M parameters on tiny Shakespeare); the
code is a minimal pre-LayerNorm decoder written here so the benchmark depends on nothing new. Training is
nanoGPT's recipe (random windows, 100 warmup steps, weight decay on matrices only, clipping at 1.0, the best
weights by held-out loss kept, checked every 250 steps as nanoGPT's ``eval_interval``), run for a wall-clock
budget: the learning rate decays over the time, as ``charrnn``'s does, or over ``max_steps`` (nanoGPT's README
run: 2,000) when those come first.

It speaks ``charrnn``'s model interface (``forward(x, state) -> (logits, state)``, the state being the
characters read so far), so ``charrnn.evaluate`` scores it by exactly the rule it scores a ``CharRNN`` by.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from charrnn.evaluate import HeldOut, evaluate

# Between checks of the held-out loss (nanoGPT's eval_interval for Shakespeare), and how much of the
# held-out text a check reads: the head, the same at every check, so that checks compare. The score that
# counts is the whole text, read once, after training.
CHECK_EVERY = 250
CHECK_CHARS = 16_384


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block: int = 64
    layers: int = 4
    heads: int = 4
    width: int = 128


@dataclass(frozen=True)
class GPTTrainConfig:
    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    clip: float = 1.0
    seed: int = 0
    max_steps: int = 0  # 0: as many as the time allows


class Block(nn.Module):
    """Pre-LayerNorm: causal self-attention, then a 4x MLP, each added to the residual stream."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        width = config.width
        self.heads = config.heads
        self.ln_attn = nn.LayerNorm(width, bias=False)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.ln_mlp = nn.LayerNorm(width, bias=False)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width, bias=False), nn.GELU(),
                                 nn.Linear(4 * width, width, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln_attn(x)).split(c, dim=2)  # each (B, T, C)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, h, T, C/h)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln_mlp(x))


class TinyGPT(nn.Module):
    """Token and position embeddings, pre-LN blocks, a final LayerNorm, a head tied to the token embedding."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.width)
        self.positions = nn.Embedding(config.block, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_out = nn.LayerNorm(config.width, bias=False)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.head.weight = self.tokens.weight
        self.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):  # GPT-2's scaled residual init
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.layers))

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) with T <= block -> (B, T, V): every position's next-character logits."""
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_out(x))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits for every position of ``x`` (B, T), any T, reading ``state`` (the characters before it) first.

        Longer than a block, the text is scored in strides of half a block, each in a window of a whole
        block: every character is predicted from at least half a block of context (all of it when the text
        has less), as sliding-window evaluation of a fixed-context model does.
        """
        block = self.config.block
        full = x if state is None else torch.cat([state, x], dim=1)
        first = full.shape[1] - x.shape[1]  # where x begins in full
        stride = block // 2
        pieces = []
        for start in range(first, full.shape[1], stride):
            end = min(start + stride, full.shape[1])
            window = full[:, max(0, end - block): end]
            pieces.append(self.logits(window)[:, -(end - start):])
        return torch.cat(pieces, dim=1), full[:, -(block - 1):]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


@dataclass(frozen=True)
class GPTResult:
    steps: int
    seconds: float
    best_step: int
    val_nll: float  # the best weights, on the whole held-out text


def train_gpt(model: TinyGPT, train_ids: torch.Tensor, val: HeldOut, seconds: float,
              config: GPTTrainConfig | None = None) -> GPTResult:
    """Train for ``seconds`` of wall time (or ``config.max_steps``), then score the best weights on all of ``val``."""
    config = config or GPTTrainConfig()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=config.betas)
    block = model.config.block
    check = val.head(CHECK_CHARS)
    best_nll, best_step, best_state = math.inf, 0, None
    started = time.perf_counter()
    step = 0
    model.train()
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds or (config.max_steps and step >= config.max_steps):
            break
        progress = max(elapsed / seconds, step / config.max_steps if config.max_steps else 0.0)
        lr = _lr_at(step, progress, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(len(train_ids) - block - 1, (config.batch_size,), generator=generator)
        x = torch.stack([train_ids[s: s + block] for s in starts.tolist()])  # (B, block)
        y = torch.stack([train_ids[s + 1: s + 1 + block] for s in starts.tolist()])
        logits = model.logits(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        step += 1
        if step % CHECK_EVERY == 0:
            nll = evaluate(model, check).nll
            if nll < best_nll:
                best_nll, best_step = nll, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.train()
    seconds_used = time.perf_counter() - started
    nll = evaluate(model, check).nll
    if nll < best_nll or best_state is None:  # the last weights, unless an earlier check was better
        best_step = step
    else:
        model.load_state_dict(best_state)
    return GPTResult(steps=step, seconds=seconds_used, best_step=best_step, val_nll=evaluate(model, val).nll)


def _lr_at(step: int, progress: float, config: GPTTrainConfig) -> float:
    """nanoGPT's schedule: linear warmup, then cosine from ``lr`` to ``min_lr`` over the run (time or steps)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr + cosine * (config.lr - config.min_lr)
