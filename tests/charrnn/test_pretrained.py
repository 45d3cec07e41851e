"""The shipped base model: the recorded file, the README's figures, and both languages.

The figures below are the README's ("The shipped base"); ``make pretrained`` produced the file. The
evaluation runs the same kernels as any CPU inference, so the figures are compared with a tolerance far
above float rounding and far below any difference that would matter (0.5% in perplexity).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from charrnn.checkpoint import BASE, load_checkpoint, pretrained_path
from charrnn.cli import main
from charrnn.data import load_corpus

from ..conftest import real_corpus

BASE_WEIGHTS_SHA256 = "0f6f495a075f4aad0b34267a346cc6d2d750102a4f37db42100d202d00525254"
SONGCI_HELD_OUT_PPL = 83.65  # python -m charrnn eval base ../shared/data/songci.txt
SHAKESPEARE_VAL_NLL = 1.7065  # python -m charrnn eval base ../shared/data/tinyshakespeare.txt (nats/char)
ENGLISH_KNOWN_WORDS = 0.6
MAX_BYTES = 16_000_000
WORD = re.compile(r"[A-Za-z']+")
HAN = re.compile(r"[\u4e00-\u9fff]")


def eval_json(corpus: str, capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    assert main(["eval", BASE, str(real_corpus(corpus)), "--device", "cpu", "--json"]) == 0
    result: dict[str, float] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def test_the_shipped_file_is_the_recorded_one() -> None:
    base = load_checkpoint(BASE)  # verifies every file's SHA-256 against meta.json first
    files = list(pretrained_path().iterdir())
    weights = [f for f in files if f.suffix == ".safetensors"]
    assert len(weights) == 1
    assert hashlib.sha256(weights[0].read_bytes()).hexdigest() == BASE_WEIGHTS_SHA256 == base.weights_sha256
    assert sum(f.stat().st_size for f in files) <= MAX_BYTES


@pytest.mark.heavy
def test_eval_reproduces_the_readme_figures(capsys: pytest.CaptureFixture[str]) -> None:
    songci = eval_json("songci.txt", capsys)
    assert songci["val_ppl"] == pytest.approx(SONGCI_HELD_OUT_PPL, rel=5e-3)
    shakespeare = eval_json("tinyshakespeare.txt", capsys)
    assert shakespeare["val_nll"] == pytest.approx(SHAKESPEARE_VAL_NLL, abs=5e-3)


def generate_json(prefix: str, capsys: pytest.CaptureFixture[str], num: int) -> list[dict[str, object]]:
    args = ["generate", BASE, "--prefix", prefix, "--num", str(num), "--seed", "1", "--max-length", "120",
            "--device", "cpu", "--json"]
    assert main(args) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(rows) == num
    return rows


def test_a_chinese_prefix_gets_chinese_lines(capsys: pytest.CaptureFixture[str]) -> None:
    for sample in generate_json("天青色等烟雨", capsys, num=4):
        assert sample["skipped"] == [], sample  # the base knows every character of it
        text = str(sample["text"]).removeprefix("天青色等烟雨")
        assert len(HAN.findall(text)) >= 0.7 * len(text.replace("\n", "")), text
        assert not WORD.search(text), text


def test_an_english_prefix_gets_english_words(capsys: pytest.CaptureFixture[str]) -> None:
    vocabulary = {w.lower() for w in WORD.findall(load_corpus(real_corpus("tinyshakespeare.txt")))}
    words = []
    for sample in generate_json("The ", capsys, num=8):
        text = str(sample["text"])
        assert not HAN.search(text), text
        words += [w.lower() for w in WORD.findall(text)[:-1]]  # the last word may be cut off
    known = sum(w in vocabulary for w in words) / len(words)
    # The README's figure (70% at the default temperature): the target of 85% is not reached by
    # this base (3.2 passes on a 2-core CPU); this guards against a worse one.
    assert len(words) >= 80 and known >= ENGLISH_KNOWN_WORDS, (known, words)
