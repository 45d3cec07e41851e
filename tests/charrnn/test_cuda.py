"""The CUDA paths (mixed precision training, batched generation on the GPU); skipped without CUDA."""

from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.generation.batching import generate_many
from charrnn.generation.sample import generate
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.text.forms import follows, tune_plan
from charrnn.train_config import TrainConfig, select_device
from tests.helpers.models import LYRICS, assert_same_greedy_text

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_auto_device_picks_cuda() -> None:
    assert select_device("auto").type == "cuda"


def test_mixed_precision_training_and_gpu_generation(tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=20,
        batch_size=8,
        seq_len=16,
        lr=1e-2,
        warmup_steps=5,
        patience=0,
        unk_min_count=1,
        device="cuda",
        amp=True,
    )
    result, model, vocab = train_model(
        LYRICS,
        ModelConfig(vocab_size=1, layers=1, embed=32, hidden=64, dropout=0.0),
        config,
        out_dir=tmp_path,
        checkpoint_every_s=0,
    )
    assert result.best_val_ppl < len(vocab) / 2
    assert next(model.parameters()).device.type == "cuda"
    prefixes = ["我", "天青色", "the night", ""]
    configs = [SampleConfig(greedy=True, max_length=30, stop_at_blank_line=False) for _ in prefixes]
    together = generate_many(model, vocab, list(zip(prefixes, configs, strict=True)))
    alone = [generate(model, vocab, p, c) for p, c in zip(prefixes, configs, strict=True)]
    for batched, single in zip(together, alone, strict=True):  # GPU kernels differ by batch size too
        assert_same_greedy_text(model.cpu(), vocab, batched.text, single.text)
    model.cuda()
    ckpt = load_checkpoint(tmp_path / "best", device="cuda")
    x = torch.tensor([vocab.encode("我不要再想你")], device="cuda")
    ckpt.model.eval()
    assert torch.isfinite(ckpt.model(x)[0]).all()
    resumed = load_checkpoint(tmp_path / "last", device="cuda", with_train_state=True)
    assert resumed.train_state is not None and "rng.cuda" in resumed.train_state[0]


def test_a_tune_ranked_by_phrase_runs_on_the_gpu() -> None:
    """Siblings set aside at a clause's end keep their state on the device it was computed on."""
    base = load_checkpoint(BASE, device="cuda")
    config = SampleConfig(form="浣溪沙", rhyme=True, phrase_candidates=4, seed=3)
    lyric = generate(base.model, base.vocab, "春风", config, words=base.words).lyric
    assert follows(lyric, tune_plan("浣溪沙")), lyric
