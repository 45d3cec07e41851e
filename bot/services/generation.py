"""The generation worker: one thread owns the model and serves every request with continuous batching.

Handlers never touch a tensor. They ``await backend.generate(job)``; the job's candidates join the
running batch between steps and leave when done, so a crowd costs little more than one person.
``GenerationBackend`` is the seam where a distributed queue (``bot.services.celery_backend``: Celery
workers on GPU machines, each running this same worker inside) replaces the in-process one without
touching handlers or services.

The worker keeps one lane (a ``BatchGenerator``) per model version: a job may name the version it
wants, a promotion adds a lane, and a lane that is idle and no longer needed is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from charrnn.batching import BatchGenerator
from charrnn.mixture import LanguageModel
from charrnn.sample import Generation, SampleConfig
from charrnn.titles import TITLE_CONTEXT, fit_requests, is_english, pick, scored, title_config, title_options
from charrnn.vocab import Vocab

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue is at capacity; ``wait_s`` is an honest guess of when to try again."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"generation queue is full; try again in about {wait_s:.0f} s")
        self.wait_s = wait_s


@dataclass(frozen=True)
class GenerationJob:
    prefix: str
    temperature: float
    length: int
    candidates: int = 1
    seed: int | None = None
    stop_after_lines: int = 0
    rhyme: bool = False
    version: str | None = None  # the model version to run on; None: the one the backend serves now
    titles: int = 0  # title candidates to sample (charrnn.titles); 0: no titles
    # The named style the version belongs to; None: the default style. Only a default-style job may move the
    # version that jobs naming none get (see LocalGenerationWorker._lane_for): styles are served side by side.
    style: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    candidates: tuple[Generation, ...]
    model_version: str
    seconds: float
    titles: tuple[str | None, ...] = ()  # one per candidate when the job asked for titles


@dataclass(frozen=True)
class LoadedModel:
    model: LanguageModel
    vocab: Vocab
    version: str


Loader = Callable[[str], LoadedModel]  # a model version's name -> the model, verified and ready


class GenerationBackend(Protocol):
    """What the services need of generation, wherever it runs (this process, or Celery workers)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult:
        """Raises ``QueueFull`` when busy, ``TimeoutError`` after ``timeout`` seconds."""
        ...

    def estimated_wait_s(self) -> float: ...

    @property
    def model_version(self) -> str:
        """The version new requests get."""
        ...

    @property
    def vocab(self) -> Vocab:
        """The served model's vocabulary: which characters of a new corpus it has never seen."""
        ...

    async def activate(self, version: str) -> None:
        """Serve ``version`` to new requests; requests already running finish on the model they started on."""
        ...


@dataclass
class _Pending:
    """A job handed to the worker thread, and how to answer its caller on the event loop."""

    seq: int
    job: GenerationJob
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop
    submitted: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Running:
    pending: _Pending
    # generator row id -> its slot: a candidate (0, 1, ...), a sampled title (-1, -2, ...), or the fit of
    # title option j to candidate i, (i, j): a teacher-forced row, added once the others are done
    rows: dict[int, Slot]
    results: dict[Slot, Generation] = field(default_factory=dict)
    options: list[str] | None = None  # the titles being fitted, once fitting started

    def candidates(self) -> tuple[Generation, ...]:
        return tuple(self.results[i] for i in sorted(k for k in self.results if isinstance(k, int) and k >= 0))


Slot = int | tuple[int, int]


class _Lane:
    """One model version's ``BatchGenerator`` and the jobs running on it.

    A new model gets a new lane; the old lane keeps stepping until its last job is done, so requests in
    flight finish on the model they started with. Row ids are the generator's own, so they never mix
    across lanes.
    """

    def __init__(self, loaded: LoadedModel, max_batch: int, dtype: torch.dtype | None) -> None:
        self.version = loaded.version
        self.generator = BatchGenerator(loaded.model, loaded.vocab, max_batch=max_batch, dtype=dtype)
        self.jobs: dict[int, _Running] = {}  # by _Pending.seq
        self.owner: dict[int, int] = {}  # row id -> job seq

    def idle(self) -> bool:
        return self.generator.idle()

    def submit(self, pending: _Pending) -> None:
        """Add the job's candidates; a job that cannot be added leaves nothing behind and raises."""
        job = pending.job
        seeds = random.Random(job.seed) if job.seed is not None else random.SystemRandom()
        rows: dict[int, Slot] = {}
        try:
            for index in range(job.candidates):
                config = SampleConfig(
                    temperature=job.temperature,
                    max_length=job.length,
                    stop_after_lines=job.stop_after_lines,
                    no_repeat_ngram=8,
                    rhyme=job.rhyme,
                    seed=seeds.randrange(2**63),
                )
                rows[self.generator.submit(job.prefix, config)] = index
            for index in range(job.titles):  # title rows: short, line mode, batched with everything else
                rows[self.generator.submit(TITLE_CONTEXT, title_config(seeds.randrange(2**63)))] = -1 - index
        except Exception:
            for rid in rows:
                self.generator.cancel(rid)
            raise
        self.jobs[pending.seq] = _Running(pending, rows)
        self.owner.update(dict.fromkeys(rows, pending.seq))

    def step(self) -> tuple[list[tuple[_Pending, GenerationResult]], list[tuple[_Pending, Exception]]]:
        """One batched step: (jobs finished with their result, jobs that failed alone with their error)."""
        finished: list[tuple[_Pending, GenerationResult]] = []
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

    def _fit_titles(self, running: _Running) -> bool:
        """Once a job's lyrics and sampled titles are done, add one teacher-forced row per (lyric, title) that
        scores the lyric's opening under the title, in this same batch; True if any were added. Adding rows to
        a running batch costs little; scoring each job in a pass of its own cost a third of the throughput."""
        if not running.pending.job.titles:
            return False
        sampled = [g.continuation for slot, g in running.results.items() if isinstance(slot, int) and slot < 0]
        running.options = [t for t in title_options(sampled) if not is_english(t)]
        vocab = self.generator.vocab
        lyrics = [g.lyric for g in running.candidates()]
        added: dict[int, Slot] = {}
        try:
            for i, lyric in enumerate(lyrics):
                if not scored(lyric, vocab):
                    continue
                known = "".join(c for c in lyric if c in vocab)
                for j, (prefix, config) in enumerate(fit_requests(known, running.options)):
                    added[self.generator.submit(prefix, config)] = (i, j)
        except Exception:  # titles are a nicety: the lyrics go out with their hooks as titles
            log.exception("could not fit titles for job %s", running.pending.seq)
            for rid in added:
                self.generator.cancel(rid)
            return False
        running.rows.update(added)
        self.owner.update(dict.fromkeys(added, running.pending.seq))
        return bool(added)

    @staticmethod
    def _titles(running: _Running, candidates: tuple[Generation, ...]) -> tuple[str | None, ...]:
        """Each candidate's title: the best-fitting option, or its hook."""
        if not running.pending.job.titles:
            return ()
        options = running.options or []
        titles = []
        for i, candidate in enumerate(candidates):
            scores = [running.results[(i, j)].logprob for j in range(len(options)) if (i, j) in running.results]
            fitted = len(scores) == len(options)  # else not fitted (English, nothing known): the hook
            titles.append(pick(candidate.lyric, options if fitted else [], scores if fitted else []))
        return tuple(titles)

    def cancel(self, seq: int) -> None:
        running = self.jobs.pop(seq, None)
        for rid in running.rows if running is not None else ():
            self.owner.pop(rid, None)
            self.generator.cancel(rid)

    def cancelled(self) -> list[int]:
        return [seq for seq, running in self.jobs.items() if running.pending.cancelled.is_set()]

    def drain(self) -> list[_Pending]:
        """Forget every job (the lane is being thrown away); returns them so their callers can be told."""
        pending = [running.pending for running in self.jobs.values()]
        self.jobs.clear()
        self.owner.clear()
        return pending


class LocalGenerationWorker:
    """In-process backend: a bounded queue in front of a thread that runs ``BatchGenerator``."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        queue_size: int,
        max_batch: int,
        torch_threads: int = 1,
        dtype: torch.dtype | None = None,
        loader: Loader | None = None,
        max_lanes: int = 2,
    ) -> None:
        self._loader = loader
        self._max_lanes = max(1, max_lanes)  # models kept in memory: the served one and recently asked-for ones
        self._dtype = dtype
        self._queue_size = queue_size
        self._max_batch = max_batch
        self._torch_threads = torch_threads
        self._inbox: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._outstanding = 0  # jobs accepted and not finished; touched only on the event loop
        self._seq = 0
        self._job_seconds = 1.0  # moving average of one job's service time, for "busy" estimates
        self._swap: LoadedModel | None = None
        self._swap_lock = threading.Lock()
        self._loaded = loaded
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def model_version(self) -> str:
        return (self._swap or self._loaded).version

    @property
    def vocab(self) -> Vocab:
        """The vocabulary of the model that new requests get."""
        return (self._swap or self._loaded).vocab

    def reserve_lanes(self, lanes: int) -> None:
        """Keep at least ``lanes`` models in memory: one per live style plus the default, so that styles
        taking turns never unload and reload each other."""
        self._max_lanes = max(self._max_lanes, lanes)

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
        self._thread.start()

    async def start(self) -> None:
        self.start_thread()

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish or abandon what is running, then end the thread."""
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("generation worker did not stop within %.0f s", timeout)

    async def activate(self, version: str) -> None:
        """Load ``version`` (off the event loop) and serve it from the next step on."""
        if version == self.model_version and self._swap is None:
            return
        if self._loader is None:
            raise LookupError(f"this worker cannot load model versions by name (asked for {version})")
        self.serve(await asyncio.to_thread(self._loader, version))

    def serve(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` from the next step on; requests already running finish on the old model."""
        with self._swap_lock:
            self._swap = loaded

    def estimated_wait_s(self) -> float:
        concurrent = max(1, self._max_batch // 4)
        return max(1.0, (self._outstanding / concurrent + 1) * self._job_seconds)

    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult:
        if self._outstanding >= self._queue_size:
            raise QueueFull(self.estimated_wait_s())
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the generation worker is not running")
        loop = asyncio.get_running_loop()
        self._seq += 1
        pending = _Pending(self._seq, job, loop.create_future(), loop)
        self._outstanding += 1
        try:
            self._inbox.put(pending)
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            pending.cancelled.set()  # no-op when finished; frees the rows after a timeout
            self._outstanding -= 1
            elapsed = time.monotonic() - pending.submitted
            self._job_seconds = 0.8 * self._job_seconds + 0.2 * elapsed

    # --- worker thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(self._torch_threads)
        # By version, least recently used first; the lane of self._loaded serves jobs that name none.
        lanes: OrderedDict[str, _Lane] = OrderedDict()
        failures = 0
        with torch.inference_mode():
            while not self._stopping.is_set():
                try:
                    self._serving_lane(lanes)
                    busy = any(not lane.idle() for lane in lanes.values())
                    self._take_jobs(lanes, block=not busy)
                    self._apply_swap(lanes)
                    for lane in lanes.values():
                        for seq in lane.cancelled():
                            lane.cancel(seq)
                    self._step(lanes)
                    self._prune(lanes)
                    failures = 0
                except Exception as exc:  # nothing may kill the worker, not even an error while recovering
                    failures += 1
                    log.exception("generation worker error (%d in a row); failing the running jobs", failures)
                    for lane in lanes.values():
                        for pending in lane.drain():
                            self._resolve(pending, exc=exc)
                    lanes.clear()  # rebuilt at the top of the loop; if that fails too, we come back here
                    self._stopping.wait(min(5.0, 0.05 * 2**failures))  # a persistent fault must not spin
        self._shut_down(list(lanes.values()))

    def _serving_lane(self, lanes: OrderedDict[str, _Lane]) -> _Lane:
        lane = lanes.get(self._loaded.version)
        if lane is None:  # at start, after a failed step, or after a swap
            lane = lanes[self._loaded.version] = self._new_lane(self._loaded)
        return lane

    def _lane_for(self, lanes: OrderedDict[str, _Lane], version: str | None, follow: bool = True) -> _Lane:
        """The lane of the version a job names, loaded on first use (how a promotion reaches a Celery worker).

        ``follow``: the job is of the default style, so a version it names for the first time becomes the one
        jobs naming none get; another style's version never does.
        """
        if version is None or version == self._loaded.version:
            lane = self._serving_lane(lanes)
        elif version in lanes:
            lane = lanes[version]
        else:
            if self._loader is None:
                raise LookupError(f"model version {version} is not loaded here")
            loaded = self._loader(version)
            log.info("loaded model %s on request", loaded.version)
            lane = lanes[version] = self._new_lane(loaded)
            # A default-style version asked for by name for the first time is, nearly always, the one just
            # promoted: it serves jobs that name none from now on, and the version this worker started with can go.
            if follow:
                self._loaded = loaded
        lanes.move_to_end(lane.version)
        return lane

    def _prune(self, lanes: OrderedDict[str, _Lane]) -> None:
        """Drop idle lanes beyond ``max_lanes``, least recently used first; the serving lane stays."""
        for version in [v for v in lanes if v != self._loaded.version]:
            if len(lanes) <= self._max_lanes:
                break
            if lanes[version].idle():
                del lanes[version]

    def _step(self, lanes: OrderedDict[str, _Lane]) -> None:
        for version, lane in list(lanes.items()):
            if lane.idle():
                continue
            try:
                finished, failed = lane.step()
            except Exception as exc:  # a bug or an OOM in one lane fails its jobs, not the worker
                log.exception("generation step failed on model %s", lane.version)
                for pending in lane.drain():
                    self._resolve(pending, exc=exc)
                del lanes[version]
                continue
            for pending, result in finished:
                self._resolve(pending, result)
            for pending, error in failed:
                log.warning("job %s failed alone: %s", pending.seq, error)
                self._resolve(pending, exc=error)

    def _shut_down(self, lanes: list[_Lane]) -> None:
        shutting_down = RuntimeError("the bot is shutting down")
        for lane in lanes:
            for pending in lane.drain():
                self._resolve(pending, exc=shutting_down)
        while True:  # jobs that never got a row: tell their callers too
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._resolve(item, exc=shutting_down)

    def _apply_swap(self, lanes: OrderedDict[str, _Lane]) -> None:
        """Start serving a model handed over by ``serve``; the old lane drains on its own."""
        with self._swap_lock:
            loaded, self._swap = self._swap, None
        if loaded is not None:
            if loaded.version not in lanes:  # a version still in memory (a quick rollback) keeps its lane
                lanes[loaded.version] = self._new_lane(loaded)
            lanes.move_to_end(loaded.version)
            self._loaded = loaded
            log.info("now serving model %s", loaded.version)

    def _new_lane(self, loaded: LoadedModel) -> _Lane:
        return _Lane(loaded, self._max_batch, self._dtype)

    def _take_jobs(self, lanes: OrderedDict[str, _Lane], block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            self._apply_swap(lanes)  # a job that arrives after serve() gets the new model
            try:
                self._lane_for(lanes, item.job.version, follow=item.job.style is None).submit(item)
            except Exception as exc:  # a job that cannot even be added fails alone
                log.warning("job %s refused: %s", item.seq, exc)
                self._resolve(item, exc=exc)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
        self._stopping.set()

    @staticmethod
    def _resolve(pending: _Pending, result: GenerationResult | None = None, exc: BaseException | None = None) -> None:
        def settle() -> None:
            if pending.future.done():
                return
            if exc is not None:
                pending.future.set_exception(exc)
            else:
                pending.future.set_result(result)  # type: ignore[arg-type]

        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is waiting any more
            pending.loop.call_soon_threadsafe(settle)
