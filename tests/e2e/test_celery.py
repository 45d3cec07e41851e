"""The bot with ``GENERATION_BACKEND=celery``: real ``lyricbot worker`` processes on the live Redis, the
database on the live PostgreSQL, Telegram through the local Bot API server.

Worker processes are killed with SIGKILL mid-flood: late acknowledgement brings their tasks back to the
other worker, and the request rows make sure each request is still answered exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain import DEFAULT_STYLE
from bot.services.training import TrainingService
from bot.serving.celery_app import make_celery
from bot.settings import Settings
from tests.helpers.bot import Harness, ask, bot_running, trained_version
from tests.helpers.celery_workers import REDIS_URL, VISIBILITY_TIMEOUT_S, celery_env, redis_prefix, workers
from tests.helpers.db import request_of, rows

ADMIN = 42
NEW_SONG = "雨下整夜 我的爱溢出就像雨水\n院子落叶 跟我的思念厚厚一叠\n" * 8


@pytest.fixture
def celery_setup(tmp_path: Path, trained_store: tuple[Path, Path]) -> Iterator[tuple[str, tuple[Path, Path]]]:
    """(Redis key prefix, (a MODEL_DIR of this test's own, corpus)): runs and promotions change MODEL_DIR."""
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")
    with redis_prefix() as prefix:
        yield prefix, (tmp_path / "models", corpus)


def bot_settings(prefix: str, database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "generation_backend": "celery",
        "celery_broker_url": REDIS_URL,
        "celery_key_prefix": prefix,
        "celery_visibility_timeout_s": VISIBILITY_TIMEOUT_S,
        "database_url": database_url,
        "queue_size": 500,
        **extra,
    }


def training(h: Harness) -> TrainingService:
    return h.app.bot_data.services.training  # type: ignore[no-any-return]


async def answers_by_request(h: Harness, people: list[int]) -> Counter[int]:
    return Counter(r for p in people for m in h.fake.sent(p) if (r := request_of(m)) is not None)


def hold_restore_lock(prefix: str, database_url: str) -> None:
    """Take the lock a worker holds while it sweeps for dead workers' tasks, and never release it: what a
    worker killed in the middle of its sweep leaves behind (it sweeps every second, so a kill can land there)."""
    import redis

    settings = Settings(**bot_settings(prefix, database_url))
    options = make_celery(settings).conf.broker_transport_options
    expire = options.get("unacked_mutex_expire", 300)  # kombu's default: 5 minutes
    client = redis.Redis.from_url(REDIS_URL)
    lock = client.lock(f"{prefix}unacked_mutex", timeout=expire)
    deadline = time.monotonic() + 10
    while not lock.acquire(blocking=False):  # the live worker may hold it for a moment
        assert time.monotonic() < deadline, "the restore lock was never free"
        time.sleep(0.001)
    client.close()


@pytest.mark.parametrize("killed_while_sweeping", [False, True], ids=["killed", "killed-while-sweeping"])
def test_two_workers_serve_a_flood_and_a_killed_one_loses_nothing(
    tmp_path: Path, celery_setup: tuple[str, tuple[Path, Path]], postgres_url: str, killed_while_sweeping: bool
) -> None:
    prefix, store = celery_setup
    env = celery_env(prefix, store[0])

    async def scenario(first: Any, second: Any) -> None:
        # Long enough a wait that a flood queued behind paused workers is not answered "too long" meanwhile.
        async with bot_running(tmp_path, store, **bot_settings(prefix, postgres_url, request_timeout_s=600)) as h:
            people = [8000 + i for i in range(12)]
            for person in people:
                h.fake.add_user(person, f"P{person}", "en")
            hello = await ask(h, "/write 我", chat=people[0], user=people[0])
            assert hello["text"].startswith("我")
            # The whole flood waits in Redis before the first worker may take any of it, so that the first worker
            # holds several tasks when it is killed, however slowly a busy machine lets the bot send them.
            await asyncio.to_thread(first.pause)
            await asyncio.to_thread(second.pause)
            for round_ in range(6):
                for person in people:
                    h.fake.send_text(person, person, f"/write 你{round_}")
            running = "SELECT COUNT(*) FROM requests WHERE status = 'running'"
            for _ in range(6000):
                if (await rows(postgres_url, running))[0][0] == len(people) * 6:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the last request's task leaves the bot right after its row says running
            await asyncio.to_thread(first.resume)
            for _ in range(6000):  # kill -9 the first worker while it holds tasks it has not finished
                if len(first.received()) - first.served() >= 3:
                    break
                await asyncio.sleep(0.02)
            await asyncio.to_thread(first.kill)
            await asyncio.to_thread(second.resume)
            if killed_while_sweeping:
                await asyncio.to_thread(hold_restore_lock, prefix, postgres_url)
            in_flight = first.received()
            assert len(in_flight) - first.served() >= 3, "the first worker was never busy: nothing tested"
            for person in people:
                await h.fake.wait_for_sent(person, 7 if person == people[0] else 6, timeout=300)
            await asyncio.sleep(2 * VISIBILITY_TIMEOUT_S)  # a late duplicate answer would arrive by now
            texts = [m["text"] for p in people for m in h.fake.sent(p)]
            assert len(texts) == 1 + len(people) * 6
            odd = [t for t in texts if not (t.startswith(("我", "你")) or "worth showing" in t)]
            assert not odd, odd
            # Exactly once: one answer per request row, every row answered or failed honestly, nothing lost.
            answered = await answers_by_request(h, people)
            assert answered and max(answered.values()) == 1
            counts = await rows(postgres_url, "SELECT status, COUNT(*) FROM requests GROUP BY status")
            stored = {status: count for status, count in counts}
            assert sum(stored.values()) == len(texts) and set(stored) <= {"answered", "failed"}
            assert stored.get("answered") == len(answered)
            # The tasks the killed worker held were delivered again, to the other one.
            assert second.received() & in_flight

    with workers(env, tmp_path / "workers", 2) as (first, second):
        asyncio.run(scenario(first, second))


def test_a_promotion_reaches_every_worker(
    tmp_path: Path, celery_setup: tuple[str, tuple[Path, Path]], postgres_url: str
) -> None:
    prefix, store = celery_setup
    model_dir = store[0]
    old = str(trained_version(model_dir))
    shutil.copytree(model_dir / old, model_dir / "v-promoted")  # a second version for the workers to find
    env = celery_env(prefix, model_dir)

    async def scenario(pair: list[Any]) -> None:
        async with bot_running(tmp_path, store, **bot_settings(prefix, postgres_url)) as h:
            people = [8100 + i for i in range(16)]
            for person in people:
                h.fake.add_user(person, f"P{person}", "en")
            await ask(h, "/write 我", chat=people[0], user=people[0])
            await h.app.bot_data.services.styles.serve(DEFAULT_STYLE, "v-promoted", expected_current=old)  # promoted
            assert await rows(postgres_url, "SELECT active_version FROM styles WHERE name = 'default'") == [
                ("v-promoted",)]
            for round_ in range(3):
                for person in people:
                    h.fake.send_text(person, person, f"/write 你{round_}")
            for person in people:
                await h.fake.wait_for_sent(person, 4 if person == people[0] else 3, timeout=120)
            versions = [r[0] for r in await rows(postgres_url, "SELECT model_version FROM requests "
                                                              "WHERE status = 'answered' ORDER BY id")]
            assert versions[0] == old and set(versions[1:]) == {"v-promoted"}, versions
            for worker in pair:  # every worker that served after the promotion loaded the new version itself
                if worker.served() > 1:
                    assert "loaded model v-promoted on request" in worker.text()
            assert sum(w.served() > 0 for w in pair) == 2

    with workers(env, tmp_path / "workers", 2) as pair:
        asyncio.run(scenario(pair))


def test_a_finetune_runs_on_the_training_queue(
    tmp_path: Path, celery_setup: tuple[str, tuple[Path, Path]], postgres_url: str
) -> None:
    prefix, store = celery_setup
    model_dir = store[0]
    first = trained_version(model_dir)
    env = celery_env(prefix, model_dir)
    fast = {"admin_ids": frozenset({ADMIN}), "finetune_minutes": 0.2, "finetune_epochs": 30, "max_old_regression": 1.0}

    async def scenario(trainer: Any) -> None:
        async with bot_running(tmp_path, store, **bot_settings(prefix, postgres_url, **fast)) as h:
            service = training(h)
            await service.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            report = await service.retrain(trigger="cli")
            assert not isinstance(report, str)
            assert report.status in ("promoted", "rejected"), report.detail
            assert "old_ppl_after" in report.metrics and report.chart is not None  # the same records and chart
            assert "lyricbot.finetune" in trainer.text() and "received" in trainer.text()
            [(status, candidate)] = [tuple(r) for r in await rows(
                postgres_url, "SELECT status, candidate_version FROM training_runs")]
            assert status == report.status and candidate == report.metrics["version"]
            assert (model_dir / candidate / "meta.json").is_file()  # written by the worker, into MODEL_DIR
            if report.status == "promoted":
                h.fake.add_user(8200, "Pia", "en")
                lyric = await ask(h, "/write 我", chat=8200, user=8200)
                assert lyric["text"].startswith("我")
                [(version,)] = [tuple(r) for r in await rows(postgres_url, "SELECT model_version FROM requests")]
                assert version == candidate != first

    with workers(env, tmp_path / "workers", 1), workers(env, tmp_path / "trainers", 1, queue="training") as (trainer,):
        asyncio.run(scenario(trainer))


def test_a_task_lost_between_redis_and_a_dying_worker_is_sent_again(
    tmp_path: Path, celery_setup: tuple[str, tuple[Path, Path]]
) -> None:
    """Celery over Redis loses a task taken (BRPOP) by a worker killed before it recorded the task as
    unacknowledged. Here the task is taken out of the queue by hand; the bot must send it again."""
    import redis

    from bot.serving.celery_backend import CeleryGenerationBackend
    from bot.serving.generation import GenerationJob
    from bot.serving.model_store import ModelStore
    from bot.settings import Settings

    prefix, (model_dir, _) = celery_setup
    version = trained_version(model_dir)  # every task names its version
    settings = Settings(_env_file=None, **bot_settings(prefix, "sqlite+aiosqlite:///unused.db"),  # type: ignore[call-arg]
                        model_dir=model_dir, device="cpu")
    queue = redis.Redis.from_url(REDIS_URL)

    async def scenario() -> None:
        backend = CeleryGenerationBackend(settings, ModelStore(model_dir, "cpu"))
        await backend.start()
        try:
            asking = asyncio.create_task(backend.generate(GenerationJob("我", 0.8, 20, version=version), timeout=60))
            for _ in range(100):
                if queue.llen(f"{prefix}generation"):
                    break
                await asyncio.sleep(0.05)
            assert queue.rpop(f"{prefix}generation") is not None  # taken, and its taker "dies"
            with workers(celery_env(prefix, model_dir), tmp_path / "workers", 1) as (worker,):
                result = await asyncio.wait_for(asking, 60)
            assert result.candidates and result.candidates[0].text.startswith("我")
            assert len(worker.received()) == 1
        finally:
            await backend.close()
            queue.close()

    asyncio.run(scenario())
