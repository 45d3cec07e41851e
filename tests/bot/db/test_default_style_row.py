"""Migration 0012: the default style is a row of ``styles``, and every request, run, version and corpus document
names its style. Both backends; a downgrade refuses while the row serves a version the older bot could not find."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import text

from bot.db import migrate, repository
from bot.db.engine import make_sessionmaker
from bot.domain import DEFAULT_STYLE
from tests.helpers.db import new_request, seed
from tests.helpers.migrated import migrated

NAMED = ("requests", "training_runs", "model_versions", "corpus_documents")


def test_the_upgrade_names_the_default_style_in_every_row(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            await migrate.downgrade(engine, "0011")
            async with make_sessionmaker(engine).begin() as session:  # rows an older bot wrote: style NULL
                await seed(session)
                await session.execute(text("DELETE FROM styles"))
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO corpus_documents (sha256, name, text, chars, created_at) "
                                        "VALUES ('ab', 'a.txt', 'la', 2, CURRENT_TIMESTAMP)"))
                await conn.execute(text("INSERT INTO model_versions (version, weights_sha256, document_ids, "
                                        "created_at) VALUES ('v1', '00', '[]', CURRENT_TIMESTAMP)"))
            async with make_sessionmaker(engine).begin() as session:
                await new_request(session, update_id=1)  # (the repository writes "default": set it back by hand)
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE requests SET style = NULL"))
            await migrate.upgrade(engine)
            await migrate.check(engine)  # the models and the migrations agree: NOT NULL, no partial index
            async with engine.connect() as conn:
                for table in NAMED:
                    styles = (await conn.execute(text(f"SELECT DISTINCT style FROM {table}"))).scalars().all()
                    assert styles in ([], [DEFAULT_STYLE]), (table, styles)
                row = (await conn.execute(text("SELECT name, active_version, deleted_at FROM styles"))).all()
            assert [tuple(r) for r in row] == [(DEFAULT_STYLE, None, None)]  # served once the bot starts
            async with make_sessionmaker(engine)() as session:
                assert await repository.document_styles(session) == {1: DEFAULT_STYLE}

    asyncio.run(main())


def test_the_downgrade_refuses_while_the_default_serves_a_version(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            async with make_sessionmaker(engine).begin() as session:
                await repository.record_root_version(session, version="vbase", weights_sha256="0" * 64, metrics={},
                                                     style=DEFAULT_STYLE)
                await repository.point_style(session, name=DEFAULT_STYLE, version="vbase", expected_current=None)
            with pytest.raises(RuntimeError, match="not downgrading below 0012") as refused:
                await migrate.downgrade(engine, "0011")
            message = str(refused.value)
            assert "serves vbase" in message and "MODEL_DIR/ACTIVE" in message and "Nothing was changed" in message
            assert await migrate.current(engine) == migrate.head_revision()
            said = re.search(r"clear the row's pointer \((UPDATE [^)]*)\)", message)
            assert said, message
            async with engine.begin() as conn:  # as the refusal says (the ACTIVE file is the operator's part)
                await conn.execute(text(said.group(1)))
            await migrate.downgrade(engine, "0011")
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT COUNT(*) FROM styles"))).scalar() == 0
                assert (await conn.execute(text("SELECT style FROM model_versions"))).scalars().all() == [None]
            await migrate.upgrade(engine)
            await migrate.check(engine)

    asyncio.run(main())
