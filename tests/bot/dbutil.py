"""Shared by the database tests: a freshly migrated engine, and one committed transaction on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db import migrate
from bot.db.engine import make_engine, make_sessionmaker

T = TypeVar("T")


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
