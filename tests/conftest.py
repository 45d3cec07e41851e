"""Shared fixtures: real corpora from ../shared/data (skipped locally when absent, required under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_corpus(name: str) -> Path:
    """Path of a real corpus; skips when it is missing, except under CI where that is a failure."""
    path = Path(os.environ.get("LYRICBOT_SHARED_DATA", SHARED_DATA)) / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI must have ../shared/data")
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def jaychou_path() -> Path:
    return real_corpus("jaychou_lyrics.txt")


@pytest.fixture
def shakespeare_path() -> Path:
    return real_corpus("tinyshakespeare.txt")
