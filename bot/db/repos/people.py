"""People and places: Telegram users and chats as last seen, and each person's generation settings."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, ChatSettings, User, UserSettings, utcnow
from bot.db.repos.common import get_or_insert, storable, storable_optional


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET  # "leave this field as it is", as opposed to None, "back to the default"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    first_name: str
    username: str | None
    language_code: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChatRecord:
    id: int
    type: str
    title: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserSettingsRecord:
    user_id: int
    temperature: float | None  # None: the bot's default
    length: int | None
    rhyme: bool | None
    form: str | None  # a ci tune's name; "": free lines chosen; None: the bot's default
    updated_at: datetime | None  # None: never set


async def upsert_user(
    session: AsyncSession, *, user_id: int, first_name: str, username: str | None, language_code: str | None
) -> UserRecord:
    fields = {
        "first_name": storable(first_name),
        "username": storable_optional(username),
        "language_code": storable_optional(language_code),
    }
    row, _ = await get_or_insert(session, lambda: session.get(User, user_id), lambda: User(id=user_id, **fields))
    _update(row, fields)
    await session.flush()
    return UserRecord(
        id=row.id,
        first_name=row.first_name,
        username=row.username,
        language_code=row.language_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def language_of(session: AsyncSession, *, user_id: int) -> str | None:
    """The Telegram language a person was last seen with (None: unknown, or no such person)."""
    row = await session.get(User, user_id)
    return None if row is None else row.language_code


async def upsert_chat(session: AsyncSession, *, chat_id: int, type: str, title: str | None) -> ChatRecord:
    fields = {"type": storable(type), "title": storable_optional(title)}
    row, _ = await get_or_insert(session, lambda: session.get(Chat, chat_id), lambda: Chat(id=chat_id, **fields))
    _update(row, fields)
    await session.flush()
    return ChatRecord(id=row.id, type=row.type, title=row.title, created_at=row.created_at)


async def get_settings(session: AsyncSession, *, user_id: int) -> UserSettingsRecord:
    row = await session.get(UserSettings, user_id, populate_existing=True)
    if row is None:
        return UserSettingsRecord(user_id=user_id, temperature=None, length=None, rhyme=None, form=None,
                                  updated_at=None)
    return _settings_record(row)


async def set_settings(
    session: AsyncSession,
    *,
    user_id: int,
    temperature: float | Literal[_Unset.UNSET] | None = UNSET,
    length: int | Literal[_Unset.UNSET] | None = UNSET,
    rhyme: bool | Literal[_Unset.UNSET] | None = UNSET,
    form: str | Literal[_Unset.UNSET] | None = UNSET,
) -> UserSettingsRecord:
    """Change the given fields only; None puts a field back to the bot's default."""
    row, _ = await get_or_insert(
        session,
        lambda: session.get(UserSettings, user_id),
        lambda: UserSettings(user_id=user_id, temperature=None, length=None, rhyme=None),
    )
    apply_settings(row, temperature=temperature, length=length, rhyme=rhyme, form=form)
    await session.flush()
    return _settings_record(row)


def apply_settings(
    row: UserSettings | ChatSettings,
    *,
    temperature: float | Literal[_Unset.UNSET] | None,
    length: int | Literal[_Unset.UNSET] | None,
    rhyme: bool | Literal[_Unset.UNSET] | None,
    form: str | Literal[_Unset.UNSET] | None = UNSET,
) -> None:
    """Set the fields given (``UNSET`` leaves one as it is, None puts it back to the bot's default): a person's
    settings and a group's change the same way."""
    if temperature is not UNSET:
        row.temperature = temperature
    if length is not UNSET:
        row.length = length
    if rhyme is not UNSET:
        row.rhyme = rhyme
    if form is not UNSET:
        row.form = form
    row.updated_at = utcnow()


def _update(row: User | Chat, fields: dict[str, str | None]) -> None:
    # Assign only what changed, so an unchanged upsert issues no UPDATE and keeps updated_at.
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def _settings_record(row: UserSettings) -> UserSettingsRecord:
    return UserSettingsRecord(
        user_id=row.user_id, temperature=row.temperature, length=row.length, rhyme=row.rhyme, form=row.form,
        updated_at=row.updated_at,
    )


async def get_user_style(session: AsyncSession, *, user_id: int) -> str | None:
    return await session.scalar(select(UserSettings.style).where(UserSettings.user_id == user_id))


async def set_user_style(session: AsyncSession, *, user_id: int, style: str | None) -> None:
    """The person's style (None: the default); their row must exist in ``users``."""
    row, _ = await get_or_insert(
        session,
        lambda: session.get(UserSettings, user_id),
        lambda: UserSettings(user_id=user_id, temperature=None, length=None, rhyme=None),
    )
    row.style = style
    row.updated_at = utcnow()
    await session.flush()
