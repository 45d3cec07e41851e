"""Training text added after the first model, stored once per content and style whatever name it came under."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CorpusDocument
from bot.db.repos.common import get_or_insert, storable
from bot.domain import DEFAULT_STYLE

DOCUMENT_NAME_MAX: Final = 255  # the column's length; longer names are cut


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: int
    sha256: str
    name: str
    chars: int
    added_by: int | None  # None: added from the command line
    created_at: datetime


async def add_document(
    session: AsyncSession, *, name: str, text: str, added_by: int | None, style: str = DEFAULT_STYLE
) -> tuple[DocumentRecord, bool]:
    """Store a corpus document for ``style``; ``(existing, False)`` if the same text was
    stored for that style before, under any name. Another style's copy does not count: each trains its own."""
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row, created = await get_or_insert(
        session,
        lambda: _document_by_sha256(session, sha256, style),
        lambda: CorpusDocument(
            sha256=sha256, name=storable(name[:DOCUMENT_NAME_MAX]), text=text, chars=len(text), added_by=added_by,
            style=style,
        ),
    )
    return _document_record(row), created


async def list_documents(session: AsyncSession) -> list[DocumentRecord]:
    """Every corpus document, oldest first, without its text."""
    result = await session.execute(
        select(
            CorpusDocument.id,
            CorpusDocument.sha256,
            CorpusDocument.name,
            CorpusDocument.chars,
            CorpusDocument.added_by,
            CorpusDocument.created_at,
        ).order_by(CorpusDocument.id)
    )
    return [
        DocumentRecord(id=id_, sha256=sha, name=name, chars=chars, added_by=by, created_at=created)
        for id_, sha, name, chars, by, created in result
    ]


async def document_texts(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, str]:
    """The texts of the given documents by id; LookupError if any is missing."""
    wanted = set(ids)
    if not wanted:
        return {}
    result = await session.execute(
        select(CorpusDocument.id, CorpusDocument.text).where(CorpusDocument.id.in_(sorted(wanted)))
    )
    texts = {id_: text for id_, text in result}
    missing = wanted - texts.keys()
    if missing:
        raise LookupError(f"no corpus documents {sorted(missing)}")
    return texts


async def _document_by_sha256(session: AsyncSession, sha256: str, style: str) -> CorpusDocument | None:
    return await session.scalar(
        select(CorpusDocument).where(CorpusDocument.sha256 == sha256, CorpusDocument.style == style)
    )


def _document_record(row: CorpusDocument) -> DocumentRecord:
    return DocumentRecord(
        id=row.id,
        sha256=row.sha256,
        name=row.name,
        chars=row.chars,
        added_by=row.added_by,
        created_at=row.created_at,
    )


async def document_styles(session: AsyncSession) -> dict[int, str]:
    """Every corpus document's style, by id."""
    return {id_: style for id_, style in await session.execute(select(CorpusDocument.id, CorpusDocument.style))}
