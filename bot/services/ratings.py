"""Stars: anyone who sees a lyric may rate it, once each, with the buttons sent under it; the best-rated lyrics a
chat may see; a person's own numbers."""

from __future__ import annotations

from bot.db import repository as repo
from bot.domain import Person, Place, group_id
from bot.services.lyrics import LyricsService
from bot.services.preferences import upsert_person


class RatingService:
    def __init__(self, lyrics: LyricsService) -> None:
        self.lyrics = lyrics  # whose request a button belongs to (``LyricsService.own_button``)
        self.sessions = lyrics.sessions

    async def rate(
        self, *, request_id: int, person: Person, place: Place, button_message_id: int | None, stars: int
    ) -> bool:
        """Anyone who sees a lyric may rate it, once each (a new rating replaces theirs), with its own buttons."""
        if await self.lyrics.own_button(request_id, place, button_message_id) is None:
            return False
        async with self.sessions.begin() as session:
            await upsert_person(session, person)
            await repo.rate(session, request_id=request_id, user_id=person.user_id, stars=stars)
        return True

    async def top(self, person: Person, place: Place, limit: int = 5) -> list[repo.TopLyric]:
        """The best-rated lyrics this chat may see: its own, and in private also what the person shared inline."""
        author = person.user_id if group_id(place) is None else None
        async with self.sessions() as session:
            return await repo.top_rated(session, chat_id=place.chat_id, author_id=author, limit=limit)

    async def stats(self, person: Person) -> repo.UserStats:
        async with self.sessions() as session:
            return await repo.user_stats(session, user_id=person.user_id)
