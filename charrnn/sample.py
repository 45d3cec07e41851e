"""Sampling: greedy, temperature, top-k, top-p, repetition control, and continuous batched generation.

``BatchGenerator`` advances many requests together, one batched forward step per character; requests
join between steps (their prefixes are primed in one packed pass) and leave as soon as they finish.
A single request is the same machinery with a batch of one, so every feature behaves identically
alone and in a crowd.

Every request draws its randomness from its own seeded ``random.Random``, one number per character,
so a request's output does not depend on which other requests shared its batch.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from charrnn.model import CharRNN, State, concat_states, select_state
from charrnn.vocab import UNK_ID, Vocab

MAX_LENGTH = 100_000
FinishReason = Literal["length", "lines", "cancelled"]


@dataclass(frozen=True)
class SampleConfig:
    """How one request samples. Invalid values raise ``ValueError`` with a one-line reason."""

    temperature: float = 0.8
    top_k: int = 0  # 0: off
    top_p: float = 0.95  # 1.0: off
    greedy: bool = False
    # Divides the logit of characters used in the last ``repetition_window`` characters (CTRL-style);
    # whitespace is exempt because line breaks are supposed to repeat.
    repetition_penalty: float = 1.2
    repetition_window: int = 16
    # Forbid any character that would repeat an n-gram already in the text; 0: off. A loop like
    # "我不要再想 我不要再想" is the most common complaint about char-RNN lyrics.
    no_repeat_ngram: int = 0
    max_length: int = 200  # new characters at most
    stop_after_lines: int = 0  # stop at the N-th generated line break; 0: no limit
    line_mode: bool = False  # one line from a line start (names, titles): stop at the line break
    stop_at_blank_line: bool = True  # a blank line ends a song in lyric corpora
    seed: int | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a positive finite number, got {t!r}")
        if not isinstance(self.max_length, int) or not 1 <= self.max_length <= MAX_LENGTH:
            raise ValueError(f"length must be between 1 and {MAX_LENGTH}, got {self.max_length!r}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty >= 1):
            raise ValueError(f"repetition_penalty must be at least 1, got {self.repetition_penalty}")
        if self.repetition_window < 0 or self.no_repeat_ngram < 0 or self.stop_after_lines < 0:
            raise ValueError("repetition_window, no_repeat_ngram and stop_after_lines cannot be negative")


@dataclass(frozen=True)
class Generation:
    prefix: str
    continuation: str
    skipped: tuple[str, ...]  # prefix characters the model has never seen, left out of its context
    logprob: float  # log-likelihood of the continuation under the untempered model, nats
    finish_reason: FinishReason

    @property
    def text(self) -> str:
        return self.prefix + self.continuation

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, len(self.continuation))


@dataclass
class _Row:
    rid: int
    prefix: str
    config: SampleConfig
    context: list[int]  # ids the model has read, prefix included
    skipped: tuple[str, ...]
    rng: random.Random
    generated: list[int] = field(default_factory=list)
    logprob: float = 0.0
    lines: int = 0
    seen_ngrams: dict[tuple[int, ...], set[int]] = field(default_factory=dict)


class BatchGenerator:
    """Continuous batching over one model: ``submit`` any time, ``step`` advances everyone."""

    def __init__(
        self,
        model: CharRNN,
        vocab: Vocab,
        device: torch.device | None = None,
        max_batch: int = 64,
        dtype: torch.dtype | None = None,
    ) -> None:
        """``dtype``: run a copy of the model in this precision (see ``serving_dtype``); None keeps it."""
        if len(vocab) != model.config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} symbols, model expects {model.config.vocab_size}")
        if dtype is not None and dtype != next(model.parameters()).dtype:
            model = copy.deepcopy(model).to(dtype)
        self.model = model
        self.vocab = vocab
        self.device = device or next(model.parameters()).device
        self.max_batch = max_batch
        self._next_id = 0
        self._pending: list[_Row] = []
        self._rows: list[_Row] = []
        self._state: State | None = None
        self._logits: torch.Tensor | None = None  # (B, V) next-character logits of the active rows
        self._params: dict[str, torch.Tensor] | None = None
        self._rejected: list[tuple[int, Exception]] = []  # requests whose priming failed, not yet reported
        self._line_break = vocab.encode("\n")[0] if "\n" in vocab else UNK_ID
        self._exempt = torch.tensor(  # never penalised for repeating: <unk> padding and whitespace
            [UNK_ID] + [i for i, s in enumerate(vocab.symbols) if s.isspace()], dtype=torch.long, device=self.device
        )

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        return not self._rows and not self._pending

    def take_rejected(self) -> list[tuple[int, Exception]]:
        """Requests that could not join (their prefix failed to prime), with the error; each reported once."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def submit(self, prefix: str, config: SampleConfig | None = None) -> int:
        """Queue a request; it joins the batch at the next step. Returns its id."""
        config = config or SampleConfig()
        rid = self._next_id
        self._next_id += 1
        # The model reads a line break first: a prefix starts a line, and an empty one starts a song.
        context = [self._line_break] + [i for i in self.vocab.encode(prefix) if i != UNK_ID]
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**63)
        self._pending.append(
            _Row(rid, prefix, config, context, tuple(self.vocab.unknown_chars(prefix)), random.Random(seed))
        )
        return rid

    def cancel(self, rid: int) -> bool:
        """Drop a request, queued or running; True when it was found."""
        for i, row in enumerate(self._pending):
            if row.rid == rid:
                del self._pending[i]
                return True
        for i, row in enumerate(self._rows):
            if row.rid == rid:
                self._drop_rows([i])
                return True
        return False

    def step(self) -> list[tuple[int, Generation]]:
        """Admit waiting requests, sample one character for every active one, return the finished."""
        self.model.eval()
        with torch.inference_mode():
            self._admit()
            if not self._rows:
                return []
            tokens, logprobs = self._sample()
            finished: list[tuple[int, Generation]] = []
            done: list[int] = []
            for i, (row, token, logprob) in enumerate(zip(self._rows, tokens, logprobs, strict=True)):
                reason = self._advance(row, token, logprob)
                if reason is not None:
                    finished.append((row.rid, self._result(row, reason)))
                    done.append(i)
            if done:
                self._drop_rows(done)
            if self._rows:
                assert self._state is not None
                inputs = torch.tensor([[row.context[-1]] for row in self._rows], device=self.device)
                logits, self._state = self.model(inputs, self._state)
                self._logits = logits[:, -1].float()
            return finished

    def run(self) -> dict[int, Generation]:
        """Step until every submitted request is finished."""
        results: dict[int, Generation] = {}
        while not self.idle():
            results.update(self.step())
        return results

    # --- internals ------------------------------------------------------------------------------

    def _admit(self) -> None:
        room = self.max_batch - len(self._rows)
        if room <= 0 or not self._pending:
            return
        joining, self._pending = self._pending[:room], self._pending[room:]
        try:
            self._prime(joining)
        except Exception:
            # One bad request must not take the others down: prime them one by one, reject the failures.
            for row in joining:
                try:
                    self._prime([row])
                except Exception as exc:
                    self._rejected.append((row.rid, exc))

    def _prime(self, joining: list[_Row]) -> None:
        """Read the joining rows' contexts in one packed pass and add them to the running batch."""
        lengths = torch.tensor([len(row.context) for row in joining])
        padded = torch.zeros(len(joining), int(lengths.max()), dtype=torch.long)
        for i, row in enumerate(joining):
            padded[i, : len(row.context)] = torch.tensor(row.context)
        emb = self.model.embedding(padded.to(self.device))
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.model.rnn(packed, None)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, H)
        last = out[torch.arange(len(joining)), lengths.to(out.device) - 1]  # (B, H)
        logits = self.model.decode(last).float()
        for row in joining:
            n = row.config.no_repeat_ngram
            for end in range(n, len(row.context) + 1) if n else ():
                gram = tuple(row.context[end - n : end])
                row.seen_ngrams.setdefault(gram[:-1], set()).add(gram[-1])
        if self._rows:
            assert self._state is not None and self._logits is not None
            self._state = concat_states([self._state, state])
            self._logits = torch.cat([self._logits, logits])
        else:
            self._state, self._logits = state, logits
        self._rows.extend(joining)
        self._params = None

    def _row_params(self) -> dict[str, torch.Tensor]:
        """Per-row sampling settings as tensors, rebuilt only when rows join or leave."""
        if self._params is None:
            configs = [row.config for row in self._rows]
            vocab_size = len(self.vocab)
            device = self.device
            self._params = {
                "temperature": torch.tensor([c.temperature for c in configs], device=device)[:, None],
                "top_k": torch.tensor([c.top_k or vocab_size for c in configs], device=device)[:, None],
                "top_p": torch.tensor([c.top_p for c in configs], device=device)[:, None],
                "greedy": torch.tensor([c.greedy for c in configs], device=device),
                "penalty": torch.tensor([c.repetition_penalty for c in configs], device=device)[:, None],
            }
        return self._params

    def _sample(self) -> tuple[list[int], list[float]]:
        assert self._logits is not None
        rows = self._rows
        logits = self._logits.clone()  # (B, V)
        raw_logprobs = F.log_softmax(self._logits, dim=-1)
        logits[:, UNK_ID] = -math.inf  # <unk> is a modelling device, never an answer
        self._penalise_repeats(logits)
        for i, row in enumerate(rows):
            n = row.config.no_repeat_ngram
            if n and len(row.context) >= n - 1:
                banned = row.seen_ngrams.get(tuple(row.context[len(row.context) - n + 1 :]) if n > 1 else ())
                if banned and len(banned) < logits.shape[1] - 1:
                    logits[i, list(banned)] = -math.inf
        greedy = self._row_params()["greedy"]
        if bool(greedy.all()):
            choice = logits.argmax(dim=-1)
        elif bool(greedy.any()):
            choice = torch.where(greedy, logits.argmax(dim=-1), self._draw(logits))
        else:
            choice = self._draw(logits)
        tokens = choice.tolist()
        logprobs = raw_logprobs.gather(1, choice[:, None]).squeeze(1).tolist()
        return tokens, logprobs

    def _penalise_repeats(self, logits: torch.Tensor) -> None:
        rows = self._rows
        window = max(row.config.repetition_window for row in rows)
        if window == 0 or all(row.config.repetition_penalty == 1.0 for row in rows):
            return
        # One tensor from one list: building it row by row costs more than the model step at B=64.
        recent = torch.tensor(
            [
                (row.context[-row.config.repetition_window :] if row.config.repetition_window else [])
                + [UNK_ID] * (window - min(len(row.context), row.config.repetition_window))
                for row in rows
            ],
            device=self.device,
        )
        # Work on the (B, window) recent positions only, not on the whole (B, V) vocabulary.
        values = logits.gather(1, recent)
        penalty = self._row_params()["penalty"]
        penalised = torch.where(values > 0, values / penalty, values * penalty)
        exempt = torch.isin(recent, self._exempt)  # <unk> padding and whitespace
        logits.scatter_(1, recent, torch.where(exempt, values, penalised))

    def _draw(self, logits: torch.Tensor) -> torch.Tensor:
        """Temperature, then top-k, then the top-p nucleus, then one inverse-CDF draw per row.

        The nucleus is found as a probability threshold from the sorted *values*; the draw then
        walks the vocabulary in index order. No index sort is needed, which matters: sorting indices
        of a (64, V) batch costs more than the model step on a CPU.
        """
        params = self._row_params()
        probs = torch.softmax(logits / params["temperature"], dim=-1)  # (B, V)
        values = _sorted_descending(probs)
        ranks = torch.arange(values.shape[1], device=self.device)[None, :]
        in_top_k = ranks < params["top_k"]
        kept = values * in_top_k
        normalised = kept / kept.sum(dim=-1, keepdim=True)
        mass_before = normalised.cumsum(dim=-1) - normalised
        keep_count = (in_top_k & ((mass_before < params["top_p"]) | (ranks == 0))).sum(dim=-1, keepdim=True)
        threshold = values.gather(1, keep_count - 1)  # the least likely character still in the nucleus
        weights = torch.where(probs >= threshold, probs, 0.0)
        cdf = weights.cumsum(dim=-1)
        u = torch.tensor([[row.rng.random()] for row in self._rows], device=self.device, dtype=cdf.dtype)
        pick = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=weights.shape[1] - 1)
        # Float rounding at the very end of the CDF must not land on a zero-weight character.
        landed = weights.gather(1, pick) > 0
        if not bool(landed.all()):
            pick = torch.where(landed, pick, weights.argmax(dim=-1, keepdim=True))
        return pick.squeeze(1)

    def _advance(self, row: _Row, token: int, logprob: float) -> FinishReason | None:
        cfg = row.config
        n = cfg.no_repeat_ngram
        row.context.append(token)
        if n and len(row.context) >= n:
            gram = tuple(row.context[-n:])
            row.seen_ngrams.setdefault(gram[:-1], set()).add(gram[-1])
        if token == self._line_break:
            row.lines += 1
            blank_line = len(row.context) >= 2 and row.context[-2] == self._line_break and bool(row.generated)
            if (
                cfg.line_mode
                or (cfg.stop_after_lines and row.lines >= cfg.stop_after_lines)
                or (cfg.stop_at_blank_line and blank_line)
            ):
                row.generated = row.generated[:-1] if blank_line else row.generated
                return "lines"
        row.generated.append(token)
        row.logprob += logprob
        if len(row.generated) >= cfg.max_length:
            return "length"
        return None

    def _result(self, row: _Row, reason: FinishReason) -> Generation:
        return Generation(row.prefix, self.vocab.decode(row.generated), row.skipped, row.logprob, reason)

    def _drop_rows(self, indices: Sequence[int]) -> None:
        gone = set(indices)
        keep = [i for i in range(len(self._rows)) if i not in gone]
        self._rows = [self._rows[i] for i in keep]
        self._params = None
        if not keep:
            self._state, self._logits = None, None
            return
        assert self._state is not None and self._logits is not None
        index = torch.tensor(keep, device=self.device)
        self._state = select_state(self._state, index)
        self._logits = self._logits.index_select(0, index)


def serving_dtype(device: torch.device) -> torch.dtype:
    """The precision to generate in: bfloat16 where the hardware does it natively, else float32.

    On a CPU with AVX-512 BF16 or AMX it halves the batched step (measured: 1.45 -> 0.73 ms for 64 rows
    of the default model) at no measurable cost (held-out perplexity 188.83 in both); a single row
    is overhead-bound and gains nothing.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _sorted_descending(probs: torch.Tensor) -> torch.Tensor:
    """Row-wise descending values; NumPy's value-only sort is ~10x faster than torch.sort on the CPU."""
    if probs.device.type == "cpu" and probs.dtype == torch.float32:
        return torch.from_numpy(-np.sort(-probs.numpy(), axis=-1))
    return probs.sort(dim=-1, descending=True).values


def generate(model: CharRNN, vocab: Vocab, prefix: str = "", config: SampleConfig | None = None) -> Generation:
    """One request, start to finish."""
    generator = BatchGenerator(model, vocab, max_batch=1)
    rid = generator.submit(prefix, config)
    return generator.run()[rid]


def generate_many(
    model: CharRNN,
    vocab: Vocab,
    requests: Sequence[tuple[str, SampleConfig]],
    max_batch: int = 64,
) -> list[Generation]:
    """Many requests batched together; results in request order."""
    generator = BatchGenerator(model, vocab, max_batch=max_batch)
    ids = [generator.submit(prefix, config) for prefix, config in requests]
    results = generator.run()
    return [results[rid] for rid in ids]
