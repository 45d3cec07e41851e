"""Migration 0002 and the corpus/training repository functions, on a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC

import pytest
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db import migrate, repository
from bot.db.engine import make_sessionmaker
from bot.db.models import CorpusDocument, ModelVersion, RunStatus, RunTrigger, TrainingRun, User
from bot.db.repos import corpus as corpus_repo
from tests.helpers.db import seed
from tests.helpers.migrated import migrated, with_session

TABLES_0001 = {"users", "chats", "requests", "ratings", "user_settings"}
TABLES_0002 = {"corpus_documents", "training_runs", "model_versions"}
USER, CHAT = 1001, -1001234567890


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))




async def answered(session: AsyncSession, update_id: int, model_version: str | None) -> repository.RequestRecord:
    request, created = await repository.create_request(
        session, update_id=update_id, user_id=USER, chat_id=CHAT, message_id=1, prefix="la", temperature=1, length=9
    )
    assert created
    await repository.complete_request(
        session, request_id=request.id, output="song", candidates=[], model_version=model_version, latency_ms=3
    )
    assert await repository.mark_sending(session, request_id=request.id)
    await repository.mark_answered(session, request_id=request.id, answer_message_id=update_id + 100)
    return request


async def version(
    session: AsyncSession, name: str, parent: str | None, documents: list[int], run_id: int | None = None
) -> repository.VersionRecord:
    return await repository.record_version(
        session,
        version=name,
        parent=parent,
        weights_sha256="ab" * 32,
        document_ids=documents,
        old_ppl=None,
        new_ppl=None,
        metrics=None,
        run_id=run_id,
    )


# --- migrations --------------------------------------------------------------------------------------


def test_upgrade_head_has_the_training_tables_without_drift(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            assert await migrate.current(engine) == migrate.head_revision()
            assert await table_names(engine) >= TABLES_0001 | TABLES_0002
            await migrate.check(engine)  # raises on drift
            async with engine.connect() as conn:
                indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("training_runs"))
                uniques = await conn.run_sync(lambda c: inspect(c).get_unique_constraints("corpus_documents"))
                corpus_indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("corpus_documents"))
            assert [(i["name"], i["column_names"]) for i in indexes] == [("ix_training_runs_status", ["status"])]
            # Text is unique per style (issue 18): one constraint for every style, the default's a named row (0012).
            assert [(u["name"], u["column_names"]) for u in uniques] == [
                ("uq_corpus_documents_sha256_style", ["sha256", "style"])
            ]
            assert [i for i in corpus_indexes if "duplicates_constraint" not in i] == []

    asyncio.run(main())


def test_downgrade_to_0001_and_upgrade_again(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            async with make_sessionmaker(engine).begin() as session:
                await seed(session)
                doc, _ = await repository.add_document(session, name="a.txt", text="la la", added_by=USER)
                run = await repository.create_run(
                    session, trigger="cli", requested_by=None, parent_version=None, document_ids=[doc.id]
                )
                await version(session, "v1", None, [doc.id], run_id=run.id)
            await migrate.downgrade(engine, "0001")
            assert await migrate.current(engine) == "0001"
            assert await table_names(engine) == TABLES_0001 | {"alembic_version"}
            await migrate.upgrade(engine)
            assert await table_names(engine) >= TABLES_0002
            await migrate.check(engine)
            async with make_sessionmaker(engine)() as session:
                assert await repository.list_documents(session) == []
                assert await session.get(User, USER) is not None  # 0001 data survives the round trip

    asyncio.run(main())


# --- corpus ------------------------------------------------------------------------------------------


def test_add_document_detects_duplicates(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        await seed(session)
        text = "窗外的麻雀\n在电线杆上多嘴\n"
        first, created = await repository.add_document(session, name="song.txt", text=text, added_by=USER)
        assert created and first.chars == len(text) and first.added_by == USER
        assert first.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert first.created_at.tzinfo is UTC
        again, created = await repository.add_document(session, name="message", text=text, added_by=None)
        assert not created and again == first  # same text under another name: the stored one
        cli, created = await repository.add_document(session, name="x" * 300, text="other", added_by=None)
        assert created and cli.added_by is None and cli.name == "x" * 255
        assert await repository.list_documents(session) == [first, cli]
        assert await repository.document_texts(session, ids=[cli.id, first.id]) == {first.id: text, cli.id: "other"}
        assert await repository.document_texts(session, ids=[]) == {}
        with pytest.raises(LookupError):
            await repository.document_texts(session, ids=[first.id, 999])
        with pytest.raises(IntegrityError):  # an unknown person is not mistaken for a duplicate
            await repository.add_document(session, name="m", text="new text", added_by=4242)
        assert await session.scalar(select(func.count()).select_from(CorpusDocument)) == 2

    with_session(url, fn)


def test_add_document_resolves_a_lost_race(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = corpus_repo._document_by_sha256
    calls = 0

    async def miss_first_time(session: AsyncSession, sha256: str, style: str | None) -> CorpusDocument | None:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real(session, sha256, style)

    async def fn(session: AsyncSession) -> None:
        first, _ = await repository.add_document(session, name="a", text="same", added_by=None)
        monkeypatch.setattr(corpus_repo, "_document_by_sha256", miss_first_time)
        again, created = await repository.add_document(session, name="b", text="same", added_by=None)
        assert calls == 2 and not created and again == first
        await repository.add_document(session, name="c", text="different", added_by=None)  # still usable
        assert len(await repository.list_documents(session)) == 2

    with_session(url, fn)


# --- runs --------------------------------------------------------------------------------------------


def test_run_lifecycle_and_interrupt_stale_runs(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        assert await repository.running_run(session) is None
        run = await repository.create_run(
            session, trigger="admin", requested_by=USER, parent_version="v0", document_ids=[3, 1]
        )
        assert run.status is RunStatus.QUEUED and run.trigger is RunTrigger.ADMIN
        assert (run.requested_by, run.parent_version, run.document_ids, run.metrics) == (USER, "v0", [3, 1], None)
        assert run.started_at is None and run.finished_at is None and run.candidate_version is None
        assert await repository.running_run(session) == run

        await repository.start_run(session, run_id=run.id)
        running = await repository.running_run(session)
        assert running is not None and running.status is RunStatus.RUNNING and running.started_at is not None

        metrics = {"old_ppl_after": 4.5, "new_ppl_after": 3.25, "version": "v1", "note": "二"}
        await repository.finish_run(session, run_id=run.id, status="promoted", candidate_version="v1", metrics=metrics)
        assert await repository.running_run(session) is None
        (done,) = await repository.recent_runs(session)
        assert done.status is RunStatus.PROMOTED and done.metrics == metrics and done.candidate_version == "v1"
        assert done.error is None and done.started_at is not None and done.finished_at is not None
        assert done.started_at <= done.finished_at

        failed = await repository.create_run(
            session, trigger="schedule", requested_by=None, parent_version="v1", document_ids=[]
        )
        await repository.finish_run(
            session, run_id=failed.id, status="failed", candidate_version=None, metrics=None, error="boom"
        )
        queued = await repository.create_run(
            session, trigger="cli", requested_by=None, parent_version=None, document_ids=[5]
        )
        started = await repository.create_run(
            session, trigger="cli", requested_by=None, parent_version=None, document_ids=[6]
        )
        await repository.start_run(session, run_id=started.id)
        newest = await repository.running_run(session)
        assert newest is not None and newest.id == started.id

        assert [r.id for r in await repository.recent_runs(session)] == [started.id, queued.id, failed.id, run.id]
        assert [r.id for r in await repository.recent_runs(session, limit=2)] == [started.id, queued.id]

        assert await repository.interrupt_stale_runs(session) == 2
        assert await repository.interrupt_stale_runs(session) == 0
        assert await repository.running_run(session) is None
        statuses = {r.id: r.status for r in await repository.recent_runs(session)}
        assert statuses == {
            started.id: RunStatus.INTERRUPTED,
            queued.id: RunStatus.INTERRUPTED,
            failed.id: RunStatus.FAILED,
            run.id: RunStatus.PROMOTED,
        }
        assert all(r.finished_at is not None for r in await repository.recent_runs(session))

        with pytest.raises(LookupError):
            await repository.start_run(session, run_id=999)
        with pytest.raises(LookupError):
            await repository.finish_run(session, run_id=999, status="failed", candidate_version=None, metrics=None)
        for bad in ("done", "running"):  # unknown, and not a final status
            with pytest.raises(ValueError):
                await repository.finish_run(session, run_id=run.id, status=bad, candidate_version=None, metrics=None)
        with pytest.raises(ValueError):
            await repository.create_run(
                session, trigger="cron", requested_by=None, parent_version=None, document_ids=[]
            )

    with_session(url, fn)


def test_run_status_check_constraint(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        run = await repository.create_run(
            session, trigger="cli", requested_by=None, parent_version=None, document_ids=[]
        )
        row = await session.get(TrainingRun, run.id)
        assert row is not None
        row.status = "bogus"
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.flush()

    with_session(url, fn)


# --- versions ----------------------------------------------------------------------------------------


def test_versions_record_activate_list_and_feedback(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        await seed(session, user_id=USER)
        await seed(session, user_id=2)
        run = await repository.create_run(
            session, trigger="admin", requested_by=USER, parent_version=None, document_ids=[1]
        )
        v1 = await repository.record_version(
            session,
            version="v20261123-101500",
            parent=None,
            weights_sha256="0" * 64,
            document_ids=[1, 2],
            old_ppl=5.5,
            new_ppl=7.25,
            metrics={"added_chars": 3, "history": [1.0, 0.5]},
            run_id=run.id,
        )
        assert (v1.parent, v1.document_ids, v1.old_ppl, v1.new_ppl, v1.run_id) == (None, [1, 2], 5.5, 7.25, run.id)
        assert v1.metrics == {"added_chars": 3, "history": [1.0, 0.5]}
        assert v1.activated_at is None and v1.created_at.tzinfo is UTC
        v2 = await version(session, "v20261124-101500", v1.version, [3])
        assert v2.parent == v1.version and v2.metrics is None and v2.run_id is None

        assert [v.version for v in await repository.list_versions(session)] == [v2.version, v1.version]
        assert await repository.get_version(session, version=v1.version) == v1
        assert await repository.get_version(session, version="nope") is None

        await repository.activate_version(session, version=v2.version)
        active = await repository.get_version(session, version=v2.version)
        assert active is not None and active.activated_at is not None and active.activated_at.tzinfo is UTC
        with pytest.raises(LookupError):
            await repository.activate_version(session, version="nope")
        with pytest.raises(IntegrityError):  # the same version twice
            async with session.begin_nested():
                await version(session, v1.version, None, [])

        # Two requests by v1 (ratings 5 and 3, then 4), one unrated by v2, one by the first model, one without.
        a, b = await answered(session, 1, v1.version), await answered(session, 2, v1.version)
        await answered(session, 3, v2.version)
        first = await answered(session, 4, "v0")
        await answered(session, 5, None)
        await repository.rate(session, request_id=a.id, user_id=USER, stars=5)
        await repository.rate(session, request_id=a.id, user_id=2, stars=3)
        await repository.rate(session, request_id=b.id, user_id=2, stars=4)
        await repository.rate(session, request_id=first.id, user_id=2, stars=2)
        assert await repository.version_feedback(session) == {
            v1.version: (4.0, 2),
            v2.version: (None, 1),
            "v0": (2.0, 1),
        }

    with_session(url, fn)


def test_version_parent_restrict(url: str) -> None:
    async def main() -> None:
        async with migrated(url) as engine:
            sessions = make_sessionmaker(engine)
            async with sessions.begin() as session:
                run = await repository.create_run(
                    session, trigger="cli", requested_by=None, parent_version=None, document_ids=[]
                )
                await version(session, "v1", None, [], run_id=run.id)
                await version(session, "v2", "v1", [])
            async with sessions() as session:
                with pytest.raises(IntegrityError):  # v2 was trained from v1
                    await session.execute(delete(ModelVersion).where(ModelVersion.version == "v1"))
                await session.rollback()
                with pytest.raises(IntegrityError):  # v1 names its run
                    await session.execute(delete(TrainingRun).where(TrainingRun.id == run.id))
                await session.rollback()
                with pytest.raises(IntegrityError):  # an unknown parent
                    await version(session, "v3", "missing", [])
                await session.rollback()
                await session.execute(delete(ModelVersion).where(ModelVersion.version == "v2"))
                await session.execute(delete(ModelVersion).where(ModelVersion.version == "v1"))  # no children now
                await session.commit()
                assert await repository.list_versions(session) == []

    asyncio.run(main())
