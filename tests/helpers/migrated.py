"""Shared by the database tests: a freshly migrated engine, one committed transaction on it, and the
backend a test runs on (the ``url`` fixture in conftest.py gives every test a SQLite and a PostgreSQL run)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db import migrate
from bot.db.engine import make_engine, make_sessionmaker

T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """For a test about SQLite itself: its PostgreSQL run is skipped with ``reason``, in plain sight."""
    return pytest.mark.parametrize(
        "url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skip(reason=reason))], indirect=True
    )


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


def with_session(url: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``fn`` in one committed transaction on a freshly migrated database."""

    async def main() -> T:
        async with migrated(url) as engine, make_sessionmaker(engine).begin() as session:
            return await fn(session)

    return asyncio.run(main())
