import math
from pathlib import Path

import torch

from charrnn.checkpoint import load_checkpoint, save_checkpoint
from charrnn.config import SampleConfig
from charrnn.finetune import finetune, grow_vocab
from charrnn.generation.sample import generate
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.text.forms import REGISTER_TUNE
from charrnn.train_config import TrainConfig
from tests.helpers.models import LYRICS, Tiny, assert_same_greedy_text

NEW_SONG = "蒲公英的约定\n一起长大的约定\n说好要一起旅行\n是你如今唯一坚持的任性\n" * 12


GREEDY = SampleConfig(greedy=True, repetition_penalty=1.0, max_length=40, stop_at_blank_line=False)


def test_vocab_growth_keeps_old_prompt_outputs(tiny_trained: Tiny, tmp_path: Path) -> None:
    """The promise: old prompts get the same greedy text (up to a float near tie) and the same logits."""
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c", tiny_trained.model, tiny_trained.vocab))
    old_vocab = ckpt.vocab
    prompts = ["我不要", "the night", "天青色"]
    before = {p: generate(ckpt.model, old_vocab, p, GREEDY).text for p in prompts}
    x = torch.tensor([old_vocab.encode("我不要再想你")])
    logits_before = ckpt.model.eval()(x)[0]
    vocab, added = grow_vocab(ckpt.single, old_vocab, NEW_SONG)
    assert set(added) >= {"蒲", "公", "英"} and vocab.symbols[: len(old_vocab)] == old_vocab.symbols
    for prompt in prompts:
        after = generate(ckpt.model, vocab, prompt, GREEDY).text
        assert_same_greedy_text(ckpt.model, vocab, after, before[prompt])
    # Old characters keep their logits (<unk> gives half its mass to the new ones). The grown output layer
    # may run another matmul kernel: equal to float32 rounding (assert_close defaults).
    torch.testing.assert_close(ckpt.single(x)[0][..., 1 : len(old_vocab)], logits_before[..., 1:])


def test_finetune_learns_new_text_and_records_lineage(tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=40, batch_size=8, seq_len=16, lr=5e-3, warmup_steps=5, patience=0, unk_min_count=1, device="cpu"
    )
    train_model(
        LYRICS,
        ModelConfig(vocab_size=1, layers=1, embed=48, hidden=48, dropout=0.0),
        config,
        out_dir=tmp_path / "base",
        checkpoint_every_s=0,
    )
    base = load_checkpoint(tmp_path / "base" / "best")
    result = finetune(
        base,
        NEW_SONG,
        LYRICS,
        TrainConfig(**{**config.to_json(), "epochs": 250}),
        replay_fraction=0.5,
        out_dir=tmp_path / "tuned",
    )
    assert result.after_new.nll < result.before_new.nll - 1.0  # it learnt the new song
    assert math.isfinite(result.after_old.nll) and result.after_old.ppl < 3 * result.before_old.ppl
    tuned = load_checkpoint(tmp_path / "tuned")
    assert tuned.meta["parent"] == base.weights_sha256
    assert tuned.metrics["new_ppl_after"] < tuned.metrics["new_ppl_before"]
    assert len(tuned.vocab) > len(base.vocab)
    assert (
        generate(
            tuned.model, tuned.vocab, "蒲公英", SampleConfig(greedy=True, repetition_penalty=1.0, max_length=3)
        ).text
        == "蒲公英的约定"
    )


def test_a_fine_tuned_ci_model_keeps_its_register_line(tiny_trained: Tiny, tmp_path: Path) -> None:
    """A model that learnt the Song ci reads a tune's name before free Chinese lines (Checkpoint.register); its
    fine-tunes on people's corpus text (what /retrain promotes) still do, and a model of other lyrics still does not."""
    config = TrainConfig(epochs=1, batch_size=8, seq_len=16, lr=1e-3, warmup_steps=1, patience=0, device="cpu")
    for corpora, register in (({"songci": "0" * 64}, REGISTER_TUNE + "\n"), ({"jaychou": "0" * 64}, "")):
        name = next(iter(corpora))
        parent = load_checkpoint(save_checkpoint(tmp_path / name, tiny_trained.model, tiny_trained.vocab,
                                                 extra={"corpora": corpora}))
        assert parent.register == register
        finetune(parent, NEW_SONG, LYRICS, config, out_dir=tmp_path / f"{name}-tuned")
        tuned = load_checkpoint(tmp_path / f"{name}-tuned")
        assert "corpora" not in tuned.meta and tuned.register == register
