"""Preferences: how each person's and each group's lyrics are written, and what the bot remembers of people.

A request is written with its group's settings in a group and the person's own elsewhere (``repo.applicable_settings``),
the bot's defaults filling what was never set, and the style the chat chose (``StyleService.resolve``). A typed value
(``/temp abc``, a forged button's ``nan``) is parsed here, as strictly for a button as for a command.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.domain import DEFAULT_STYLE, Person, Place, Preferences, group_id
from bot.services.forms import known_tune
from bot.services.styles import StyleService
from bot.settings import Settings

log = logging.getLogger(__name__)
FREE_LINES = "-"  # the form setting's value for free lines, as a button carries it


async def upsert_person(session: AsyncSession, person: Person) -> None:
    await repo.upsert_user(session, user_id=person.user_id, first_name=person.first_name,
                           username=person.username, language_code=person.language_code)


class PreferencesService:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], styles: StyleService
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.styles = styles

    def parse_temperature(self, text: str) -> float | None:
        """A valid temperature from the person's text, or None (abc, -1, 0, nan, inf, 1e9...)."""
        try:
            value = float(text.strip().replace(",", "."))
        except ValueError:
            return None
        if not self.settings.allows_temperature(value):
            return None
        return round(value, 3)

    def parse_length(self, text: str) -> int | None:
        text = text.strip()
        if not text.isdecimal() or len(text) > 6:
            return None
        value = int(text)
        return value if self.settings.allows_length(value) else None

    def parse_rhyme(self, text: str) -> bool | None:
        """On or off, as typed (on, off, 开, 关) or as a button carries it (1, 0); None for anything else."""
        return {"on": True, "off": False, "开": True, "关": False, "1": True, "0": False}.get(text.strip().lower())

    def parse_form(self, text: str) -> str | None:
        """A tune's table name (``bot.services.forms.known_tune``), "" for free lines ("-"), None for neither."""
        return "" if text.strip() == FREE_LINES else known_tune(text)

    def with_defaults(self, stored: repo.StoredSettings) -> Preferences:
        """The bot's defaults for what a person or group never set."""
        s = self.settings
        return Preferences(
            temperature=s.default_temperature if stored.temperature is None else stored.temperature,
            length=s.default_length if stored.length is None else stored.length,
            rhyme=s.default_rhyme if stored.rhyme is None else stored.rhyme,
            form=known_tune(stored.form or "") or "",  # a tune no longer in the table is free lines
        )

    async def current(self, person: Person, place: Place | None = None) -> Preferences:
        """What a request from ``person`` in ``place`` is written with: a group's settings in a group, else the
        person's own (``repo.applicable_settings``), with the bot's defaults for what was never set."""
        async with self.sessions() as session:  # a look only: a request's own is where a gone style is cleared
            return await self.applicable(session, person.user_id, place, clear=False)

    async def applicable(self, session: AsyncSession, user_id: int, place: Place | None, clear: bool = True
                         ) -> Preferences:
        """Inside the caller's transaction (the one writing a request row): the settings that apply, and the style
        and version it is written in; ``clear``: forget a setting that names a style deleted since (said once)."""
        prefs = self.with_defaults(await repo.applicable_settings(session, user_id=user_id, group_id=group_id(place)))
        chosen = await self.styles.resolve(session, user_id=user_id, chat_id=place.chat_id if place else None,
                                           chat_type=place.type if place else None, clear=clear)
        return replace(prefs, style=chosen.style, version=chosen.version, style_gone=chosen.gone)

    async def of_request(self, record: repo.RequestRecord) -> Preferences:
        """What a stored request is generated with after a restart: its own settings, and its style's version now
        (the default style's if the style was deleted since)."""
        prefs = Preferences(record.temperature, record.length, record.rhyme, form=record.form, pattern=record.pattern)
        choice = await self.styles.find(record.style) or await self.styles.find(DEFAULT_STYLE)
        if choice is None or choice.version is None:
            raise LookupError("the default style serves no model yet: the bot gives it one when it starts")
        return replace(prefs, style=choice.name, version=choice.version)

    async def language_of(self, user_id: int) -> str | None:
        """The language code the person was last seen with: for answers sent without their update (a restart)."""
        async with self.sessions() as session:
            return await repo.language_of(session, user_id=user_id)

    async def remember(self, person: Person) -> None:
        """Make sure the person has a row (other tables point at it)."""
        async with self.sessions.begin() as session:
            await upsert_person(session, person)

    async def chat_moved(self, *, from_chat_id: int, to_chat: Place) -> None:
        """A group became a supergroup, which Telegram gives a new id: its settings and style go with it."""
        async with self.sessions.begin() as session:
            await repo.upsert_chat(session, chat_id=to_chat.chat_id, type=to_chat.type, title=to_chat.title)
            moved = await repo.move_chat_settings(session, from_chat_id=from_chat_id, to_chat_id=to_chat.chat_id)
        if moved:
            log.info("chat %s became %s: its settings moved with it", from_chat_id, to_chat.chat_id)

    async def change(
        self, person: Person, *, place: Place | None = None, temperature: float | None = None,
        length: int | None = None, rhyme: bool | None = None, form: str | None = None,
    ) -> None:
        """Change what is given; leave the rest. In a group (``place``) it is the group's settings that change:
        the caller has checked that ``person`` administers it (``bot.telegram.permissions``). ``form``: a tune's table
        name (``bot.services.forms.known_tune``), or "" for free lines."""
        temperature_ = repo.UNSET if temperature is None else temperature
        length_ = repo.UNSET if length is None else length
        rhyme_ = repo.UNSET if rhyme is None else rhyme
        form_ = repo.UNSET if form is None else form
        chat_id = group_id(place)
        async with self.sessions.begin() as session:
            await upsert_person(session, person)
            if chat_id is None or place is None:
                await repo.set_settings(session, user_id=person.user_id, temperature=temperature_, length=length_,
                                        rhyme=rhyme_, form=form_)
                return
            await repo.upsert_chat(session, chat_id=chat_id, type=place.type, title=place.title)
            await repo.set_chat_settings(session, chat_id=chat_id, updated_by=person.user_id,
                                         temperature=temperature_, length=length_, rhyme=rhyme_, form=form_)
