"""A generation worker trusts no task: whoever can write to the broker can send one. Every field of a job is held
to the bot's limits, nothing outside MODEL_DIR is ever loaded, and a task revoked while it runs leaves the batch.

The task function is called here as Celery calls it, with forged payloads; ``test_forged_tasks_on_the_broker``
sends them through Redis to a real ``lyricbot worker``, and a bot whose jobs the worker refuses apologises.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import TaskRevokedError
from celery.worker import state as worker_state

from bot.serving.celery_app import GENERATE, GENERATION_QUEUE, InvalidJob
from bot.serving.generation import GenerationJob, GenerationResult
from bot.settings import Settings
from bot.worker import GenerationRuntime, worker_app
from charrnn.text.forms import follows, tune_plan
from charrnn.text.lyrics import tidy
from tests.helpers.bot import ask, bot_running, trained_version
from tests.helpers.celery_workers import REDIS_URL, celery_env, redis_prefix, workers

GOOD_VERSION = "vgood"  # every task names its version: a copy of the trained model under a name of our own
GOOD = {"prefix": "我", "temperature": 0.8, "length": 20, "version": GOOD_VERSION}
Served = tuple[Celery, GenerationRuntime, list[str], Path]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, trained_store: tuple[Path, Path]
) -> Iterator[Served]:
    """(the worker's app, its runtime, every version its loader was asked for, a checkpoint outside MODEL_DIR)."""
    root = tmp_path_factory.mktemp("worker")
    model_dir = root / "models"
    shutil.copytree(trained_store[0], model_dir)
    active = str(trained_version(model_dir))
    shutil.copytree(model_dir / active, model_dir / GOOD_VERSION)
    shutil.copytree(model_dir / active, root / "outside" / "evil")  # a valid checkpoint, outside MODEL_DIR
    settings = Settings(_env_file=None, model_dir=model_dir, device="cpu", min_length=10,  # type: ignore[call-arg]
                        max_length=300, max_prefix_chars=50, request_timeout_s=30.0)  # fmt: skip
    app, runtime = worker_app(settings, GENERATION_QUEUE, 2)
    assert runtime is not None
    asked = spy_on_loads(runtime)
    try:
        yield app, runtime, asked, root / "outside"
    finally:
        runtime.close()


def spy_on_loads(runtime: GenerationRuntime) -> list[str]:
    """The versions the runtime's loader will be asked for, in order."""
    asked: list[str] = []
    loader = runtime.worker._loader
    assert loader is not None

    def spying(version: str) -> Any:
        asked.append(version)
        return loader(version)

    runtime.worker._loader = spying
    return asked


def call(app: Celery, job: object, timeout: object = 20.0) -> dict[str, Any]:
    """The worker's task, run as Celery runs it for a message with these kwargs."""
    result: dict[str, Any] = app.tasks[GENERATE](job=job, timeout=timeout)
    return result


FORGED: dict[str, tuple[object, str]] = {  # id -> (job, what the refusal says)
    "path-version": ({**GOOD, "version": "../outside/evil"}, "not a plain name"),
    "absolute-version": ({**GOOD, "version": "/etc"}, "not a plain name"),
    "dotdot-version": ({**GOOD, "version": ".."}, "not a plain name"),
    "unknown-version": ({**GOOD, "version": "v-nosuch"}, "no model version"),
    "version-not-text": ({**GOOD, "version": ["v1"]}, "not a plain name"),
    "path-style": ({**GOOD, "style": "../x"}, "not a plain name"),
    "200-candidates": ({**GOOD, "candidates": 200}, "candidates"),
    "0-candidates": ({**GOOD, "candidates": 0}, "candidates"),
    "17-titles": ({**GOOD, "titles": 17}, "titles"),
    "0-phrases": ({**GOOD, "phrases": 0}, "phrases"),
    "17-phrases": ({**GOOD, "phrases": 17}, "phrases"),
    "phrases-as-text": ({**GOOD, "phrases": "4"}, "phrases"),
    "huge-length": ({**GOOD, "length": 10**9}, "length"),
    "short-length": ({**GOOD, "length": 1}, "length"),
    "length-as-text": ({**GOOD, "length": "20"}, "length"),
    "length-as-bool": ({**GOOD, "length": True}, "length"),
    "nan-temperature": ({**GOOD, "temperature": math.nan}, "temperature"),
    "inf-temperature": ({**GOOD, "temperature": math.inf}, "temperature"),
    "hot-temperature": ({**GOOD, "temperature": 50.0}, "temperature"),
    "temperature-as-text": ({**GOOD, "temperature": "hot"}, "temperature"),
    "long-prefix": ({**GOOD, "prefix": "我" * 51}, "prefix"),
    "prefix-not-text": ({**GOOD, "prefix": 7}, "prefix"),
    "many-lines": ({**GOOD, "stop_after_lines": 10**6}, "stop_after_lines"),
    "negative-seed": ({**GOOD, "seed": -1}, "seed"),
    "rhyme-as-text": ({**GOOD, "rhyme": "yes"}, "rhyme"),
    "unknown-field": ({**GOOD, "__class__": "os.system"}, "unknown job fields"),
    "missing-field": ({"prefix": "我", "temperature": 0.8}, "missing job fields: length"),
    "not-an-object": (["我", 0.8, 20], "not an object"),
    "unknown-form": ({**GOOD, "form": "不是词牌"}, "not a tune's name"),
    "alias-form": ({**GOOD, "form": "忆江南"}, "not a tune's name"),  # the bot sends the table's name
    "form-not-text": ({**GOOD, "form": 7}, "form and pattern must be text"),
    "form-and-pattern": ({**GOOD, "form": "浣溪沙", "pattern": "7,7"}, "not both"),
    "bad-pattern": ({**GOOD, "pattern": "7,x"}, "not a pattern"),
    "one-line-pattern": ({**GOOD, "pattern": "7"}, "not a pattern"),
    "huge-pattern": ({**GOOD, "pattern": "/".join(["40"] * 100)}, "writes more than 300"),
    "endless-pattern-text": ({**GOOD, "pattern": "7," * 5000 + "7"}, "not a pattern"),
}


@pytest.mark.parametrize("forged", FORGED, ids=list(FORGED))
def test_a_forged_job_is_refused_and_loads_nothing(
    served: Served, forged: str
) -> None:
    app, _, asked, _ = served
    job, why = FORGED[forged]
    with pytest.raises(InvalidJob, match=why):
        call(app, job, timeout=5.0)
    assert asked == []  # nothing loaded, inside MODEL_DIR or out of it


@pytest.mark.parametrize("timeout", [math.nan, -1.0, 0, "5", True], ids=["nan", "negative", "zero", "text", "bool"])
def test_a_forged_timeout_is_refused(served: Served, timeout: object) -> None:
    app, *_ = served
    with pytest.raises(InvalidJob, match="timeout"):
        call(app, GOOD, timeout=timeout)


def test_a_job_within_the_limits_is_served_and_a_long_timeout_is_cut(
    served: Served,
) -> None:
    app, runtime, asked, _ = served
    seen: list[float] = []
    real = runtime.worker.generate

    async def spying(job: GenerationJob, timeout: float) -> GenerationResult:
        seen.append(timeout)
        return await real(job, timeout)

    runtime.worker.generate = spying  # type: ignore[method-assign]
    try:
        job = {**GOOD, "candidates": 16, "titles": 0, "seed": 3, "rhyme": False, "style": None,
               "stop_after_lines": 0}  # fmt: skip
        result = call(app, job, timeout=10.0**9)  # held to REQUEST_TIMEOUT_S, not a pool thread held for years
    finally:
        runtime.worker.generate = real  # type: ignore[method-assign]
    assert len(result["candidates"]) == 16 and result["candidates"][0]["prefix"] == "我"
    assert seen == [30.0] and set(asked) <= {GOOD_VERSION}  # the version it names, and nothing else


def test_a_task_revoked_while_it_runs_leaves_the_batch(served: Served) -> None:
    """A revoke reaches a worker that already runs the task (a superseded inline query): the task thread stops
    waiting, and the job is cancelled on the worker's loop, which takes its rows out of the batch."""
    runtime = served[1]
    real = runtime.worker.generate
    started, cancelled = threading.Event(), threading.Event()

    async def endless(job: GenerationJob, timeout: float) -> GenerationResult:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("never")

    runtime.worker.generate = endless  # type: ignore[method-assign]
    task_id = "revoked-while-running"
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            runtime.generate(GOOD, 20.0, task_id)
        except BaseException as exc:  # the test reads it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    try:
        thread.start()
        assert started.wait(60)
        worker_state.revoked.add(task_id)  # what Celery's revoke control command does on every worker
        assert cancelled.wait(60), "the job kept its rows in the batch"
        thread.join(60)
        assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], TaskRevokedError)
    finally:
        worker_state.revoked.discard(task_id)
        runtime.worker.generate = real  # type: ignore[method-assign]
        thread.join(60)


def test_forged_tasks_on_the_broker_are_refused_and_the_bot_apologises(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """Forged tasks sent straight to Redis: a real worker refuses each with a clear error, loads nothing, and
    keeps serving. A bot whose jobs break the workers' limits (here: shorter than their MIN_LENGTH) gets the
    refusal back, and the person an apology."""
    model_dir = tmp_path / "models"
    shutil.copytree(trained_store[0], model_dir)
    active = str(trained_version(model_dir))
    shutil.copytree(model_dir / active, model_dir / GOOD_VERSION)
    shutil.copytree(model_dir / active, tmp_path / "outside" / "evil")
    with redis_prefix() as prefix, workers(celery_env(prefix, model_dir, MIN_LENGTH="50"), tmp_path / "w", 1) as (
        worker,
    ):
        from bot.serving.celery_app import make_celery

        settings = Settings(_env_file=None, generation_backend="celery", celery_broker_url=REDIS_URL,  # type: ignore[call-arg]
                            celery_key_prefix=prefix, celery_visibility_timeout_s=3.0, model_dir=model_dir)  # fmt: skip
        app = make_celery(settings)
        forged = [{**GOOD, "length": 60, "version": "../outside/evil"}, {**GOOD, "length": 60, "candidates": 200},
                  {**GOOD, "length": 60, "temperature": math.nan}]  # fmt: skip
        results = [app.send_task(GENERATE, kwargs={"job": job, "timeout": 20.0}, queue=GENERATION_QUEUE)
                   for job in forged]  # fmt: skip
        deadline = time.monotonic() + 90
        while not all(r.ready() for r in results):
            assert time.monotonic() < deadline, worker.text()[-3000:]
            time.sleep(0.2)
        errors = [r.result for r in results]
        assert all(isinstance(e, InvalidJob) for e in errors), errors
        assert ["not a plain name" in str(errors[0]), "candidates" in str(errors[1]),
                "temperature" in str(errors[2])] == [True, True, True]  # fmt: skip
        assert "loaded model" not in worker.text() and worker.served() == 0
        good = app.send_task(GENERATE, kwargs={"job": {**GOOD, "length": 60}, "timeout": 20.0}, queue=GENERATION_QUEUE)
        assert good.get(timeout=90)["candidates"][0]["prefix"] == "我"  # still serving
        app.close()

        async def scenario() -> None:
            extra = {"generation_backend": "celery", "celery_broker_url": REDIS_URL, "celery_key_prefix": prefix,
                     "celery_visibility_timeout_s": 3.0}  # fmt: skip
            async with bot_running(tmp_path, (model_dir, trained_store[1]), **extra) as h:  # default_length 40 < 50
                h.fake.add_user(9100, "Ap", "en")
                apology = await ask(h, "/write 我", chat=9100, user=9100)
                assert "something went wrong" in apology["text"], apology
                assert h.rows("SELECT status FROM requests") == [("failed",)]

        asyncio.run(scenario())


def test_a_job_in_a_tune_is_served_in_that_tunes_form_and_titled_by_it(served: Served) -> None:
    """The form travels to the worker as plain text, and the worker writes it (the tiny model has no punctuation)."""
    app, *_ = served
    result = call(app, {**GOOD, "prefix": "我", "form": "浣溪沙", "candidates": 2, "titles": 2})
    lyrics = [tidy(c["prefix"] + c["continuation"]) for c in result["candidates"]]
    assert all(follows(lyric, tune_plan("浣溪沙"), punctuation=False) for lyric in lyrics), lyrics
    assert result["titles"] == ["浣溪沙", "浣溪沙"]


@pytest.mark.parametrize(("lanes", "loads"), [(1, ["va", "vb", "va"]), (2, ["va", "vb"])])
def test_a_worker_keeps_as_many_model_versions_as_it_is_told(
    tmp_path: Path, trained_store: tuple[Path, Path], lanes: int, loads: list[str]
) -> None:
    """WORKER_MODEL_LANES: two styles asked for in turn stay loaded with two lanes; with one, each evicts the
    other and is loaded again (seconds a task, for a real base)."""
    model_dir = tmp_path / "models"
    active = trained_version(trained_store[0])
    assert active is not None
    for version in ("va", "vb"):
        shutil.copytree(trained_store[0] / active, model_dir / version)
    settings = Settings(_env_file=None, model_dir=model_dir, device="cpu", min_length=10,  # type: ignore[call-arg]
                        max_length=300, request_timeout_s=30.0, worker_model_lanes=lanes)  # fmt: skip
    app, runtime = worker_app(settings, GENERATION_QUEUE, 2)
    assert runtime is not None
    asked = spy_on_loads(runtime)
    try:
        for version in ("va", "vb", "va"):
            result = call(app, {**GOOD, "version": version}, timeout=20.0)
            assert result["model_version"] == version and result["candidates"]
    finally:
        runtime.close()
    assert asked == loads
