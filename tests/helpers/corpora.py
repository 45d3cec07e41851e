"""The real corpora in ../shared/data (skipped locally when absent, required under CI), and what a test reads in
them."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # ../shared/data beside the checkout


def real_corpus(name: str) -> Path:
    """Path of a real corpus; skips when it is missing, except under CI where that is a failure."""
    path = Path(os.environ.get("LYRICBOT_SHARED_DATA", SHARED_DATA)) / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI must have ../shared/data")
        pytest.skip(f"{path} not present")
    return path


def han_share(text: str) -> float:
    """Share of Han characters among the letters and digits of ``text``.

    Punctuation and line breaks are left out: a ci of three-character lines carries a comma every three
    characters, and that says nothing about which language the model wrote.
    """
    letters = [ch for ch in text if unicodedata.category(ch)[0] in "LN"]
    return sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / max(len(letters), 1)
