"""Live Redis and real ``lyricbot worker`` processes for the Celery tests.

Each test gets its own Redis key prefix (queues, results, the unacknowledged-task index), removed
afterwards, so tests never see each other's tasks. Without a reachable Redis the Celery tests are
skipped, except in CI, where a missing server is a broken set-up, not a pass.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
# A killed worker's tasks go to another worker after this; short here, so the kill test takes seconds.
VISIBILITY_TIMEOUT_S = 3.0


def unavailable(reason: str) -> NoReturn:
    message = f"Redis at {REDIS_URL} unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the live Redis, its keys deleted afterwards."""
    try:
        import redis
    except ImportError as exc:
        unavailable(f"the redis package is missing ({exc}); pip install -e .[dev]")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(str(exc))
    prefix = f"lyricbot-test-{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def celery_env(prefix: str, model_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker (and the settings of a bot) sharing one broker prefix and MODEL_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TELEGRAM_"))}
    env.update(
        GENERATION_BACKEND="celery",
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_KEY_PREFIX=prefix,
        CELERY_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        MODEL_DIR=str(model_dir),
        DEVICE="cpu",
        TORCH_THREADS="1",
        LOG_LEVEL="INFO",
        **extra,
    )
    return env


class Worker:
    """One ``lyricbot worker`` process; its log is a file the test reads."""

    def __init__(self, env: dict[str, str], log: Path, queue: str = "generation", concurrency: int = 16) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--queue", queue, "--concurrency", str(concurrency)],
            env=env, cwd=log.parent, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.text():  # Celery's own line once the worker consumes
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.text()[-3000:]}")

    def served(self) -> int:
        return self.text().count(" served ")

    def received(self) -> set[str]:
        """Ids of the tasks Celery handed this worker (its own "Task ...[id] received" lines)."""
        return set(re.findall(r"lyricbot\.\w+\[([0-9a-f-]+)\] received", self.text()))

    def pause(self) -> None:
        """SIGSTOP: the worker takes no task until ``resume`` (what it held, it keeps holding)."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """kill -9 of the whole worker (its process group): no goodbye, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.handle.close()


@contextmanager
def workers(env: dict[str, str], directory: Path, count: int, queue: str = "generation") -> Iterator[list[Worker]]:
    directory.mkdir(parents=True, exist_ok=True)
    started = [Worker(env, directory / f"{queue}-{i}.log", queue) for i in range(count)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()
