"""Corpus documents: text admins add for a style's fine-tunes, stored once per content and style, and which of them
each style's active model has already learnt."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.domain import DEFAULT_STYLE
from bot.services.styles import StyleService
from bot.settings import Settings
from charrnn.data import CorpusError, check_corpus_text


@dataclass(frozen=True)
class Added:
    document_id: int
    chars: int
    new_chars: tuple[str, ...]  # characters the style's active model's vocabulary lacks
    duplicate: bool


class CorpusService:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], styles: StyleService) -> None:
        self.settings = settings
        self.sessions = sessions
        self.styles = styles  # whose models the text is for, and their vocabularies

    async def add_document(self, *, name: str, raw: bytes, added_by: int | None, style: str = DEFAULT_STYLE) -> Added:
        """Store a corpus document for ``style``'s fine-tunes; raises ``CorpusError`` with a reason for the person,
        ``LookupError`` for a style that does not exist."""
        if len(raw) > self.settings.max_corpus_bytes:
            raise CorpusError(f"{name} is {len(raw):,} bytes; the limit is {self.settings.max_corpus_bytes:,}")
        text = check_corpus_text(raw, name=name)
        version = await self.styles.active_version(style)
        async with self.sessions.begin() as session:  # a duplicate only of the same style's text
            record, created = await repo.add_document(session, name=name, text=text, added_by=added_by, style=style)
        vocab = await self.styles.vocab(version)  # new characters are new to this style's model, not another's
        return Added(record.id, record.chars, tuple(vocab.unknown_chars(text)), not created)

    async def corpus_texts(self) -> dict[int, str]:
        async with self.sessions() as session:
            ids = [d.id for d in await repo.list_documents(session)]
            return await repo.document_texts(session, ids=ids)

    async def trained_document_ids(self, style: str = DEFAULT_STYLE) -> set[int]:
        """The documents the active model (of ``style``) has seen: those of its version and of all its ancestors."""
        async with self.sessions() as session:
            versions = {v.version: v for v in await repo.list_versions(session)}
        seen: set[int] = set()
        version: str | None = await self.styles.active_version(style)
        while version is not None and version in versions:
            seen.update(versions[version].document_ids)
            version = versions[version].parent
        return seen

    async def new_document_ids(self, style: str = DEFAULT_STYLE) -> list[int]:
        """Documents of ``style`` added since its active model was trained (a rollback makes
        its successors' new again)."""
        seen = await self.trained_document_ids(style)
        async with self.sessions() as session:
            styles = await repo.document_styles(session)
            return [d.id for d in await repo.list_documents(session) if d.id not in seen and styles.get(d.id) == style]

    async def describe_corpus(self) -> list[str]:
        async with self.sessions() as session:
            documents = await repo.list_documents(session)
            styles = await repo.document_styles(session)
        state = {True: "in the active model", False: "new"}
        seen: dict[str, set[int]] = {}  # by style
        lines = []
        for d in documents:
            style = styles[d.id]
            if style not in seen:
                try:
                    seen[style] = await self.trained_document_ids(style)
                except LookupError:  # a deleted style's text: nothing trains on it any more
                    seen[style] = set()
            named = "" if style == DEFAULT_STYLE else f", style {style}"
            lines.append(f"#{d.id} {d.name}: {d.chars:,} characters{named}, {state[d.id in seen[style]]}")
        return lines
