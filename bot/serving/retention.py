"""What stays in ``MODEL_DIR`` once a fine-tune is over: the served models and their lineages, not the leftovers.

Every run leaves a work directory (its spec and result) and a candidate checkpoint, promoted or not, and a
killed trainer leaves a half-written ``.partial`` candidate. Nothing removed them, so the directory grew by a
model's size every night. Now, after each run (under the fine-tune lock, so no other run is writing):

- finished runs' work directories and unfinished candidates go;
- rejected candidates (made by a run, never served) go, all but the ``KEEP_REJECTED`` newest (kept to inspect);
- never deleted, whatever the setting: every version a style serves (the default style's too), deleted styles'
  included (a style can be brought back), and all their ancestors, which ``/rollback`` walks up to.

The database keeps every version's row and metrics; only the files go.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.db.repos.training import VersionRecord

log = logging.getLogger(__name__)
RUN_WORK = re.compile(r"run-(\d+)")  # MODEL_DIR/runs/run-<id>: a fine-tune's spec and result
PARTIAL = re.compile(r".+-r(\d+)\.partial")  # MODEL_DIR/<version>.partial: a candidate its trainer did not finish


def protected_versions(versions: Sequence[VersionRecord], served: Iterable[str]) -> set[str]:
    """The served versions and every ancestor of theirs."""
    parents = {v.version: v.parent for v in versions}
    keep: set[str] = set()
    for version in served:
        current: str | None = version
        while current is not None and current not in keep:
            keep.add(current)
            current = parents.get(current)
    return keep


def rejected_to_delete(versions: Sequence[VersionRecord], protected: set[str], keep: int) -> list[str]:
    """Candidates a run made and nobody ever served, beyond the ``keep`` newest, none of them ``protected``."""
    rejected = sorted((v for v in versions if v.run_id is not None and v.activated_at is None),
                      key=lambda v: (v.created_at, v.run_id or 0), reverse=True)
    return [v.version for v in rejected[keep:] if v.version not in protected]


def prune_model_dir(
    model_dir: Path, *, versions: Sequence[VersionRecord], served: Iterable[str], open_runs: set[int],
    keep_rejected: int,
) -> list[Path]:
    """Delete finished runs' leftovers and old rejected candidates; returns what was deleted."""
    root = model_dir.resolve()
    doomed = [root / name for name in rejected_to_delete(versions, protected_versions(versions, served),
                                                           keep_rejected)]
    doomed += [path for path in root.glob("runs/run-*") if _finished(RUN_WORK, path, open_runs)]
    doomed += [path for path in root.glob("*.partial") if _finished(PARTIAL, path, open_runs)]
    removed = []
    for path in doomed:
        # A version name is a directory name (``VERSION_NAME``); never follow one out of MODEL_DIR.
        if path.is_dir() and not path.is_symlink() and root in path.resolve().parents:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def _finished(pattern: re.Pattern[str], path: Path, open_runs: set[int]) -> bool:
    match = pattern.fullmatch(path.name)
    return match is not None and int(match.group(1)) not in open_runs


async def prune(
    sessions: async_sessionmaker[AsyncSession], model_dir: Path, keep_rejected: int
) -> list[Path]:
    """``prune_model_dir`` with what the database knows: the versions, what each style serves, the open run."""
    async with sessions() as session:
        versions = await repo.list_versions(session)
        styles = await repo.list_styles(session, include_deleted=True)
        running = await repo.running_run(session)
    served = [s.active_version for s in styles if s.active_version is not None]
    removed = await asyncio.to_thread(
        prune_model_dir, model_dir, versions=versions, served=served,
        open_runs={running.id} if running is not None else set(), keep_rejected=keep_rejected,
    )
    if removed:
        log.info("removed from %s: %s", model_dir, ", ".join(p.name for p in removed))
    return removed
