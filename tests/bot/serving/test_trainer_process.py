"""The spawned trainer never outlives what started it (issue 18, item 19a). Real processes, Linux ``/proc``.

Before, SIGTERM to ``lyricbot retrain`` (or SIGKILL to it or to the bot) ended the parent on the spot: the
trainer went on for its whole budget as an orphan, and the run stayed ``running`` in the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.bot import serve_trained_at, served_in, trained_version
from tests.helpers.training import NEW_SONG, copy_store

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux /proc")
CEILING_S = 180.0  # generous: a busy 2-core machine, a process importing torch


def wait_for(condition: Callable[[], object], what: str, ceiling: float = CEILING_S) -> None:
    give_up = time.monotonic() + ceiling
    while not condition():
        assert time.monotonic() < give_up, f"still waiting after {ceiling:.0f} s for {what}"
        time.sleep(0.2)


def stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def ended(pid: int) -> bool:
    """Gone, or a zombie: exited, waiting to be reaped (an orphan's new parent may never reap it)."""
    fields = stat(pid)
    return fields is None or fields[0] == "Z"


def trainer_of(parent: int) -> int | None:
    """The parent's spawned trainer (``multiprocessing.spawn``, not its resource tracker)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat(int(entry.name))) is not None and fields[1] == str(parent):
            try:
                if b"spawn_main" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except (FileNotFoundError, ProcessLookupError):
                continue
    return None


def cpu_seconds(pid: int) -> float:
    fields = stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Retrain:
    """``lyricbot retrain`` of a song for ten minutes, in its own process, against a copy of the trained model."""

    def __init__(self, tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
        self.model_dir, corpus = copy_store(trained_store, tmp_path)
        self.database = tmp_path / "cli.db"
        self.env = {**os.environ, "MODEL_DIR": str(self.model_dir), "CORPUS_PATH": str(corpus), "DEVICE": "cpu",
                    "DATABASE_URL": f"sqlite+aiosqlite:///{self.database}", "FINETUNE_MINUTES": "10",
                    "FINETUNE_EPOCHS": "100000", "FINETUNE_PATIENCE": "0"}  # the tiny model must not stop early
        self.first = trained_version(self.model_dir)
        asyncio.run(serve_trained_at(self.env["DATABASE_URL"], self.model_dir))  # as `lyricbot train` left it
        song = tmp_path / "song.txt"
        song.write_text(NEW_SONG, encoding="utf-8")
        added = subprocess.run([sys.executable, "-m", "bot", "corpus", "add", str(song)], env=self.env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert added.returncode == 0, added.stderr[-2000:]
        # Output to a file, not a pipe: the trainer inherits it, and a pipe would stay open while it lives.
        self.log = tmp_path / "retrain.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "retrain"], env=self.env, cwd=tmp_path,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.trainer = 0

    def runs(self) -> list[tuple[str, str | None]]:
        with sqlite3.connect(self.database) as conn:
            return conn.execute("SELECT status, error FROM training_runs").fetchall()

    def wait_until_training(self) -> int:
        """The trainer's pid, once it is well into training: torch imported, seconds of CPU spent after that."""

        def started() -> bool:
            self.trainer = trainer_of(self.process.pid) or 0
            return bool(self.trainer)

        wait_for(started, "the trainer process")
        wait_for(lambda: cpu_seconds(self.trainer) > 10 or ended(self.trainer), "the trainer to be training")
        assert not ended(self.trainer) and self.runs() == [("running", None)]
        return self.trainer

    def stop(self) -> None:
        for pid in (self.process.pid, self.trainer):
            if pid and not ended(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=60)


def test_sigterm_to_retrain_stops_its_trainer_and_records_the_run(tmp_path: Path,
                                                                  trained_store: tuple[Path, Path]) -> None:
    retrain = Retrain(tmp_path, trained_store)
    try:
        trainer = retrain.wait_until_training()
        retrain.process.send_signal(signal.SIGTERM)
        retrain.process.wait(timeout=CEILING_S)
        output = retrain.log.read_text()
        assert retrain.process.returncode == 128 + signal.SIGTERM, output[-3000:]
        assert "recorded as interrupted" in output
        wait_for(lambda: ended(trainer), "the trainer to end")
        assert retrain.runs() == [("interrupted", "cancelled at shutdown")]
        assert served_in(retrain.database) == retrain.first
    finally:
        retrain.stop()


def test_a_trainer_whose_parent_is_killed_exits(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """SIGKILL leaves the parent no chance to clean up: the trainer must notice by itself."""
    retrain = Retrain(tmp_path, trained_store)
    try:
        trainer = retrain.wait_until_training()
        retrain.process.kill()
        retrain.process.wait(timeout=CEILING_S)
        wait_for(lambda: ended(trainer), "the orphaned trainer to exit")
    finally:
        retrain.stop()
