"""Generation and fine-tuning on Celery workers (``GENERATION_BACKEND=celery``), through Redis.

The bot sends a task per request, naming the model version it wants, and awaits the result without
blocking its event loop: one ``ResultPoller`` hears every result as it is stored, through one pattern
subscription, and sweeps the keys of every pending result in one ``MGET`` a few times a second (Celery's
own ``AsyncResult.get`` blocks a thread per request). Each worker (``bot.worker``) runs the
same continuous-batching ``LocalGenerationWorker`` as the one-machine bot, fed by many tasks at once.

Delivery: generation tasks are acknowledged late, so a worker killed mid-batch leaves its tasks to be
delivered again (after ``CELERY_VISIBILITY_TIMEOUT_S``); the bot awaits one result per request id and
its request row is answered once, however many times the task ran. One hole remains in Celery over
Redis: a worker killed between Redis handing it a task (BRPOP) and recording it as unacknowledged loses
that task for good. So the bot sends a task again, under the same id, when no worker has started it
for a visibility timeout while nothing waits in the queue: it is then neither waiting nor running.
Fine-tunes are acknowledged at once: they are long and not idempotent, and a killed one is recorded as
interrupted, as on one machine.

Withdrawal: a request nobody waits for any more (a superseded inline query, a timeout) must not run. Its task
is taken out of the queue if no worker has it yet, so it no longer counts as waiting work ("busy") either;
otherwise it is revoked, which every live worker remembers: one that has not started it discards it, and one
running it drops it from its batch (``bot.worker``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from pathlib import Path

from celery import Celery
from celery.exceptions import TaskRevokedError, WorkerLostError

from bot.serving.celery_app import (
    FINETUNE,
    GENERATE,
    GENERATION_QUEUE,
    TRAINING_QUEUE,
    decode_result,
    job_fields,
    make_celery,
)
from bot.serving.celery_results import ResultPoller
from bot.serving.generation import GenerationJob, GenerationResult, QueueFull
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from charrnn.checkpoint import read_meta

log = logging.getLogger(__name__)


class CeleryGenerationBackend:
    """``GenerationBackend`` over Celery: tasks to the ``generation`` queue, results through the poller."""

    def __init__(self, settings: Settings, store: ModelStore, app: Celery | None = None) -> None:
        self.settings = settings
        self.store = store
        self.app = app or make_celery(settings)
        self.poller = ResultPoller(self.app, settings)
        self._finished: collections.deque[float] = collections.deque(maxlen=256)  # completion times
        self._job_seconds = 1.0
        self._withdrawing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.poller.redis.ping()  # fail at start-up, not at the first request
        await self.poller.broker.ping()
        self.poller.start()

    async def close(self) -> None:
        if self._withdrawing:  # tasks of superseded requests: taken out before the connections go
            await asyncio.wait(self._withdrawing, timeout=5.0)
        await self.poller.close()

    async def warm(self, version: str) -> None:
        """Every task names its version, and a worker loads a version on its first task: nothing to send."""
        await asyncio.to_thread(read_meta, self.store.model_dir / version)  # it exists where workers look

    def estimated_wait_s(self) -> float:
        """Waiting tasks over the recent completion rate, plus one job's time."""
        now = time.monotonic()
        recent = [t for t in self._finished if now - t < 30.0]
        rate = len(recent) / max(1.0, now - recent[0]) if len(recent) > 1 else 1.0 / self._job_seconds
        return max(1.0, self.poller.depth / max(rate, 1e-3) + self._job_seconds)

    async def generate(self, job: GenerationJob, timeout: float) -> GenerationResult:
        # Busy means tasks waiting that no worker has taken; running ones are the workers' batches.
        if self.poller.depth + self.poller.sent_since_read >= self.settings.queue_size:
            raise QueueFull(self.estimated_wait_s())
        if job.version is None:
            raise ValueError("a Celery job names its model version: workers have none of their own")
        self.poller.sent_since_read += 1
        task_id = str(uuid.uuid4())
        future = self.poller.expect(task_id)
        started = time.monotonic()
        deadline = started + timeout
        # Shielded: a caller cancelled mid-send must not leave a task in the queue behind its withdrawal.
        sending = asyncio.ensure_future(self._send(task_id, job, timeout))
        try:
            await asyncio.shield(sending)
            sent = time.monotonic()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no result for task {task_id} within {timeout:g} s")
                try:
                    payload = await asyncio.wait_for(asyncio.shield(future), min(remaining, 1.0))
                    break
                except TimeoutError:
                    if self._lost(task_id, since=sent):
                        log.warning("task %s was neither waiting nor started after %.0f s: sending it again",
                                    task_id, time.monotonic() - sent)
                        sending = asyncio.ensure_future(self._send(task_id, job, deadline - time.monotonic()))
                        await asyncio.shield(sending)
                        sent = time.monotonic()
        except TimeoutError:
            await self._withdraw(task_id, sending)
            raise
        except asyncio.CancelledError:  # nobody waits for it any more (a superseded inline query): it must not run
            withdrawal = asyncio.create_task(self._withdraw(task_id, sending), name=f"withdraw-{task_id}")
            self._withdrawing.add(withdrawal)
            withdrawal.add_done_callback(self._withdrawing.discard)
            raise
        finally:
            self.poller.forget(task_id)
        self._finished.append(time.monotonic())
        self._job_seconds = 0.8 * self._job_seconds + 0.2 * (time.monotonic() - started)
        return decode_result(payload)

    async def _withdraw(self, task_id: str, sending: asyncio.Future[None]) -> None:
        """Take the task out of the queue, or, where a worker already has it, revoke it."""
        try:
            with contextlib.suppress(Exception):  # a failed send: there is nothing in the queue
                await sending
            if await self.poller.withdraw(task_id):
                log.info("task %s withdrawn from the queue before any worker took it", task_id)
                return
            await asyncio.to_thread(self.app.control.revoke, task_id)
            log.info("task %s revoked", task_id)
        except Exception:  # Redis away: the task's expiry still keeps workers from running it late
            log.warning("could not withdraw task %s", task_id, exc_info=True)

    async def _send(self, task_id: str, job: GenerationJob, timeout: float) -> None:
        await asyncio.to_thread(
            self.app.send_task, GENERATE, kwargs={"job": job_fields(job), "timeout": timeout}, task_id=task_id,
            queue=GENERATION_QUEUE, expires=max(1.0, timeout),  # nobody waits for it after that: never run it
        )

    def _lost(self, task_id: str, since: float) -> bool:
        """Not started a visibility timeout after it was sent, with nothing left waiting in the queue: no
        worker holds it (a killed worker's unacknowledged tasks would have come back by now)."""
        overdue = time.monotonic() - since > self.settings.celery_visibility_timeout_s + 2.0
        return overdue and self.poller.depth == 0 and not self.poller.started(task_id)


class CeleryFinetuneRunner:
    """``FinetuneRunner`` over Celery: ``finetune_job.run_job`` as a task on the ``training`` queue."""

    def __init__(self, app: Celery, poller: ResultPoller, max_wait_s: float) -> None:
        self.app = app
        self.poller = poller
        self.max_wait_s = max_wait_s  # queued behind other runs plus the run itself; then given up
        self._task_id: str | None = None

    async def run(self, spec_path: Path) -> int | None:
        task_id = str(uuid.uuid4())
        future = self.poller.expect(task_id)
        self._task_id = task_id
        try:
            await asyncio.to_thread(self.app.send_task, FINETUNE, args=[str(spec_path.resolve())], task_id=task_id,
                                    queue=TRAINING_QUEUE)
            await asyncio.wait_for(future, self.max_wait_s)
            return 0
        except asyncio.CancelledError:
            self._kill(task_id)
            raise
        except TimeoutError:
            log.error("fine-tune task %s did not finish within %.0f s; revoking it", task_id, self.max_wait_s)
            self._kill(task_id)
            return -1
        except (TaskRevokedError, WorkerLostError) as exc:
            log.warning("fine-tune task %s was interrupted: %s", task_id, exc)
            return -1
        except Exception:
            log.exception("fine-tune task %s failed", task_id)
            return 1
        finally:
            self.poller.forget(task_id)
            self._task_id = None

    def interrupt(self) -> None:
        if self._task_id is not None:
            self._kill(self._task_id)

    def _kill(self, task_id: str) -> None:
        with contextlib.suppress(Exception):  # shutting down with the broker gone: nothing more to do
            self.app.control.revoke(task_id, terminate=True, signal="SIGKILL")
