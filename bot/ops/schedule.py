"""The scheduler: one ``AsyncIOScheduler`` in the bot process, started and stopped with the application.

The fine-tuning job is registered under a fixed id with ``replace_existing``, so restarts or a second
registration never duplicate it; ``coalesce`` and ``max_instances=1`` make a late or overrunning run
happen once; a generous misfire grace time lets a start that was delayed (a restart at 03:05) still
run. The schedule itself is not persisted (no pickled job store): durable state lives in the
``training_runs`` table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)
FINETUNE_JOB = "finetune"
LEASE_JOB = "renew-request-leases"
TAKE_OVER_JOB = "take-over-requests"
MISFIRE_GRACE_S = 3600


def finetune_trigger(cron: str, interval_s: float | None = None) -> BaseTrigger:
    """The crontab schedule in UTC, or a plain interval (for tests and demos) when one is given."""
    if interval_s is not None:
        return IntervalTrigger(seconds=interval_s, timezone=UTC)
    return CronTrigger.from_crontab(cron, timezone=UTC)


def register(
    scheduler: AsyncIOScheduler, job_id: str, func: Callable[[], Awaitable[Any]], trigger: BaseTrigger
) -> None:
    scheduler.add_job(
        func, trigger, id=job_id, name=job_id, replace_existing=True,
        coalesce=True, max_instances=1, misfire_grace_time=MISFIRE_GRACE_S,
    )


def _log_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_ERROR:
        log.error("scheduled job %s failed", event.job_id, exc_info=event.exception)
    elif event.code == EVENT_JOB_MISSED:
        log.warning("scheduled job %s missed its run time %s", event.job_id, event.scheduled_run_time)
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("scheduled job %s is still running; this run was skipped", event.job_id)


def make_scheduler() -> AsyncIOScheduler:
    """Not started: call ``start()`` inside the running event loop (PTB's ``post_init``)."""
    scheduler = AsyncIOScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S}
    )
    scheduler.add_listener(_log_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler
