"""``lyricbot corpus add`` reads at most MAX_CORPUS_BYTES + 1 bytes (issue 18, item 19b).

Before, it read the whole file and only then compared its size with the cap: ``corpus add /dev/zero`` grew
until the kernel killed it (at 22.8 GB). The command runs with its address space capped at 2 GiB, so the old
behaviour ends in a MemoryError within seconds instead of taking the machine's memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ADDRESS_SPACE = 2 * 2**30  # the command needs well under 1 GiB (torch on the CPU, SQLite)


def corpus_add(tmp_path: Path, file: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAX_CORPUS_BYTES": "1000", "MODEL_DIR": str(tmp_path / "models"), "DEVICE": "cpu",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run([sys.executable, "-m", "bot", "corpus", "add", file], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=cap_memory)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_corpus_add_of_an_endless_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    done = corpus_add(tmp_path, "/dev/zero")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: zero is larger than the limit of 1,000 bytes (MAX_CORPUS_BYTES)" in done.stderr


def test_corpus_add_at_and_past_the_limit(tmp_path: Path) -> None:
    at_limit = tmp_path / "song.txt"
    at_limit.write_text("我不要再想你\n" * 52 + "la la la la\n", encoding="utf-8")  # 52 * 19 + 12 bytes
    assert len(at_limit.read_bytes()) == 1000
    too_big = tmp_path / "big.txt"
    too_big.write_bytes(at_limit.read_bytes() + b"a")
    refused = corpus_add(tmp_path, str(too_big))
    assert refused.returncode == 2 and "big.txt is larger than the limit of 1,000 bytes" in refused.stderr
    added = corpus_add(tmp_path, str(at_limit))
    assert added.returncode == 0, added.stderr[-2000:]
    assert "document 1 added" in added.stdout
