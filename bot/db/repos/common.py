"""What the repositories share: the savepoint that settles a race on a unique key, and text PostgreSQL can store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Base

RowT = TypeVar("RowT", bound=Base)


async def get_or_insert(
    session: AsyncSession,
    find: Callable[[], Awaitable[RowT | None]] | None,
    make: Callable[[], RowT],
) -> tuple[RowT, bool]:
    """The row ``find`` returns, else ``make()`` inserted; ``(row, True)`` only when this call inserted it.

    The insert runs in a savepoint, so that losing a race on a unique key to a concurrent transaction leaves
    the caller's transaction usable; ``find`` then sees the winner's row (at READ COMMITTED, see
    ``bot.db.engine``). An IntegrityError that ``find`` cannot explain, such as a missing parent row, or any
    at all when there is nothing to find (``find`` None), is raised.
    """
    if find is not None:
        existing = await find()
        if existing is not None:
            return existing, False
    row = make()
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = None if find is None else await find()
        if existing is None:
            raise
        return existing, False
    return row, True


def storable(text: str) -> str:
    """``text`` with NUL as U+FFFD, the replacement character: PostgreSQL's text cannot hold NUL at all (the
    whole statement fails), SQLite's can. Applied on both, so that both store the same for the same input."""
    return text.replace("\x00", "\ufffd")


def storable_optional(text: str | None) -> str | None:
    return None if text is None else storable(text)
