"""The adaptive softmax (large vocabularies): a true distribution, the loss it trains on, checkpoints, CLI."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from charrnn.checkpoint import load_checkpoint
from charrnn.cli import main
from charrnn.config import SampleConfig
from charrnn.evaluate import evaluate
from charrnn.generation.sample import generate
from charrnn.model import CharRNN, ModelConfig
from charrnn.pipeline import train_model
from tests.helpers.models import LYRICS, assert_same_greedy_text, fast

ADAPTIVE = ModelConfig(vocab_size=40, cell="lstm", layers=1, embed=16, hidden=24, dropout=0.0, tie_weights=False,
                       adaptive_cutoffs=(8, 20))


def test_log_probabilities_sum_to_one_over_the_whole_vocabulary() -> None:
    torch.manual_seed(0)
    model = CharRNN(ADAPTIVE).eval()
    logprobs, _ = model(torch.randint(0, 40, (3, 7)))
    assert logprobs.shape == (3, 7, 40)
    torch.testing.assert_close(logprobs.exp().sum(-1), torch.ones(3, 7), atol=1e-5, rtol=0)


def test_training_loss_is_the_cross_entropy_of_those_probabilities() -> None:
    torch.manual_seed(0)
    model = CharRNN(ADAPTIVE).eval()
    x, y = torch.randint(0, 40, (4, 9)), torch.randint(0, 40, (4, 9))
    loss, _ = model.loss(x, y)
    logprobs, _ = model(x)
    torch.testing.assert_close(loss, F.nll_loss(logprobs.flatten(0, 1), y.flatten()), atol=1e-5, rtol=1e-5)


def test_loss_and_probabilities_under_bfloat16_autocast() -> None:
    """The trainer's mixed precision on CPUs with bfloat16: the adaptive softmax itself stays float32."""
    torch.manual_seed(0)
    # A GRU: oneDNN has no bfloat16 LSTM on CPUs without native bfloat16, where the trainer keeps autocast off.
    model = CharRNN(replace(ADAPTIVE, cell="gru")).eval()
    x, y = torch.randint(0, 40, (2, 5)), torch.randint(0, 40, (2, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.loss(x, y)
        logprobs, _ = model(x)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(logprobs.exp().sum(-1), torch.ones(2, 5), atol=1e-4, rtol=0)


def test_config_is_checked_and_survives_json() -> None:
    with pytest.raises(ValueError, match="tied"):
        ModelConfig(vocab_size=40, adaptive_cutoffs=(8,))
    with pytest.raises(ValueError, match="increasing"):
        ModelConfig(vocab_size=40, tie_weights=False, adaptive_cutoffs=(20, 8))
    with pytest.raises(ValueError, match="below the vocabulary size"):
        CharRNN(ModelConfig(vocab_size=10, tie_weights=False, adaptive_cutoffs=(8, 20)))
    assert ModelConfig.from_json(ADAPTIVE.to_json()) == ADAPTIVE


def test_vocabulary_of_an_adaptive_model_cannot_grow() -> None:
    model = CharRNN(ADAPTIVE)
    with pytest.raises(ValueError, match="cannot grow"):
        model.grow_vocab(45)
    model.grow_vocab(40)  # the same size is no change


def test_adaptive_model_learns_and_reloads_to_the_same_text(tmp_path: Path) -> None:
    config = ModelConfig(vocab_size=1, cell="gru", layers=1, embed=16, hidden=32, dropout=0.0, tie_weights=False,
                         adaptive_cutoffs=(10, 30))
    result, model, vocab = train_model(LYRICS, config, fast(epochs=20), out_dir=tmp_path)
    # A vocabulary of 40; the plain softmax reaches 3.3 with this recipe, the adaptive one 3.4.
    assert result.best_val_ppl < 5.0, result.best_val_ppl
    loaded = load_checkpoint(tmp_path / "best")
    assert loaded.model.config.adaptive_cutoffs == (10, 30)
    greedy = SampleConfig(greedy=True, max_length=40, stop_at_blank_line=False)
    model.eval()
    expected = generate(model, vocab, "我", greedy).text
    assert_same_greedy_text(loaded.model, loaded.vocab, generate(loaded.model, loaded.vocab, "我", greedy).text,
                            expected)
    ids = torch.tensor(vocab.encode(LYRICS[:400]))
    torch.testing.assert_close(evaluate(loaded.model, ids).nll, evaluate(model, ids).nll, atol=1e-4, rtol=0)


def test_cli_trains_an_adaptive_model(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(LYRICS, encoding="utf-8")
    args = ["--layers", "1", "--hidden", "24", "--embed", "16", "--epochs", "1", "--batch-size", "8", "--seq-len",
            "16", "--sample-every", "0", "--device", "cpu"]
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), *args, "--adaptive-softmax", "10,30"]) == 0
    config = load_checkpoint(tmp_path / "run" / "best").model.config
    assert config.adaptive_cutoffs == (10, 30) and not config.tie_weights
    with pytest.raises(SystemExit):
        main(["train", str(corpus), "--out", str(tmp_path / "bad"), *args, "--adaptive-softmax", "30,10"])
