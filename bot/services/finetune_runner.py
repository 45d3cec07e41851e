"""Where a fine-tune runs: a spawned child process here, or a task on a Celery ``training`` queue.

Either way the job is ``finetune_job.run_job(spec_path)``: a JSON spec in, a candidate checkpoint and a
JSON result out, as files under ``MODEL_DIR``. The runner only starts it, waits without blocking the
event loop, and can interrupt it; the gate, the records and the promotion stay in ``TrainingService``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.process
from pathlib import Path
from typing import Protocol

from bot.services.finetune_job import run_job

log = logging.getLogger(__name__)


class FinetuneRunner(Protocol):
    async def run(self, spec_path: Path) -> int | None:
        """Run the job to its end: 0 when it finished, negative when it was killed, positive on failure."""
        ...

    def interrupt(self) -> None:
        """End the running job now (shutdown); its ``run`` then returns a negative status."""
        ...


class ProcessRunner:
    """Train in a spawned process (never forked: CUDA and threads do not survive a fork)."""

    def __init__(self) -> None:
        self.process: multiprocessing.process.BaseProcess | None = None

    async def run(self, spec_path: Path) -> int | None:
        process = multiprocessing.get_context("spawn").Process(target=run_job, args=(str(spec_path),),
                                                               name="lyricbot-finetune", daemon=True)
        process.start()
        self.process = process
        try:
            await asyncio.to_thread(process.join)
        except asyncio.CancelledError:
            process.kill()
            raise
        finally:
            self.process = None
        return process.exitcode

    def interrupt(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
