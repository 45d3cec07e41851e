"""Fine-tuning runs, model versions and rollback: how the bot keeps learning safely.

A run happens only when corpus text was added since the active model was trained. It trains in a
spawned child process or on a Celery ``training`` queue (``finetune_runner``; the bot keeps answering
at full speed), and the candidate is promoted only if
the gate in ``finetune_job.gate`` passes; promotion points the style's row at the candidate
(``StyleService.serve``: only over the model the run started from) and the generation worker loads it
between steps. Every run, promoted or not, is recorded with its metrics; a crash leaves the run
``interrupted`` and the served model untouched. Every style is fine-tuned the same way, the default too.
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
from bot.domain import DEFAULT_STYLE
from bot.ops.instance import Steady
from bot.services.corpus import CorpusService
from bot.services.quality import CopyGuard
from bot.services.run_reports import RunReport, format_report, loss_chart
from bot.services.styles import StyleService
from bot.serving import retention
from bot.serving.finetune_job import FinetuneSpec, gate, split_document
from bot.serving.finetune_runner import FinetuneRunner, ProcessRunner
from bot.serving.model_store import style_corpus_path
from bot.settings import Settings
from charrnn.checkpoint import CheckpointError

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
        styles: StyleService,
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
        self.styles = styles  # whose versions the runs start from and promote
        self.store = styles.store
        self.runner: FinetuneRunner = runner or ProcessRunner()
        self.notify = notify
        self._lock = asyncio.Lock()
        self._runs: set[asyncio.Task[Any]] = set()  # retrain() calls in progress, for shutdown()
        self.corpus = CorpusService(settings, sessions, styles)  # what the runs train on

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
        self, *, trigger: str, requested_by: int | None = None, style: str = DEFAULT_STYLE
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
        self, *, trigger: str, requested_by: int | None = None, style: str = DEFAULT_STYLE
    ) -> RunReport | str:
        """Run one fine-tuning of ``style`` now. Returns the report, or a reason it did
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
            parent = await self.styles.active_version(style)
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

    async def _run(self, run_id: int, parent: str, documents: list[int], style: str, held: Hold) -> RunReport:
        report = await self._train_and_judge(run_id, parent, documents, style, held)
        return replace(report, style=style)

    async def _train_and_judge(self, run_id: int, parent: str, documents: list[int], style: str, held: Hold
                               ) -> RunReport:
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
        async with self.sessions.begin() as session:  # the parent is recorded: a style serves only recorded ones
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
            await self.styles.serve(style, version, expected_current=parent, expected_sha256=result["weights_sha256"])
        except CheckpointError as exc:
            return RunReport(run_id, "failed", f"candidate refused: {exc}", metrics, chart)
        except (repo.StyleChanged, LookupError) as exc:  # a rollback (or another promotion, or the
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
            await retention.prune(self.sessions, self.store.model_dir, self.settings.keep_rejected)
        except Exception:
            log.exception("could not tidy %s", self.store.model_dir)

    def _old_corpus(self, style: str) -> str | None:
        """The text a fine-tune replays and must not forget: the style's own corpus where ``lyricbot train
        --style`` left one, else ``CORPUS_PATH`` (None: the demo corpus)."""
        if (own := style_corpus_path(self.store.model_dir, style)).is_file():
            return str(own.resolve())
        return str(self.settings.corpus_path.resolve()) if self.settings.corpus_path else None
