"""MODEL_DIR after fine-tunes (issue 18, item 9): finished runs' work directories, unfinished candidates and all but
the KEEP_REJECTED newest rejected candidates are deleted; the served versions and their lineages never are."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.db import repository
from bot.db.repos.training import VersionRecord
from bot.serving.retention import prune_model_dir
from charrnn.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.bot import bot_running, trained_version
from tests.helpers.training import FAST, NEW_SONG, copy_store, run_instead, training

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def version(name: str, parent: str | None, run_id: int | None, minute: int, activated: bool = False) -> VersionRecord:
    created = T0 + timedelta(minutes=minute)
    return VersionRecord(version=name, parent=parent, weights_sha256="ab" * 32, document_ids=[], old_ppl=None,
                         new_ppl=None, metrics=None, run_id=run_id, created_at=created,
                         activated_at=created if activated else None)


def test_prune_keeps_served_lineages_and_the_newest_rejected(tmp_path: Path) -> None:
    versions = [
        version("v0", None, None, 0, activated=True),  # the first model: no run made it
        version("v1-r1", "v0", 1, 1, activated=True),  # promoted, then rolled back from
        version("v2-r2", "v0", 2, 2),  # rejected, but a style was made to serve it: served
        version("v3-r3", "v2-r2", 3, 3),  # rejected, but the parent of what the default serves: rollback needs it
        version("v4-r4", "v3-r3", 4, 4, activated=True),  # active
        version("v5-r5", "v0", 5, 5),  # rejected, old
        version("v6-r6", "v0", 6, 6),  # rejected, old
        version("v7-r7", "v0", 7, 7),  # rejected, the newest: kept
    ]
    for v in versions:
        (tmp_path / v.version).mkdir()
    for leftover in ["runs/run-5", "runs/run-8", "v8-r8.partial", "v9-r9.partial", "runs/v20261201-000000"]:
        (tmp_path / leftover).mkdir(parents=True)
    removed = prune_model_dir(tmp_path, versions=versions, served=["v4-r4", "v2-r2"], open_runs={9}, keep_rejected=1)
    assert sorted(p.name for p in removed) == ["run-5", "run-8", "v5-r5", "v6-r6", "v8-r8.partial"]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"v0", "v1-r1", "v2-r2", "v3-r3", "v4-r4", "v7-r7", "v9-r9.partial", "runs"}
    # A run still open keeps its files; a `lyricbot train` work directory is not a fine-tune's, so not ours.
    assert {p.name for p in (tmp_path / "runs").iterdir()} == {"v20261201-000000"}
    # KEEP_REJECTED=0 deletes every rejected candidate, still none that is served or an ancestor of one.
    prune_model_dir(tmp_path, versions=versions, served=["v4-r4", "v2-r2"], open_runs=set(), keep_rejected=0)
    assert {p.name for p in tmp_path.iterdir()} == {"v0", "v1-r1", "v2-r2", "v3-r3", "v4-r4", "runs"}


def test_after_each_run_only_the_newest_rejected_candidates_stay(tmp_path: Path, trained_store: tuple[Path, Path]
                                                                 ) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        model_dir = store[0]
        first = trained_version(model_dir)
        async with bot_running(tmp_path, store, **FAST, keep_rejected=1) as h:
            service = training(h)
            outcome = {"old_ppl_after": 8.0}

            async def candidate(spec_path: Path) -> int | None:
                """Instead of training: the parent's weights as the candidate, with the metrics the test sets."""
                spec = json.loads(spec_path.read_text())
                ckpt = load_checkpoint(spec["parent_dir"])
                save_checkpoint(spec["out_dir"], ckpt.model, ckpt.vocab)
                metrics = {"old_ppl_before": 8.0, "new_ppl_before": 50.0, "new_ppl_after": 20.0, "seconds": 1.0,
                           **outcome}
                result = {"metrics": metrics, "history": [], "added_chars": [],
                          "weights_sha256": load_checkpoint(spec["out_dir"]).weights_sha256}
                Path(spec["result_path"]).write_text(json.dumps(result))
                return 0

            async def run(song: str) -> str:
                await service.corpus.add_document(name="song.txt", raw=song.encode(), added_by=None)
                report = await service.retrain(trigger="cli")
                assert not isinstance(report, str)
                return str(report.metrics["version"])

            run_instead(service, candidate)
            promoted = await run(NEW_SONG)
            assert h.served() == promoted
            outcome["old_ppl_after"] = 900.0  # from now on, candidates that forgot the old songs: rejected
            rejected = [await run(NEW_SONG + "第一首\n")]
            async with service.sessions.begin() as session:  # a style made to serve the oldest rejected one
                await repository.create_style(session, name="kept", title="Kept", active_version=rejected[0],
                                              created_by=None)
            rejected += [await run(NEW_SONG + f"第{i}首\n") for i in "二三"]
            (model_dir / "v20261201-000000-r99.partial").mkdir()  # a trainer killed half-way through writing
            newest = await run(NEW_SONG + "第四首\n")
            statuses = h.rows("SELECT status FROM training_runs ORDER BY id")
        assert statuses == [("promoted",)] + [("rejected",)] * 4
        versions = {p.name for p in model_dir.iterdir() if (p / "meta.json").is_file()}
        # The first model (the active one's parent: rollback), the active one, the style's, the newest rejected.
        assert versions == {first, promoted, rejected[0], newest}, versions
        assert not list((model_dir / "runs").glob("run-*")), list((model_dir / "runs").iterdir())
        assert not list(model_dir.glob("*.partial"))

    asyncio.run(scenario())
