"""The one place that picks where generation and fine-tuning run, from ``GENERATION_BACKEND``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bot.serving.finetune_runner import FinetuneRunner, ProcessRunner
from bot.serving.generation import GenerationBackend, LocalGenerationWorker
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from charrnn.generation.sample import serving_dtype
from charrnn.train_config import select_device


@dataclass(frozen=True)
class Backends:
    generation: GenerationBackend
    finetune: FinetuneRunner


def make_backends(settings: Settings, store: ModelStore) -> Backends:
    """``local``: a generation thread and spawned fine-tunes in this process, loading the versions jobs name
    (``warm`` one before the first request); ``celery``: tasks for ``lyricbot worker`` processes (which then
    own the models; the bot loads none)."""
    if settings.generation_backend == "celery":
        from bot.serving.celery_backend import CeleryFinetuneRunner, CeleryGenerationBackend

        celery = CeleryGenerationBackend(settings, store)
        # Queued behind another bot's run, then the run and its evaluation: generous, but not forever.
        max_wait_s = 3 * 60 * settings.finetune_minutes + 1800
        return Backends(celery, CeleryFinetuneRunner(celery.app, celery.poller, max_wait_s))
    worker = LocalGenerationWorker(None, loader=store.load, queue_size=settings.queue_size,
                                   max_batch=settings.max_batch, torch_threads=settings.torch_threads,
                                   dtype=serving_precision(settings, settings.device))
    return Backends(worker, ProcessRunner())


def serving_precision(settings: Settings, device: str) -> torch.dtype:
    """``SERVING_PRECISION``: auto is bfloat16 where the models' device (``DEVICE``) does it natively, else
    float32."""
    if settings.serving_precision == "auto":
        return serving_dtype(select_device(device))
    dtype: torch.dtype = getattr(torch, settings.serving_precision)
    return dtype
