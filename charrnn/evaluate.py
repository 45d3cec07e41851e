"""Held-out perplexity and bits per character.

How unknown characters count: every held-out character the vocabulary lacks is the single symbol
``<unk>``, and the model is charged the probability it gives ``<unk>`` (the n-gram baselines use the
same rule). A model trained with a rare-character threshold learns that probability; one trained
without it never saw ``<unk>`` as a target and pays heavily, which is the honest price of an open
vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from charrnn.model import CharRNN, State, detach_state


@dataclass(frozen=True)
class EvalResult:
    nll: float  # mean negative log-likelihood, nats per character
    chars: int  # characters scored

    @property
    def ppl(self) -> float:
        return math.exp(self.nll) if self.nll < 700 else math.inf

    @property
    def bpc(self) -> float:
        return self.nll / math.log(2)


def evaluate(
    model: CharRNN,
    ids: torch.Tensor,
    device: torch.device | None = None,
    seq_len: int = 256,
    stream_chars: int = 4096,
) -> EvalResult:
    """Score ``ids[1:]`` given everything before it, carrying the state through the whole text.

    Long texts are cut into parallel streams of at least ``stream_chars`` characters for speed; each
    stream restart loses context for a few characters, a negligible effect at that length.
    """
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("evaluation needs at least two characters of text")
    device = device or next(model.parameters()).device
    streams = max(1, min(32, (len(ids) - 1) // stream_chars))
    per_stream = (len(ids) - 1) // streams
    used = per_stream * streams
    xs = ids[:used].reshape(streams, per_stream).to(device)
    ys = ids[1 : used + 1].reshape(streams, per_stream).to(device)
    was_training = model.training
    model.eval()
    total = 0.0
    state: State | None = None
    with torch.inference_mode():
        for start in range(0, per_stream, seq_len):
            x, y = xs[:, start : start + seq_len], ys[:, start : start + seq_len]
            logits, state = model(x, state)
            state = detach_state(state)
            total += float(F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum"))
        # Characters past the last full stream row: score them in one short extra pass.
        if used < len(ids) - 1:
            tail = ids[used - seq_len if used > seq_len else 0 :].to(device)
            logits, _ = model(tail[None, :-1])
            n_tail = len(ids) - 1 - used
            total += float(F.cross_entropy(logits[0, -n_tail:].float(), tail[1:][-n_tail:], reduction="sum"))
    model.train(was_training)
    return EvalResult(nll=total / (len(ids) - 1), chars=len(ids) - 1)
