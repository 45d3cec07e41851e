"""The one-shot commands (``lyricbot corpus add``, ``models``, ...) say which database they work on, never with its
password; ``--sandbox`` points them at the sandbox's; Alembic's chatter stays out of the terminal."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main

CHATTER = ("Context impl", "Will assume", "setup plugin", "Running upgrade")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``main`` reconfigures the process's logging and excepthooks: put them back for the tests after these."""
    root, httpx, alembic = logging.getLogger(), logging.getLogger("httpx"), logging.getLogger("alembic")
    saved = (root.handlers[:], root.level, httpx.filters[:], httpx.level, alembic.level, sys.excepthook,
             threading.excepthook)  # fmt: skip
    yield
    root.handlers[:], httpx.filters[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    httpx.setLevel(saved[3])
    alembic.setLevel(saved[4])
    sys.excepthook, threading.excepthook = saved[5], saved[6]


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, with DATABASE_URL and MODEL_DIR naming the real bot's (as .env does)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'production' / 'lyricbot.db'}")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "production" / "models"))
    monkeypatch.setenv("DEVICE", "cpu")
    return tmp_path / "production"


def test_admin_commands_name_their_database_and_keep_alembic_quiet(
    production: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "no model versions recorded yet" in out
    assert f"database sqlite+aiosqlite:///{production / 'lyricbot.db'}" in err
    assert "lyricbot --sandbox models" in err  # how to look at the sandbox's instead
    assert not [line for line in err.splitlines() if any(word in line for word in CHATTER)], err


def test_sandbox_flag_points_them_at_the_sandbox_database(
    tmp_path: Path, production: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    song = tmp_path / "song.txt"
    song.write_text("窗外的麻雀 在电线杆上多嘴\n你说这一句 很有夏天的感觉\n", encoding="utf-8")
    assert main(["--sandbox", "corpus", "add", str(song)]) == 0
    out, err = capsys.readouterr()
    assert "document 1 added" in out
    assert "database sqlite+aiosqlite:///./var/sandbox.db" in err and "the sandbox's" in err
    assert main(["--sandbox", "models"]) == 0
    assert "var/sandbox.db" in capsys.readouterr().err
    with contextlib.closing(sqlite3.connect(tmp_path / "var" / "sandbox.db")) as conn:
        assert conn.execute("SELECT name FROM corpus_documents").fetchall() == [("song.txt",)]
    assert not production.exists()  # neither the production database nor its model directory was made


def test_the_sandbox_db_command_finds_its_database_as_it_is(
    tmp_path: Path, production: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--sandbox db`` must not seed the sandbox first: that would migrate it to the head and point its default
    style at a version, and a downgrade below 0012 could then never go through."""
    assert main(["--sandbox", "db", "current"]) == 0
    assert "database revision: None" in capsys.readouterr().out
    assert main(["--sandbox", "db", "upgrade"]) == 0
    assert main(["--sandbox", "db", "downgrade", "0011"]) == 0  # the default style serves nothing: nothing lost
    capsys.readouterr()
    assert main(["--sandbox", "db", "current"]) == 0
    assert "database revision: 0011" in capsys.readouterr().out
    assert not (tmp_path / "var" / "sandbox-models").exists()


def test_the_database_password_is_never_printed(
    production: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the command fails at once, after saying where it went.
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://lyric:Sup3r-Secret-pw@127.0.0.1:1/lyricbot")
    assert main(["models"]) != 0
    err = capsys.readouterr().err
    assert "database postgresql+asyncpg://lyric:***@127.0.0.1:1/lyricbot" in err
    assert "Sup3r-Secret-pw" not in err
