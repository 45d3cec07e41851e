"""The Celery application the bot and its workers share (``GENERATION_BACKEND=celery``), and what travels through
it: task names and queues, jobs as plain fields, results as JSON.

Results live in Redis; the bot hears them through ``bot.serving.celery_results``. The quiet result backend keeps
Celery from subscribing per task, which the bot's own poller does once for all.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.backends.redis import RedisBackend

from bot.serving.generation import GenerationJob, GenerationResult
from bot.settings import Settings
from charrnn.generation.result import Generation

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
    """A job as a task's JSON. An empty form or pattern, and one candidate a phrase, are left out: a worker from
    before them (which refuses fields it does not know) still serves what it can during a rolling upgrade."""
    return {name: value for name, value in asdict(job).items()
            if not ((name in ("form", "pattern") and value == "") or (name == "phrases" and value == 1))}


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
