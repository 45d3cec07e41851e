"""Where a fine-tune runs: a spawned child process here, or a task on a Celery ``training`` queue.

Either way the job is ``finetune_job.run_job(spec_path)``: a JSON spec in, a candidate checkpoint and a
JSON result out, as files under ``MODEL_DIR``. The runner only starts it, waits without blocking the
event loop, and can interrupt it; the gate, the records and the promotion stay in ``TrainingService``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import threading
from pathlib import Path
from typing import Protocol

from bot.serving.finetune_job import run_job

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
        process = multiprocessing.get_context("spawn").Process(target=train_child, args=(str(spec_path), os.getpid()),
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


PARENT_GONE = 70  # the exit status of a trainer whose parent died; nobody is left to read it but init


def train_child(spec_path: str, parent_pid: int) -> None:
    """The spawned process: ``run_job``, ended as soon as the process that started it is gone.

    A parent that is SIGKILLed (or dies any way that skips its clean-up) cannot kill its trainer, which would
    train on for its whole budget, an orphan holding a core and writing into MODEL_DIR.
    """
    watch_parent(parent_pid)
    run_job(spec_path)


def watch_parent(parent_pid: int) -> None:
    """Exit this process the moment its parent ``parent_pid`` dies, however it dies.

    ``multiprocessing`` leaves the child the read end of a pipe whose write end only the parent holds
    (``parent_process().sentinel``): the kernel closes it when the parent exits, so a thread blocked on it wakes
    at once, with no polling. A parent already gone before this ran has another pid as the child's parent.
    """
    if os.getppid() != parent_pid:
        log.error("the process that started this fine-tune (pid %d) is gone: not training", parent_pid)
        os._exit(PARENT_GONE)
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: no pipe to watch
        return
    sentinel = parent.sentinel

    def wait() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(PARENT_GONE)  # from a thread: sys.exit would end the thread, not the process

    threading.Thread(target=wait, name="parent-watch", daemon=True).start()
