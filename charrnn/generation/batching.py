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
from charrnn.generation.phrases import best, branch
from charrnn.generation.processors import SAMPLING, SHAPING, choose, process
from charrnn.generation.result import Generation, result
from charrnn.generation.rows import Batch, Fork, Row, VocabTables, Waiting, advance, forced_or, new_row
from charrnn.mixture import LanguageModel
from charrnn.model import State, concat_states, select_state
from charrnn.text.themes import clashing_axes
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
        register: str = "",
    ) -> None:
        """``dtype``: run a copy of the model in this precision (see ``serving_dtype``); None keeps it.
        ``words``: the model's English words (``Checkpoint.words``); None writes English unconstrained.
        ``register``: what it reads before a Chinese lyric without a tune (``Checkpoint.register``)."""
        if len(vocab) != model.config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} symbols, model expects {model.config.vocab_size}")
        if dtype is not None and dtype != next(model.parameters()).dtype:
            model = copy.deepcopy(model).to(dtype)
        self.model = model
        self.vocab = vocab
        self.device = device or next(model.parameters()).device
        self.max_batch = max_batch
        self.tables = VocabTables(vocab, self.device, words, register)
        self._next_id = 0
        self._pending: list[Row] = []
        self._rows: list[Row] = []
        self._state: State | None = None
        self._logits: torch.Tensor | None = None  # (B, V) next-character logits of the active rows
        self._batch: Batch | None = None  # the rows' settings as tensors, rebuilt when rows change
        self._rejected: list[tuple[int, Exception]] = []  # requests whose priming failed, not yet reported
        self._forks: dict[int, Fork] = {}  # requests ranked by phrase, by id (charrnn.generation.phrases)

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
        siblings = [i for i, row in enumerate(self._rows) if row.rid == rid]
        found = bool(siblings) or rid in self._forks
        fork = self._forks.pop(rid, None)
        if fork is not None:
            fork.waiting.clear()  # the siblings set aside, and their states, go now
        if siblings:
            self._drop_rows(siblings)
        return found

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
            ended: list[Row] = []  # siblings at a clause's end, waiting for the others (charrnn.generation.phrases)
            for i, (row, token, logprob) in enumerate(zip(self._rows, tokens, logprobs[:, 0].tolist(), strict=True)):
                reason = advance(row, token, logprob, self.tables)
                if row.fork is not None:
                    row.phrase.append(logprob)
                    if reason is not None:
                        row.fork.waiting[row.sibling] = Waiting(row, reason, None, None)
                        done.append(i)
                    elif token in self.tables.phrase_ends and row.context[-2] not in self.tables.phrase_ends:
                        ended.append(row)  # a line break after a clause's stop is no new clause
                elif reason is not None:
                    finished.append((row.rid, result(row, reason, self.vocab)))
                    done.append(i)
            if done:
                self._drop_rows(done)
            if self._rows:
                assert self._state is not None
                inputs = torch.tensor([row.context[-1] for row in self._rows], device=self.device)
                logits, self._state = self.model.step(inputs, self._state)
                self._logits = logits.float()
            if ended:
                self._set_aside(ended)
            return finished + self._choose_phrases()

    def run(self) -> dict[int, Generation]:
        """Step until every submitted request is finished."""
        results: dict[int, Generation] = {}
        while not self.idle():
            results.update(self.step())
        return results

    # --- internals ------------------------------------------------------------------------------

    def _admit(self) -> None:
        """Waiting requests join in order while their rows fit (a request ranked by phrase needs one per sibling,
        and siblings set aside at a clause's end keep theirs)."""
        room = self.max_batch - len(self._rows) - sum(len(fork.waiting) for fork in self._forks.values())
        count = 0
        for row in self._pending:
            if self._siblings(row) > room:
                break
            room -= self._siblings(row)
            count += 1
        if not count:
            return
        joining, self._pending = self._pending[:count], self._pending[count:]
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
        rows: list[Row] = []
        for row in joining:
            size = self._siblings(row)
            if size > 1:
                fork = self._forks[row.rid] = Fork(size)
                rows.extend(branch(row, fork))
            else:
                rows.append(row)
        if len(rows) > len(joining):
            index = torch.tensor([i for i, row in enumerate(joining) for _ in range(self._siblings(row))],
                                 device=self.device)
            state, logits = select_state(state, index), logits.index_select(0, index)
        self._add(rows, state, logits)

    def _add(self, rows: list[Row], state: State, logits: torch.Tensor) -> None:
        """Rows join the running batch with their state and next-character logits."""
        logits = logits.float()
        if self._rows:
            assert self._state is not None and self._logits is not None
            self._state = concat_states([self._state, state])
            self._logits = torch.cat([self._logits, logits])
        else:
            self._state, self._logits = state, logits
        self._rows.extend(rows)
        self._batch = None

    def _siblings(self, row: Row) -> int:
        """How many rows a request runs as: its phrase candidates (never more than a batch holds), else one."""
        ranked = row.fork is None and not row.config.force and row.melody is None
        return min(row.config.phrase_candidates, self.max_batch) if ranked else 1

    def _set_aside(self, ended: list[Row]) -> None:
        """Siblings that ended a clause leave the batch with their state until their fork is complete."""
        assert self._state is not None and self._logits is not None
        position = {id(row): i for i, row in enumerate(self._rows)}
        for row in ended:
            i = position[id(row)]
            assert row.fork is not None
            kept = select_state(self._state, torch.tensor([i], device=self.device))
            row.fork.waiting[row.sibling] = Waiting(row, None, kept, self._logits[i : i + 1].clone())
        self._drop_rows([position[id(row)] for row in ended])

    def _choose_phrases(self) -> list[tuple[int, Generation]]:
        """Every complete fork keeps its best clause: the request is finished, or goes on as new siblings."""
        finished = []
        for rid, fork in list(self._forks.items()):
            if not fork.complete:
                continue
            kept = best(fork, self._clashing_axes)
            fork.waiting = {}
            if kept.reason is not None:
                del self._forks[rid]
                finished.append((rid, result(kept.row, kept.reason, self.vocab)))
                continue
            assert kept.state is not None and kept.logits is not None
            same = torch.zeros(fork.size, dtype=torch.long, device=self.device)
            self._add(branch(kept.row, fork), select_state(kept.state, same), kept.logits.index_select(0, same))
        return finished

    def _clashing_axes(self, row: Row) -> int:
        """On how many axes the row's text holds words of opposite seasons or moods (``charrnn.text.themes``), if
        it keeps to one; else 0."""
        return clashing_axes(row.prefix + self.vocab.decode(row.generated)) if row.config.one_theme else 0

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
    register: str = "",
) -> list[Generation]:
    """Many requests batched together; results in request order."""
    generator = BatchGenerator(model, vocab, max_batch=max_batch, words=words, register=register)
    ids = [generator.submit(prefix, config) for prefix, config in requests]
    results = generator.run()
    return [results[rid] for rid in ids]


def choose_titles(
    model: LanguageModel, vocab: Vocab, lyrics: Sequence[str], limit: int, prefixes: Sequence[str] | None = None
) -> list[str | None]:
    """One title per lyric, its words fitted in one batch (``generate_many``, at most ``limit`` per lyric); the
    serving worker does the same in its running batch. ``prefixes``: each lyric's opening as the person typed it."""
    openings = list(prefixes) if prefixes is not None else [""] * len(lyrics)
    planned = [title_requests(lyric, vocab, limit, prefix) for lyric, prefix in zip(lyrics, openings, strict=True)]
    results = iter(generate_many(model, vocab, [r for _, requests in planned for r in requests]))
    return [pick(lyric, options, [next(results).logprob for _ in options], prefix)
            for lyric, prefix, (options, _) in zip(lyrics, openings, planned, strict=True)]
