"""The generation worker: one thread owns the model and serves every request with continuous batching.

Handlers never touch a tensor. They ``await backend.generate(job)``; the job's candidates join the
running batch between steps and leave when done, so a crowd costs little more than one person.
``GenerationBackend`` is the seam where a distributed queue (Celery workers on GPU machines) can
replace this in-process worker without touching handlers or services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch

from charrnn.model import CharRNN
from charrnn.sample import BatchGenerator, Generation, SampleConfig
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


@dataclass(frozen=True)
class GenerationResult:
    candidates: tuple[Generation, ...]
    model_version: str
    seconds: float


@dataclass(frozen=True)
class LoadedModel:
    model: CharRNN
    vocab: Vocab
    version: str


class GenerationBackend(Protocol):
    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult: ...

    def estimated_wait_s(self) -> float: ...

    @property
    def model_version(self) -> str: ...

    def swap_model(self, loaded: LoadedModel) -> None: ...


@dataclass
class _Pending:
    job: GenerationJob
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop
    submitted: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Running:
    pending: _Pending
    version: str
    rids: dict[int, int]  # row id -> candidate index
    results: dict[int, Generation] = field(default_factory=dict)


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
    ) -> None:
        self._dtype = dtype
        self._queue_size = queue_size
        self._max_batch = max_batch
        self._torch_threads = torch_threads
        self._inbox: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._outstanding = 0  # jobs accepted and not finished; touched only on the event loop
        self._job_seconds = 1.0  # moving average of one job's service time, for "busy" estimates
        self._swap: LoadedModel | None = None
        self._swap_lock = threading.Lock()
        self._loaded = loaded
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def model_version(self) -> str:
        return self._loaded.version

    @property
    def vocab(self) -> Vocab:
        """The vocabulary of the model that new requests get."""
        return (self._swap or self._loaded).vocab

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish or abandon what is running, then end the thread."""
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("generation worker did not stop within %.0f s", timeout)

    def swap_model(self, loaded: LoadedModel) -> None:
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
        pending = _Pending(job, loop.create_future(), loop)
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
        generators: list[tuple[BatchGenerator, str]] = [self._new_generator(self._loaded)]
        running: dict[int, _Running] = {}  # keyed by id() of the generator-row owner job
        owner: dict[tuple[int, int], int] = {}  # (generator index id, row id) -> job key
        with torch.inference_mode():
            while not self._stopping.is_set():
                try:
                    busy = any(not g.idle() for g, _ in generators)
                    self._take_jobs(generators, running, owner, block=not busy)
                    self._apply_swap(generators)
                    self._drop_cancelled(generators, running, owner)
                except Exception as exc:  # nothing may kill the worker: fail what is affected, go on
                    log.exception("generation worker error")
                    for key in list(running):
                        self._resolve(running.pop(key).pending, exc=exc)
                    owner.clear()
                    generators = [self._new_generator(self._loaded)]
                    continue
                for generator, version in list(generators):
                    try:
                        finished = generator.step()
                    except Exception as exc:  # a bug or an OOM must not kill the worker
                        log.exception("generation step failed on model %s", version)
                        self._fail_generator(generator, running, owner, exc)
                        generators.remove((generator, version))
                        generators.append(self._new_generator(self._loaded))
                        continue
                    for rid, generation in finished:
                        self._deliver(generator, rid, generation, running, owner)
                # An old model leaves once its last request is done.
                generators = [g for g in generators[:-1] if not g[0].idle()] + generators[-1:]
        shutting_down = RuntimeError("the bot is shutting down")
        for job in running.values():
            self._resolve(job.pending, exc=shutting_down)
        while True:  # jobs that never got a row: tell their callers too
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._resolve(item, exc=shutting_down)

    def _apply_swap(self, generators: list[tuple[BatchGenerator, str]]) -> None:
        """Start serving a model handed over by ``swap_model``; the old generator drains on its own."""
        with self._swap_lock:
            loaded, self._swap = self._swap, None
        if loaded is not None:
            generators.append(self._new_generator(loaded))
            self._loaded = loaded
            log.info("now serving model %s", loaded.version)

    def _new_generator(self, loaded: LoadedModel) -> tuple[BatchGenerator, str]:
        generator = BatchGenerator(loaded.model, loaded.vocab, max_batch=self._max_batch, dtype=self._dtype)
        return generator, loaded.version

    def _take_jobs(
        self,
        generators: list[tuple[BatchGenerator, str]],
        running: dict[int, _Running],
        owner: dict[tuple[int, int], int],
        block: bool,
    ) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            self._apply_swap(generators)  # a job that arrives after swap_model() gets the new model
            generator, version = generators[-1]
            job = item.job
            seeds = random.Random(job.seed) if job.seed is not None else random.SystemRandom()
            rids = {}
            for index in range(job.candidates):
                config = SampleConfig(
                    temperature=job.temperature,
                    max_length=job.length,
                    stop_after_lines=job.stop_after_lines,
                    no_repeat_ngram=8,
                    seed=seeds.randrange(2**63),
                )
                rid = generator.submit(job.prefix, config)
                rids[rid] = index
                owner[(id(generator), rid)] = id(item)
            running[id(item)] = _Running(item, version, rids)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
        self._stopping.set()

    def _deliver(
        self,
        generator: BatchGenerator,
        rid: int,
        generation: Generation,
        running: dict[int, _Running],
        owner: dict[tuple[int, int], int],
    ) -> None:
        key = owner.pop((id(generator), rid), None)
        job = running.get(key) if key is not None else None
        if job is None:
            return
        job.results[job.rids[rid]] = generation
        if len(job.results) == len(job.rids):
            del running[id(job.pending)]
            ordered = tuple(job.results[i] for i in sorted(job.results))
            seconds = time.monotonic() - job.pending.submitted
            self._resolve(job.pending, GenerationResult(ordered, job.version, seconds))

    def _drop_cancelled(
        self,
        generators: list[tuple[BatchGenerator, str]],
        running: dict[int, _Running],
        owner: dict[tuple[int, int], int],
    ) -> None:
        for key, job in list(running.items()):
            if job.pending.cancelled.is_set():
                # Row ids restart at 0 in every generator: cancel only the rows this job owns.
                for generator, _ in generators:
                    for rid in job.rids:
                        if owner.get((id(generator), rid)) == key:
                            del owner[(id(generator), rid)]
                            generator.cancel(rid)
                del running[key]

    def _fail_generator(
        self,
        generator: BatchGenerator,
        running: dict[int, _Running],
        owner: dict[tuple[int, int], int],
        exc: Exception,
    ) -> None:
        keys = {key for (gen_id, _), key in owner.items() if gen_id == id(generator)}
        for gen_id, rid in [k for k in owner if k[0] == id(generator)]:
            del owner[(gen_id, rid)]
        for key in keys:
            job = running.pop(key, None)
            if job is not None:
                self._resolve(job.pending, exc=exc)

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
