"""Continuous batching: many requests advance together, one batched model step per character.

Requests join between steps (their prefixes are read in one packed pass, ``CharRNN.prime``) and leave
as soon as they finish, as in TGI's router; the sampling rules are the processors of
``charrnn.generation.processors``, the same ones ``generate`` applies to a single request.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from charrnn.config import SampleConfig
from charrnn.generation.lookahead import look_ahead
from charrnn.generation.processors import SAMPLING, SHAPING, choose, process
from charrnn.generation.rows import Batch, Row, VocabTables, advance, forced_or, new_row
from charrnn.generation.sample import Generation, result
from charrnn.mixture import LanguageModel
from charrnn.model import State, concat_states, select_state
from charrnn.text.titles import pick, title_requests
from charrnn.vocab import Vocab


class BatchGenerator:
    """Continuous batching over one model: ``submit`` any time, ``step`` advances everyone."""

    def __init__(
        self,
        model: LanguageModel,
        vocab: Vocab,
        device: torch.device | None = None,
        max_batch: int = 64,
        dtype: torch.dtype | None = None,
        words: frozenset[str] | None = None,
    ) -> None:
        """``dtype``: run a copy of the model in this precision (see ``serving_dtype``); None keeps it.
        ``words``: the model's English words (``Checkpoint.words``); None writes English unconstrained."""
        if len(vocab) != model.config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} symbols, model expects {model.config.vocab_size}")
        if dtype is not None and dtype != next(model.parameters()).dtype:
            model = copy.deepcopy(model).to(dtype)
        self.model = model
        self.vocab = vocab
        self.device = device or next(model.parameters()).device
        self.max_batch = max_batch
        self.tables = VocabTables(vocab, self.device, words)
        self._next_id = 0
        self._pending: list[Row] = []
        self._rows: list[Row] = []
        self._state: State | None = None
        self._logits: torch.Tensor | None = None  # (B, V) next-character logits of the active rows
        self._batch: Batch | None = None  # the rows' settings as tensors, rebuilt when rows change
        self._rejected: list[tuple[int, Exception]] = []  # requests whose priming failed, not yet reported

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        return not self._rows and not self._pending

    def submit(self, prefix: str, config: SampleConfig | None = None) -> int:
        """Queue a request; it joins the batch at the next step. Returns its id."""
        config = config or SampleConfig()
        rid = self._next_id
        self._next_id += 1
        self._pending.append(new_row(rid, prefix, config, self.vocab, self.tables))
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

    def take_rejected(self) -> list[tuple[int, Exception]]:
        """Requests that could not join (their prefix failed to prime), with the error; each reported once."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def step(self) -> list[tuple[int, Generation]]:
        """Admit waiting requests, choose one character for every active one, return the finished."""
        self.model.eval()
        with torch.inference_mode():
            self._admit()
            if not self._rows:
                return []
            assert self._logits is not None
            if self._batch is None:
                self._batch = Batch.of(self._rows, self.tables)
            assert self._state is not None
            shaped = look_ahead(self.model, self._state, process(self._logits, self._batch, SHAPING), self._rows,
                                self.tables)
            chosen = choose(process(shaped, self._batch, SAMPLING), self._batch).tolist()
            tokens = [forced_or(row, token) for row, token in zip(self._rows, chosen, strict=True)]
            logprobs = F.log_softmax(self._logits, dim=-1).gather(1, torch.tensor(tokens, device=self.device)[:, None])
            finished: list[tuple[int, Generation]] = []
            done: list[int] = []
            for i, (row, token, logprob) in enumerate(zip(self._rows, tokens, logprobs[:, 0].tolist(), strict=True)):
                reason = advance(row, token, logprob, self.tables)
                if reason is not None:
                    finished.append((row.rid, result(row, reason, self.vocab)))
                    done.append(i)
            if done:
                self._drop_rows(done)
            if self._rows:
                assert self._state is not None
                inputs = torch.tensor([row.context[-1] for row in self._rows], device=self.device)
                logits, self._state = self.model.step(inputs, self._state)
                self._logits = logits.float()
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
            self._join(joining)
        except Exception:
            # One bad request must not take the others down: prime them one by one, reject the failures.
            for row in joining:
                try:
                    self._join([row])
                except Exception as exc:
                    self._rejected.append((row.rid, exc))

    def _join(self, joining: list[Row]) -> None:
        logits, state = self.model.prime([row.context for row in joining])
        logits = logits.float()
        if self._rows:
            assert self._state is not None and self._logits is not None
            self._state = concat_states([self._state, state])
            self._logits = torch.cat([self._logits, logits])
        else:
            self._state, self._logits = state, logits
        self._rows.extend(joining)
        self._batch = None

    def _drop_rows(self, indices: Sequence[int]) -> None:
        gone = set(indices)
        keep = [i for i in range(len(self._rows)) if i not in gone]
        self._rows = [self._rows[i] for i in keep]
        self._batch = None
        if not keep:
            self._state, self._logits = None, None
            return
        assert self._state is not None and self._logits is not None
        index = torch.tensor(keep, device=self.device)
        self._state = select_state(self._state, index)
        self._logits = self._logits.index_select(0, index)



def generate_many(
    model: LanguageModel,
    vocab: Vocab,
    requests: Sequence[tuple[str, SampleConfig]],
    max_batch: int = 64,
    words: frozenset[str] | None = None,
) -> list[Generation]:
    """Many requests batched together; results in request order."""
    generator = BatchGenerator(model, vocab, max_batch=max_batch, words=words)
    ids = [generator.submit(prefix, config) for prefix, config in requests]
    results = generator.run()
    return [results[rid] for rid in ids]


def choose_titles(model: LanguageModel, vocab: Vocab, lyrics: Sequence[str], limit: int) -> list[str | None]:
    """One title per lyric, its words fitted in one batch (``generate_many``, at most ``limit`` per lyric); the
    serving worker does the same in its running batch."""
    planned = [title_requests(lyric, vocab, limit) for lyric in lyrics]
    results = iter(generate_many(model, vocab, [r for _, requests in planned for r in requests]))
    return [pick(lyric, options, [next(results).logprob for _ in options])
            for lyric, (options, _) in zip(lyrics, planned, strict=True)]
