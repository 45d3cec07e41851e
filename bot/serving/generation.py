"""The generation worker: one thread owns the model and serves every request with continuous batching.

Handlers never touch a tensor. They ``await backend.generate(job)``; the job's candidates join the
running batch between steps and leave when done, so a crowd costs little more than one person.
``GenerationBackend`` is the seam where a distributed queue (``bot.serving.celery_backend``: Celery
workers on GPU machines, each running this same worker inside) replaces the in-process one without
touching handlers or services.

The worker keeps one lane (a ``BatchGenerator``) per model version: a job names the version it wants
(the bot's always do: its style's active version), a lane is loaded on a version's first job or ahead of it
(``warm``, after a promotion), and a lane that is idle and no longer needed is dropped (lanes:
``bot.serving.lanes``; the job and result types: ``bot.serving.jobs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from typing import Protocol

import torch

from bot.serving.jobs import GenerationJob, GenerationResult, LoadedModel, Loader, QueueFull
from bot.serving.lanes import Lane, Pending

__all__ = ["GenerationBackend", "GenerationJob", "GenerationResult", "LoadedModel", "Loader", "LocalGenerationWorker",
           "QueueFull"]  # the job types live in bot.serving.jobs; callers import them from here

log = logging.getLogger(__name__)


class GenerationBackend(Protocol):
    """What the services need of generation, wherever it runs (this process, or Celery workers)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult:
        """Raises ``QueueFull`` when busy, ``TimeoutError`` after ``timeout`` seconds."""
        ...

    def estimated_wait_s(self) -> float: ...

    async def warm(self, version: str) -> None:
        """Get ``version`` ready now (a style was just pointed at it), so its first request does not wait for the
        load; requests already running finish on the model they started on."""
        ...


class LocalGenerationWorker:
    """In-process backend: a bounded queue in front of a thread that runs ``BatchGenerator``.

    ``loaded``: a model of the worker's own, for jobs that name no version (a test's, a benchmark's), kept in
    memory whatever else comes and goes; None for a worker that runs only the versions jobs name (the bot's and
    ``bot.worker``'s: every job names its style's version). Other versions are kept least recently used first,
    ``max_lanes`` of them at most, so a version nobody asks for any more (a rollback elsewhere) leaves in time."""

    def __init__(
        self,
        loaded: LoadedModel | None,
        *,
        queue_size: int,
        max_batch: int,
        torch_threads: int = 1,
        dtype: torch.dtype | None = None,
        loader: Loader | None = None,
        max_lanes: int = 2,
    ) -> None:
        self._loader = loader
        self._max_lanes = max(1, max_lanes)  # models kept in memory: the worker's own and recently asked-for ones
        self._dtype = dtype
        self._queue_size = queue_size
        self._max_batch = max_batch
        self._torch_threads = torch_threads
        self._inbox: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._outstanding = 0  # jobs accepted and not finished; touched only on the event loop
        self._outstanding_rows = 0  # their GenerationJob.rows, for the wait estimate
        self._seq = 0
        self._job_seconds = 1.0  # moving average of one job's service time, for "busy" estimates
        self._preloads: list[LoadedModel] = []  # handed over by warm(), taken by the worker thread
        self._preloads_lock = threading.Lock()
        self._resident: frozenset[str] = frozenset()  # the versions with a lane, as the worker thread last saw them
        self._loaded = loaded
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def reserve_lanes(self, lanes: int) -> None:
        """Keep at least ``lanes`` models in memory (``StyleService.reserve_lanes``: one per live style), so that
        styles taking turns never unload and reload each other."""
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

    async def warm(self, version: str) -> None:
        """Load ``version`` off the event loop and hand it to the worker thread, which adds its lane between two
        steps: the version's first job does not wait for the load (nor does every other job, behind it).
        Requests already running finish on the model they started on."""
        if version in self._resident:  # a quick rollback to a version still in memory: nothing to load
            return
        if self._loader is None:
            raise LookupError(f"this worker cannot load model versions by name (asked for {version})")
        loaded = await asyncio.to_thread(self._loader, version)
        with self._preloads_lock:
            self._preloads.append(loaded)

    def estimated_wait_s(self) -> float:
        """The rows ahead over the batch's width, in jobs' times, plus one job's time: a /write of four candidates
        with ranked clauses holds five times the rows of an inline answer."""
        return max(1.0, (self._outstanding_rows / self._max_batch + 1) * self._job_seconds)

    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult:
        if self._outstanding >= self._queue_size:
            raise QueueFull(self.estimated_wait_s())
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the generation worker is not running")
        loop = asyncio.get_running_loop()
        self._seq += 1
        pending = Pending(self._seq, job, loop.create_future(), loop)
        self._outstanding += 1
        self._outstanding_rows += job.rows
        try:
            self._inbox.put(pending)
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            pending.cancelled.set()  # no-op when finished; frees the rows after a timeout
            self._outstanding -= 1
            self._outstanding_rows -= job.rows
            elapsed = time.monotonic() - pending.submitted
            self._job_seconds = 0.8 * self._job_seconds + 0.2 * elapsed

    # --- worker thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(self._torch_threads)
        # By version, least recently used first; the lane of self._loaded serves jobs that name none.
        lanes: OrderedDict[str, Lane] = OrderedDict()
        failures = 0
        with torch.inference_mode():
            while not self._stopping.is_set():
                try:
                    self._serving_lane(lanes)
                    busy = any(not lane.idle() for lane in lanes.values())
                    self._take_jobs(lanes, block=not busy)
                    self._take_preloads(lanes)
                    for lane in lanes.values():
                        for seq in lane.cancelled():
                            lane.cancel(seq)
                    self._step(lanes)
                    self._prune(lanes)
                    self._resident = frozenset(lanes)
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

    def _serving_lane(self, lanes: OrderedDict[str, Lane]) -> Lane | None:
        if self._loaded is None:
            return None
        lane = lanes.get(self._loaded.version)
        if lane is None:  # at start, after a failed step, or after a swap
            lane = lanes[self._loaded.version] = self._new_lane(self._loaded)
        return lane

    def _lane_for(self, lanes: OrderedDict[str, Lane], version: str | None) -> Lane:
        """The lane of the version a job names (none: the worker's own), loaded on first use (how a promotion
        reaches a Celery worker, or a rollback made elsewhere this worker)."""
        own = self._loaded.version if self._loaded is not None else None
        if version is None or version == own:
            lane = self._serving_lane(lanes)
            if lane is None:
                raise LookupError("the job names no model version, and this worker has none of its own")
        elif version in lanes:
            lane = lanes[version]
        else:
            if self._loader is None:
                raise LookupError(f"model version {version} is not loaded here")
            loaded = self._loader(version)
            log.info("loaded model %s on request", loaded.version)
            lane = lanes[version] = self._new_lane(loaded)
        lanes.move_to_end(lane.version)
        return lane

    def _prune(self, lanes: OrderedDict[str, Lane]) -> None:
        """Drop idle lanes beyond ``max_lanes``, least recently used first; the worker's own stays."""
        own = self._loaded.version if self._loaded is not None else None
        for version in [v for v in lanes if v != own]:
            if len(lanes) <= self._max_lanes:
                break
            if lanes[version].idle():
                del lanes[version]

    def _step(self, lanes: OrderedDict[str, Lane]) -> None:
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

    def _shut_down(self, lanes: list[Lane]) -> None:
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

    def _take_preloads(self, lanes: OrderedDict[str, Lane]) -> None:
        """Add the lanes of models handed over by ``warm``, as the most recently used."""
        with self._preloads_lock:
            preloads, self._preloads = self._preloads, []
        for loaded in preloads:
            if loaded.version not in lanes:  # a version still in memory (a quick rollback) keeps its lane
                lanes[loaded.version] = self._new_lane(loaded)
            lanes.move_to_end(loaded.version)
            log.info("model %s is loaded", loaded.version)

    def _new_lane(self, loaded: LoadedModel) -> Lane:
        return Lane(loaded, self._max_batch, self._dtype)

    def _take_jobs(self, lanes: OrderedDict[str, Lane], block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            self._take_preloads(lanes)  # a job that arrives after warm() finds its model loaded
            try:
                self._lane_for(lanes, item.job.version).submit(item)
            except Exception as exc:  # a job that cannot even be added fails alone
                log.warning("job %s refused: %s", item.seq, exc)
                self._resolve(item, exc=exc)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
        self._stopping.set()

    @staticmethod
    def _resolve(pending: Pending, result: GenerationResult | None = None, exc: BaseException | None = None) -> None:
        def settle() -> None:
            if pending.future.done():
                return
            if exc is not None:
                pending.future.set_exception(exc)
            else:
                pending.future.set_result(result)  # type: ignore[arg-type]

        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is waiting any more
            pending.loop.call_soon_threadsafe(settle)
