"""One running bot per database and model directory.

Two bots on one database would both answer what a crash left unanswered, mark each other's training
run interrupted, and both fine-tune on schedule. The first to start takes the lock and holds it while it
runs; the operating system drops it when the process dies, however it dies, so a crash never leaves a
stale lock behind. A second bot refuses to start with a message that names the first.

SQLite databases and model directories are locked with ``flock`` on a file beside them; a PostgreSQL
database with a session-level advisory lock held on a connection of its own. That lock also ends when its
connection does while the process lives on (``pg_terminate_backend``, a server restart, a proxy or network
timeout), and nothing would say so: ``AdvisoryLock`` checks every few seconds that it still holds it, takes it
again if nobody else has, and otherwise reports it lost (the bot stops; a fine-tune is not promoted).

Webhook replicas are the exception: several bots behind a load balancer share one database on purpose
(each update reaches exactly one of them), so they take no instance lock. What must still happen once,
the scheduled fine-tune and the clean-up of runs a crash left "running", is guarded per run by
``FinetuneLock`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
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


class Steady:
    """A lock that cannot be lost while held: an ``flock``, whose descriptor only this process can close."""

    def __init__(self, held: bool) -> None:
        self.held = held

    def __bool__(self) -> bool:
        return self.held

    async def confirm(self) -> bool:
        return self.held

    async def held_throughout(self) -> bool:
        return self.held


# How soon a lost advisory lock is noticed: one small query per period on the lock's own connection.
WATCH_EVERY_S = 5.0
# A check or a re-take slower than this counts as failed: the server may no longer see this session.
CHECK_TIMEOUT_S = 10.0
# Whether this session holds the bigint advisory lock: PostgreSQL shows its high and low halves.
_HOLDS = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1)"
)
OnLost = Callable[[str], None]


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own, watched while held.

    Truthy while held. Every ``every_s`` seconds, and on ``confirm()``, it asks the server whether its session
    still holds the lock. If not (the connection was cut), it takes the lock again on a new connection: safe,
    since that fails if another process took it in the meantime, and then the lock is lost: an error is logged
    and ``on_lost`` called with the reason. Nobody waits: taking is ``pg_try_advisory_lock``.
    """

    def __init__(
        self, engine: AsyncEngine, key: int, what: str, on_lost: OnLost | None = None, every_s: float = WATCH_EVERY_S
    ) -> None:
        self.engine, self.key, self.what, self.on_lost, self.every_s = engine, key, what, on_lost, every_s
        self._connection: AsyncConnection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()  # the watch and confirm() take turns on the connection
        self._broken = False  # lost at least once since taken (even if taken again since)

    def __bool__(self) -> bool:
        return self._connection is not None

    async def acquire(self) -> bool:
        """Take it if it is free; True when taken, and then it is watched until ``release``."""
        async with self._busy:
            self._connection = await self._take()
        if self._connection is None:
            return False
        self._watch = asyncio.create_task(self._watch_loop(), name=f"watch {self.what}")
        return True

    async def confirm(self) -> bool:
        """Whether this process holds it now, as the server sees it; taken again if it was lost and is free."""
        async with self._busy:
            if self._connection is None:
                return False
            try:
                if await asyncio.wait_for(self._holds(self._connection), CHECK_TIMEOUT_S):
                    return True
                why = "its session no longer holds it"
            except Exception as exc:  # the connection is gone, or the server does not answer
                why = f"its connection failed ({_said(exc)})"
            await _drop(self._connection)
            self._connection = None
            self._broken = True
            log.warning("%s: %s; taking it again", self.what, why)
            try:
                self._connection = await asyncio.wait_for(self._take(), CHECK_TIMEOUT_S)
            except Exception as exc:
                why += f"; taking it again failed ({_said(exc)})"
            else:
                if self._connection is not None:
                    log.warning("%s: taken again", self.what)
                    return True
                why += "; another process holds it now"
        log.error("lost %s: %s", self.what, why)
        if self.on_lost is not None:
            self.on_lost(why)
        return False

    async def held_throughout(self) -> bool:
        """Held now and with no gap since taken: a lock lost and taken again may have let another process act
        in between (a fine-tune must not promote then, even though it holds the lock again)."""
        return await self.confirm() and not self._broken

    async def release(self) -> None:
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._watch = None
        async with self._busy:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            try:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await connection.commit()
            except Exception:  # never hand a connection that may still hold it back to the pool
                await _drop(connection)
            else:
                await connection.close()

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            if not await self.confirm():
                return

    async def _holds(self, connection: AsyncConnection) -> bool:
        params = {"high": self.key >> 32, "low": self.key & 0xFFFF_FFFF}
        held = (await connection.execute(_HOLDS, params)).scalar()
        await connection.commit()
        return bool(held)

    async def _take(self) -> AsyncConnection | None:
        connection = await self.engine.connect()
        try:
            got = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar()
            await connection.commit()  # session-level: it outlives this transaction, until unlocked or closed
        except BaseException:  # a timeout too: a lock taken on a connection nobody keeps must end with it
            await _drop(connection)
            raise
        if not got:
            await connection.close()
            return None
        return connection


def _said(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
        exc = exc.orig  # the driver's own words, without the statement SQLAlchemy adds
    return " ".join(f"{type(exc).__name__}: {exc}".split())  # one line: driver messages carry newlines


async def _drop(connection: AsyncConnection) -> None:
    """Close the connection for good (not back into the pool): its session, and any lock in it, ends."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


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
        self._advisory: AdvisoryLock | None = None

    async def acquire(self, engine: AsyncEngine, on_lost: OnLost | None = None) -> None:
        """Take every lock or none (``InstanceLocked``). ``on_lost``: called with the reason if the PostgreSQL
        lock is lost later and cannot be taken again (the file locks cannot be lost)."""
        taken: list[FileLock] = []
        try:
            for lock in self._files:
                lock.acquire()
                taken.append(lock)
            if self._postgres:
                advisory = AdvisoryLock(engine, ADVISORY_KEY, "the instance lock on this PostgreSQL database", on_lost)
                if not await advisory.acquire():
                    raise InstanceLocked(
                        "another lyricbot is already running on this PostgreSQL database; stop it first")
                self._advisory = advisory
        except BaseException:
            for lock in taken:
                lock.release()
            raise

    async def release(self) -> None:
        if self._advisory is not None:
            await self._advisory.release()
            self._advisory = None
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
    lock on a connection of its own (``AdvisoryLock``, watched), so it holds across replicas on any host;
    SQLite (one host by nature): ``flock`` on a file beside the database, or in the model directory for an
    in-memory one. A run whose lock was lost while it trained is not promoted (``TrainingService``).
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
    async def try_hold(self, engine: AsyncEngine) -> AsyncIterator[AdvisoryLock | Steady]:
        """Yields whether this process holds the lock (truthy), released on leaving the block, however it is
        left. Before acting on it after a long wait, ``await held.confirm()``: a PostgreSQL lock can be lost."""
        if self._postgres:
            advisory = AdvisoryLock(engine, FINETUNE_KEY, "the fine-tune lock")
            try:
                await advisory.acquire()
                yield advisory
            finally:
                await advisory.release()
            return
        try:
            self._file.acquire()
        except InstanceLocked:
            yield Steady(False)
            return
        try:
            yield Steady(True)
        finally:
            self._file.release()
