"""Styles: lineages of model versions served side by side, each a row with its active version (the default
style's too: ``bot.domain.DEFAULT_STYLE``).

Which style a person, a group, a request, a run, a version or a corpus document belongs to is a column of that
row's own table, read and written by that table's repository; a person's or a group's is None until they choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Style, utcnow
from bot.db.repos.common import get_or_insert


class StyleChanged(RuntimeError):
    """The style's active version is no longer the one a change was based on (a rollback raced a promotion)."""


@dataclass(frozen=True, slots=True)
class StyleRecord:
    name: str
    title: str
    active_version: str | None
    created_by: int | None
    created_at: datetime
    deleted_at: datetime | None


async def list_styles(session: AsyncSession, *, include_deleted: bool = False) -> list[StyleRecord]:
    """Styles by name; only the live ones unless ``include_deleted``."""
    query = select(Style).order_by(Style.name).execution_options(populate_existing=True)
    if not include_deleted:
        query = query.where(Style.deleted_at.is_(None))
    return [_style_record(row) for row in await session.scalars(query)]


async def get_style(session: AsyncSession, *, name: str) -> StyleRecord | None:
    """The style, deleted or not; None if the name was never used."""
    row = await session.get(Style, name, populate_existing=True)
    return None if row is None else _style_record(row)


async def create_style(
    session: AsyncSession, *, name: str, title: str, active_version: str, created_by: int | None
) -> StyleRecord:
    """A new style, or a deleted one brought back under the same name; ValueError if a live one has it."""
    row, created = await get_or_insert(
        session,
        lambda: session.get(Style, name, populate_existing=True),
        lambda: Style(name=name, title=title, active_version=active_version, created_by=created_by),
    )
    if not created:
        if row.deleted_at is None:
            raise ValueError(f"a style named {name} already exists")
        row.title, row.active_version, row.created_by, row.deleted_at = title, active_version, created_by, None
        row.created_at = utcnow()
    await session.flush()
    return _style_record(row)


async def point_style(session: AsyncSession, *, name: str, version: str, expected_current: str | None) -> None:
    """Make ``version`` the live style's active one, only if its active version is still ``expected_current``.

    One conditional UPDATE: two replicas (or a rollback and a promotion) cannot both win.
    """
    result = await session.execute(
        update(Style)
        .where(Style.name == name, Style.deleted_at.is_(None), Style.active_version == expected_current)
        .values(active_version=version)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = await get_style(session, name=name)
        if current is None or current.deleted_at is not None:
            raise LookupError(f"no style {name}")
        raise StyleChanged(f"style {name} now serves {current.active_version}, not {expected_current}")


async def delete_style(session: AsyncSession, *, name: str) -> bool:
    """Soft delete: the row stays (old requests name it), its versions stay on disk. False if none was live."""
    row = await session.get(Style, name, populate_existing=True)
    if row is None or row.deleted_at is not None:
        return False
    row.deleted_at = utcnow()
    await session.flush()
    return True


def _style_record(row: Style) -> StyleRecord:
    return StyleRecord(
        name=row.name,
        title=row.title,
        active_version=row.active_version,
        created_by=row.created_by,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )
