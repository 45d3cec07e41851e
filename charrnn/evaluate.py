"""Held-out perplexity and bits per character, under one scoring rule for every model.

The rule: each evaluation text has a *reference vocabulary* R, the characters seen at least
``REFERENCE_MIN_COUNT`` times in its corpus's training part. The events are the characters of R and one
more, "unknown", for every character outside R. A model's probability of them:

- a character of R the model has a symbol for: that symbol's probability;
- "unknown": its mass on symbols outside R;
- the model's ``<unk>`` mass is what it gives the characters it cannot name: it is shared equally by
  the characters of R it lacks and the "unknown" event (a model that lacks m of R gives each of them,
  and "unknown", ``p(<unk>) / (m + 1)``).

These probabilities sum to one over the events, whatever the model's vocabulary.

So a model trained from scratch (whose vocabulary *is* the reference) is scored exactly as before, and
models with other vocabularies (the pretrained base with 5,500 characters, a fine-tuned child whose
vocabulary grew) are scored on the same events and are comparable: none gains by knowing more
characters, none loses by knowing fewer. The n-gram baselines use the same rule.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from charrnn.mixture import LanguageModel
from charrnn.model import State, detach_state
from charrnn.text.forms import PHRASE_ENDS
from charrnn.vocab import UNK_ID, Vocab

REFERENCE_MIN_COUNT = 3
OUTSIDE = -1  # the target of a character outside the reference vocabulary: the "unknown" event
MISSING = -2  # the target of a reference character the model has no symbol for


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

    ``inputs[i]`` is what the model reads; ``targets[i]`` what it is charged for next: a symbol of its
    vocabulary, ``OUTSIDE`` or ``MISSING``, against the reference of text ``groups[i]`` (several texts
    with their own references can be scored together).
    """

    inputs: torch.Tensor  # (N,) model ids
    targets: torch.Tensor  # (N - 1,) model ids, OUTSIDE or MISSING, for inputs[1:]
    groups: torch.Tensor  # (N - 1,) which reference each target belongs to
    outside: torch.Tensor  # (G, V) bool: the model's symbols outside each reference, <unk> not included
    missing: torch.Tensor  # (G,) how many characters of each reference the model has no symbol for

    @classmethod
    def of_text(cls, text: str, vocab: Vocab, reference: frozenset[str]) -> HeldOut:
        return cls.of_texts([(text, reference)], vocab)

    @classmethod
    def of_texts(cls, texts: Sequence[tuple[str, frozenset[str]]], vocab: Vocab) -> HeldOut:
        """Texts read one after the other; every character after the very first is scored against the
        reference of the text it belongs to."""
        outside = torch.zeros(len(texts), len(vocab), dtype=torch.bool)
        missing = torch.zeros(len(texts), dtype=torch.long)
        for group, (_, reference) in enumerate(texts):
            for index, symbol in enumerate(vocab.symbols):
                outside[group, index] = index != UNK_ID and symbol not in reference
            missing[group] = sum(1 for ch in reference if ch not in vocab)
        chars = "".join(text for text, _ in texts)
        if len(chars) < 2:
            raise ValueError("evaluation needs at least two characters of text")
        ids = vocab.encode(chars)
        owner = [group for group, (text, _) in enumerate(texts) for _ in text]

        def target(k: int) -> int:
            if chars[k] not in texts[owner[k]][1]:
                return OUTSIDE
            return MISSING if ids[k] == UNK_ID else ids[k]

        targets = [target(k) for k in range(1, len(chars))]
        return cls(torch.tensor(ids), torch.tensor(targets), torch.tensor(owner[1:]), outside, missing)

    def head(self, chars: int) -> HeldOut:
        """The same text cut to its first ``chars`` scored characters (one at least): a cheaper evaluation."""
        n = max(1, min(chars, len(self.targets)))
        return HeldOut(self.inputs[: n + 1], self.targets[:n], self.groups[:n], self.outside, self.missing)

    @classmethod
    def of_ids(cls, ids: torch.Tensor, vocab_size: int) -> HeldOut:
        """Ids already in the model's vocabulary, whose reference is that vocabulary (``<unk>``: unknown)."""
        targets = ids[1:].clone()
        targets[targets == UNK_ID] = OUTSIDE
        outside = torch.zeros(1, vocab_size, dtype=torch.bool)
        zeros = torch.zeros(len(targets), dtype=torch.long)
        return cls(ids, targets, zeros, outside, torch.zeros(1, dtype=torch.long))


def evaluate(
    model: LanguageModel,
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
    logprobs = position_logprobs(model, data, device, seq_len, stream_chars)
    return EvalResult(nll=-float(logprobs.sum()) / len(logprobs), chars=len(logprobs))


def position_logprobs(
    model: LanguageModel,
    data: HeldOut | torch.Tensor,
    device: torch.device | None = None,
    seq_len: int = 256,
    stream_chars: int = 4096,
) -> torch.Tensor:
    """The log-probability of every target under the rule, ``(N - 1,)`` float64, in text order."""
    data = _held_out(model, data)
    device = device or next(model.parameters()).device
    ids, targets, groups = data.inputs, data.targets, data.groups
    outside, missing = data.outside.to(device), data.missing.to(device)
    n = len(ids) - 1
    streams, per_stream = _layout(n, stream_chars)
    used = per_stream * streams

    def shaped(values: torch.Tensor) -> torch.Tensor:
        return values[:used].reshape(streams, per_stream).to(device)

    xs, ys, gs = shaped(ids), shaped(targets), shaped(groups)
    was_training = model.training
    model.eval()
    scored = torch.empty(streams, per_stream, dtype=torch.float64)
    state: State | None = None
    with torch.inference_mode():
        for start in range(0, per_stream, seq_len):
            window = slice(start, start + seq_len)
            logits, state = model(xs[:, window], state)
            state = detach_state(state)
            scored[:, window] = _charged(logits, ys[:, window], gs[:, window], outside, missing).cpu()
        out = [scored.reshape(-1)]
        # Characters past the last full stream row: score them in one short extra pass.
        if used < n:
            begin = max(0, used - seq_len)
            logits, _ = model(ids[begin:n].to(device)[None, :])
            tail = n - used
            out.append(_charged(logits[:, -tail:], targets[None, used:n].to(device), groups[None, used:n].to(device),
                                outside, missing).cpu().reshape(-1))
    model.train(was_training)
    return torch.cat(out)


def estimate_seconds(
    model: LanguageModel,
    data: HeldOut | torch.Tensor,
    device: torch.device | None = None,
    seq_len: int = 256,
    stream_chars: int = 4096,
) -> float:
    """How long ``evaluate`` (same arguments) will take, from timing its first window: the windows run one
    after the other, each as long as the first. Lets a caller with a deadline keep time for an evaluation
    before running it. The window runs twice and the second is timed: the first pays for warming up."""
    data = _held_out(model, data)
    device = device or next(model.parameters()).device
    n = len(data.inputs) - 1
    streams, per_stream = _layout(n, stream_chars)
    windows = math.ceil(per_stream / seq_len) + (1 if per_stream * streams < n else 0)
    window = min(seq_len, per_stream)
    first = data.inputs[: streams * per_stream].reshape(streams, per_stream)[:, :window].to(device)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for _ in range(2):
            started = time.perf_counter()
            logits, _ = model(first)
            torch.log_softmax(logits.float(), dim=-1).cpu()
    model.train(was_training)
    return (time.perf_counter() - started) * windows


def _held_out(model: LanguageModel, data: HeldOut | torch.Tensor) -> HeldOut:
    if isinstance(data, torch.Tensor):
        if data.dim() != 1 or len(data) < 2:
            raise ValueError("evaluation needs at least two characters of text")
        return HeldOut.of_ids(data, model.config.vocab_size)
    return data


def _layout(n: int, stream_chars: int) -> tuple[int, int]:
    """(streams, characters per stream) that ``n`` targets are scored in."""
    streams = max(1, min(32, n // stream_chars))
    return streams, n // streams


def _charged(
    logits: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor, outside: torch.Tensor, missing: torch.Tensor
) -> torch.Tensor:
    """Log-probability of (B, T) targets under the rule, float64."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    charged = log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (B, T)
    if bool((targets >= 0).all()):
        return charged.double()
    # <unk>'s share: what the model gives each reference character it lacks, and the unknown event.
    share = log_probs[..., UNK_ID] - torch.log1p(missing.float())[groups]
    others = [torch.logsumexp(log_probs.masked_fill(~outside[g], -math.inf), dim=-1) for g in range(len(outside))]
    unknown = torch.logaddexp(torch.stack(others, dim=-1).gather(-1, groups[..., None])[..., 0], share)
    charged = torch.where(targets == OUTSIDE, unknown, torch.where(targets == MISSING, share, charged))
    return charged.double()


def phrase_end_probabilities(model: LanguageModel, vocab: Vocab, text: str) -> list[float]:
    """Sentence integrity, as SongNet measures it: at every place ``text`` ends a clause (a clause's punctuation
    or a line break right after a word), the model's probability of that ending given all the text before it.

    Where a form cuts a phrase short ("一片烟波无，" for 一片烟波无际) the model expected the phrase to go on and
    gives the ending little; where a clause ends on a whole phrase, much. Characters the model lacks are left
    out of its context, as the generators do. An empty list when nothing ends a clause.
    """
    ids = [i for i in vocab.encode("\n" + text) if i != UNK_ID]
    symbols = [vocab.symbols[i] for i in ids]
    ends = [p for p in range(1, len(ids)) if symbols[p] in PHRASE_ENDS and symbols[p - 1] not in PHRASE_ENDS]
    if not ends:
        return []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits, _ = model(torch.tensor([ids[:-1]], device=next(model.parameters()).device))
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
    model.train(was_training)
    return [math.exp(float(logprobs[p - 1, ids[p]])) for p in ends]
