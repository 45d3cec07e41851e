"""The async engine and session factory: SQLite (aiosqlite) set up for several writers, PostgreSQL (asyncpg) pinned
to READ COMMITTED, any other URL as is."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

BUSY_TIMEOUT_S = 30  # how long a writer waits for another process's write transaction before "database is locked"

_SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",  # off by default in SQLite, per connection
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",
    "PRAGMA journal_mode=WAL",  # readers and the one writer stop blocking each other; persists in the file
    "PRAGMA synchronous=NORMAL",  # safe under WAL: a power loss can drop the last commits, never corrupt
)


# The repository resolves races the READ COMMITTED way: a row locked FOR UPDATE is read again once the lock is
# free (mark_sending, next_candidate), and the row that beat an INSERT to a unique key is visible to the next
# SELECT (bot.db.repos.common.get_or_insert). Under REPEATABLE READ or SERIALIZABLE, which a server or database
# may set as its default, both would fail with serialization errors instead; so the engine does not inherit it.
POSTGRES_ISOLATION = "READ COMMITTED"


def make_engine(url: str, *, echo: bool = False, poolclass: type[Pool] | None = None) -> AsyncEngine:
    """An async engine for ``url``; the caller must ``await engine.dispose()`` (aiosqlite threads are non-daemon)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    if parsed.get_backend_name() in ("postgresql", "sqlite"):
        kwargs["json_serializer"] = _json_dumps
        kwargs["json_deserializer"] = _json_loads
    if parsed.get_backend_name() == "postgresql":
        kwargs["isolation_level"] = POSTGRES_ISOLATION
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True, **kwargs)

    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S}, **kwargs)
    _configure_sqlite(engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Records are copied out of rows before commit anyway; not expiring avoids surprise lazy loads after it.
    return async_sessionmaker(engine, expire_on_commit=False)


def _json_dumps(value: Any) -> str:
    # Lyrics are mostly CJK: kept as UTF-8 they take half the bytes of \uXXXX escapes, and read as themselves.
    # A metric that is NaN or infinite (a run that diverged) is stored as null: NaN is not JSON, and
    # PostgreSQL's json type refuses it, with the whole transaction.
    return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def _json_loads(text: str) -> Any:
    """Rows written before the JSON columns may hold NaN (SQLite kept the text): read as null, as written now."""
    return _finite(json.loads(text))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _configure_sqlite(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe for taking transaction control away from the sqlite3 driver (SQLite dialect docs,
    "Transactions with SQLite and the sqlite3 driver"), with ``BEGIN IMMEDIATE`` instead of ``BEGIN``.

    A DEFERRED transaction that has read and then tries to write after another connection wrote fails with
    "database is locked" at once, without waiting for the busy timeout. IMMEDIATE takes the write lock up
    front, where the busy timeout applies, so writers queue instead. Taking control also makes DDL and
    SAVEPOINT transactional, which the driver's legacy mode does not.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
