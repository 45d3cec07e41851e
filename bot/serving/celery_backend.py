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
import json
import logging
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.exceptions import TaskRevokedError, WorkerLostError

from bot.serving.generation import GenerationJob, GenerationResult, QueueFull
from bot.serving.models import ModelStore
from bot.settings import Settings
from charrnn.checkpoint import load_checkpoint, read_meta
from charrnn.generation.sample import Generation
from charrnn.vocab import Vocab

log = logging.getLogger(__name__)

GENERATE = "lyricbot.generate"
FINETUNE = "lyricbot.finetune"
GENERATION_QUEUE = "generation"
TRAINING_QUEUE = "training"
RESULTS_CLIENT_NAME = "lyricbot-bot-results"  # the bot's Redis connections, as CLIENT LIST shows them


class InvalidJob(ValueError):
    """A worker refused a generation task whose job breaks the bot's limits (a forged or foreign task)."""


class QuietRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend, without the channel it subscribes to for every task sent.

    Celery subscribes to a task's channel when it sends it (and unsubscribes when its ``AsyncResult`` is
    collected) so that ``AsyncResult.get`` can wait. The bot never calls it: ``ResultPoller`` hears every
    result through one pattern subscription. Celery's subscriptions cost two more Redis commands per
    task, and what they heard was never read: it piled up on a connection that Redis drops once its
    pub/sub output buffer passes the limit.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def make_celery(settings: Settings) -> Celery:
    """The one Celery configuration, shared by the bot (which sends) and the workers (which serve)."""
    results = settings.celery_result_backend or settings.celery_broker_url
    if urlsplit(results).scheme not in ("redis", "rediss"):
        raise ValueError(f"CELERY_RESULT_BACKEND must be a redis:// URL (the bot reads results there), not {results!r}")
    backend = f"{__name__}:{QuietRedisBackend.__name__}+{results}"  # Celery's "class+url" form
    app = Celery("lyricbot", broker=settings.celery_broker_url, backend=backend, set_as_current=False)
    prefix = {"global_keyprefix": settings.celery_key_prefix} if settings.celery_key_prefix else {}
    visibility = settings.celery_visibility_timeout_s
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,  # a task is acknowledged when done: a killed worker's tasks come back
        task_reject_on_worker_lost=True,
        task_track_started=True,  # STARTED in the result backend: how the bot tells a lost task from a slow one
        worker_prefetch_multiplier=1,  # a worker takes what it can batch now, not a queue of its own
        broker_transport_options={
            **prefix,
            "visibility_timeout": visibility,
            # Every live worker sweeps for tasks of dead ones this often (default: every 100 s).
            "unacked_restore_interval": max(1.0, min(10.0, visibility / 4)),
            "unacked_restore_throttle": 1,
            # A worker killed during its sweep leaves the sweep's lock behind, and no worker sweeps until it
            # expires (default 300 s, longer than anyone waits). Two sweeps at once are safe (each restore
            # is a WATCH transaction), so the lock need only outlive one sweep.
            "unacked_mutex_expire": max(2.0, visibility / 2),
        },
        result_backend_transport_options=prefix,
        result_expires=3600,
        task_routes={GENERATE: {"queue": GENERATION_QUEUE}, FINETUNE: {"queue": TRAINING_QUEUE}},
        task_default_queue=GENERATION_QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def job_fields(job: GenerationJob) -> dict[str, Any]:
    """A job as a task's JSON. An empty form or pattern is left out: a worker from before forms (which refuses
    fields it does not know) still serves free lyrics during a rolling upgrade."""
    return {name: value for name, value in asdict(job).items() if value != "" or name not in ("form", "pattern")}


def encode_result(result: GenerationResult, worker: str) -> dict[str, Any]:
    return {
        "candidates": [asdict(g) for g in result.candidates],
        "model_version": result.model_version,
        "seconds": result.seconds,
        "titles": list(result.titles),
        "worker": worker,
    }


def decode_result(payload: dict[str, Any]) -> GenerationResult:
    candidates = tuple(
        Generation(c["prefix"], c["continuation"], tuple(c["skipped"]), float(c["logprob"]), c["finish_reason"])
        for c in payload["candidates"]
    )
    titles = tuple(None if t is None else str(t) for t in payload.get("titles", ()))  # older workers send none
    return GenerationResult(candidates, str(payload["model_version"]), float(payload["seconds"]), titles)


class ResultPoller:
    """Awaits Celery results on the event loop, for every task in flight at once.

    Celery's Redis backend publishes each result record (STARTED, then SUCCESS or FAILURE) on a channel
    named after its key: one pattern subscription hears them all as they happen. A sweep every
    ``sweep_s`` reads the records of every waiting task in one ``MGET``, for anything said while the
    subscription was down. The sweep also reads the generation queue's depth (tasks no worker has taken
    yet) for "busy" answers.
    """

    def __init__(self, app: Celery, settings: Settings, sweep_s: float = 0.25) -> None:
        self.app = app
        self.sweep_s = sweep_s
        self.redis = aioredis.from_url(settings.celery_result_backend or settings.celery_broker_url,
                                       client_name=RESULTS_CLIENT_NAME)
        self.broker = aioredis.from_url(settings.celery_broker_url,  # the queue lives there, results maybe not
                                        client_name=RESULTS_CLIENT_NAME)
        self.queue_key = settings.celery_key_prefix + GENERATION_QUEUE
        self.depth = 0  # tasks waiting in the broker at the last read
        self.sent_since_read = 0  # tasks this bot sent since: a burst counts before the next read
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._keys: dict[str, str] = {}  # task id -> its result key (and channel)
        self._by_key: dict[str, str] = {}  # result key -> task id
        self._last: dict[str, bytes | str] = {}  # task id -> the record last read, not ready (decoded once)
        self._started: set[str] = set()  # tasks a worker has begun (state STARTED seen)
        self._done: list[str] = []  # result keys read and no longer needed: deleted by the next sweep
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # the subscription is up

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sweep_forever(), name="celery-results-sweep"),
                       asyncio.create_task(self._listen_forever(), name="celery-results-listen")]

    async def close(self) -> None:
        # A cancel that lands while a redis-py command runs can be lost (seen with redis-py 8 on Python 3.11:
        # the sweep carried on and shutdown waited forever), so cancel until the tasks are done.
        pending = {task for task in self._tasks if not task.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("a Celery result task ended with an error", exc_info=task.exception())
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("the bot is shutting down"))
        await self.redis.aclose()
        await self.broker.aclose()

    def expect(self, task_id: str) -> asyncio.Future[Any]:
        """The future of a task's result; register it before sending, so no result can be missed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        key = _text(self.app.backend.get_key_for_task(task_id))
        self._keys[task_id], self._by_key[key] = key, task_id
        self._wake.set()
        return future

    def forget(self, task_id: str) -> None:
        self._waiting.pop(task_id, None)
        self._by_key.pop(self._keys.pop(task_id, ""), None)
        self._last.pop(task_id, None)
        self._started.discard(task_id)

    def started(self, task_id: str) -> bool:
        return task_id in self._started

    async def withdraw(self, task_id: str) -> int:
        """Take a task out of the generation queue where no worker has taken it yet; the copies removed.

        Kombu keeps a Redis queue as a list of JSON messages with the task id in their headers (the list
        ``depth`` counts). A worker may take the task meanwhile: then nothing is removed.
        """
        removed = 0
        for raw in await self.broker.lrange(self.queue_key, 0, -1):
            with contextlib.suppress(ValueError, KeyError, TypeError):  # not a message of ours: left alone
                message = _text(raw)  # JSON, so UTF-8: the same bytes go back to LREM
                if task_id in message and json.loads(message)["headers"]["id"] == task_id:
                    removed += int(await self.broker.lrem(self.queue_key, 0, message))
        for _ in range(removed):  # no longer waiting: busy answers go by the queue that is left
            if self.sent_since_read > 0:
                self.sent_since_read -= 1
            else:
                self.depth = max(0, self.depth - 1)
        return removed

    async def _sweep_forever(self) -> None:
        failures = 0
        while True:
            try:
                if not self._waiting and not self._done:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                await self._sweep()
                failures = 0
                await asyncio.sleep(self.sweep_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: keep the waiters, try again, say so once a while
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.exception("reading Celery results failed (%d in a row)", failures)
                await asyncio.sleep(min(2.0, 0.05 * failures))

    async def _listen_forever(self) -> None:
        prefix = _text(self.app.backend.get_key_for_task("-"))[:-1]  # the key of a task id, without the id
        pattern = _glob_escape(prefix) + "*"
        failures = 0
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    self.listening.set()
                    failures = 0
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            task_id = self._by_key.get(_text(message["channel"]))
                            if task_id is not None:
                                self._read(task_id, message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # the sweep still reads every result meanwhile, only later
                self.listening.clear()
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.exception("listening for Celery results failed (%d in a row)", failures)
                await asyncio.sleep(min(2.0, 0.05 * failures))

    async def _sweep(self) -> None:
        self.depth = int(await self.broker.llen(self.queue_key))
        self.sent_since_read = 0
        ids = list(self._waiting)
        if ids:
            values = await self.redis.mget([self._keys[task_id] for task_id in ids])
            for task_id, raw in zip(ids, values, strict=True):
                if raw is not None:
                    self._read(task_id, raw)
        if self._done:
            done, self._done = self._done, []
            await self.redis.delete(*done)

    def _read(self, task_id: str, raw: bytes | str) -> None:
        """One result record of a task this bot waits for: STARTED noted, a final state settles its future."""
        if raw == self._last.get(task_id) or task_id not in self._waiting:  # nothing new
            return
        backend = self.app.backend
        meta = backend.decode_result(raw)
        if meta["status"] not in states.READY_STATES:
            self._last[task_id] = raw
            if meta["status"] == states.STARTED:
                self._started.add(task_id)
            return
        future = self._waiting.pop(task_id)
        self._done.append(self._keys[task_id])
        if future.done():
            return
        if meta["status"] == states.SUCCESS:
            future.set_result(meta["result"])
        else:
            future.set_exception(backend.exception_to_python(meta["result"]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis glob pattern (a key prefix may hold ``*``, ``?`` or ``[``)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class CeleryGenerationBackend:
    """``GenerationBackend`` over Celery: tasks to the ``generation`` queue, results through the poller."""

    def __init__(self, settings: Settings, store: ModelStore, app: Celery | None = None) -> None:
        self.settings = settings
        self.store = store
        self.app = app or make_celery(settings)
        version = store.active_version()
        if version is None:
            raise FileNotFoundError(f"no active model in {store.model_dir}")
        self._version = version
        self._vocab: tuple[str, Vocab] | None = None
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

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None or self._vocab[0] != self._version:
            self._vocab = (self._version, _read_vocab(self.store.model_dir / self._version))
        return self._vocab[1]

    async def activate(self, version: str) -> None:
        """Every task names its version, and a worker loads a version on its first task: nothing to send."""
        await asyncio.to_thread(read_meta, self.store.model_dir / version)  # it exists where workers look
        self._version = version

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
        self.poller.sent_since_read += 1
        job = replace(job, version=job.version or self._version)
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


def _read_vocab(directory: Path) -> Vocab:
    meta = read_meta(directory)
    if "vocab" in meta:
        return Vocab.from_json(meta["vocab"])
    return load_checkpoint(directory).vocab  # a mixture keeps its vocabulary with its components
