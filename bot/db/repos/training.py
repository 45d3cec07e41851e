"""Fine-tuning runs from queued to their final status, and the model versions they produce."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import ModelVersion, RunStatus, RunTrigger, TrainingRun, utcnow
from bot.db.repos.common import get_or_insert
from bot.domain import DEFAULT_STYLE

OPEN_RUNS: Final = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    status: RunStatus
    trigger: RunTrigger
    requested_by: int | None
    parent_version: str | None
    candidate_version: str | None
    document_ids: list[int]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: str
    parent: str | None
    weights_sha256: str
    document_ids: list[int]
    old_ppl: float | None
    new_ppl: float | None
    metrics: dict[str, Any] | None
    run_id: int | None
    created_at: datetime
    activated_at: datetime | None
    style: str = DEFAULT_STYLE  # the style whose lineage it belongs to


async def create_run(
    session: AsyncSession,
    *,
    trigger: str,
    requested_by: int | None,
    parent_version: str | None,
    document_ids: list[int],
    style: str = DEFAULT_STYLE,
) -> RunRecord:
    """A new run in status queued. ValueError for an unknown trigger."""
    row = TrainingRun(
        status=RunStatus.QUEUED.value,
        trigger=RunTrigger(trigger).value,
        requested_by=requested_by,
        parent_version=parent_version,
        document_ids=list(document_ids),
        style=style,
    )
    session.add(row)
    await session.flush()
    return _run_record(row)


async def start_run(session: AsyncSession, *, run_id: int) -> None:
    row = await _run_row(session, run_id)
    row.status = RunStatus.RUNNING.value
    row.started_at = utcnow()
    await session.flush()


async def finish_run(
    session: AsyncSession,
    *,
    run_id: int,
    status: str,
    candidate_version: str | None,
    metrics: dict[str, Any] | None,
    error: str | None = None,
) -> None:
    """Close a run with a final status; ValueError for an unknown or unfinished status."""
    final = RunStatus(status)
    if final in OPEN_RUNS:
        raise ValueError(f"{status!r} is not a final run status")
    row = await _run_row(session, run_id)
    row.status = final.value
    row.candidate_version = candidate_version
    row.metrics = _copy_metrics(metrics)
    row.error = error
    row.finished_at = utcnow()
    await session.flush()


async def running_run(session: AsyncSession) -> RunRecord | None:
    """The newest run still queued or running, if any."""
    row = await session.scalar(
        select(TrainingRun)
        .where(TrainingRun.status.in_([s.value for s in OPEN_RUNS]))
        .order_by(TrainingRun.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return None if row is None else _run_record(row)


async def recent_runs(session: AsyncSession, *, limit: int = 10) -> list[RunRecord]:
    """The latest runs, newest first."""
    rows = await session.scalars(
        select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit).execution_options(populate_existing=True)
    )
    return [_run_record(row) for row in rows]


async def interrupt_stale_runs(session: AsyncSession) -> int:
    """Mark every queued or running run as interrupted (at start-up: no process works on them any more)."""
    rows = (
        await session.scalars(
            select(TrainingRun)
            .where(TrainingRun.status.in_([s.value for s in OPEN_RUNS]))
            .execution_options(populate_existing=True)
        )
    ).all()
    now = utcnow()
    for row in rows:
        row.status = RunStatus.INTERRUPTED.value
        row.finished_at = now
    await session.flush()
    return len(rows)


async def record_version(
    session: AsyncSession,
    *,
    version: str,
    parent: str | None,
    weights_sha256: str,
    document_ids: list[int],
    old_ppl: float | None,
    new_ppl: float | None,
    metrics: dict[str, Any] | None,
    run_id: int | None,
    style: str = DEFAULT_STYLE,
) -> VersionRecord:
    """Store a trained checkpoint (not yet active). ``parent`` must be a recorded version: IntegrityError if not."""
    row = ModelVersion(
        version=version,
        parent=parent,
        weights_sha256=weights_sha256,
        document_ids=list(document_ids),
        old_ppl=old_ppl,
        new_ppl=new_ppl,
        metrics=_copy_metrics(metrics),
        run_id=run_id,
        style=style,
    )
    session.add(row)
    await session.flush()
    return _version_record(row)


async def record_root_version(
    session: AsyncSession, *, version: str, weights_sha256: str, metrics: dict[str, Any], style: str
) -> VersionRecord:
    """The version's record, made now as the root of ``style``'s lineage if it has none yet (the shipped base, a
    first model of ``lyricbot train``): no parent, no run. Two replicas recording it at once get the one row."""
    row, _ = await get_or_insert(
        session,
        lambda: session.get(ModelVersion, version, populate_existing=True),
        lambda: ModelVersion(version=version, parent=None, weights_sha256=weights_sha256, document_ids=[],
                             old_ppl=metrics.get("val_ppl"), new_ppl=None, metrics=_copy_metrics(metrics),
                             run_id=None, style=style),
    )
    return _version_record(row)


async def activate_version(session: AsyncSession, *, version: str) -> None:
    """Note that ``version`` is served from now on; LookupError if it was never recorded."""
    row = await session.get(ModelVersion, version)
    if row is None:
        raise LookupError(f"no model version {version}")
    row.activated_at = utcnow()
    await session.flush()


async def list_versions(session: AsyncSession) -> list[VersionRecord]:
    """Every recorded version, newest first."""
    rows = await session.scalars(
        select(ModelVersion)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
        .execution_options(populate_existing=True)
    )
    return [_version_record(row) for row in rows]


async def get_version(session: AsyncSession, *, version: str) -> VersionRecord | None:
    row = await session.get(ModelVersion, version, populate_existing=True)
    return None if row is None else _version_record(row)


async def _run_row(session: AsyncSession, run_id: int) -> TrainingRun:
    row = await session.get(TrainingRun, run_id)
    if row is None:
        raise LookupError(f"no training run {run_id}")
    return row


def _copy_metrics(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """A deep copy, both ways: the row's JSON value must not change with the caller's dict (the ORM would not
    notice an in-place change), and a record must not share its nested lists with the row."""
    return None if metrics is None else copy.deepcopy(metrics)


def _run_record(row: TrainingRun) -> RunRecord:
    return RunRecord(
        id=row.id,
        status=RunStatus(row.status),
        trigger=RunTrigger(row.trigger),
        requested_by=row.requested_by,
        parent_version=row.parent_version,
        candidate_version=row.candidate_version,
        document_ids=list(row.document_ids),
        metrics=_copy_metrics(row.metrics),
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _version_record(row: ModelVersion) -> VersionRecord:
    return VersionRecord(
        version=row.version,
        parent=row.parent,
        weights_sha256=row.weights_sha256,
        document_ids=list(row.document_ids),
        old_ppl=row.old_ppl,
        new_ppl=row.new_ppl,
        metrics=_copy_metrics(row.metrics),
        run_id=row.run_id,
        created_at=row.created_at,
        activated_at=row.activated_at,
        style=row.style,
    )
