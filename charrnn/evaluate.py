"""Held-out perplexity and bits per character, under one scoring rule for every model.

The rule: each evaluation text has a *reference vocabulary*, the characters seen at least
``REFERENCE_MIN_COUNT`` times in its corpus's training part. A held-out character in the reference is
charged the probability the model gives it (the model's ``<unk>`` probability if the model has no symbol
for it). A character outside the reference is one event, "unknown", charged the model's whole mass on
symbols outside the reference, ``<unk>`` included.

So a model trained from scratch (whose vocabulary *is* the reference) is scored exactly as before, and
models with other vocabularies (the pretrained base with 5,500 characters, a fine-tuned child whose
vocabulary grew) are scored on the same events and are comparable: none gains by knowing more
characters, none loses by knowing fewer. The n-gram baselines use the same rule.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from charrnn.model import CharRNN, State, detach_state
from charrnn.vocab import UNK_ID, Vocab

REFERENCE_MIN_COUNT = 3
OUTSIDE = -1  # the target of a character outside the reference vocabulary


def reference_vocab(train_text: str, min_count: int = REFERENCE_MIN_COUNT) -> frozenset[str]:
    """The characters seen at least ``min_count`` times in a corpus's training part."""
    return frozenset(ch for ch, n in Counter(train_text).items() if n >= min_count)


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


@dataclass(frozen=True)
class HeldOut:
    """Held-out text prepared for one model's vocabulary under the scoring rule.

    ``inputs[i]`` is what the model reads, ``targets[i]`` what it is charged for next: a symbol of its
    vocabulary, or ``OUTSIDE``, scored with the mass on ``outside[groups[i]]``. Several texts with their
    own references can be scored together (one group each).
    """

    inputs: torch.Tensor  # (N,) model ids
    targets: torch.Tensor  # (N - 1,) model ids or OUTSIDE, for inputs[1:]
    groups: torch.Tensor  # (N - 1,) which reference each target belongs to
    outside: torch.Tensor  # (G, V) bool: symbols outside each reference

    @classmethod
    def of_text(cls, text: str, vocab: Vocab, reference: frozenset[str]) -> HeldOut:
        return cls.of_texts([(text, reference)], vocab)

    @classmethod
    def of_texts(cls, texts: Sequence[tuple[str, frozenset[str]]], vocab: Vocab) -> HeldOut:
        """Texts read one after the other; every character after the very first is scored against the
        reference of the text it belongs to."""
        outside = torch.ones(len(texts), len(vocab), dtype=torch.bool)
        for group, (_, reference) in enumerate(texts):
            for index, symbol in enumerate(vocab.symbols):
                outside[group, index] = index == UNK_ID or symbol not in reference
        chars = "".join(text for text, _ in texts)
        if len(chars) < 2:
            raise ValueError("evaluation needs at least two characters of text")
        ids = vocab.encode(chars)
        owner = [group for group, (text, _) in enumerate(texts) for _ in text]
        targets = [ids[k] if chars[k] in texts[owner[k]][1] else OUTSIDE for k in range(1, len(chars))]
        return cls(torch.tensor(ids), torch.tensor(targets), torch.tensor(owner[1:]), outside)

    @classmethod
    def of_ids(cls, ids: torch.Tensor, vocab_size: int) -> HeldOut:
        """Ids already in the model's vocabulary, whose reference is that vocabulary (``<unk>`` = outside)."""
        outside = torch.zeros(1, vocab_size, dtype=torch.bool)
        outside[0, UNK_ID] = True
        targets = ids[1:].clone()
        targets[targets == UNK_ID] = OUTSIDE
        return cls(ids, targets, torch.zeros(len(targets), dtype=torch.long), outside)


def evaluate(
    model: CharRNN,
    data: HeldOut | torch.Tensor,
    device: torch.device | None = None,
    seq_len: int = 256,
    stream_chars: int = 4096,
) -> EvalResult:
    """Score every target given everything before it, carrying the state through the whole text.

    ``data`` is a ``HeldOut``, or ids in the model's own vocabulary (then the reference is that
    vocabulary: the rule as it applies to a model evaluated on its own corpus). Long texts are cut into
    parallel streams of at least ``stream_chars`` characters for speed; each stream restart loses
    context for a few characters, a negligible effect at that length.
    """
    if isinstance(data, torch.Tensor):
        if data.dim() != 1 or len(data) < 2:
            raise ValueError("evaluation needs at least two characters of text")
        data = HeldOut.of_ids(data, model.config.vocab_size)
    device = device or next(model.parameters()).device
    ids, targets, groups = data.inputs, data.targets, data.groups
    outside = data.outside.to(device)
    n = len(ids) - 1
    streams = max(1, min(32, n // stream_chars))
    per_stream = n // streams
    used = per_stream * streams

    def shaped(values: torch.Tensor) -> torch.Tensor:
        return values[:used].reshape(streams, per_stream).to(device)

    xs, ys, gs = shaped(ids), shaped(targets), shaped(groups)
    was_training = model.training
    model.eval()
    total = 0.0
    state: State | None = None
    with torch.inference_mode():
        for start in range(0, per_stream, seq_len):
            window = slice(start, start + seq_len)
            logits, state = model(xs[:, window], state)
            state = detach_state(state)
            total += _charged(logits, ys[:, window], gs[:, window], outside)
        # Characters past the last full stream row: score them in one short extra pass.
        if used < n:
            begin = max(0, used - seq_len)
            logits, _ = model(ids[begin:n].to(device)[None, :])
            tail = n - used
            total += _charged(logits[:, -tail:], targets[None, used:n].to(device), groups[None, used:n].to(device),
                              outside)
    model.train(was_training)
    return EvalResult(nll=total / n, chars=n)


def _charged(logits: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor, outside: torch.Tensor) -> float:
    """Summed negative log-probability of (B, T) targets under the rule."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    inside = targets != OUTSIDE
    charged = log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (B, T)
    if not bool(inside.all()):
        # log of the mass on symbols outside the target's reference, per group
        masked = [torch.logsumexp(log_probs.masked_fill(~outside[g], -math.inf), dim=-1) for g in range(len(outside))]
        unknown = torch.stack(masked, dim=-1).gather(-1, groups[..., None])[..., 0]
        charged = torch.where(inside, charged, unknown)
    return -float(charged.sum())
