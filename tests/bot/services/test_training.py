"""Corpus, scheduled fine-tuning, promotion, rollback and admin commands, end to end.

The fine-tuning really runs in a spawned process on the tiny test model; the bot keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from bot.ops.schedule import FINETUNE_JOB, finetune_trigger, make_scheduler, register
from bot.services.run_reports import loss_chart
from bot.serving.finetune_job import gate, split_document
from bot.serving.finetune_runner import ProcessRunner
from charrnn.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.bot import (
    ask,
    bot_running,
    eventually,
    serve_trained_at,
    served_in,
    trained_version,
)
from tests.helpers.training import ADMIN, FAST, NEW_SONG, copy_store, last_user_message_id, run_instead, training

PERSON = 77


def test_schedule_registration_is_idempotent() -> None:
    async def scenario() -> None:
        async def job() -> None:
            return None

        scheduler = make_scheduler()
        scheduler.start()
        try:
            for _ in range(3):  # restarts and double registration
                register(scheduler, FINETUNE_JOB, job, finetune_trigger("0 3 * * *"))
            jobs = scheduler.get_jobs()
            assert [j.id for j in jobs] == [FINETUNE_JOB]
            assert jobs[0].max_instances == 1 and jobs[0].coalesce and jobs[0].misfire_grace_time == 3600
            assert str(jobs[0].trigger.timezone) == "UTC"
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(scenario())


def test_gate_refuses_worse_or_broken_candidates() -> None:
    good = {"old_ppl_before": 10.0, "old_ppl_after": 10.2, "new_ppl_before": 50.0, "new_ppl_after": 20.0}
    assert gate(good, 0.03)[0]
    assert not gate({**good, "old_ppl_after": 11.0}, 0.03)[0]  # forgot the old songs
    assert not gate({**good, "new_ppl_after": 60.0}, 0.03)[0]  # learnt nothing new
    assert not gate({**good, "new_ppl_after": math.nan}, 0.03)[0]
    assert not gate({**good, "old_ppl_after": None}, 0.03)[0]


def test_document_split_is_stable_and_holds_something_out() -> None:
    text = "".join(f"line {i}\n" for i in range(200))
    train, held = split_document(text)
    assert split_document(text) == (train, held)
    assert sorted((train + held).splitlines()) == sorted(text.splitlines())
    assert 5 < len(held.splitlines()) < 40
    assert loss_chart([{"epoch": 1, "train_loss": 3.0, "val_nll": 3.2}], "t")[:4] == b"\x89PNG"  # type: ignore[index]


def test_non_admins_are_refused_every_admin_command(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST) as h:
            h.fake.add_user(PERSON, "Pat", "en")
            for command in ["/addcorpus", "/corpus", "/retrain", "/jobs", "/models", "/rollback", "/rollback v1"]:
                answer = await ask(h, command, chat=PERSON, user=PERSON)
                assert "only for the bot's admins" in answer["text"], command
            assert h.rows("SELECT COUNT(*) FROM corpus_documents") == [(0,)]
            assert h.rows("SELECT COUNT(*) FROM training_runs") == [(0,)]

    asyncio.run(scenario())


def test_empty_admin_list_means_nobody(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), admin_ids=frozenset()) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            answer = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)
            assert "only for the bot's admins" in answer["text"]

    asyncio.run(scenario())


def test_corpus_retrain_promotion_and_rollback(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        async with bot_running(tmp_path, store, **FAST) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            nothing = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)
            assert "nothing to do" in nothing["text"]

            song = await ask(h, NEW_SONG, chat=ADMIN, user=ADMIN)  # plain text is a /write: far too long a start
            assert "characters" in song["text"]
            message_id = last_user_message_id(h, ADMIN)  # then /addcorpus as a reply to it
            before = len(h.fake.sent(ADMIN))
            h.fake.send_text(ADMIN, ADMIN, "/addcorpus", reply_to_message_id=message_id)
            added = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "Added document 1" in added["text"] and "new to the model" in added["text"]
            again = await ask(h, "/addcorpus", chat=ADMIN, user=ADMIN)
            assert "Reply /addcorpus" in again["text"]
            before = len(h.fake.sent(ADMIN))
            h.fake.send_text(ADMIN, ADMIN, "/addcorpus", reply_to_message_id=message_id)
            duplicate = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "Already in the corpus" in duplicate["text"]
            listing = await ask(h, "/corpus", chat=ADMIN, user=ADMIN)
            assert "#1" in listing["text"] and "new" in listing["text"]

            started = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)
            assert "Training started" in started["text"]
            busy = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)
            assert "already going" in busy["text"]
            lyric = await ask(h, "/write 我", chat=ADMIN, user=ADMIN)  # the bot answers while it trains
            assert lyric["text"].startswith("我")
            report = (await h.fake.wait_for_sent(ADMIN, len(h.fake.sent(ADMIN)) + 1, timeout=180))[-1]
            trained = await ask(h, "/corpus", chat=ADMIN, user=ADMIN)
            assert "in the active model" in trained["text"]
            nothing = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)
            assert "nothing to do" in nothing["text"]
            assert "Training run 1" in report.get("caption", report.get("text", ""))
            status, candidate = h.rows("SELECT status, candidate_version FROM training_runs")[0]
            assert status == "promoted", report
            assert h.served() == candidate
            after = await ask(h, "/write 蒲公英", chat=ADMIN, user=ADMIN)
            assert after["text"].startswith("蒲公英")
            await eventually(
                lambda: h.rows("SELECT model_version FROM requests ORDER BY id DESC LIMIT 1") == [(candidate,)]
            )
            models = await ask(h, "/models", chat=ADMIN, user=ADMIN)
            assert candidate in models["text"] and "(active)" in models["text"]
            jobs = await ask(h, "/jobs", chat=ADMIN, user=ADMIN)
            assert "run 1 (admin): promoted" in jobs["text"]

            back = await ask(h, "/rollback", chat=ADMIN, user=ADMIN)
            assert first in back["text"]
            assert h.served() == first
            await ask(h, "/write 蒲公英", chat=ADMIN, user=ADMIN)  # written by the first model again
            await eventually(
                lambda: h.rows("SELECT model_version FROM requests ORDER BY id DESC LIMIT 1") == [(first,)]
            )
            # The active model is the first one again: the song is new to it.
            listing = await ask(h, "/corpus", chat=ADMIN, user=ADMIN)
            assert "#1" in listing["text"] and "new" in listing["text"]

    asyncio.run(scenario())


def test_worse_candidate_is_recorded_not_served(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        async with bot_running(tmp_path, store, **FAST) as h:
            service = training(h)

            async def worse_candidate(spec_path: Path) -> int | None:
                """Instead of training: a candidate that forgot the old songs (its weights scrambled)."""
                spec = json.loads(spec_path.read_text())
                ckpt = load_checkpoint(spec["parent_dir"])
                with torch.no_grad():
                    for p in ckpt.model.parameters():
                        p.add_(torch.randn_like(p))
                save_checkpoint(spec["out_dir"], ckpt.model, ckpt.vocab)
                metrics = {
                    "old_ppl_before": 8.0,
                    "old_ppl_after": 900.0,
                    "new_ppl_before": 50.0,
                    "new_ppl_after": 40.0,
                    "seconds": 1.0,
                }
                result = {
                    "metrics": metrics,
                    "history": [],
                    "added_chars": [],
                    "weights_sha256": load_checkpoint(spec["out_dir"]).weights_sha256,
                }
                Path(spec["result_path"]).write_text(json.dumps(result))
                return 0

            run_instead(service, worse_candidate)
            await service.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            report = await service.retrain(trigger="cli")
            assert not isinstance(report, str)
            assert report.status == "rejected" and "regressed" in report.detail
            assert h.served() == first
            status, metrics = h.rows("SELECT status, metrics FROM training_runs")[0]
            assert status == "rejected" and json.loads(metrics)["old_ppl_after"] == 900.0
            assert h.rows("SELECT old_ppl FROM model_versions WHERE parent IS NOT NULL") == [(900.0,)]

    asyncio.run(scenario())


def test_killed_training_leaves_model_and_database_intact(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        async with bot_running(tmp_path, store, **{**FAST, "finetune_minutes": 5.0, "finetune_epochs": 1000}) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            service = training(h)
            await service.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            run = asyncio.create_task(service.retrain(trigger="cli"))
            runner = service.runner
            assert isinstance(runner, ProcessRunner)
            await eventually(lambda: runner.process is not None and runner.process.is_alive(), timeout=90)
            await asyncio.sleep(1.0)
            assert runner.process is not None
            runner.process.kill()
            report = await run
            assert not isinstance(report, str) and report.status == "interrupted"
            assert h.rows("SELECT status FROM training_runs") == [("interrupted",)]
            assert h.served() == first
            assert not [p for p in store[0].iterdir() if p.name.endswith(".partial")]
            lyric = await ask(h, "/write 我", chat=ADMIN, user=ADMIN)
            assert lyric["text"].startswith("我")

    asyncio.run(scenario())


def test_corrupted_checkpoint_is_refused_and_old_model_keeps_serving(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        broken = store[0] / "vbroken"
        shutil.copytree(store[0] / first, broken)
        weights = next(broken.glob("weights-*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
        async with bot_running(tmp_path, store, **FAST) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            answer = await ask(h, "/rollback vbroken", chat=ADMIN, user=ADMIN)
            assert "No rollback" in answer["text"] and "SHA-256" in answer["text"]
            assert h.served() == first
            lyric = await ask(h, "/write 我", chat=ADMIN, user=ADMIN)
            assert lyric["text"].startswith("我")
            await eventually(
                lambda: h.rows("SELECT model_version FROM requests ORDER BY id DESC LIMIT 1") == [(first,)]
            )

    asyncio.run(scenario())


def test_short_schedule_fires_once_and_skips_without_new_text(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        async with bot_running(tmp_path, store, finetune_interval_s=1.0, **FAST) as h:
            await asyncio.sleep(2.5)  # fired at least twice with nothing new: no run recorded
            assert h.rows("SELECT COUNT(*) FROM training_runs") == [(0,)]
            await training(h).corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            await eventually(
                lambda: h.rows("SELECT COUNT(*) FROM training_runs WHERE status != 'running'") == [(1,)], timeout=180
            )
            await asyncio.sleep(2.5)  # the text is now in a version: later firings do nothing
            rows = h.rows("SELECT trigger, status FROM training_runs")
            assert len(rows) == 1 and rows[0][0] == "schedule"

    asyncio.run(scenario())


def test_uploaded_txt_with_caption_and_stale_runs(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        async with bot_running(tmp_path, store, **FAST) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            before = len(h.fake.sent(ADMIN))
            h.fake.send_document(ADMIN, ADMIN, "song.txt", NEW_SONG.encode(), caption="/addcorpus")
            added = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "Added document 1" in added["text"]
            before = len(h.fake.sent(ADMIN))
            h.fake.send_document(ADMIN, ADMIN, "binary.txt", b"\x00\x01\x02" * 50, caption="/addcorpus")
            refused = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "Not added" in refused["text"] and "binary" in refused["text"]
            # A run left 'running' by a crash...
            async with training(h).sessions.begin() as session:
                from bot.db import repository as repo

                run = await repo.create_run(
                    session, trigger="cli", requested_by=None, parent_version=None, document_ids=[1]
                )
                await repo.start_run(session, run_id=run.id)
        # ...is marked interrupted when the bot starts again.
        async with bot_running(tmp_path, store, **FAST) as h:
            assert h.rows("SELECT status FROM training_runs") == [("interrupted",)]

    asyncio.run(scenario())


def test_admin_cli_corpus_retrain_models_rollback(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    model_dir, corpus = copy_store(trained_store, tmp_path)
    first = trained_version(model_dir)
    song = tmp_path / "song.txt"
    song.write_text(NEW_SONG, encoding="utf-8")
    env = {
        "MODEL_DIR": str(model_dir),
        "CORPUS_PATH": str(corpus),
        "DEVICE": "cpu",
        "PATH": "",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "FINETUNE_MINUTES": "0.2",
        "FINETUNE_EPOCHS": "30",
        "MAX_OLD_REGRESSION": "1.0",
    }

    def lyricbot(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    asyncio.run(serve_trained_at(env["DATABASE_URL"], model_dir))  # as `lyricbot train` left it
    assert "document 1 added" in lyricbot("corpus", "add", str(song))
    assert "already present" in lyricbot("corpus", "add", str(song))
    report = lyricbot("retrain")
    assert "Training run 1: promoted" in report
    active = served_in(tmp_path / "cli.db")
    assert active != first and active in lyricbot("models")
    assert "no new corpus text" in lyricbot("retrain")
    assert first in lyricbot("rollback")
    assert served_in(tmp_path / "cli.db") == first
    assert "Training run 2:" in lyricbot("retrain")  # the rolled-back model never saw the song: a run happens


def test_a_rollback_during_a_run_is_not_undone_by_its_promotion(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        first = trained_version(store[0])
        shutil.copytree(store[0] / first, store[0] / "vearlier")
        async with bot_running(tmp_path, store, **FAST) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            service = training(h)
            training_started, rolled_back = asyncio.Event(), asyncio.Event()

            async def good_candidate_after_a_rollback(spec_path: Path) -> int | None:
                """Training that takes a while; meanwhile an admin rolls back. Then a candidate that passes."""
                spec = json.loads(spec_path.read_text())
                training_started.set()
                await rolled_back.wait()
                ckpt = load_checkpoint(spec["parent_dir"])
                save_checkpoint(spec["out_dir"], ckpt.model, ckpt.vocab)
                metrics = {"old_ppl_before": 8.0, "old_ppl_after": 8.0, "new_ppl_before": 50.0,
                           "new_ppl_after": 20.0, "seconds": 1.0}
                result = {"metrics": metrics, "history": [], "added_chars": [],
                          "weights_sha256": load_checkpoint(spec["out_dir"]).weights_sha256}
                Path(spec["result_path"]).write_text(json.dumps(result))
                return 0

            run_instead(service, good_candidate_after_a_rollback)
            await service.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            run = asyncio.create_task(service.retrain(trigger="admin"))
            await training_started.wait()
            answer = await ask(h, "/rollback vearlier", chat=ADMIN, user=ADMIN)
            assert "Now serving model vearlier" in answer["text"]
            rolled_back.set()
            report = await run
            assert not isinstance(report, str) and report.status == "rejected", report
            assert "not trained from" in report.detail
            assert h.served() == "vearlier"
            assert h.rows("SELECT status, parent_version FROM training_runs") == [("rejected", first)]

    asyncio.run(scenario())


def test_sigterm_during_an_admin_fine_tune_stops_promptly_and_records_it(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """The real process: `lyricbot run` against the local Bot API server, SIGTERM while it fine-tunes."""
    import os
    import signal
    import sqlite3

    from bot.sandbox import FakeTelegram

    model_dir, corpus = copy_store(trained_store, tmp_path)
    database = tmp_path / "bot.db"

    def runs() -> list[tuple[Any, ...]]:
        if not database.exists():
            return []
        with sqlite3.connect(database) as conn:
            try:
                return conn.execute("SELECT status, error FROM training_runs").fetchall()
            except sqlite3.OperationalError:  # not migrated yet
                return []

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_BASE_URL": fake.base_url,
                   "TELEGRAM_BASE_FILE_URL": fake.base_file_url, "MODEL_DIR": str(model_dir),
                   "CORPUS_PATH": str(corpus), "DEVICE": "cpu", "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                   "ADMIN_IDS": str(ADMIN), "FINETUNE_MINUTES": "10", "FINETUNE_EPOCHS": "100000",
                   "FINETUNE_PATIENCE": "0"}  # the tiny model converges in a second: never stop early here
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            try:
                fake.add_user(ADMIN, "Ada", "en")
                fake.send_document(ADMIN, ADMIN, "song.txt", NEW_SONG.encode(), caption="/addcorpus")
                await fake.wait_for_sent(ADMIN, 1, timeout=120)
                fake.send_text(ADMIN, ADMIN, "/retrain")
                started = (await fake.wait_for_sent(ADMIN, 2, timeout=60))[-1]
                assert "Training started" in started["text"]
                await eventually(lambda: runs() == [("running", None)], timeout=90)
                await asyncio.sleep(3)  # the spawned trainer is well into its run
                loop = asyncio.get_running_loop()
                stopping = loop.time()
                bot.send_signal(signal.SIGTERM)
                await asyncio.wait_for(bot.wait(), 15)  # the limit; a whole run would take 10 minutes
                assert loop.time() - stopping < 15
            finally:
                if bot.returncode is None:
                    bot.kill()
                output = (await bot.communicate())[0].decode()
        assert bot.returncode == 0, output[-3000:]
        status, error = runs()[0]
        assert status == "interrupted", (status, error, output[-3000:])
        assert served_in(database) == first

    first = trained_version(model_dir)
    asyncio.run(serve_trained_at(f"sqlite+aiosqlite:///{database}", model_dir))  # as `lyricbot train` left it
    asyncio.run(scenario())
