"""Styles: several models served at once, each a named lineage of model versions, chosen per person or per group.

Every style is a row of ``styles`` whose ``active_version`` names a version directory in ``MODEL_DIR``: the default
style (``DEFAULT_STYLE``, served to whoever chose none; the shipped base on a fresh install, fine-tuned nightly) as
much as a corpus an admin trained (Jay Chou, Shakespeare, ...). The bot fills the default's pointer on its first
start (``ensure_default``).

Why the database row, not a pointer file, is the source of truth for a style's version: a style exists only as
that row (its title, who made it, a soft delete), so the version pointer changes in the same transaction as the
style itself, a rollback or a promotion is one conditional UPDATE that two webhook replicas or the CLI cannot
both win (``repo.point_style``), and every replica sees the change on its next request with no file to poll.
Generation needs no pointer at all: each job names its version (``GenerationJob.version``), which a lane loads on
first use.

Which style a request is written in: in a private chat, the person's (``user_settings.style``); in a group,
the group's (``chat_settings.style``, which only the group's administrators change); the default where they
chose none. A setting that names a style deleted since falls back to the default, once with a note, and is
cleared.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.domain import DEFAULT_STYLE, Person, Place
from bot.serving.generation import GenerationBackend
from bot.serving.model_store import VERSION_NAME, ModelStore, style_corpus_path, version_line, version_vocab
from charrnn.checkpoint import CheckpointError, load_checkpoint
from charrnn.vocab import Vocab

log = logging.getLogger(__name__)

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
    """The style a request is written in and the version that serves it. ``gone``: the name of a deleted style the
    setting named; the request falls back to the default and the person is told."""

    style: str
    version: str
    gone: str | None = None


def normalize(name: str) -> str:
    return name.strip().lower()


def _live(record: repo.StyleRecord | None) -> bool:
    return record is not None and record.deleted_at is None and record.active_version is not None


class StyleService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], store: ModelStore, backend: GenerationBackend | None = None
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.backend = backend  # None from the CLI: a running bot's requests name their versions themselves
        self._vocabs: dict[str, Vocab] = {}  # by version: read from a checkpoint's meta once

    async def ensure_default(self) -> str:
        """The default style's version, given one on the first start: the version a model directory from before
        migration 0012 served (its ``ACTIVE`` file), else the shipped base. Replicas starting together on one
        database agree: the first pointer written wins, the others serve it."""
        version = await self._first_default(install=True)
        assert version is not None  # install=True always ends with one
        return version

    async def adopt_default(self) -> str | None:
        """``ensure_default`` for a command that only looks (``lyricbot models``): the version an ``ACTIVE`` file
        names is adopted, but the shipped base is not installed; None when the default style has no version."""
        return await self._first_default(install=False)

    async def _first_default(self, install: bool) -> str | None:
        async with self.sessions() as session:
            record = await repo.get_style(session, name=DEFAULT_STYLE)
        if record is None:
            raise LookupError("the database has no default style: run `lyricbot db upgrade`")
        legacy = self.store.legacy_active()
        if record.active_version is not None:
            if legacy is not None:  # left by a crash right after its adoption: the row is the pointer
                self.store.forget_legacy_active()
            return record.active_version
        if legacy is None and not install:
            return None
        version = legacy if legacy is not None else await asyncio.to_thread(self.store.install_base)
        try:
            await self.serve(DEFAULT_STYLE, version, expected_current=None, warm=False)  # the caller loads it
        except repo.StyleChanged:
            return await self._first_default(install)
        if legacy is not None:
            log.info("the default style serves %s, which MODEL_DIR/ACTIVE named (that file is gone now)", legacy)
            self.store.forget_legacy_active()
        return version

    # --- choosing ------------------------------------------------------------------------------------

    async def available(self) -> list[StyleChoice]:
        """The default style first, then the live styles by name."""
        async with self.sessions() as session:
            styles = [s for s in await repo.list_styles(session) if s.active_version]
        self.reserve_lanes(len(styles))
        styles.sort(key=lambda s: s.name != DEFAULT_STYLE)  # stable: the others stay by name
        return [_choice(s) for s in styles]

    async def find(self, name: str) -> StyleChoice | None:
        """A live style by name (case-insensitive); None for an unknown, deleted or malformed one."""
        name = normalize(name)
        if not STYLE_NAME.fullmatch(name):
            return None
        async with self.sessions() as session:
            record = await repo.get_style(session, name=name)
        return _choice(record) if record is not None and _live(record) else None

    async def active_version(self, name: str) -> str:
        """A live style's version: what its requests run on and its fine-tunes start from. LookupError for no such
        style."""
        choice = await self.find(name)
        if choice is None or choice.version is None:
            raise LookupError(f"no style {normalize(name)}")
        return choice.version

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
        if stored is not None:
            record = await repo.get_style(session, name=stored)
            if record is not None and _live(record):
                assert record.active_version is not None
                return Resolved(record.name, record.active_version)
            if clear:
                log.info("style %s is gone; chat %s falls back to the default", stored, chat_id)
                if place_is_private:
                    await repo.set_user_style(session, user_id=user_id, style=None)
                else:
                    assert chat_id is not None
                    await repo.set_chat_style(session, chat_id=chat_id, style=None, updated_by=None)
        default = await repo.get_style(session, name=DEFAULT_STYLE)
        if default is None or default.active_version is None:
            raise LookupError("the default style serves no model yet: the bot gives it one when it starts")
        return Resolved(DEFAULT_STYLE, default.active_version, gone=stored)

    async def _stored(self, session: AsyncSession, user_id: int, place: Place) -> str | None:
        if _is_private(place.type):
            return await repo.get_user_style(session, user_id=user_id)
        return await repo.get_chat_style(session, chat_id=place.chat_id)

    async def vocab(self, version: str) -> Vocab:
        """The vocabulary of the model a request runs on (``Resolved.version``), for what depends on it:
        unknown-character notes, a check that a prefix has any character the model knows."""
        cached = self._vocabs.get(version)
        if cached is None:
            cached = await asyncio.to_thread(version_vocab, self.store.model_dir, version)
            if len(self._vocabs) >= 32:  # versions come and go; a few are live at a time
                self._vocabs.clear()
            self._vocabs[version] = cached
        return cached

    def reserve_lanes(self, live_styles: int) -> None:
        """One generation lane per live style, so styles never unload each other; a version a rollback or a
        promotion elsewhere left behind is the least recently used, and the first to go."""
        reserve = getattr(self.backend, "reserve_lanes", None)  # the in-process worker; Celery workers load on demand
        if reserve is not None:
            reserve(live_styles)

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
            root = await repo.record_root_version(session, version=version, weights_sha256=ckpt.weights_sha256,
                                                  metrics=ckpt.metrics, style=name)
            if root.style != name:  # a copy under a name of its own is how another style's model becomes this one's
                raise ValueError(f"{version} is a version of style {root.style}, not a new style's")
            record = await repo.create_style(session, name=name, title=(title or name)[:64],
                                                   active_version=version, created_by=created_by)
            self.reserve_lanes(len(await repo.list_styles(session)))
        log.info("style %s created, serving %s", name, version)
        return record

    async def delete(self, name: str) -> bool:
        """Soft delete; its versions stay on disk and in ``model_versions``. False when there is no such live style."""
        name = normalize(name)
        if name == DEFAULT_STYLE or not STYLE_NAME.fullmatch(name):  # the default is what the others fall back to
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
        if version is None:
            async with self.sessions() as session:
                current = await repo.get_version(session, version=style.version) if style.version else None
            version = current.parent if current is not None else None
            if version is None:
                raise LookupError(f"style {style.name}'s active version has no previous one to roll back to")
        if not VERSION_NAME.fullmatch(version) or not (self.store.model_dir / version / "meta.json").is_file():
            raise LookupError(f"no model version {version}")
        try:
            await self.serve(style.name, version, expected_current=style.version)
        except repo.StyleChanged as exc:  # a promotion (or another rollback) got there first: look again
            raise LookupError(f"{exc}; nothing was rolled back") from exc
        return version

    async def serve(self, name: str, version: str, *, expected_current: str | None,
                    expected_sha256: str | None = None, warm: bool = True) -> None:
        """Point the live style ``name`` at ``version``, only if it still serves ``expected_current`` (a promotion
        over the model it was trained from, a rollback over the one it saw): ``repo.StyleChanged`` otherwise.

        The checkpoint is verified first (``CheckpointError``); a version no row records yet (the shipped base, a
        first model of ``lyricbot train``) becomes the root of the style's lineage; one of another style's lineage
        is refused (LookupError). The backend loads it now (``warm``), so its first request does not wait for that
        in this bot; other replicas and the CLI load it on its first request there.
        """
        ckpt = await asyncio.to_thread(load_checkpoint, self.store.model_dir / version)  # checksums verified
        if expected_sha256 is not None and ckpt.weights_sha256 != expected_sha256:
            raise CheckpointError(f"{version}: weights do not match the recorded checksum")
        async with self.sessions.begin() as session:
            record = await repo.record_root_version(session, version=version, weights_sha256=ckpt.weights_sha256,
                                                    metrics=ckpt.metrics, style=name)
            if record.style != name:
                raise LookupError(f"{version} is a version of style {record.style}: /rollback {record.style} {version}")
            await repo.point_style(session, name=name, version=version, expected_current=expected_current)
            await repo.activate_version(session, version=version)
        if warm and self.backend is not None:
            await self.backend.warm(version)
        log.info("style %s now serves %s", name, version)

    async def replace(self, name: str, version: str) -> None:
        """``serve`` over whatever the style serves now: an operator's choice (``lyricbot train``, the sandbox's
        start), where a promotion would be refused over a model it was not trained from. A promotion or rollback
        landing between the look and the change is looked at again, not the end of minutes of training."""
        for attempt in range(3):
            async with self.sessions() as session:
                current = await repo.get_style(session, name=normalize(name))
            try:
                await self.serve(name, version, expected_current=current.active_version if current else None)
                return
            except repo.StyleChanged:
                if attempt == 2:
                    raise

    async def describe_versions(self, name: str) -> list[str]:
        """/models for one style: its versions, newest first, with perplexity, ratings and the active one marked."""
        name = normalize(name)
        async with self.sessions() as session:
            style = await repo.get_style(session, name=name) if STYLE_NAME.fullmatch(name) else None
            if style is None or style.deleted_at is not None:
                raise LookupError(f"no style {name}")
            versions = [v for v in await repo.list_versions(session) if v.style == style.name]
            feedback = await repo.version_feedback(session)
        return [version_line(v, feedback, style.active_version) for v in versions]

    async def summary(self) -> str:
        """One line naming every style and the version it serves ("?": none yet, before the bot's first start),
        for /models."""
        async with self.sessions() as session:
            styles = await repo.list_styles(session)
        styles.sort(key=lambda s: s.name != DEFAULT_STYLE)
        return "Styles: " + ", ".join(f"{s.name} ({s.active_version or '?'})" for s in styles)


def _choice(record: repo.StyleRecord) -> StyleChoice:
    return StyleChoice(record.name, None if record.name == DEFAULT_STYLE else record.title, record.active_version)


def _is_private(chat_type: str | None) -> bool:
    return chat_type is None or chat_type == "private"
