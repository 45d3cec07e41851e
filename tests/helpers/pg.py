"""A fresh PostgreSQL database per test, on the local server, so the database layer is tested on both backends.

Each database is created through the ``postgres`` maintenance database and dropped afterwards (its
connections ended first), so tests never see each other's rows or schema. Without a reachable server the
PostgreSQL half of the tests is skipped, except in CI, where a missing server is a broken set-up, not a pass.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
MAINTENANCE_DB = "postgres"
CONNECT_TIMEOUT_S = 5.0


def database_url(name: str) -> str:
    """The SQLAlchemy URL the bot would be configured with for database ``name``."""
    return f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{name}"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail in CI: CI is meant to test PostgreSQL, and a silent skip there would hide that it did not."""
    message = f"PostgreSQL at {HOST}:{PORT} unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


async def _connect(database: str) -> Any:
    """An asyncpg connection (asyncpg has no type hints, hence Any); outside a transaction: AUTOCOMMIT."""
    import asyncpg

    return await asyncpg.connect(host=HOST, port=PORT, user=USER, database=database, timeout=CONNECT_TIMEOUT_S)


async def create_database() -> str:
    """Create an empty database with a random name and return the name."""
    name = f"lyricbot_test_{secrets.token_hex(6)}"
    conn = await _connect(MAINTENANCE_DB)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # CREATE DATABASE cannot run inside a transaction
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    """Drop ``name`` even if a test left connections open (FORCE ends them; PostgreSQL 13 and later)."""
    conn = await _connect(MAINTENANCE_DB)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A fresh database's URL for the duration of the block; skips (fails in CI) if there is no server.

    Synchronous, for fixtures: the tests run their own event loops with ``asyncio.run``.
    """
    try:
        import asyncpg
    except ImportError:
        unavailable("asyncpg is not installed (pip install -e '.[postgres]')")
    try:
        name = asyncio.run(create_database())
    # Refused, unreachable or timed out; or a server that turns the user away (no such role, no rights).
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable(f"{type(exc).__name__}: {exc}")
    try:
        yield database_url(name)
    finally:
        asyncio.run(drop_database(name))
