"""The database as an operator reads it: rows on a connection of the test's own, a seeded person and chat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository
from bot.db.engine import make_engine
from bot.domain import DEFAULT_STYLE
from tests.helpers.bot import buttons

SEEDED_USER, SEEDED_CHAT = 1001, -1001234567890  # what ``seed`` writes


async def rows(url: str, sql: str, **params: object) -> list[Row[Any]]:
    """Read PostgreSQL on a connection of the test's own, as an operator would."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), params))
    finally:
        await engine.dispose()


def request_of(message: dict[str, Any]) -> int | None:
    """The request a sent message answers, from its rating buttons; None for a message without them."""
    if "inline_keyboard" not in message.get("reply_markup", {}):
        return None
    return int(buttons(message)[0].split(":")[1])


async def seed(session: AsyncSession, user_id: int = SEEDED_USER) -> None:
    await repository.upsert_user(session, user_id=user_id, first_name="Ann", username=None, language_code="en")
    await repository.upsert_chat(session, chat_id=SEEDED_CHAT, type="supergroup", title="Songs")


async def new_request(session: AsyncSession, update_id: int | None, user_id: int = SEEDED_USER,
                      style: str = DEFAULT_STYLE) -> repository.RequestRecord:
    record, created = await repository.create_request(
        session,
        update_id=update_id,
        user_id=user_id,
        chat_id=SEEDED_CHAT,
        message_id=7,
        prefix="la la",
        temperature=0.8,
        length=120,
        style=style,
    )
    assert created
    return record
