"""A probability mixture of character models: ``p(c) = sum_k w_k p_k(c)``.

Transfer from the pretrained base to a small corpus works best as two models (``charrnn.transfer``): one
of the architecture that suits the small corpus, its embeddings taken from the base, and the base itself
fine-tuned. Their mixture, with weights fitted on held-out text by EM, can never be worse on that text
than its best component, and is usually much better: they make different mistakes.

The mixture reads and writes characters of the *union* of its components' vocabularies (append-only, in
component order). A component without some symbol gives it no probability; every component's ``<unk>``
mass goes to the union's ``<unk>``. It has the interface the rest of charrnn uses of a model (``forward``,
``prime``, ``step``, ``config.vocab_size``), so evaluation, batched generation and serving take it as is.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from charrnn.model import CharRNN, State
from charrnn.vocab import UNK_ID, Vocab


@dataclass(frozen=True)
class MixtureConfig:
    vocab_size: int
    weights: tuple[float, ...]


def union_vocab(vocabs: Sequence[Vocab]) -> Vocab:
    symbols = list(vocabs[0].symbols)
    seen = set(symbols)
    for vocab in vocabs[1:]:
        for symbol in vocab.symbols[1:]:
            if symbol not in seen:
                seen.add(symbol)
                symbols.append(symbol)
    return Vocab(tuple(symbols))


class MixtureLM(nn.Module):
    """Components, their vocabularies, and mixture weights; outputs are log-probabilities."""

    def __init__(
        self, components: Sequence[CharRNN], vocabs: Sequence[Vocab], weights: Sequence[float],
        union: Vocab | None = None,
    ) -> None:
        super().__init__()
        if not components or len(components) != len(vocabs) or len(vocabs) != len(weights):
            raise ValueError("a mixture needs as many vocabularies and weights as components")
        if any(w < 0 or not math.isfinite(w) for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
            raise ValueError(f"mixture weights must be non-negative and sum to 1, got {list(weights)}")
        union = union or union_vocab(vocabs)
        self.vocab = union
        self.vocabs = list(vocabs)
        self.components = nn.ModuleList(components)
        self.config = MixtureConfig(len(union), tuple(float(w) for w in weights))
        for k, vocab in enumerate(vocabs):
            # ``in union``, a dict lookup: a scan of the tuple cost a second for the base's 5,500 symbols.
            if vocab.symbols[0] != union.symbols[0] or any(s not in union for s in vocab.symbols[1:]):
                raise ValueError(f"component {k}'s vocabulary is not inside the mixture's")
            # Inputs: each union id as the component's id (<unk> where it has no such symbol).
            self.register_buffer(f"inputs_{k}", torch.tensor([UNK_ID, *vocab.encode("".join(union.symbols[1:]))],
                                                             dtype=torch.long))
            # Outputs: where each of the component's symbols sits in the union.
            self.register_buffer(f"outputs_{k}", torch.tensor([UNK_ID, *union.encode("".join(vocab.symbols[1:]))],
                                                              dtype=torch.long))

    def _inputs(self, k: int) -> torch.Tensor:
        ids: torch.Tensor = getattr(self, f"inputs_{k}")
        return ids

    def _mix(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """Component logits (..., V_k) to the mixture's log-probabilities (..., U)."""
        parts = []
        for k, part in enumerate(logits):
            log_probs = torch.log_softmax(part.float(), dim=-1)
            full = torch.full((*part.shape[:-1], self.config.vocab_size), -math.inf, device=part.device)
            index: torch.Tensor = getattr(self, f"outputs_{k}")
            full.scatter_(-1, index.expand(*part.shape[:-1], -1), log_probs)
            weight = self.config.weights[k]  # from the config: a bfloat16 buffer would round it
            parts.append(full + (math.log(weight) if weight > 0 else -math.inf))
        return torch.logsumexp(torch.stack(parts), dim=0)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Log-probabilities of the next character (B, T, U), like a model's logits, and the states."""
        outputs, states = [], []
        for k, component in enumerate(self.members()):
            out, part = component(self._inputs(k)[x], None if state is None else state[k])
            outputs.append(out)
            states.append(part)
        return self._mix(outputs), tuple(states)

    def prime(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, State]:
        outputs, states = [], []
        for k, component in enumerate(self.members()):
            mapping = self._inputs(k).tolist()
            out, part = component.prime([[mapping[i] for i in sequence] for sequence in sequences])
            outputs.append(out)
            states.append(part)
        return self._mix(outputs), tuple(states)

    def members(self) -> list[CharRNN]:
        return [component for component in self.components if isinstance(component, CharRNN)]

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        logits, state = self(tokens[:, None], state)
        return logits[:, -1], state

    def fingerprint(self, component_sha256: Sequence[str]) -> str:
        """A SHA-256 for the whole mixture: its components' weights files, its weights and its vocabulary."""
        text = "|".join([*component_sha256, *(f"{w:.12g}" for w in self.config.weights), *self.vocab.symbols])
        return hashlib.sha256(text.encode()).hexdigest()


MIN_WEIGHT = 1e-3


def fit_weights(logprobs: torch.Tensor, iterations: int = 200, tolerance: float = 1e-7) -> list[float]:
    """Mixture weights maximising held-out likelihood, by EM.

    ``logprobs`` is (K, N): each component's log-probability of each held-out event. EM never lowers the
    likelihood, and the optimum is at least as good as the best single component (a weight vector of
    one 1 is among the candidates), so the mixture cannot lose to its best part on this text.
    """
    k = logprobs.shape[0]
    logprobs = logprobs.double()
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
    previous = -math.inf
    for _ in range(iterations):
        joint = logprobs + weights.log()[:, None]
        total = torch.logsumexp(joint, dim=0)
        likelihood = float(total.mean())
        weights = torch.exp(joint - total).mean(dim=1)
        if likelihood - previous < tolerance:
            break
        previous = likelihood
    weights = weights / weights.sum()
    # EM creeps towards an optimum on the boundary; there, the best component alone is the answer.
    fitted = float(torch.logsumexp(logprobs + weights.log()[:, None], dim=0).mean())
    best = int(logprobs.mean(dim=1).argmax())
    if float(logprobs[best].mean()) > fitted:
        weights = torch.tensor([1.0 if i == best else 0.0 for i in range(k)], dtype=torch.float64)
    # No component gets exactly nothing: the characters only it knows would get no probability at all (an
    # infinite perplexity on the first one). The floor costs at most -log(1 - k * MIN_WEIGHT) nats.
    weights = weights.clamp(min=MIN_WEIGHT)
    return [float(w) for w in weights / weights.sum()]


# What evaluation, generation and serving take: one network or a mixture of them.
LanguageModel = CharRNN | MixtureLM
