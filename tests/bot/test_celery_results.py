"""How the bot hears Celery results (bot.services.celery_backend.ResultPoller), on the live Redis: pushed
through one pattern subscription, swept by MGET for anything said while it was down, and no channel of
Celery's own left subscribed per task."""

from __future__ import annotations

import asyncio
import uuid

import redis
from celery import states

from bot.services.celery_backend import GENERATE, ResultPoller, make_celery
from bot.settings import Settings

from .celeryutil import REDIS_URL, redis_prefix


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
