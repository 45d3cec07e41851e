"""The shipped tune model: the recorded file, at most 8 MB, and better than counting on the held-out tunes.

``make pretrained-tune`` produced it from the corpus ``charrnn fetch tunes`` builds (tests/charrnn/music/
test_corpus.py pins that corpus). The figures are docs/charrnn.md's ("Melodies"), compared with a tolerance far
above float rounding (0.5% in perplexity).
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from charrnn.checkpoint import TUNE, load_checkpoint, pretrained_path
from charrnn.cli import main
from charrnn.data import split_corpus
from charrnn.evaluate import evaluate
from charrnn.music.corpus import build_tunes
from charrnn.ngram import kneser_ney_nll

TUNE_WEIGHTS_SHA256 = "ac2b6c221417c6b8a9dfcf2481a720c4b1e209093d3536f31b4a7092084a4174"
HELD_OUT_PPL = 2.867  # python -m charrnn eval tune runs/data/tunes.txt
KN5_HELD_OUT_PPL = 4.382  # benchmarks/melody.py: a Kneser-Ney 5-gram, same split, same ids
MAX_BYTES = 8_000_000


@pytest.fixture(scope="module")
def corpus() -> str:
    return build_tunes()[0]


def test_the_shipped_file_is_the_recorded_one() -> None:
    tune = load_checkpoint(TUNE)  # verifies every file's SHA-256 against meta.json first
    files = list(pretrained_path(TUNE).iterdir())
    (weights,) = [f for f in files if f.suffix == ".safetensors"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == TUNE_WEIGHTS_SHA256 == tune.weights_sha256
    assert sum(f.stat().st_size for f in files) <= MAX_BYTES


@pytest.mark.heavy  # the corpus built and counted in plain Python: make test runs it, the portable matrix not
def test_it_beats_a_kneser_ney_5_gram_on_the_held_out_tunes(corpus: str, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    tune = load_checkpoint(TUNE)
    train, val = split_corpus(corpus, 0.1, "tail")
    val_ids = tune.vocab.encode(val)
    model_nll = evaluate(tune.model, torch.tensor(val_ids)).nll
    kn_nll = kneser_ney_nll(tune.vocab.encode(train), val_ids, len(tune.vocab), order=5)
    assert math.exp(model_nll) == pytest.approx(HELD_OUT_PPL, rel=5e-3)
    assert math.exp(kn_nll) == pytest.approx(KN5_HELD_OUT_PPL, rel=5e-3)
    assert model_nll < kn_nll
    (tmp_path / "tunes.txt").write_text(corpus, encoding="utf-8")  # the CLI's figure is the same one
    assert main(["eval", TUNE, str(tmp_path / "tunes.txt"), "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["val_ppl"] == pytest.approx(HELD_OUT_PPL, rel=5e-3)
