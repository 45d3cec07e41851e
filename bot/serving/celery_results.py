"""How the bot hears Celery results without blocking its event loop: one ``ResultPoller`` hears every result as it
is stored, through one pattern subscription, and sweeps the keys of every pending result in one ``MGET`` a few times
a second (Celery's own ``AsyncResult.get`` blocks a thread per request)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from celery import Celery, states

from bot.serving.celery_app import (
    GENERATION_QUEUE,
    RESULTS_CLIENT_NAME,
)
from bot.settings import Settings

log = logging.getLogger(__name__)


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
