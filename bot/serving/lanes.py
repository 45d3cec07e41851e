"""One model version's running batch (a lane) and the jobs on it: their candidate rows and the teacher-forced
rows that fit each lyric's words as its title (``charrnn.text.titles``), all stepping together.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from dataclasses import dataclass, field

import torch

from bot.serving.jobs import GenerationJob, GenerationResult, LoadedModel
from charrnn.config import MAX_LENGTH, MIN_TARGET, SampleConfig
from charrnn.generation.batching import BatchGenerator
from charrnn.generation.result import Generation
from charrnn.text.titles import form_title, pick, title_requests

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A job handed to the worker thread, and how to answer its caller on the event loop."""

    seq: int
    job: GenerationJob
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop
    submitted: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Running:
    pending: Pending
    # generator row id -> its slot: a candidate (0, 1, ...), or the fit of title option j to candidate i,
    # (i, j): a teacher-forced row, added once the candidates are done
    rows: dict[int, Slot]
    results: dict[Slot, Generation] = field(default_factory=dict)
    options: dict[int, list[str]] | None = None  # each candidate's words being fitted, once fitting started

    def candidates(self) -> tuple[Generation, ...]:
        return tuple(self.results[i] for i in sorted(k for k in self.results if isinstance(k, int)))


Slot = int | tuple[int, int]


# A two-character Chinese word the lyric has written is this many times less likely again, for a model that writes
# ci (one with a register line): the base repeated such words (相思, 何处, 梦魂惊断) 10 to 30 times as often as the
# Song ci does, and readers named the loops first. Measured (docs/charrnn.md): in free lyrics 7.6% -> 2.9% of words
# at no cost in likelihood; blind readers preferred it in 28 of 48 free lyrics and 11 of 16 tune patterns.
# Modern lyrics repeat words as a figure (漂亮的让我面红的可爱女人 / 温柔的让我心疼的可爱女人: 6.6% of Jay
# Chou's words): other models are left as they write.
REPEATED_WORD_PENALTY = 4.0
# And each time such a model writes a character in free lines, the character gets this many times less likely
# again (right after itself one use fewer: 悠悠): its free lines wrote a character for the third time 15 times as
# often as the Song ci, for the fourth or more 30 times (月 five times in one lyric, 且 four). Measured
# (docs/charrnn.md, benchmarks/free_lines.py): a character's second, third and fourth-or-more uses 18.3%, 6.4%, 4.7%
# of characters -> 10.3%, 0.8%, 0.1% (held-out ci 4.6%, 0.4%, 0.2%); blind readers preferred it in 36 of 48 free
# lyrics (fluency +0.38, sense +0.40, craft +0.62); in tune patterns, where the base repeats far less, level (23 of
# 48), so those are written as before.
REPEATED_CHAR_PENALTY = 3.0


def lyric_config(job: GenerationJob, seed: int, lines: bool = True, ci: bool = False) -> SampleConfig:
    """How one candidate of ``job`` is sampled: ``job.length`` visible characters in whole lines (``target_length``:
    what /len promises), or the form's own length; ``max_length`` is only a guard, twice the length. A length under
    ``MIN_TARGET`` (shorter than a line: no person's /len is), or a model that cannot write a line break
    (``lines`` False: no line would ever end), is a plain cut at the length, as it was before. ``ci``: the model
    writes ci (``Checkpoint.register``), whose words do not come back (``REPEATED_WORD_PENALTY``), nor, in free
    lines, its characters (``REPEATED_CHAR_PENALTY``)."""
    target = job.length if job.length >= MIN_TARGET and lines else 0
    return SampleConfig(
        temperature=job.temperature,
        max_length=min(2 * job.length, MAX_LENGTH) if target else job.length,
        target_length=target,
        form=job.form,
        pattern=job.pattern,
        stop_after_lines=job.stop_after_lines,
        no_repeat_ngram=8,
        repeated_word_penalty=REPEATED_WORD_PENALTY if ci else 1.0,
        repeated_char_penalty=REPEATED_CHAR_PENALTY if ci and not (job.form or job.pattern) else 1.0,
        rhyme=job.rhyme,
        # A keyword plan where it was measured, in a tune or a pattern (blind readers of ci, 20 pairs each: craft
        # 1.75 vs 1.3, fluency 1.8 vs 1.6, sense level at 1.25); free lines and English are written as before.
        topics=bool(job.form or job.pattern),
        # Each clause of a lyric in lines written job.phrases times in the batch (a /write: PHRASE_CANDIDATES), the
        # likeliest kept (charrnn.generation.phrases): blind readers of ci, 20 pairs, fluency 2.05 -> 2.55, sense
        # 1.5 -> 1.95, craft 1.75 -> 2.0. Sentence integrity in a tune 0.40 -> 0.62, in free Chinese lines on their
        # rhyme 0.40 -> 0.71, in English 0.19 -> 0.34; a /write of four candidates takes about twice as long.
        phrase_candidates=job.phrases if target or job.form or job.pattern else 1,
        seed=seed,
    )


class Lane:
    """One model version's ``BatchGenerator`` and the jobs running on it.

    A new model gets a new lane; the old lane keeps stepping until its last job is done, so requests in
    flight finish on the model they started with. Row ids are the generator's own, so they never mix
    across lanes.
    """

    def __init__(self, loaded: LoadedModel, max_batch: int, dtype: torch.dtype | None) -> None:
        self.version = loaded.version
        self.generator = BatchGenerator(loaded.model, loaded.vocab, max_batch=max_batch, dtype=dtype,
                                        words=loaded.words, register=loaded.register)
        self.ci = bool(loaded.register)  # a model that writes ci (lyric_config)
        self.jobs: dict[int, Running] = {}  # by Pending.seq
        self.owner: dict[int, int] = {}  # row id -> job seq

    def idle(self) -> bool:
        return self.generator.idle()

    def submit(self, pending: Pending) -> None:
        """Add the job's candidates; a job that cannot be added leaves nothing behind and raises."""
        job = pending.job
        seeds = random.Random(job.seed) if job.seed is not None else random.SystemRandom()
        rows: dict[int, Slot] = {}
        try:
            for index in range(job.candidates):
                config = lyric_config(job, seeds.randrange(2**63), lines="\n" in self.generator.vocab,
                                      ci=self.ci)
                rows[self.generator.submit(job.prefix, config)] = index
        except Exception:
            for rid in rows:
                self.generator.cancel(rid)
            raise
        self.jobs[pending.seq] = Running(pending, rows)
        self.owner.update(dict.fromkeys(rows, pending.seq))

    def step(self) -> tuple[list[tuple[Pending, GenerationResult]], list[tuple[Pending, Exception]]]:
        """One batched step: (jobs finished with their result, jobs that failed alone with their error)."""
        finished: list[tuple[Pending, GenerationResult]] = []
        for rid, generation in self.generator.step():
            seq = self.owner.pop(rid, None)
            running = self.jobs.get(seq) if seq is not None else None
            if running is None:
                continue
            running.results[running.rows[rid]] = generation
            if len(running.results) < len(running.rows) or (running.options is None and self._fit_titles(running)):
                continue
            del self.jobs[running.pending.seq]
            candidates = running.candidates()
            seconds = time.monotonic() - running.pending.submitted
            finished.append((running.pending,
                             GenerationResult(candidates, self.version, seconds, self._titles(running, candidates))))
        failed = []
        for rid, exc in self.generator.take_rejected():
            seq = self.owner.get(rid)
            if seq is not None and seq in self.jobs:
                failed.append((self.jobs[seq].pending, exc))
                self.cancel(seq)
        return finished, failed

    def _fit_titles(self, running: Running) -> bool:
        """Once a job's lyrics are done, add one teacher-forced row per (lyric, word of it) that scores the word
        as the lyric's title, in this same batch; True if any were added. Adding rows to a running batch costs
        little; scoring each job in a pass of its own cost a third of the throughput."""
        job = running.pending.job
        running.options = {}
        if not job.titles or job.form:  # a tune's lyric is titled by its tune
            return False
        vocab = self.generator.vocab
        added: dict[int, Slot] = {}
        try:
            for i, candidate in enumerate(running.candidates()):
                running.options[i], requests = title_requests(candidate.lyric, vocab, job.titles, candidate.prefix)
                for j, (prefix, config) in enumerate(requests):
                    added[self.generator.submit(prefix, config)] = (i, j)
        except Exception:  # titles are a nicety: the lyrics go out with their own first words as titles
            log.exception("could not fit titles for job %s", running.pending.seq)
            for rid in added:
                self.generator.cancel(rid)
            running.options = {}
            return False
        running.rows.update(added)
        self.owner.update(dict.fromkeys(added, running.pending.seq))
        return bool(added)

    @staticmethod
    def _titles(running: Running, candidates: tuple[Generation, ...]) -> tuple[str | None, ...]:
        """Each candidate's title: its tune's name for a lyric in a tune's form, else its own words
        (``charrnn.text.titles.pick``)."""
        job = running.pending.job
        if not job.titles:
            return ()
        if job.form:
            return tuple(form_title(job.form) for _ in candidates)
        titles = []
        for i, candidate in enumerate(candidates):
            options = (running.options or {}).get(i, [])
            scores = [running.results[(i, j)].logprob for j in range(len(options)) if (i, j) in running.results]
            complete = len(scores) == len(options)
            titles.append(pick(candidate.lyric, options if complete else [], scores if complete else [],
                               candidate.prefix))
        return tuple(titles)

    def cancel(self, seq: int) -> None:
        running = self.jobs.pop(seq, None)
        for rid in running.rows if running is not None else ():
            self.owner.pop(rid, None)
            self.generator.cancel(rid)

    def cancelled(self) -> list[int]:
        return [seq for seq, running in self.jobs.items() if running.pending.cancelled.is_set()]

    def drain(self) -> list[Pending]:
        """Forget every job (the lane is being thrown away); returns them so their callers can be told."""
        pending = [running.pending for running in self.jobs.values()]
        self.jobs.clear()
        self.owner.clear()
        return pending
