"""A group's own settings (temperature, length, rhyme, form), and which settings apply where.

In a private chat a person writes with their own settings (``user_settings``); in a group every ``/write``
uses the group's (``chat_settings``), which only its administrators change, and what the group never set
falls back to the bot's defaults, not to the requester's own settings: a group's lyrics must not change
with whoever asks. The style column of both tables belongs to the styles (``bot.db.repos.styles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import ChatSettings, utcnow
from bot.db.repos.common import get_or_insert
from bot.db.repos.people import UNSET, UserSettingsRecord, _Unset, apply_settings, get_settings


@dataclass(frozen=True, slots=True)
class ChatSettingsRecord:
    chat_id: int
    temperature: float | None  # None: the bot's default
    length: int | None
    rhyme: bool | None
    form: str | None  # a ci tune's name; "": free lines chosen; None: the bot's default
    updated_by: int | None  # who changed them last (a Telegram user id, or the group for an anonymous admin)
    updated_at: datetime | None  # None: never set


StoredSettings = UserSettingsRecord | ChatSettingsRecord


async def get_chat_settings(session: AsyncSession, *, chat_id: int) -> ChatSettingsRecord:
    row = await session.get(ChatSettings, chat_id, populate_existing=True)
    if row is None:
        return ChatSettingsRecord(chat_id=chat_id, temperature=None, length=None, rhyme=None, form=None,
                                  updated_by=None, updated_at=None)
    return _record(row)


async def set_chat_settings(
    session: AsyncSession,
    *,
    chat_id: int,
    updated_by: int,
    temperature: float | Literal[_Unset.UNSET] | None = UNSET,
    length: int | Literal[_Unset.UNSET] | None = UNSET,
    rhyme: bool | Literal[_Unset.UNSET] | None = UNSET,
    form: str | Literal[_Unset.UNSET] | None = UNSET,
) -> ChatSettingsRecord:
    """Change the given fields only; None puts a field back to the bot's default. The chat row must exist."""
    row, _ = await get_or_insert(
        session,
        lambda: session.get(ChatSettings, chat_id),
        lambda: ChatSettings(chat_id=chat_id, temperature=None, length=None, rhyme=None),
    )
    apply_settings(row, temperature=temperature, length=length, rhyme=rhyme, form=form)
    row.updated_by = updated_by
    await session.flush()
    return _record(row)


async def move_chat_settings(session: AsyncSession, *, from_chat_id: int, to_chat_id: int) -> bool:
    """Copy a group's settings to the supergroup it became (Telegram gives it a new id); True if copied.

    Idempotent: Telegram announces the move twice (in the old chat and in the new one), and settings the new
    chat already has are never overwritten. The old row stays, like the old chat's requests.
    """
    old = await session.get(ChatSettings, from_chat_id)
    if old is None or await session.get(ChatSettings, to_chat_id) is not None:
        return False
    session.add(ChatSettings(chat_id=to_chat_id, temperature=old.temperature, length=old.length, rhyme=old.rhyme,
                             form=old.form, style=old.style, updated_by=old.updated_by, updated_at=utcnow()))
    await session.flush()
    return True


async def applicable_settings(session: AsyncSession, *, user_id: int, group_id: int | None) -> StoredSettings:
    """What a request is written with: the group's settings in a group (``group_id``), else the person's own."""
    if group_id is not None:
        return await get_chat_settings(session, chat_id=group_id)
    return await get_settings(session, user_id=user_id)


def _record(row: ChatSettings) -> ChatSettingsRecord:
    return ChatSettingsRecord(chat_id=row.chat_id, temperature=row.temperature, length=row.length, rhyme=row.rhyme,
                              form=row.form, updated_by=row.updated_by, updated_at=row.updated_at)


async def get_chat_style(session: AsyncSession, *, chat_id: int) -> str | None:
    return await session.scalar(select(ChatSettings.style).where(ChatSettings.chat_id == chat_id))


async def set_chat_style(session: AsyncSession, *, chat_id: int, style: str | None, updated_by: int | None) -> None:
    """The group's style (None: the default); its row must exist in ``chats``."""
    row, _ = await get_or_insert(
        session,
        lambda: session.get(ChatSettings, chat_id),
        lambda: ChatSettings(chat_id=chat_id),
    )
    row.style = style
    row.updated_by = updated_by
    row.updated_at = utcnow()
    await session.flush()
