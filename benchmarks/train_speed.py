"""Training throughput: our trainer against the seed recipe, same corpus, batch and sequence length.

    python benchmarks/train_speed.py [--steps 40] [--batch-size 32] [--seq-len 35]

The seed (the d2l Jay Chou chapter): one-hot vectors into ``nn.GRU(256)``, a linear decoder, SGD with
gradient clipping, consecutive batches with the state detached. Ours: ``charrnn.Trainer`` (learnt
embedding, AdamW, clipping, schedule), once with a GRU of the seed's size and once with the default
model (dropout 0.8). All rows share the vocabulary (every character, as the seed has it) and run in this process
one after the other, so the ratios compare like with like on this machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import corpus_path, print_table
from torch import nn

from charrnn.data import ConsecutiveSampling, load_corpus
from charrnn.model import CharRNN, ModelConfig
from charrnn.train import Trainer
from charrnn.train_config import TrainConfig
from charrnn.vocab import Vocab


class SeedGRU(nn.Module):
    """The d2l tutorial's model: one-hot input, nn.GRU, linear output."""

    def __init__(self, vocab_size: int, hidden: int = 256) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.GRU(vocab_size, hidden)
        self.dense = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        one_hot = F.one_hot(x.T.long(), self.vocab_size).float()  # (T, B, V)
        y, state = self.rnn(one_hot, state)
        return self.dense(y.reshape(-1, y.shape[-1])), state


def seed_step_fn(model: SeedGRU) -> Callable[[torch.Tensor, torch.Tensor], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    state: list[torch.Tensor | None] = [None]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if state[0] is not None:
            state[0] = state[0].detach()
        logits, state[0] = model(x, state[0])
        loss = F.cross_entropy(logits, y.T.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def ours_step_fn(model: CharRNN, source: ConsecutiveSampling, config: TrainConfig) -> Callable[..., None]:
    trainer = Trainer(model, source, torch.zeros(2, dtype=torch.long), config, device=torch.device("cpu"))
    state: list[object] = [None]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        _, state[0] = trainer._train_step(x, y, state[0])  # type: ignore[arg-type]
        trainer.step += 1

    return step


def chars_per_second(
    step: Callable[[torch.Tensor, torch.Tensor], None], source: ConsecutiveSampling, steps: int, warmup: int = 5
) -> float:
    batches = source.epoch(0)
    for _ in range(warmup):
        step(*next(batches))
    started = time.perf_counter()
    done = 0
    for _ in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = source.epoch(done + 1)
            x, y = next(batches)
        step(x, y)
        done += x.numel()
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=35)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    text = load_corpus(corpus_path("jaychou"))
    vocab = Vocab.build(text)
    ids = torch.tensor(vocab.encode(text))
    source = ConsecutiveSampling(ids, args.batch_size, args.seq_len)
    config = TrainConfig(device="cpu", batch_size=args.batch_size, seq_len=args.seq_len)
    torch.manual_seed(0)
    contenders = {
        "seed: one-hot -> nn.GRU(256), SGD": seed_step_fn(SeedGRU(len(vocab))),
        # The seed's model exactly (GRU 256, no dropout), with a learnt embedding instead of one-hot input.
        "charrnn Trainer, the seed's GRU 256": ours_step_fn(
            CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=256, hidden=256, dropout=0.0)), source, config
        ),
        "charrnn Trainer, default model": ours_step_fn(CharRNN(ModelConfig(vocab_size=len(vocab))), source, config),
    }
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(args.rounds):  # interleaved, so a noisy neighbour hurts every row alike
        for name, step in contenders.items():
            best[name] = max(best[name], chars_per_second(step, source, args.steps))
    base = best["seed: one-hot -> nn.GRU(256), SGD"]
    print(
        f"Jay Chou corpus, vocabulary {len(vocab)}, batch {args.batch_size} x {args.seq_len}, "
        f"{torch.get_num_threads()} threads, best of {args.rounds} rounds of {args.steps} steps"
    )
    print_table(["trainer", "chars/s", "vs seed"], [(n, r, r / base) for n, r in best.items()])


if __name__ == "__main__":
    main()
