"""The sizing rule: what ``charrnn train`` trains when the person does not choose, and that their choices win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charrnn.cli import main
from charrnn.model import ModelConfig
from charrnn.sizing import Sizing, size_for, size_for_text
from charrnn.train_config import TrainConfig
from tests.helpers.models import LYRICS

JAYCHOU = (63_282, 2_583)  # characters, distinct: the corpus the small-corpus recipe was tuned on
SHAKESPEARE = (1_115_394, 65)


def test_the_jay_chou_corpus_keeps_its_tuned_recipe() -> None:
    """Held-out perplexity 155.6 (docs/testing.md) came from this model and schedule: sizing must not lose it."""
    sized = size_for(*JAYCHOU, minutes=10.0)
    tuned = ModelConfig(vocab_size=1)
    assert sized.model_config() == tuned  # GRU 1x512, tied embeddings of 512, dropout 0.8
    config = sized.train_config()
    assert (config.batch_size, config.seq_len, config.lr) == (16, 64, 3e-3)


def test_a_tiny_corpus_gets_a_small_model_with_dropout() -> None:
    tiny = size_for(10_000, 480, minutes=10.0)
    assert tiny.hidden < ModelConfig(vocab_size=1).hidden
    assert tiny.dropout >= 0.3


def test_a_large_corpus_with_a_long_budget_gets_a_bigger_model_than_a_short_one() -> None:
    short, long = size_for(*SHAKESPEARE, minutes=7.9), size_for(*SHAKESPEARE, minutes=120.0)
    tiny = size_for(10_000, 480, minutes=10.0)
    assert long.hidden > short.hidden and long.hidden > tiny.hidden
    # Read a few times only, a large corpus cannot be memorised: dropout only slows learning.
    assert short.dropout == 0.0 and short.dropout < tiny.dropout
    assert long.epochs > short.epochs


def test_an_alphabet_gets_a_narrow_untied_embedding_and_chinese_a_tied_wide_one() -> None:
    english, chinese = size_for(*SHAKESPEARE, minutes=None), size_for(1_115_394, 5_000, minutes=None)
    assert not english.tie and english.embed < english.hidden
    assert chinese.tie and chinese.embed == chinese.hidden


def test_without_a_budget_or_on_a_gpu_the_epoch_limit_is_the_plan() -> None:
    assert size_for(*SHAKESPEARE, minutes=None).epochs == TrainConfig.epochs
    assert size_for(*SHAKESPEARE, minutes=1.0, device="cuda").epochs == TrainConfig.epochs
    assert size_for(*SHAKESPEARE, minutes=1.0, device="cuda").amp
    assert not size_for(*SHAKESPEARE, minutes=1.0).amp  # bfloat16 autocast slowed the CPU down


def test_more_time_never_means_a_smaller_model() -> None:
    for chars, distinct in [(5_000, 300), JAYCHOU, (250_000, 65), SHAKESPEARE, (5_000_000, 6_000)]:
        hidden = [size_for(chars, distinct, minutes=m).hidden for m in (0.5, 2, 8, 30, 120, 600)]
        assert hidden == sorted(hidden), (chars, hidden)


def test_explicit_choices_win_and_are_named() -> None:
    sized = size_for(*SHAKESPEARE, minutes=7.9)
    mine = sized.override(hidden=96, dropout=0.3, lr=1e-3, batch_size=None, tie=None)
    assert (mine.hidden, mine.dropout, mine.lr) == (96, 0.3, 1e-3)
    assert (mine.batch_size, mine.tie) == (sized.batch_size, sized.tie)  # None: not chosen, the rule's
    assert mine.chosen == ("dropout", "hidden", "lr")
    assert mine.describe().endswith("yours: dropout, hidden, lr")
    with pytest.raises(ValueError, match="not a sizing field"):
        sized.override(hiden=96)


def test_a_wide_tied_embedding_follows_a_chosen_hidden_size() -> None:
    jay = size_for(*JAYCHOU, minutes=10.0).override(hidden=256)
    assert (jay.hidden, jay.embed) == (256, 256)
    assert size_for(*JAYCHOU, minutes=10.0).override(hidden=256, embed=100).embed == 100


def test_the_line_says_corpus_budget_and_model() -> None:
    line = size_for(*SHAKESPEARE, minutes=7.9).describe()
    assert line.startswith("corpus 1.1M chars, 65 distinct, 7.9 min: GRU 1x")
    assert "dropout 0," in line and "batch" in line and "epochs" in line


def test_several_corpora_are_sized_together() -> None:
    both = size_for_text({"a": "ab" * 5_000, "b": "cd" * 5_000}, minutes=5.0)
    assert (both.chars, both.distinct) == (20_000, 4)
    assert isinstance(both, Sizing)


def test_cli_sizes_what_is_not_given_and_keeps_what_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(LYRICS, encoding="utf-8")
    expected = size_for_text(LYRICS, minutes=None)
    args = ["train", str(corpus), "--out", str(tmp_path / "sized"), "--epochs", "1", "--hidden", "24",
            "--sample-every", "0", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "corpus 696 chars, 39 distinct, no time limit" in err and "yours: hidden" in err
    meta = json.loads((tmp_path / "sized" / "best" / "meta.json").read_text())
    model, train = meta["model_config"], meta["train_config"]
    assert model["hidden"] == 24  # given
    assert (model["dropout"], model["tie_weights"], model["embed"]) == (expected.dropout, expected.tie, expected.embed)
    assert (train["batch_size"], train["lr"], train["amp"]) == (expected.batch_size, expected.lr, expected.amp)

    assert main([*args[:3], str(tmp_path / "mine"), *args[4:], "--dropout", "0.05", "--batch-size", "4",
                 "--lr", "0.01", "--tie", "--amp"]) == 0
    meta = json.loads((tmp_path / "mine" / "best" / "meta.json").read_text())
    assert (meta["model_config"]["dropout"], meta["model_config"]["tie_weights"]) == (0.05, True)
    assert (meta["train_config"]["batch_size"], meta["train_config"]["lr"], meta["train_config"]["amp"]) == (
        4, 0.01, True)
