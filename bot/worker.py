"""``lyricbot worker``: a Celery worker that serves generation (or fine-tuning) for bots on other machines.

A generation worker is not one request at a time: it runs Celery's thread pool, and every task thread
hands its job to the one ``LocalGenerationWorker`` of the process (the same continuous batching as the
one-machine bot), so ``WORKER_CONCURRENCY`` tasks in flight share each forward step. Tasks name the
model version they want; a version is loaded from ``MODEL_DIR`` on its first task, which is how a
promotion or a rollback reaches every worker without a broadcast.

A worker trusts no task: anyone who can write to the broker can send one. Every field of a job is held to
the limits the bot holds people to (``check_job``), and a version names a directory in ``MODEL_DIR``, never a
path; a bad job fails with ``InvalidJob``, and the bot apologises to the person. A task revoked while it
runs (its request was superseded or timed out) leaves the batch.

A training worker (``--queue training``) runs one fine-tune at a time, each in a fresh child process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import os
import re
import socket
import threading
import time
from typing import Any

from celery import Celery, Task
from celery.exceptions import TaskRevokedError
from celery.worker import state as worker_state

from bot.services.forms import known_tune, pattern_chars, pattern_text
from bot.services.styles import STYLE_NAME
from bot.serving.backends import serving_precision
from bot.serving.celery_app import (
    FINETUNE,
    GENERATE,
    GENERATION_QUEUE,
    TRAINING_QUEUE,
    InvalidJob,
    encode_result,
    make_celery,
)
from bot.serving.finetune_job import run_job
from bot.serving.generation import GenerationJob, LocalGenerationWorker
from bot.serving.model_store import VERSION_NAME, ModelStore
from bot.settings import Settings
from charrnn.config import MAX_PHRASE_CANDIDATES

log = logging.getLogger(__name__)

REVOKE_CHECK_S = 0.25  # how often a task thread looks whether its task was revoked while it runs
# "style": sent by bots from before migration 0012 (a rolling upgrade); checked as a name, then not used.
_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationJob)) | {"style"}
_REQUIRED = frozenset({"prefix", "temperature", "length", "version"})  # a worker has no model of its own
MAX_PATTERN_CHARS = 4096  # a pattern string: a few characters per line of a lyric of MAX_LENGTH at most


def _declared_max(field: str) -> int:
    """The upper bound ``Settings`` declares for a field (``candidates`` at most 16): one source for both."""
    bounds = [m.le for m in Settings.model_fields[field].metadata if hasattr(m, "le")]
    return int(bounds[0])


def _int(job: dict[str, Any], name: str, low: int, high: int) -> int:
    value = job[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidJob(f"{name} must be a whole number from {low} to {high}")
    return value


def _name(value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidJob(f"{what} {str(value)[:80]!r} is not a plain name")
    return value


def _form(job: dict[str, Any], settings: Settings) -> dict[str, str]:
    """The job's form, as the bot sends one: a tune by its table name, or a pattern whose lyric is no longer than
    MAX_LENGTH (a forged one of 400 lines of 40 would hold a batch row for 16,000 characters); never both."""
    form, pattern = job.get("form", ""), job.get("pattern", "")
    if not isinstance(form, str) or not isinstance(pattern, str):
        raise InvalidJob("form and pattern must be text")
    if form and pattern:
        raise InvalidJob("a job has a form or a pattern, not both")
    if form and known_tune(form) != form:
        raise InvalidJob(f"form {form[:40]!r} is not a tune's name")
    if pattern:
        if len(pattern) > MAX_PATTERN_CHARS or pattern_text(pattern) != pattern:
            raise InvalidJob(f"pattern {pattern[:40]!r} is not a pattern of lines")
        if pattern_chars(pattern) > settings.max_length:
            raise InvalidJob(f"pattern writes more than {settings.max_length} characters")
    return {name: value for name, value in (("form", form), ("pattern", pattern)) if value}


def check_job(job: object, timeout: object, settings: Settings) -> tuple[GenerationJob, float]:
    """A task's job and timeout, held to the limits the bot holds people to; ``InvalidJob`` says what is wrong.

    The bounds are this worker's ``Settings``: the bot and its workers share one configuration. A version
    must be a plain directory name with a checkpoint in ``MODEL_DIR``, so nothing outside it is ever loaded.
    The timeout is cut to ``REQUEST_TIMEOUT_S``: no task holds a pool thread longer than a request may wait.
    """
    if not isinstance(job, dict):
        raise InvalidJob("the job is not an object")
    if unknown := set(job) - _FIELDS:
        raise InvalidJob(f"unknown job fields: {', '.join(sorted(str(k)[:40] for k in unknown)[:5])}")
    if missing := _REQUIRED - set(job):
        raise InvalidJob(f"missing job fields: {', '.join(sorted(missing))}")
    prefix = job["prefix"]
    if not isinstance(prefix, str) or len(prefix) > settings.max_prefix_chars:
        raise InvalidJob(f"prefix must be text of at most {settings.max_prefix_chars} characters")
    temperature = job["temperature"]
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not settings.allows_temperature(
            temperature):
        raise InvalidJob(f"temperature must be from {settings.min_temperature:g} to {settings.max_temperature:g}")
    checked: dict[str, Any] = {"prefix": prefix, "temperature": float(temperature),
                               "length": _int(job, "length", settings.min_length, settings.max_length)}
    if "candidates" in job:
        checked["candidates"] = _int(job, "candidates", 1, _declared_max("candidates"))
    if "titles" in job:
        checked["titles"] = _int(job, "titles", 0, _declared_max("title_candidates"))
    if "phrases" in job:
        checked["phrases"] = _int(job, "phrases", 1, MAX_PHRASE_CANDIDATES)
    if "stop_after_lines" in job:
        checked["stop_after_lines"] = _int(job, "stop_after_lines", 0, settings.max_length)
    if job.get("seed") is not None:
        checked["seed"] = _int(job, "seed", 0, 2**63 - 1)
    if "rhyme" in job:
        if not isinstance(job["rhyme"], bool):
            raise InvalidJob("rhyme must be true or false")
        checked["rhyme"] = job["rhyme"]
    version = checked["version"] = _name(job["version"], VERSION_NAME, "version")
    if not (settings.model_dir / version / "meta.json").is_file():
        raise InvalidJob(f"no model version {version!r} in MODEL_DIR")
    if (style := job.get("style")) is not None:
        _name(style, STYLE_NAME, "style")
    checked.update(_form(job, settings))
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise InvalidJob("timeout must be a positive number of seconds")
    return GenerationJob(**checked), min(float(timeout), settings.request_timeout_s)


class GenerationRuntime:
    """What one worker process owns: the model lanes, and the event loop their futures live on."""

    def __init__(self, settings: Settings, tasks: int) -> None:
        self.settings = settings
        store = ModelStore(settings.model_dir, settings.device)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        # No model of its own: every task names its version (its style's, read from the database by the bot),
        # loaded on its first task and kept while it is asked for.
        self.worker = LocalGenerationWorker(
            None, loader=store.load, queue_size=4 * tasks, max_batch=settings.max_batch,
            torch_threads=settings.torch_threads, dtype=serving_precision(settings, settings.device),
            max_lanes=settings.worker_model_lanes,
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="generation-loop", daemon=True)
        self._thread.start()
        self.worker.start_thread()
        log.info("generation worker %s ready; it loads model versions as tasks name them", self.name)

    def generate(self, job: object, timeout: object, task_id: str | None = None) -> dict[str, Any]:
        """Called from a Celery pool thread: blocks that thread (not the batch) until the job is done, or
        until the task ``task_id`` is revoked (then its rows leave the batch and ``TaskRevokedError`` says so)."""
        try:
            checked, seconds = check_job(job, timeout, self.settings)
        except InvalidJob as exc:  # Celery's own line for it is below the level its trace logger is kept at
            log.warning("refused task %s: %s", task_id, exc)
            raise
        future = asyncio.run_coroutine_threadsafe(self.worker.generate(checked, seconds), self.loop)
        deadline = time.monotonic() + seconds + 5.0
        while not future.done():
            concurrent.futures.wait([future], timeout=REVOKE_CHECK_S)
            if task_id is not None and task_id in worker_state.revoked and not future.done():
                future.cancel()  # cancels the job on the loop: its rows leave the batch at the next step
                log.info("task %s revoked while running: dropped from the batch", task_id)
                raise TaskRevokedError(f"task {task_id} was revoked")
            if time.monotonic() > deadline and not future.done():
                future.cancel()
                raise TimeoutError(f"the job did not finish within {seconds:g} s")
        result = future.result()
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

        # A refused job or a revoked task is expected: no traceback (GenerationRuntime logs either in a line).
        # Not shared: Celery would otherwise hand this runtime's task to every app made later in the process.
        @app.task(name=GENERATE, bind=True, acks_late=True, reject_on_worker_lost=True,  # type: ignore[untyped-decorator]
                  throws=(InvalidJob, TaskRevokedError), shared=False)
        def generate(task: Task, job: object, timeout: object) -> dict[str, Any]:
            return runtime.generate(job, timeout, task.request.id)

        return app, runtime

    @app.task(name=FINETUNE, acks_late=False, shared=False)  # type: ignore[untyped-decorator]
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
