"""Corpus duplicates are per style (issue 18, item 19c): the same text may train two styles, never one twice.

Before, ``corpus_documents.sha256`` was unique on its own: text a style had was refused for the default style
(and for any other style) as "already in the corpus". Both backends; the database enforces it too.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import migrate, repository
from bot.db.engine import make_sessionmaker
from bot.db.models import CorpusDocument
from tests.helpers.bot import bot_running, trained_version
from tests.helpers.db import seed
from tests.helpers.migrated import migrated, with_session
from tests.helpers.training import FAST, NEW_SONG, copy_store, training

SONG = "窗外的麻雀\n在电线杆上多嘴\n"


def test_the_same_text_once_per_style(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        await seed(session)
        default, created = await repository.add_document(session, name="a.txt", text=SONG, added_by=None)
        assert created
        jay, created = await repository.add_document(session, name="b.txt", text=SONG, added_by=None, style="jay")
        assert created and jay.id != default.id
        ci, created = await repository.add_document(session, name="c.txt", text=SONG, added_by=None, style="ci")
        assert created and ci.id not in (default.id, jay.id)
        again, created = await repository.add_document(session, name="d.txt", text=SONG, added_by=None, style="jay")
        assert not created and again == jay
        again, created = await repository.add_document(session, name="e.txt", text=SONG, added_by=None)
        assert not created and again == default
        assert await repository.document_styles(session) == {default.id: "default", jay.id: "jay", ci.id: "ci"}

    with_session(url, fn)


@pytest.mark.parametrize("style", ["default", "jay"])
def test_the_database_refuses_a_second_copy_in_one_style(url: str, style: str) -> None:
    """Not only the repository's check: the database's constraint, the default style's text included."""

    async def main() -> None:
        async with migrated(url) as engine:
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:
                await repository.add_document(session, name="a.txt", text=SONG, added_by=None, style=style)
            with pytest.raises(IntegrityError):
                async with sessions.begin() as session:
                    session.add(CorpusDocument(sha256=(await repository.list_documents(session))[0].sha256,
                                               name="b.txt", text=SONG, chars=len(SONG), style=style))

    asyncio.run(main())


def test_upgrade_keeps_the_corpus_and_a_downgrade_refuses_shared_text(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            await migrate.downgrade(engine, "0008")
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:  # a document stored before 0009
                before, _ = await repository.add_document(session, name="a.txt", text=SONG, added_by=None)
            await migrate.upgrade(engine)
            await migrate.check(engine)
            async with sessions.begin() as session:
                _, created = await repository.add_document(session, name="b.txt", text="jay", added_by=None,
                                                           style="jay")
                _, again = await repository.add_document(session, name="c.txt", text="jay", added_by=None)
                assert created and again  # the same text for a style, then for the default style
                assert (await repository.list_documents(session))[0] == before
            with pytest.raises(RuntimeError, match="not downgrading below 0009") as refused:
                await migrate.downgrade(engine, "0008")
            assert await migrate.current(engine) == migrate.head_revision()  # nothing changed
            said = re.search(r"\((DELETE .*)\) and downgrade again", str(refused.value))
            assert said, refused.value
            async with engine.begin() as conn:  # as the refusal says
                await conn.execute(text(said.group(1)))
            await migrate.downgrade(engine, "0008")
            await migrate.upgrade(engine)
            await migrate.check(engine)

    asyncio.run(main())


def test_text_a_style_has_can_be_added_to_the_default_style(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """The service, as /addcorpus and `lyricbot corpus add` use it."""

    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        async with bot_running(tmp_path, store, **FAST) as h:
            service = training(h).corpus
            async with service.sessions.begin() as session:
                await repository.create_style(session, name="jay", title="Jay", active_version=first, created_by=None)
            styled = await service.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None, style="jay")
            default = await service.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            assert not styled.duplicate and not default.duplicate and styled.document_id != default.document_id
            again = await service.add_document(name="copy.txt", raw=NEW_SONG.encode(), added_by=None, style="jay")
            assert again.duplicate and again.document_id == styled.document_id
            assert await service.new_document_ids() == [default.document_id]
            assert await service.new_document_ids("jay") == [styled.document_id]

    asyncio.run(scenario())
