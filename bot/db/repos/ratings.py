"""Stars people give lyrics, one rating per person and request, and what they add up to: per lyric, per person
and per model version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Rating, Request, RequestStatus
from bot.db.repos.common import get_or_insert


@dataclass(frozen=True, slots=True)
class RatingRecord:
    id: int
    request_id: int
    user_id: int
    stars: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TopLyric:
    request_id: int
    output: str
    mean_stars: float
    ratings: int


@dataclass(frozen=True, slots=True)
class UserStats:
    requests: int
    answered: int
    ratings_given: int
    ratings_received: int  # on this person's requests, their own ratings included
    mean_stars_received: float | None  # None: nobody rated their lyrics yet


async def rate(session: AsyncSession, *, request_id: int, user_id: int, stars: int) -> RatingRecord:
    """Record this person's rating of a request, replacing their earlier one."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"stars must be an integer from 1 to 5, got {stars!r}")
    row, _ = await get_or_insert(
        session,
        lambda: _rating_row(session, request_id, user_id),
        lambda: Rating(request_id=request_id, user_id=user_id, stars=stars),
    )
    row.stars = stars
    await session.flush()
    return RatingRecord(
        id=row.id,
        request_id=row.request_id,
        user_id=row.user_id,
        stars=row.stars,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def top_rated(
    session: AsyncSession, *, chat_id: int, author_id: int | None = None, limit: int = 5
) -> list[TopLyric]:
    """The best-rated answered lyrics that chat ``chat_id`` may see: highest mean stars, then most ratings, then
    oldest.

    A lyric is as private as the chat it was written in: a chat sees its own lyrics, and ``author_id`` (given in a
    private chat, the person's own) adds the lyrics that person sent elsewhere through inline mode, which no other
    chat is told the way to (Telegram does not say where they went).
    """
    mean = func.avg(cast(Rating.stars, Float)).label("mean")
    count = func.count(Rating.id).label("count")
    visible = Request.chat_id == chat_id
    if author_id is not None:
        visible = or_(visible, and_(Request.chat_id.is_(None), Request.user_id == author_id))
    result = await session.execute(
        select(Request.id, Request.output, mean, count)
        .join(Rating, Rating.request_id == Request.id)
        .where(Request.status == RequestStatus.ANSWERED.value, Request.output.is_not(None), visible)
        .group_by(Request.id, Request.output)
        .order_by(mean.desc(), count.desc(), Request.id)
        .limit(limit)
    )
    return [
        TopLyric(request_id=rid, output=output, mean_stars=float(avg), ratings=int(n)) for rid, output, avg, n in result
    ]


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    requests, answered = (
        await session.execute(
            select(
                func.count(Request.id),
                func.count(case((Request.status == RequestStatus.ANSWERED.value, 1))),
            ).where(Request.user_id == user_id)
        )
    ).one()
    ratings_given = await session.scalar(select(func.count(Rating.id)).where(Rating.user_id == user_id))
    received, mean = (
        await session.execute(
            select(func.count(Rating.id), func.avg(cast(Rating.stars, Float)))
            .join(Request, Rating.request_id == Request.id)
            .where(Request.user_id == user_id)
        )
    ).one()
    return UserStats(
        requests=int(requests),
        answered=int(answered),
        ratings_given=int(ratings_given or 0),
        ratings_received=int(received),
        mean_stars_received=None if mean is None else float(mean),
    )


async def version_feedback(session: AsyncSession) -> dict[str, tuple[float | None, int]]:
    """Per ``requests.model_version``: (mean stars of the ratings on its requests or None, number of requests).

    Counts every request that names the version, recorded in ``model_versions`` or not (the first model isn't).
    """
    result = await session.execute(
        select(
            Request.model_version,
            func.avg(cast(Rating.stars, Float)),
            func.count(Request.id.distinct()),
        )
        .outerjoin(Rating, Rating.request_id == Request.id)
        .where(Request.model_version.is_not(None))
        .group_by(Request.model_version)
    )
    return {
        version: (None if mean is None else float(mean), int(n)) for version, mean, n in result if version is not None
    }


async def _rating_row(session: AsyncSession, request_id: int, user_id: int) -> Rating | None:
    return await session.scalar(select(Rating).where(Rating.request_id == request_id, Rating.user_id == user_id))
