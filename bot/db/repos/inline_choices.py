"""Requests that came through inline mode: Telegram delivered the chosen lyric itself, in a chat it does not name,
so the row is stored already answered, found again by the message's ``inline_message_id``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Request, RequestStatus, utcnow
from bot.db.repos.common import get_or_insert, storable, storable_optional
from bot.db.repos.requests import request_by_update_id
from bot.domain import DEFAULT_STYLE


async def record_inline_choice(
    session: AsyncSession,
    *,
    update_id: int,
    user_id: int,
    inline_message_id: str | None,
    prefix: str,
    output: str,
    temperature: float,
    length: int,
    rhyme: bool,
    model_version: str | None,
    latency_ms: int,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> tuple[int, bool]:
    """Store a lyric someone chose from an inline query, already answered; ``(id, False)`` for a repeated update.

    Telegram delivered the text itself, in a chat it does not name, so the row has no chat and starts out
    ``answered``; keyed by the chosen_inline_result's ``update_id`` like every other request.
    """
    now = utcnow()

    def make() -> Request:
        return Request(
            update_id=update_id,
            user_id=user_id,
            chat_id=None,
            source="inline",
            inline_message_id=inline_message_id,
            prefix=storable(prefix),
            temperature=temperature,
            length=length,
            rhyme=rhyme,
            status=RequestStatus.ANSWERED.value,
            output=storable(output),
            title=storable_optional(title),
            style=style,
            candidates=[],
            candidate_index=0,
            model_version=model_version,
            latency_ms=latency_ms,
            started_at=now,
            finished_at=now,
            answered_at=now,
        )

    row, created = await get_or_insert(session, lambda: request_by_update_id(session, update_id), make)
    return row.id, created


async def request_for_inline_message(session: AsyncSession, *, inline_message_id: str) -> int | None:
    """The request behind a message sent through inline mode (its buttons carry no request id, only this)."""
    return await session.scalar(
        select(Request.id).where(Request.inline_message_id == inline_message_id).order_by(Request.id).limit(1)
    )
