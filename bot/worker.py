"""``lyricbot worker``: a Celery worker that serves generation (or fine-tuning) for bots on other machines.

A generation worker is not one request at a time: it runs Celery's thread pool, and every task thread
hands its job to the one ``LocalGenerationWorker`` of the process (the same continuous batching as the
one-machine bot), so ``WORKER_CONCURRENCY`` tasks in flight share each forward step. Tasks name the
model version they want; a version is loaded from ``MODEL_DIR`` on its first task, which is how a
promotion or a rollback reaches every worker without a broadcast.

A training worker (``--queue training``) runs one fine-tune at a time, each in a fresh child process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any

from celery import Celery

from bot.services.backends import serving_precision
from bot.services.celery_backend import FINETUNE, GENERATE, GENERATION_QUEUE, TRAINING_QUEUE, encode_result, make_celery
from bot.services.finetune_job import run_job
from bot.services.generation import GenerationJob, LocalGenerationWorker
from bot.services.models import ModelStore
from bot.settings import Settings

log = logging.getLogger(__name__)


class GenerationRuntime:
    """What one worker process owns: the model lanes, and the event loop their futures live on."""

    def __init__(self, settings: Settings, tasks: int) -> None:
        store = ModelStore(settings.model_dir, settings.device)
        loaded = store.load_active()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.worker = LocalGenerationWorker(
            loaded, loader=store.load, queue_size=4 * tasks, max_batch=settings.max_batch,
            torch_threads=settings.torch_threads, dtype=serving_precision(settings, loaded), max_lanes=3,
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="generation-loop", daemon=True)
        self._thread.start()
        self.worker.start_thread()
        log.info("generation worker %s ready, serving %s", self.name, loaded.version)

    def generate(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Called from a Celery pool thread: blocks that thread (not the batch) until the job is done."""
        future = asyncio.run_coroutine_threadsafe(self.worker.generate(GenerationJob(**job), timeout), self.loop)
        result = future.result(timeout + 5.0)
        log.info("served %d candidate(s) on %s in %.2f s", len(result.candidates), result.model_version, result.seconds)
        return encode_result(result, self.name)

    def close(self) -> None:
        self.worker.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)


def worker_app(settings: Settings, queue: str, tasks: int) -> tuple[Celery, GenerationRuntime | None]:
    """The Celery app with this worker's task registered on it (no module-level task or state)."""
    app = make_celery(settings)
    if queue == GENERATION_QUEUE:
        runtime = GenerationRuntime(settings, tasks)

        @app.task(name=GENERATE, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
        def generate(job: dict[str, Any], timeout: float) -> dict[str, Any]:
            return runtime.generate(job, timeout)

        return app, runtime

    @app.task(name=FINETUNE, acks_late=False)  # type: ignore[untyped-decorator]
    def finetune(spec_path: str) -> str:
        # This machine's device and threads (a GPU box), not those of the bot that asked; not niced: a
        # training worker has nothing else to do.
        run_job(spec_path, device=settings.device, threads=settings.finetune_threads, nice=0)
        return spec_path

    return app, None


def run_worker(settings: Settings, queue: str, concurrency: int | None = None, loglevel: str = "INFO") -> None:
    tasks = concurrency or settings.tasks_per_worker  # the pool's threads, and room for them in the batch queue
    app, runtime = worker_app(settings, queue, tasks)
    if queue == GENERATION_QUEUE:
        pool = ["--pool", "threads", "--concurrency", str(tasks)]
    elif queue == TRAINING_QUEUE:
        # A fresh process per fine-tune (as the one-machine bot spawns one); revoke can kill it.
        pool = ["--pool", "prefork", "--concurrency", "1", "--max-tasks-per-child", "1"]
    else:
        raise ValueError(f"unknown queue {queue!r} ({GENERATION_QUEUE} or {TRAINING_QUEUE})")
    argv = ["worker", "--queues", queue, "--hostname", f"{queue}-{os.getpid()}@%h", "--loglevel", loglevel,
            "--without-gossip", "--without-mingle", *pool]
    # Celery logs every result whole at INFO: people's prefixes and lyrics do not belong in logs.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    try:
        app.worker_main(argv)
    finally:
        if runtime is not None:
            runtime.close()
