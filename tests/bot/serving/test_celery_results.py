"""How the bot hears Celery results (bot.serving.celery_backend.ResultPoller), on the live Redis: pushed
through one pattern subscription, swept by MGET for anything said while it was down, and no channel of
Celery's own left subscribed per task."""

from __future__ import annotations

import asyncio
import threading
import uuid

import redis
from celery import states

from bot.serving.celery_app import GENERATE, RESULTS_CLIENT_NAME, make_celery
from bot.serving.celery_results import ResultPoller
from bot.settings import Settings
from tests.helpers.celery_workers import REDIS_URL, redis_prefix


def settings_for(prefix: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, generation_backend="celery", celery_broker_url=REDIS_URL, celery_key_prefix=prefix
    )


def test_results_arrive_by_subscription_between_sweeps() -> None:
    with redis_prefix() as prefix:
        app = make_celery(settings_for(prefix))

        async def scenario() -> None:
            poller = ResultPoller(app, settings_for(prefix), sweep_s=3600.0)  # one sweep at start, then none
            poller.start()
            try:
                await asyncio.wait_for(poller.listening.wait(), 10)
                waiting = {str(uuid.uuid4()): n for n in range(5)}
                futures = {task_id: poller.expect(task_id) for task_id in waiting}
                await asyncio.sleep(0.2)  # the first sweep has run and found nothing
                first = next(iter(waiting))
                await asyncio.to_thread(app.backend.store_result, first, None, states.STARTED)
                for _ in range(100):
                    if poller.started(first):
                        break
                    await asyncio.sleep(0.02)
                assert poller.started(first) and not futures[first].done()
                for task_id, n in waiting.items():  # as a worker stores them: SET and PUBLISH
                    await asyncio.to_thread(app.backend.store_result, task_id, {"n": n}, states.SUCCESS)
                results = await asyncio.wait_for(asyncio.gather(*futures.values()), 5)
                assert results == [{"n": n} for n in waiting.values()]
            finally:
                await poller.close()

        asyncio.run(scenario())


def test_a_result_stored_while_nobody_listened_is_found_by_the_sweep() -> None:
    with redis_prefix() as prefix:
        app = make_celery(settings_for(prefix))

        async def scenario() -> None:
            poller = ResultPoller(app, settings_for(prefix), sweep_s=0.05)
            task_id = str(uuid.uuid4())
            future = poller.expect(task_id)
            failed = str(uuid.uuid4())
            failure = poller.expect(failed)
            # Stored before the poller starts listening: no message will ever say so.
            await asyncio.to_thread(app.backend.store_result, task_id, {"ok": True}, states.SUCCESS)
            await asyncio.to_thread(app.backend.store_result, failed, ValueError("no model"), states.FAILURE)
            poller.start()
            try:
                assert await asyncio.wait_for(future, 5) == {"ok": True}
                try:
                    await asyncio.wait_for(failure, 5)
                except ValueError as exc:
                    assert "no model" in str(exc)
                else:
                    raise AssertionError("a failed task's future must raise its error")
                for _ in range(100):  # read results are deleted: Redis does not keep what nobody needs
                    keys = await poller.redis.exists(*(app.backend.get_key_for_task(t) for t in (task_id, failed)))
                    if keys == 0:
                        break
                    await asyncio.sleep(0.05)
                assert keys == 0
            finally:
                await poller.close()

        asyncio.run(scenario())


def test_a_dropped_subscription_comes_back_and_the_sweep_covers_the_gap() -> None:
    with redis_prefix() as prefix:
        app = make_celery(settings_for(prefix))
        admin = redis.Redis.from_url(REDIS_URL)

        async def store(task_id: str, n: int) -> None:
            await asyncio.to_thread(app.backend.store_result, task_id, {"n": n}, states.SUCCESS)

        async def scenario() -> None:
            poller = ResultPoller(app, settings_for(prefix), sweep_s=0.1)
            poller.start()
            try:
                await asyncio.wait_for(poller.listening.wait(), 10)
                subscribers = [c for c in admin.client_list() if c.get("name") == RESULTS_CLIENT_NAME
                               and c.get("psub") not in (None, "0")]
                assert len(subscribers) == 1, subscribers
                admin.client_kill_filter(_id=subscribers[0]["id"])  # as a Redis restart or a network cut would
                gap = str(uuid.uuid4())
                future = poller.expect(gap)
                await store(gap, 1)  # published while nobody listens: only the sweep can find it
                assert await asyncio.wait_for(future, 5) == {"n": 1}
                for _ in range(200):  # the listener notices, says so, and subscribes again
                    if poller.listening.is_set() and any(
                        c.get("name") == RESULTS_CLIENT_NAME and c.get("psub") not in (None, "0")
                        for c in admin.client_list()
                    ):
                        break
                    await asyncio.sleep(0.05)
                poller.sweep_s = 3600.0  # from the next sweep on, only the subscription can deliver
                await asyncio.sleep(0.3)
                later = str(uuid.uuid4())
                future = poller.expect(later)
                await store(later, 2)
                assert await asyncio.wait_for(future, 5) == {"n": 2}
            finally:
                await poller.close()
                admin.close()

        asyncio.run(scenario())


def test_closing_never_hangs_when_a_cancel_lands_in_a_redis_call() -> None:
    """On Python 3.11 with redis-py, a cancel that arrives while a command runs can be lost, and a loop that
    lost it would keep the bot's shutdown waiting forever."""
    with redis_prefix() as prefix:
        app = make_celery(settings_for(prefix))

        told: list[bool] = []

        async def scenario() -> None:
            for _ in range(10):
                poller = ResultPoller(app, settings_for(prefix), sweep_s=0.0)  # nearly always inside MGET
                waiting = poller.expect(str(uuid.uuid4()))
                poller.start()
                await asyncio.sleep(0.05)
                await poller.close()
                told.append(isinstance(waiting.exception(), RuntimeError))  # whoever waited is told

        # In a thread of its own: a close that hangs fails this test instead of hanging the suite.
        closing = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
        closing.start()
        closing.join(60)
        assert not closing.is_alive(), "ResultPoller.close() hung"
        assert told == [True] * 10


def test_sending_tasks_leaves_no_subscription_per_task() -> None:
    with redis_prefix() as prefix:
        app = make_celery(settings_for(prefix))
        # To a queue no worker reads (removed with the prefix). Celery would subscribe to each task's channel
        # until its AsyncResult is collected: kept here, so that any subscription would still be there.
        job = {"job": {}, "timeout": 1.0}
        sent = [app.send_task(GENERATE, kwargs=job, queue=f"{prefix}nowhere") for _ in range(20)]
        client = redis.Redis.from_url(REDIS_URL)
        try:
            assert len(sent) == 20 and client.pubsub_channels(f"{prefix}*") == []
        finally:
            client.close()
