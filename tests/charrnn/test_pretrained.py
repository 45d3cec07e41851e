"""The shipped base model: the recorded file, the README's figures, and both languages.

The figures below are docs/charrnn.md's ("The shipped base model"); ``make pretrained`` produced the file. The
evaluation runs the same kernels as any CPU inference, so the figures are compared with a tolerance far
above float rounding and far below any difference that would matter (0.5% in perplexity).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch

from charrnn.checkpoint import BASE, load_checkpoint, pretrained_path
from charrnn.cli import main
from charrnn.data import load_corpus
from charrnn.text.lyrics import english_words, known_words
from tests.helpers.corpora import han_share, real_corpus

BASE_WEIGHTS_SHA256 = "a086c6e9a09966f1da9f9bb1774b4bb731e0488e801d936f47db62a0ecd58ab3"
SONGCI_HELD_OUT_PPL = 53.98  # python -m charrnn eval base ../shared/data/songci.txt
SHAKESPEARE_VAL_NLL = 1.4819  # python -m charrnn eval base ../shared/data/tinyshakespeare.txt (nats/char)
ENGLISH_KNOWN_WORDS = 0.85  # the target
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
    # The suite's longest test (2 minutes on one thread beside the other worker): both cores, since the other
    # worker spends much of its time waiting on servers and subprocesses.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        songci = eval_json("songci.txt", capsys)
        shakespeare = eval_json("tinyshakespeare.txt", capsys)
    finally:
        torch.set_num_threads(threads)
    assert songci["val_ppl"] == pytest.approx(SONGCI_HELD_OUT_PPL, rel=5e-3)
    assert shakespeare["val_nll"] == pytest.approx(SHAKESPEARE_VAL_NLL, abs=5e-3)
    assert shakespeare["val_nll"] < 1.6  # the target


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
        assert han_share(text) >= 0.95, text
        assert not WORD.search(text), text


def test_an_english_prefix_gets_english_words(capsys: pytest.CaptureFixture[str]) -> None:
    vocabulary = english_words(load_corpus(real_corpus("tinyshakespeare.txt")))
    texts = [str(sample["text"]) for sample in generate_json("The ", capsys, num=8)]
    assert not any(HAN.search(text) for text in texts), texts
    known, count = known_words(texts, vocabulary)
    assert count >= 60 and known >= ENGLISH_KNOWN_WORDS, (known, texts)
