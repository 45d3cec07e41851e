"""Superseded work on Celery: a task nobody waits for any more is taken out of the queue (or revoked where a worker
has it), so it never runs and no longer counts as waiting work, and a person typing on cannot fill the queue that
everyone shares. Live Redis; a real ``lyricbot worker`` where the test says so.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.serving.celery_backend import CeleryGenerationBackend
from bot.serving.generation import GenerationJob, QueueFull
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from tests.helpers.bot import bot_running, eventually, trained_version
from tests.helpers.celery_workers import REDIS_URL, VISIBILITY_TIMEOUT_S, celery_env, redis_prefix, workers

A, B = 9201, 9202


@pytest.fixture
def celery_models(tmp_path: Path, trained_store: tuple[Path, Path]) -> Iterator[tuple[str, Path, Path]]:
    """(a Redis key prefix of this test's own, MODEL_DIR, corpus)."""
    shutil.copytree(trained_store[0], tmp_path / "models")
    with redis_prefix() as prefix:
        yield prefix, tmp_path / "models", trained_store[1]


def celery_settings(prefix: str, **extra: Any) -> dict[str, Any]:
    return {"generation_backend": "celery", "celery_broker_url": REDIS_URL, "celery_key_prefix": prefix,
            "celery_visibility_timeout_s": VISIBILITY_TIMEOUT_S, **extra}  # fmt: skip


def queued(prefix: str) -> list[str]:
    """The prefixes of the generation tasks waiting in the queue (kombu's JSON messages, bodies in base64)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        prefixes = []
        for raw in client.lrange(f"{prefix}generation", 0, -1):
            message = json.loads(raw)
            body = message["body"]
            if message["properties"].get("body_encoding") == "base64":
                body = base64.b64decode(body)
            _, kwargs, _ = json.loads(body)
            prefixes.append(kwargs["job"]["prefix"])
        return prefixes
    finally:
        client.close()


def test_a_cancelled_request_leaves_the_queue_and_never_runs(
    tmp_path: Path, celery_models: tuple[str, Path, Path]
) -> None:
    prefix, model_dir, _ = celery_models
    version = trained_version(model_dir)  # every task names its version
    settings = Settings(_env_file=None, model_dir=model_dir, device="cpu",  # type: ignore[call-arg]
                        **celery_settings(prefix, queue_size=1))  # fmt: skip

    async def scenario() -> None:
        backend = CeleryGenerationBackend(settings, ModelStore(model_dir, "cpu"))
        await backend.start()
        try:
            job = GenerationJob("天青色", 0.8, 20, version=version)
            dropped = asyncio.create_task(backend.generate(job, timeout=60))
            await eventually(lambda: queued(prefix) == ["天青色"])  # no worker yet: it waits in the queue
            dropped.cancel()
            with pytest.raises(asyncio.CancelledError):
                await dropped
            await eventually(lambda: queued(prefix) == [])  # taken out, not left to run later
            # The queue holds one task: the dropped one no longer counts, so the next request is not "busy".
            kept = asyncio.create_task(backend.generate(GenerationJob("我不要", 0.8, 20, version=version), timeout=90))
            await eventually(lambda: queued(prefix) == ["我不要"] or kept.done())
            if kept.done():
                kept.result()  # QueueFull would surface here
            with workers(celery_env(prefix, model_dir), tmp_path / "workers", 1) as (worker,):
                result = await asyncio.wait_for(kept, 90)
                assert result.candidates[0].text.startswith("我不要")
                assert len(worker.received()) == 1 and worker.served() == 1  # the dropped task never reached it
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_typing_on_does_not_fill_the_queue_for_everyone(
    tmp_path: Path, celery_models: tuple[str, Path, Path]
) -> None:
    """One person types on (each query supersedes the one before); another person is not told "busy"."""
    prefix, model_dir, corpus = celery_models

    async def scenario() -> None:
        settings = celery_settings(prefix, queue_size=3, inline_timeout_s=8.0)  # Telegram's wait: this one times out
        async with bot_running(tmp_path, (model_dir, corpus), **settings) as h:
            h.fake.add_user(A, "Ty", "zh")
            h.fake.add_user(B, "Ot", "en")
            typed = "天青色等烟雨"
            asked = []
            for n in range(1, len(typed) + 1):  # no worker: every task waits, as behind a busy one
                asked.append(h.fake.send_inline_query(A, typed[:n]))
                await eventually(lambda n=n: queued(prefix) == [typed[:n]])
            other = h.fake.send_inline_query(B, "the night")  # while the person's last query waits
            for query_id in asked[:-1]:
                dropped = await h.fake.wait_for_inline_answer(query_id, timeout=90)
                assert dropped["results"] == []
            answer = await h.fake.wait_for_inline_answer(other, timeout=90)
            (hint,) = answer["results"]  # no worker: it times out, but it was let into the queue
            assert hint["id"] == "hint" and "took too long" in hint["title"], hint["title"]
            await eventually(lambda: queued(prefix) == [])  # timed-out tasks are taken out too

    asyncio.run(scenario())


def test_queue_full_is_still_busy(tmp_path: Path, celery_models: tuple[str, Path, Path]) -> None:
    """Taking superseded tasks out frees the queue; it does not switch "busy" off."""
    prefix, model_dir, _ = celery_models
    version = trained_version(model_dir)  # every task names its version
    settings = Settings(_env_file=None, model_dir=model_dir, device="cpu",  # type: ignore[call-arg]
                        **celery_settings(prefix, queue_size=1))  # fmt: skip

    async def scenario() -> None:
        backend = CeleryGenerationBackend(settings, ModelStore(model_dir, "cpu"))
        await backend.start()
        try:
            job = GenerationJob("天青色", 0.8, 20, version=version)
            waiting = asyncio.create_task(backend.generate(job, timeout=60))
            await eventually(lambda: queued(prefix) == ["天青色"] and backend.poller.depth == 1)  # and read
            with pytest.raises(QueueFull):
                await backend.generate(GenerationJob("我不要", 0.8, 20, version=version), timeout=60)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        finally:
            await backend.close()

    asyncio.run(scenario())
