"""Styles: several models served at once, each a named lineage of model versions, chosen per person or per group.

The default style is what the bot always served: the ``ACTIVE`` pointer of ``ModelStore`` (the shipped base on
a fresh install), fine-tuned nightly. Every other style (a corpus an admin trained: Jay Chou, Shakespeare, ...)
is a row of ``styles`` whose ``active_version`` names a version directory in the same ``MODEL_DIR``.

Why the database row, not a pointer file per style, is the source of truth for a style's version: a style
exists only as that row (its title, who made it, a soft delete), so the version pointer changes in the same
transaction as the style itself, a rollback or a promotion is one conditional UPDATE that two webhook replicas
or the CLI cannot both win (``repo.point_style``), and every replica sees the change on its next request with
no file to poll. Generation needs no pointer at all: each job names its version (``GenerationJob.version``),
which a Celery worker loads on first use.

Which style a request is written in: in a private chat, the person's (``user_settings.style``); in a group,
the group's (``chat_settings.style``, which only the group's administrators change). A setting that names a
style deleted since falls back to the default, once with a note, and is cleared.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.domain import Person, Place
from bot.serving.generation import GenerationBackend
from bot.serving.model_store import VERSION_NAME, ModelStore, style_corpus_path, version_line, version_vocab
from charrnn.checkpoint import load_checkpoint
from charrnn.vocab import Vocab

if TYPE_CHECKING:
    from bot.services.training import TrainingService

log = logging.getLogger(__name__)

DEFAULT_STYLE: Final = "default"  # the name people type for the default style; never a row of `styles`
# A slug: it travels in callback data (64 bytes at most) and is typed in commands.
STYLE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

__all__ = ["DEFAULT_STYLE", "STYLE_NAME", "Resolved", "StyleChoice", "StyleService"]


@dataclass(frozen=True)
class StyleChoice:
    """A style people can pick. ``title`` None: the default style, whose title is in the person's language."""

    name: str
    title: str | None
    version: str | None


@dataclass(frozen=True)
class Resolved:
    """The style a request is written in and the version that serves it.

    ``style`` None: the default style, and ``version`` None: whatever the backend serves now (so a promotion or
    rollback of the default style reaches requests exactly as before styles existed). ``gone``: the name of a
    deleted style the setting named; the request falls back to the default and the person is told.
    """

    style: str | None = None
    version: str | None = None
    gone: str | None = None


def normalize(name: str) -> str:
    return name.strip().lower()


class StyleService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: ModelStore,
        backend: GenerationBackend | None = None,
        training: TrainingService | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.backend = backend  # None from the CLI
        self.training = training  # the default style's rollbacks and version list; None from some CLI paths
        self._vocabs: dict[str, Vocab] = {}  # by version: read from a checkpoint's meta once

    # --- choosing ------------------------------------------------------------------------------------

    async def available(self) -> list[StyleChoice]:
        """The default style first, then the live styles by name."""
        async with self.sessions() as session:
            styles = await repo.list_styles(session)
        self.reserve_lanes(len(styles))
        default = StyleChoice(DEFAULT_STYLE, None, self.store.active_version())
        return [default, *(StyleChoice(s.name, s.title, s.active_version) for s in styles if s.active_version)]

    async def find(self, name: str) -> StyleChoice | None:
        """A live style by name (case-insensitive); None for an unknown, deleted or malformed one."""
        name = normalize(name)
        if name == DEFAULT_STYLE:
            return StyleChoice(DEFAULT_STYLE, None, self.store.active_version())
        if not STYLE_NAME.fullmatch(name):
            return None
        async with self.sessions() as session:
            record = await repo.get_style(session, name=name)
        if record is None or record.deleted_at is not None or record.active_version is None:
            return None
        return StyleChoice(record.name, record.title, record.active_version)

    async def current(self, person: Person, place: Place) -> str:
        """The name of the style this person's requests in this chat are written in (the default when the
        setting names a style deleted since)."""
        async with self.sessions() as session:
            stored = await self._stored(session, person.user_id, place)
            if stored is None:
                return DEFAULT_STYLE
            record = await repo.get_style(session, name=stored)
        return stored if record is not None and record.deleted_at is None else DEFAULT_STYLE

    async def choose(self, *, person: Person, place: Place, name: str) -> StyleChoice | None:
        """Set the style of ``place`` (the person's own in private, the group's in a group); None when there is no
        such live style, and nothing changes. Whether the person may change a group's is the caller's check."""
        choice = await self.find(name)
        if choice is None:
            return None
        stored = None if choice.name == DEFAULT_STYLE else choice.name
        async with self.sessions.begin() as session:
            await repo.upsert_user(session, user_id=person.user_id, first_name=person.first_name,
                                   username=person.username, language_code=person.language_code)
            if _is_private(place.type):
                await repo.set_user_style(session, user_id=person.user_id, style=stored)
            else:
                await repo.upsert_chat(session, chat_id=place.chat_id, type=place.type, title=place.title)
                await repo.set_chat_style(session, chat_id=place.chat_id, style=stored,
                                                updated_by=person.user_id)
        log.info("chat %s (%s) now writes in style %s", place.chat_id, place.type, choice.name)
        return choice

    async def resolve(self, session: AsyncSession, *, user_id: int, chat_id: int | None, chat_type: str | None,
                      clear: bool = True) -> Resolved:
        """Inside the caller's transaction (the one writing the request row): the style and version to use.

        A setting naming a deleted style (or one with no version) is cleared (``clear``; False for a read-only
        look, such as an inline query's), so the note is shown once.
        """
        place_is_private = chat_id is None or _is_private(chat_type)
        if place_is_private:
            stored = await repo.get_user_style(session, user_id=user_id)
        else:
            assert chat_id is not None
            stored = await repo.get_chat_style(session, chat_id=chat_id)
        if stored is None:
            return Resolved()
        record = await repo.get_style(session, name=stored)
        if record is not None and record.deleted_at is None and record.active_version is not None:
            return Resolved(record.name, record.active_version)
        if not clear:
            return Resolved(gone=stored)
        log.info("style %s is gone; chat %s falls back to the default", stored, chat_id)
        if place_is_private:
            await repo.set_user_style(session, user_id=user_id, style=None)
        else:
            assert chat_id is not None
            await repo.set_chat_style(session, chat_id=chat_id, style=None, updated_by=None)
        return Resolved(gone=stored)

    async def _stored(self, session: AsyncSession, user_id: int, place: Place) -> str | None:
        if _is_private(place.type):
            return await repo.get_user_style(session, user_id=user_id)
        return await repo.get_chat_style(session, chat_id=place.chat_id)

    async def vocab(self, version: str | None) -> Vocab:
        """The vocabulary of the model a request runs on (``Resolved.version``; None: the backend's own), for
        what depends on it: unknown-character notes, a check that a prefix has any character the model knows."""
        if version is None:
            if self.backend is None:
                raise LookupError("no backend to ask for the default style's vocabulary")
            return self.backend.vocab
        cached = self._vocabs.get(version)
        if cached is None:
            cached = await asyncio.to_thread(version_vocab, self.store.model_dir, version)
            if len(self._vocabs) >= 32:  # versions come and go; a few are live at a time
                self._vocabs.clear()
            self._vocabs[version] = cached
        return cached

    def reserve_lanes(self, live_styles: int) -> None:
        """One generation lane per live style plus the default's, so styles never unload each other."""
        reserve = getattr(self.backend, "reserve_lanes", None)  # the in-process worker; Celery workers load on demand
        if reserve is not None:
            reserve(live_styles + 1)

    async def corpus_texts(self) -> list[str]:
        """The corpora the live styles were trained on (``lyricbot train --style`` keeps them), for the copy filter:
        a style's model must not show its own songs verbatim any more than the default's may."""
        async with self.sessions() as session:
            names = [s.name for s in await repo.list_styles(session)]
        paths = [p for p in (style_corpus_path(self.store.model_dir, n) for n in names) if p.is_file()]
        return [await asyncio.to_thread(p.read_text, encoding="utf-8") for p in paths]

    async def reserve(self) -> None:
        """At start-up: lanes for every live style."""
        async with self.sessions() as session:
            self.reserve_lanes(len(await repo.list_styles(session)))

    # --- administration ------------------------------------------------------------------------------

    async def create(self, *, name: str, title: str | None, version: str, created_by: int | None) -> repo.StyleRecord:
        """Register a trained version directory as the first version of a new style (or of a deleted one's name).

        ValueError for a bad or taken name; the checkpoint is verified before anyone can be served it.
        """
        name = normalize(name)
        if name == DEFAULT_STYLE or not STYLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} cannot name a style: use 1-32 of a-z, 0-9, _ and -, not {DEFAULT_STYLE!r}")
        ckpt = await asyncio.to_thread(load_checkpoint, self.store.model_dir / version)  # checksums verified
        async with self.sessions.begin() as session:
            if (await repo.version_style(session, version=version))[0] is False:
                await repo.record_version(
                    session, version=version, parent=None, weights_sha256=ckpt.weights_sha256, document_ids=[],
                    old_ppl=ckpt.metrics.get("val_ppl"), new_ppl=None, metrics=ckpt.metrics, run_id=None,
                )
            await repo.set_version_style(session, version=version, style=name)
            record = await repo.create_style(session, name=name, title=(title or name)[:64],
                                                   active_version=version, created_by=created_by)
            self.reserve_lanes(len(await repo.list_styles(session)))
        log.info("style %s created, serving %s", name, version)
        return record

    async def delete(self, name: str) -> bool:
        """Soft delete; its versions stay on disk and in ``model_versions``. False when there is no such live style."""
        name = normalize(name)
        if name == DEFAULT_STYLE or not STYLE_NAME.fullmatch(name):
            return False
        async with self.sessions.begin() as session:
            deleted = await repo.delete_style(session, name=name)
        if deleted:
            log.info("style %s deleted", name)
        return deleted

    async def rollback(self, name: str, version: str | None = None) -> str:
        """Serve ``version`` (or the parent of the active one) for style ``name``; returns the version now served.

        LookupError for an unknown style, a version of another style, or nothing to roll back to.
        """
        style = await self.find(name)
        if style is None:
            raise LookupError(f"no style {normalize(name)}")
        if style.name == DEFAULT_STYLE:
            if self.training is None:
                raise LookupError("the default style is rolled back with /rollback [version]")
            return await self.training.rollback(version)
        async with self.sessions() as session:
            if version is None:
                current = await repo.get_version(session, version=style.version) if style.version else None
                version = current.parent if current is not None else None
                if version is None:
                    raise LookupError(f"style {style.name}'s active version has no previous one to roll back to")
            recorded, owner = await repo.version_style(session, version=version)
        if not VERSION_NAME.fullmatch(version) or not recorded or owner != style.name:
            raise LookupError(f"no version {version} of style {style.name}")
        await asyncio.to_thread(load_checkpoint, self.store.model_dir / version)  # refuse a broken one now
        async with self.sessions.begin() as session:
            await repo.point_style(session, name=style.name, version=version, expected_current=style.version)
            await repo.activate_version(session, version=version)
        log.info("style %s now serves %s", style.name, version)
        return version

    async def describe_versions(self, name: str) -> list[str]:
        """/models for one style: its versions, newest first, with perplexity, ratings and the active one marked."""
        style = await self.find(name)
        if style is None:
            raise LookupError(f"no style {normalize(name)}")
        if style.name == DEFAULT_STYLE:
            return await self.training.describe_versions() if self.training is not None else []
        async with self.sessions() as session:
            versions = [v for v in await repo.list_versions(session) if v.style == style.name]
            feedback = await repo.version_feedback(session)
        return [version_line(v, feedback, style.version) for v in versions]

    async def summary(self) -> str:
        """One line naming every style and the version it serves, for /models."""
        choices = await self.available()
        return "Styles: " + ", ".join(f"{c.name} ({c.version or '?'})" for c in choices)


def _is_private(chat_type: str | None) -> bool:
    return chat_type is None or chat_type == "private"
