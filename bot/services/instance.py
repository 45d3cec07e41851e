"""One running bot per database and model directory.

Two bots on one database would both answer what a crash left unanswered, mark each other's training
run interrupted, and both fine-tune on schedule. The first to start takes the lock and holds it while it
runs; the operating system drops it when the process dies, however it dies, so a crash never leaves a
stale lock behind. A second bot refuses to start with a message that names the first.

SQLite databases and model directories are locked with ``flock`` on a file beside them; a PostgreSQL
database with a session-level advisory lock held on a connection of its own.

Webhook replicas are the exception: several bots behind a load balancer share one database on purpose
(each update reaches exactly one of them), so they take no instance lock. What must still happen once,
the scheduled fine-tune and the clean-up of runs a crash left "running", is guarded per run by
``FinetuneLock`` instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
# pg_advisory_lock takes a bigint; this one spells "lyricbot" in ASCII.
ADVISORY_KEY = int.from_bytes(b"lyricbot", "big") & 0x7FFF_FFFF_FFFF_FFFF


class InstanceLocked(RuntimeError):
    """Another bot holds this database or model directory."""


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        if (said := path.read_text(encoding="utf-8").strip()):
            return f" ({said})"
    return ""


class FileLock:
    """An exclusive, non-blocking ``flock`` on ``path``, released when closed or when the process dies."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InstanceLocked(
                f"another lyricbot is already running on {self.what}{_holder(self.path)}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class InstanceLock:
    """The locks one bot holds for its whole life: its database and its model directory."""

    def __init__(self, database_url: str, model_dir: Path) -> None:
        self.database_url = database_url
        self._files = [FileLock(model_dir / ".lyricbot.lock", f"the model directory {model_dir}")]
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            database = Path(url.database)
            self._files.insert(0, FileLock(database.with_name(database.name + ".lock"), f"the database {database}"))
        self._postgres = url.get_backend_name() == "postgresql"
        self._connection: AsyncConnection | None = None

    async def acquire(self, engine: AsyncEngine) -> None:
        taken: list[FileLock] = []
        try:
            for lock in self._files:
                lock.acquire()
                taken.append(lock)
            if self._postgres:
                await self._acquire_advisory(engine)
        except BaseException:
            for lock in taken:
                lock.release()
            raise

    async def _acquire_advisory(self, engine: AsyncEngine) -> None:
        connection = await engine.connect()
        try:
            got = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY})).scalar()
            await connection.commit()  # the lock is session-level: it outlives this transaction
        except BaseException:
            await connection.close()
            raise
        if not got:
            await connection.close()
            raise InstanceLocked("another lyricbot is already running on this PostgreSQL database; stop it first")
        self._connection = connection

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing the session drops the advisory lock either way
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            await self._connection.close()
            self._connection = None
        for lock in reversed(self._files):
            lock.release()


# A second key, so the per-run lock never meets the instance lock: "lyricbot" + "tune" in ASCII, truncated.
FINETUNE_KEY = int.from_bytes(b"lyrctune", "big") & 0x7FFF_FFFF_FFFF_FFFF


class FinetuneLock:
    """Held around one fine-tuning run, so that replicas sharing a database fine-tune once between them.

    Webhook replicas run without the instance lock, and each runs the same schedule: when the job fires
    in all of them at once, the first to take this lock runs it and the others skip that run (a try-lock:
    nobody waits; the skipped replicas find the documents already trained next time). A replica that
    fires late, after the run ended, finds nothing new to train. PostgreSQL: a session-level advisory
    lock on a connection of its own, so it holds across replicas on any host; SQLite (one host by
    nature): ``flock`` on a file beside the database, or in the model directory for an in-memory one.
    """

    def __init__(self, database_url: str, model_dir: Path) -> None:
        url = make_url(database_url)
        self._postgres = url.get_backend_name() == "postgresql"
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            database = Path(url.database)
            path = database.with_name(database.name + ".finetune.lock")
        else:
            path = model_dir / ".finetune.lock"
        self._file = FileLock(path, "fine-tuning")

    @contextlib.asynccontextmanager
    async def try_hold(self, engine: AsyncEngine) -> AsyncIterator[bool]:
        """Yields whether this process holds the lock; released on leaving the block, however it is left."""
        if self._postgres:
            async with self._advisory(engine) as got:
                yield got
            return
        try:
            self._file.acquire()
        except InstanceLocked:
            yield False
            return
        try:
            yield True
        finally:
            self._file.release()

    @contextlib.asynccontextmanager
    async def _advisory(self, engine: AsyncEngine) -> AsyncIterator[bool]:
        async with engine.connect() as connection:
            got = bool((await connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                 {"key": FINETUNE_KEY})).scalar())
            await connection.commit()  # session-level: it outlives this transaction, until unlocked or closed
            try:
                yield got
            finally:
                if got:
                    try:
                        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": FINETUNE_KEY})
                        await connection.commit()
                    except Exception:  # never hand a connection that may still hold it back to the pool
                        await connection.invalidate()
