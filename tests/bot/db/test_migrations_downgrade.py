"""Downgrades that would lose data refuse, saying what and how to go ahead; those that would not still work.

Below 0007 a style's corpus would become the default style's (and the next nightly fine-tune would train the
default model on it); below 0006, styles, group settings and the style of versions, runs and requests would go.
Both backends: the refusal rolls the whole downgrade back, newer revisions' steps included.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.db import migrate, repository
from bot.db.engine import make_sessionmaker
from tests.helpers.db import SEEDED_CHAT as CHAT
from tests.helpers.db import SEEDED_USER as USER
from tests.helpers.db import new_request, seed
from tests.helpers.migrated import migrated

HEAD = migrate.head_revision()


async def execute(engine: AsyncEngine, *statements: str) -> None:
    """What an operator would run by hand, in one transaction."""
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


def statements_in(message: str) -> list[str]:
    """The statements a refusal tells the operator to run, in its order."""
    found = re.search(r"(?:let them go|delete them) \((.*)\) and downgrade again", message)
    assert found, message
    return found.group(1).split("; ")


def test_a_styles_corpus_is_not_turned_into_the_default_styles(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:
                await seed(session)
                default, _ = await repository.add_document(session, name="a.txt", text="la la", added_by=USER)
                styled, _ = await repository.add_document(session, name="b.txt", text="jay jay", added_by=USER,
                                                          style="jay")

            with pytest.raises(RuntimeError, match="not downgrading below 0007") as refused:
                await migrate.downgrade(engine, "0006")
            message = str(refused.value)
            assert "1 corpus document(s) belong to styles (jay: 1)" in message
            assert "default style's corpus" in message and "Nothing was changed" in message
            assert await migrate.current(engine) == HEAD  # all of it rolled back
            async with sessions() as session:
                assert await repository.document_styles(session) == {default.id: "default", styled.id: "jay"}

            # As the message says: let the style's text go, and the downgrade goes through.
            await execute(engine, *statements_in(message))
            await migrate.downgrade(engine, "0006")
            assert await migrate.current(engine) == "0006"
            await migrate.upgrade(engine)
            await migrate.check(engine)
            async with sessions() as session:
                assert await repository.document_styles(session) == {default.id: "default"}

    asyncio.run(main())


def test_styles_and_group_settings_are_not_dropped(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:
                await seed(session)
                await repository.create_style(session, name="jay", title="Jay", active_version="vjay", created_by=USER)
                await repository.set_chat_style(session, chat_id=CHAT, style="jay", updated_by=USER)
                await repository.set_user_style(session, user_id=USER, style="jay")
                run = await repository.create_run(session, trigger="cli", requested_by=None, parent_version=None,
                                                  document_ids=[], style="jay")
                await repository.record_version(session, version="vjay", parent=None, weights_sha256="0" * 64,
                                                document_ids=[], old_ppl=None, new_ppl=None, metrics={},
                                                run_id=run.id, style="jay")
                await new_request(session, update_id=1, style="jay")

            with pytest.raises(RuntimeError, match="not downgrading below 0006") as refused:
                await migrate.downgrade(engine, "0005")
            message = str(refused.value)
            for lost in ("1 style(s)", "1 group(s)' settings", "1 person(s)' chosen style", "1 model version(s) of",
                         "1 fine-tune run(s) of styles", "1 request(s) written in a style", "(styles: jay)"):
                assert lost in message, (lost, message)
            assert await migrate.current(engine) == HEAD
            async with sessions() as session:
                assert await repository.get_chat_style(session, chat_id=CHAT) == "jay"
                assert [s.name for s in await repository.list_styles(session)] == ["default", "jay"]

            await execute(engine, *statements_in(message))
            await migrate.downgrade(engine, "0005")
            assert await migrate.current(engine) == "0005"
            await migrate.upgrade(engine)
            await migrate.check(engine)
            assert await scalar(engine, "SELECT COUNT(*) FROM requests") == 1  # only what the message named went

    asyncio.run(main())


def test_a_downgrade_that_loses_nothing_still_works(url: str) -> None:
    """An empty database, and one whose rows are all the default style's: down to 0005 and back up."""

    async def main() -> None:
        async with migrated(url) as engine:
            await migrate.downgrade(engine, "0005")
            await migrate.upgrade(engine)
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:
                await seed(session)
                await repository.add_document(session, name="a.txt", text="la la", added_by=USER)
                run = await repository.create_run(session, trigger="cli", requested_by=None, parent_version=None,
                                                  document_ids=[])
                await repository.record_version(session, version="v1", parent=None, weights_sha256="0" * 64,
                                                document_ids=[], old_ppl=None, new_ppl=None, metrics={},
                                                run_id=run.id)
                await new_request(session, update_id=1)
                await repository.set_chat_style(session, chat_id=CHAT, style=None, updated_by=USER)  # reset
                await repository.set_user_style(session, user_id=USER, style=None)
            await migrate.downgrade(engine, "0005")
            assert await migrate.current(engine) == "0005"
            await migrate.upgrade(engine)
            await migrate.check(engine)
            for table in ("corpus_documents", "training_runs", "model_versions", "requests", "user_settings"):
                assert await scalar(engine, f"SELECT COUNT(*) FROM {table}") == 1, table

    asyncio.run(main())


def test_lyricbot_db_downgrade_says_why_it_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the command line: the reason and the revision, status 2, no traceback."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's

    async def prepare() -> None:
        async with migrated(url) as engine, make_sessionmaker(engine).begin() as session:
            await seed(session)
            await repository.add_document(session, name="b.txt", text="jay jay", added_by=USER,
                                          style="jay")

    asyncio.run(prepare())
    capsys.readouterr()
    assert main(["db", "downgrade", "0006"]) == 2
    err = capsys.readouterr().err
    assert "not downgraded" in err and "belong to styles" in err and f"database revision: {HEAD}" in err
    assert "Traceback" not in err
