"""``benchmarks/bot_load.py --inline`` runs to the end when people type on: a superseded query (answered with no
results) is counted apart, neither lost nor a crash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.bot import trained_version

ROOT = Path(__file__).resolve().parents[2]


def test_inline_load_counts_superseded_queries(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(corpus, data / "jaychou_lyrics.txt")  # the benchmark's corpus, for the copy guard
    # One person, every query at once: each new query supersedes the one before.
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bot_load.py"), "--inline", "--model-dir", str(tmp_path / "models"),
         "--version", str(trained_version(tmp_path / "models")),
         "--people", "1", "--requests", "6", "--rate", "0", "--length", "40", "--titles", "0", "--timeout", "120"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={"PATH": "", "LYRICBOT_SHARED_DATA": str(data), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()  # a title, the table's header, its rule, its row
    header, values = lines[1].split(), lines[3].split()
    row = dict(zip(header, values, strict=True))
    assert int(row["superseded"]) >= 1 and int(row["lost"]) == 0, run.stdout
    assert int(row["answered"]) + int(row["superseded"]) == 6, run.stdout  # hints too: the tiny model knows few words
