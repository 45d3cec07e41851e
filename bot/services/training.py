"""Fine-tuning runs, model versions and rollback: how the bot keeps learning safely.

A run happens only when corpus text was added since the active model was trained. It trains in a
spawned child process or on a Celery ``training`` queue (``finetune_runner``; the bot keeps answering
at full speed), and the candidate is promoted only if
the gate in ``finetune_job.gate`` passes; promotion flips the ``ACTIVE`` pointer and hot-swaps the
model in the generation worker between steps. Every run, promoted or not, is recorded with its
metrics; a crash leaves the run ``interrupted`` and the served model untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.ops.instance import Steady
from bot.services.corpus import CorpusService
from bot.services.quality import CopyGuard
from bot.services.run_reports import RunReport, format_report, loss_chart
from bot.serving import retention
from bot.serving.finetune_job import FinetuneSpec, gate, split_document
from bot.serving.finetune_runner import FinetuneRunner, ProcessRunner
from bot.serving.generation import GenerationBackend
from bot.serving.model_store import VERSION_NAME, ActiveChanged, ModelStore, style_corpus_path, version_line
from bot.settings import Settings
from charrnn.checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)
Notify = Callable[[str, bytes | None], Awaitable[None]]


class Hold(Protocol):
    """What ``exclusive`` yields: truthy while this process holds the fine-tune lock. ``confirm`` asks again now:
    a PostgreSQL lock ends with its connection (``bot.ops.instance.AdvisoryLock``)."""

    def __bool__(self) -> bool: ...

    async def confirm(self) -> bool: ...

    async def held_throughout(self) -> bool: ...


Exclusive = Callable[[], contextlib.AbstractAsyncContextManager[Hold]]


class TrainingService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        store: ModelStore,
        backend: GenerationBackend | None,
        notify: Notify | None = None,
        guard: CopyGuard | None = None,
        exclusive: Exclusive | None = None,
        runner: FinetuneRunner | None = None,
    ) -> None:
        self.guard = guard
        # Across processes (webhook replicas, the CLI): yields whether this one may run; see FinetuneLock.
        self.exclusive: Exclusive = exclusive or (lambda: contextlib.nullcontext(Steady(True)))
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.backend = backend  # None from the CLI: a running bot follows ACTIVE itself
        self.runner: FinetuneRunner = runner or ProcessRunner()
        self.notify = notify
        self._lock = asyncio.Lock()
        self._activation = asyncio.Lock()  # pointer flip and hot swap happen together, one at a time
        self._runs: set[asyncio.Task[Any]] = set()  # retrain() calls in progress, for shutdown()
        self.corpus = CorpusService(settings, sessions, store, backend)  # what the runs train on

    def busy(self) -> bool:
        return self._lock.locked()

    async def describe_runs(self, limit: int = 10) -> list[str]:
        async with self.sessions() as session:
            runs = await repo.recent_runs(session, limit=limit)
        lines = []
        for r in runs:
            took = f", {(r.finished_at - r.started_at).total_seconds():.0f} s" if r.finished_at and r.started_at else ""
            m = r.metrics or {}
            ppl = (f", old {m['old_ppl_after']:.1f} new {m['new_ppl_after']:.1f}"
                   if m.get("old_ppl_after") is not None and m.get("new_ppl_after") is not None else "")
            lines.append(f"run {r.id} ({r.trigger}): {r.status}{took}{ppl}" + (f" - {r.error}" if r.error else ""))
        return lines

    async def describe_versions(self) -> list[str]:
        active = self.store.active_version()
        async with self.sessions() as session:
            # The default style's lineage only: other styles list theirs with /models <style>.
            versions = [v for v in await repo.list_versions(session) if v.style is None]
            feedback = await repo.version_feedback(session)
        lines = [version_line(v, feedback, active) for v in versions]
        if active and all(v.version != active for v in versions):
            _, count = feedback.get(active, (None, 0))
            lines.insert(0, f"{active} (active, first model): {count} requests")
        return lines

    async def interrupt_stale(self) -> int:
        """Mark runs a crash left ``running`` as interrupted; none while another bot on this database holds
        the fine-tune lock, since its run is alive (webhook replicas start while another one trains)."""
        async with self.exclusive() as held:
            if not held:
                return 0
            async with self.sessions.begin() as session:
                return await repo.interrupt_stale_runs(session)

    # --- runs ------------------------------------------------------------------------------------

    def start_retrain(
        self, *, trigger: str, requested_by: int | None = None, style: str | None = None
    ) -> asyncio.Task[RunReport | str]:
        """``retrain`` in the background. Not an ``Application.create_task``: PTB's stop() would wait for
        a whole run before our shutdown hook could end it; ``shutdown`` ends it instead."""
        return asyncio.create_task(self.retrain(trigger=trigger, requested_by=requested_by, style=style),
                                   name="retrain")

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop a running fine-tune now: kill its process; the run records itself as interrupted."""
        if self._lock.locked():
            log.warning("shutting down: interrupting the running fine-tune")
            self.runner.interrupt()
        runs = [task for task in self._runs if not task.done() and task is not asyncio.current_task()]
        if runs:
            _, late = await asyncio.wait(runs, timeout=timeout)
            for task in late:
                task.cancel()

    async def retrain(
        self, *, trigger: str, requested_by: int | None = None, style: str | None = None
    ) -> RunReport | str:
        """Run one fine-tuning of ``style`` (None: the default style) now. Returns the report, or a reason it did
        not start. One run at a time, whatever the style: they share the machine and the fine-tune lock."""
        if self._lock.locked():
            return "running"
        task = asyncio.current_task()
        if task is not None:
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
        async with self._lock, self.exclusive() as held:
            if not held:  # another replica on this database is running one now
                log.info("a fine-tune is running in another bot on this database; not starting one")
                return "running"
            documents = await self.corpus.new_document_ids(style)
            if not documents:
                return "nothing_new"
            parent = self.store.active_version() if style is None else await self.corpus.style_parent(style)
            async with self.sessions.begin() as session:
                run = await repo.create_run(session, trigger=trigger, requested_by=requested_by,
                                            parent_version=parent, document_ids=documents, style=style)
                await repo.start_run(session, run_id=run.id)
            try:
                report = await self._run(run.id, parent, documents, style, held)
            except asyncio.CancelledError:
                async with self.sessions.begin() as session:
                    await repo.finish_run(session, run_id=run.id, status="interrupted", candidate_version=None,
                                          metrics={}, error="cancelled at shutdown")
                raise
            except Exception as exc:  # a bug here must not take the bot down; the run says what happened
                log.exception("training run %s failed", run.id)
                report = RunReport(run.id, "failed", str(exc), {}, style=style)
            async with self.sessions.begin() as session:
                await repo.finish_run(session, run_id=run.id, status=report.status,
                                      candidate_version=report.metrics.get("version"), metrics=report.metrics,
                                      error=None if report.status in ("promoted", "rejected") else report.detail)
            await self._tidy()
            if self.notify is not None:
                await self.notify(format_report(report), report.chart)
            return report

    async def _run(self, run_id: int, parent: str | None, documents: list[int], style: str | None, held: Hold
                   ) -> RunReport:
        report = await self._train_and_judge(run_id, parent, documents, style, held)
        return replace(report, style=style)

    async def _train_and_judge(self, run_id: int, parent: str | None, documents: list[int], style: str | None,
                               held: Hold) -> RunReport:
        if parent is None:
            return RunReport(run_id, "failed", "no active model to fine-tune", {})
        async with self.sessions() as session:
            texts = await repo.document_texts(session, ids=documents)
        train_parts, holdout_parts = zip(*(split_document(texts[i]) for i in documents), strict=True)
        version = time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + f"-r{run_id}"
        model_dir = self.store.model_dir.resolve()  # absolute: a Celery worker reads the spec elsewhere
        work = model_dir / "runs" / f"run-{run_id}"
        work.mkdir(parents=True, exist_ok=True)
        spec = FinetuneSpec(
            parent_dir=str(model_dir / parent),
            out_dir=str(model_dir / version),
            result_path=str(work / "result.json"),
            old_corpus_path=self._old_corpus(style),
            new_train_text="".join(train_parts),
            new_holdout_text="".join(holdout_parts),
            minutes=self.settings.finetune_minutes,
            epochs=self.settings.finetune_epochs,
            patience=self.settings.finetune_patience,
            device=self.settings.device,
            threads=self.settings.finetune_threads,
        )
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec.__dict__), encoding="utf-8")
        exitcode = await self.runner.run(spec_path)
        result_path = Path(spec.result_path)
        if exitcode != 0 or not result_path.is_file():
            return RunReport(run_id, "interrupted" if exitcode and exitcode < 0 else "failed",
                             f"the training process ended with exit code {exitcode}", {})
        result = json.loads(result_path.read_text(encoding="utf-8"))
        metrics = dict(result["metrics"]) | {"version": version, "added_chars": len(result["added_chars"])}
        chart = loss_chart(result["history"], title=f"run {run_id}: {version}")
        promote, reason = gate(result["metrics"], self.settings.max_old_regression)
        async with self.sessions.begin() as session:
            if await repo.get_version(session, version=parent) is None:
                # The first model came from `lyricbot train`, outside any run: record it as the root.
                base = await asyncio.to_thread(load_checkpoint, self.store.model_dir / parent)
                await repo.record_version(
                    session, version=parent, parent=None, weights_sha256=base.weights_sha256, document_ids=[],
                    old_ppl=base.metrics.get("val_ppl"), new_ppl=None, metrics=base.metrics, run_id=None, style=style,
                )
            await repo.record_version(
                session, version=version, parent=parent, weights_sha256=result["weights_sha256"],
                document_ids=documents, old_ppl=result["metrics"].get("old_ppl_after"),
                new_ppl=result["metrics"].get("new_ppl_after"), metrics=metrics, run_id=run_id,
                style=style,  # the candidate belongs to the style's lineage, promoted or not
            )
        if not promote:
            return RunReport(run_id, "rejected", reason, metrics, chart)
        if not await held.held_throughout():  # another replica may have fine-tuned meanwhile: it promotes, not we
            return RunReport(run_id, "interrupted", "not promoted: the fine-tune lock was lost while it trained "
                             "(its database connection ended)", metrics, chart)
        try:
            if style is None:
                await self.activate(version, expected_sha256=result["weights_sha256"], expected_current=parent)
            else:
                await self._promote_in_style(style, version, result["weights_sha256"], parent)
        except CheckpointError as exc:
            return RunReport(run_id, "failed", f"candidate refused: {exc}", metrics, chart)
        except (ActiveChanged, repo.StyleChanged, LookupError) as exc:  # a rollback (or another promotion, or the
            # style's deletion) happened while this run trained
            return RunReport(run_id, "rejected", f"not promoted over a model it was not trained from: {exc}",
                             metrics, chart)
        if self.guard is not None:  # the model may now quote these songs: never let it show them
            for text in texts.values():
                self.guard.add(text)
        return RunReport(run_id, "promoted", reason, metrics, chart)

    async def _tidy(self) -> None:
        """Delete finished runs' leftovers and old rejected candidates (``bot.serving.retention``), under the
        fine-tune lock; a file that cannot be deleted is logged, never the run's failure."""
        try:
            await retention.prune(self.sessions, self.store.model_dir, self.store.active_version(),
                                  self.settings.keep_rejected)
        except Exception:
            log.exception("could not tidy %s", self.store.model_dir)

    def _old_corpus(self, style: str | None) -> str | None:
        """The text a fine-tune replays and must not forget: the style's own corpus where ``lyricbot train
        --style`` left one, else ``CORPUS_PATH`` (None: the demo corpus)."""
        if style is not None and (own := style_corpus_path(self.store.model_dir, style)).is_file():
            return str(own.resolve())
        return str(self.settings.corpus_path.resolve()) if self.settings.corpus_path else None

    async def _promote_in_style(self, style: str, version: str, expected_sha256: str, parent: str) -> None:
        """Verify the candidate, then point the style at it, only if the style still serves ``parent``. No hot
        swap: every request of a style names its version, and a lane loads it on first use."""
        ckpt = await asyncio.to_thread(load_checkpoint, self.store.model_dir / version)
        if ckpt.weights_sha256 != expected_sha256:
            raise CheckpointError(f"{version}: weights do not match the recorded checksum")
        async with self.sessions.begin() as session:
            await repo.point_style(session, name=style, version=version, expected_current=parent)
            await repo.activate_version(session, version=version)
        log.info("style %s now serves %s", style, version)

    # --- versions --------------------------------------------------------------------------------

    async def activate(
        self, version: str, expected_sha256: str | None = None, expected_current: str | None = None
    ) -> None:
        """Verify the checkpoint, then serve it: pointer flip plus hot swap, old requests finish as they are.

        With ``expected_current``, only if the active model is still that one (``ActiveChanged`` otherwise).
        """
        ckpt = await asyncio.to_thread(load_checkpoint, self.store.model_dir / version)
        if expected_sha256 is not None and ckpt.weights_sha256 != expected_sha256:
            raise CheckpointError(f"{version}: weights do not match the recorded checksum")
        async with self._activation:
            await asyncio.to_thread(self.store.activate, version, expected_current=expected_current)
            if self.backend is not None:
                await self.backend.activate(version)
        async with self.sessions.begin() as session:
            if await repo.get_version(session, version=version) is not None:
                await repo.activate_version(session, version=version)
        log.info("model %s is now active", version)

    async def rollback(self, version: str | None = None) -> str:
        """Serve ``version``, or the parent of the active one. Returns the version now active."""
        target = version
        if target is None:
            active = self.store.active_version()
            async with self.sessions() as session:
                record = await repo.get_version(session, version=active) if active else None
            target = record.parent if record is not None else None
            if target is None:
                raise LookupError("the active model has no previous version to roll back to")
        if not VERSION_NAME.fullmatch(target) or not (self.store.model_dir / target / "meta.json").is_file():
            raise LookupError(f"no model version {target}")
        async with self.sessions() as session:
            record = await repo.get_version(session, version=target)
        if record is not None and record.style is not None:  # ACTIVE is the default style's: never another's
            raise LookupError(f"{target} is a version of style {record.style}: /rollback {record.style} {target}")
        await self.activate(target)
        return target
