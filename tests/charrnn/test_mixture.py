"""Mixtures of models: probabilities, weights, checkpoints, generation, and the transfer recipe."""

import json
import math
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, save_mixture
from charrnn.config import SampleConfig
from charrnn.data import split_corpus
from charrnn.evaluate import HeldOut, evaluate, reference_vocab
from charrnn.generation.batching import generate_many
from charrnn.generation.sample import generate
from charrnn.mixture import MIN_WEIGHT, MixtureLM, fit_weights
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.train_config import TrainConfig
from charrnn.transfer import TransferConfig, transfer
from charrnn.vocab import UNK, Vocab
from tests.helpers.models import LYRICS, constant_model


def test_mixture_probabilities_are_the_weighted_sum_over_the_union_vocabulary() -> None:
    first, second = Vocab((UNK, "a", "b")), Vocab((UNK, "b", "c"))
    mixture = MixtureLM([constant_model(first, [0.2, 0.5, 0.3]), constant_model(second, [0.1, 0.6, 0.3])],
                        [first, second], [0.25, 0.75])
    assert mixture.vocab.symbols == (UNK, "a", "b", "c")
    with torch.inference_mode():
        log_probs, _ = mixture(torch.tensor([[1, 2, 3]]))  # union ids: a, b, c
    expected = [0.25 * 0.2 + 0.75 * 0.1, 0.25 * 0.5, 0.25 * 0.3 + 0.75 * 0.6, 0.75 * 0.3]  # <unk>, a, b, c
    torch.testing.assert_close(log_probs[0, -1].exp(), torch.tensor(expected), rtol=1e-5, atol=1e-7)
    assert float(log_probs.exp().sum(-1).max()) == pytest.approx(1.0, abs=1e-5)
    # Scored under the rule like any model: here against the reference {a, b}: c is "unknown".
    result = evaluate(mixture, HeldOut.of_text("abc", mixture.vocab, frozenset("ab")))
    assert result.nll == pytest.approx(-(math.log(expected[2]) + math.log(expected[0] + expected[3])) / 2, rel=1e-5)


def test_fitted_weights_recover_a_mixture_and_never_lose_to_the_best_component() -> None:
    gen = torch.Generator().manual_seed(0)
    good, bad = torch.rand(5000, generator=gen) * 0.5 + 0.4, torch.rand(5000, generator=gen) * 0.5 + 0.1
    logprobs = torch.stack([good.log(), bad.log()])
    weights = fit_weights(logprobs)
    mixed = torch.logsumexp(logprobs.double() + torch.tensor(weights).double().log()[:, None], 0).mean()
    assert sum(weights) == pytest.approx(1.0) and weights[0] > weights[1]
    # Never worse than the best component, but for the floor every weight keeps (MIN_WEIGHT).
    assert float(mixed) >= float(logprobs.double().mean(1).max()) + math.log(1 - 2 * MIN_WEIGHT) - 1e-9
    assert fit_weights(torch.stack([good.log(), good.log()])) == pytest.approx([0.5, 0.5])
    # Where one component is better everywhere, the other still keeps the floor, not nothing.
    assert fit_weights(torch.stack([good.log(), (good * 0.5).log()])) == pytest.approx(
        [1 - MIN_WEIGHT, MIN_WEIGHT], rel=1e-3)


def test_a_character_only_the_weaker_component_knows_keeps_a_finite_score() -> None:
    first, second = Vocab((UNK, "a", "b")), Vocab((UNK, "a", "b", "c"))
    weights = fit_weights(torch.tensor([[-0.1, -0.1], [-2.0, -2.0]]))  # the first is better on this text
    mixture = MixtureLM([constant_model(first, [0.2, 0.4, 0.4]), constant_model(second, [0.1, 0.3, 0.3, 0.3])],
                        [first, second], weights)
    result = evaluate(mixture, HeldOut.of_text("abcab", mixture.vocab, frozenset("abc")))
    assert math.isfinite(result.nll)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mix")
    config = TrainConfig(epochs=30, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=5, patience=0, unk_min_count=1,
                         device="cpu")
    for name, cell, text in (("a", "gru", LYRICS), ("b", "lstm", LYRICS + "蒲公英的约定\n" * 20)):
        train_model(text, ModelConfig(vocab_size=1, cell=cell, layers=1, embed=16, hidden=24, dropout=0.0), config,
                    out_dir=root / name, checkpoint_every_s=0)
    return root / "a" / "best", root / "b" / "best"


def test_mixture_checkpoints_round_trip_and_refuse_tampering(two_models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = load_checkpoint(two_models[0]), load_checkpoint(two_models[1])
    save_mixture(tmp_path / "m", [("corpus", a), ("adapted", b)], [0.7, 0.3], metrics={"x": 1.0})
    loaded = load_checkpoint(tmp_path / "m")
    assert isinstance(loaded.model, MixtureLM) and loaded.model.config.weights == (0.7, 0.3)
    assert "蒲" in loaded.vocab and loaded.metrics == {"x": 1.0} and len(loaded.weights_sha256) == 64
    built = MixtureLM([a.single, b.single], [a.vocab, b.vocab], [0.7, 0.3]).eval()
    x = torch.tensor([loaded.vocab.encode("我不要再想你")])
    torch.testing.assert_close(loaded.model.eval()(x)[0], built(x)[0])
    with pytest.raises(CheckpointError, match="mixture"):
        _ = loaded.single
    # Two symbols of the union vocabulary swapped in meta.json: refused (the fingerprint covers it).
    meta_path = tmp_path / "m" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["vocab"][1], meta["vocab"][2] = meta["vocab"][2], meta["vocab"][1]
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_checkpoint(tmp_path / "m")
    # A component swapped for another model's weights: refused.
    save_checkpoint(tmp_path / "m" / "adapted", a.single, a.vocab)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "m")


def test_a_mixture_generates_alone_and_in_a_batch_alike(two_models: tuple[Path, Path]) -> None:
    a, b = load_checkpoint(two_models[0]), load_checkpoint(two_models[1])
    mixture = MixtureLM([a.single, b.single], [a.vocab, b.vocab], [0.5, 0.5])
    configs = [("我", SampleConfig(max_length=40, seed=s, rhyme=True)) for s in range(4)]
    configs.append(("蒲公英", SampleConfig(seed=9)))
    together = generate_many(mixture, mixture.vocab, configs)
    for (prefix, config), batched in zip(configs, together, strict=True):
        assert batched.text == generate(mixture, mixture.vocab, prefix, config).text
        assert batched.text.startswith(prefix) and "\N{REPLACEMENT CHARACTER}" not in batched.text


def test_transfer_writes_a_mixture_no_worse_on_held_out_text_than_either_part(
    two_models: tuple[Path, Path], tmp_path: Path
) -> None:
    base = load_checkpoint(two_models[1])  # stands in for the pretrained base
    corpus = LYRICS * 3 + "窗外的麻雀 在电线杆上多嘴\n你说这一句 很有夏天的感觉\n" * 10
    config = TransferConfig(minutes=0.1, corpus_model=ModelConfig(vocab_size=1, embed=16, hidden=32, dropout=0.2),
                            device="cpu")
    result = transfer(corpus, base, tmp_path / "t", config)
    mixture = load_checkpoint(result.checkpoint)
    assert isinstance(mixture.model, MixtureLM) and sum(result.weights.values()) == pytest.approx(1.0)
    assert result.val_ppl["mixture"] <= min(result.val_ppl["corpus"], result.val_ppl["adapted"]) * (1 + 1e-9)
    # What the mixture reports is what `eval` measures on the corpus's held-out tail.
    split = TrainConfig()
    train_text, val_text = split_corpus(corpus, split.val_fraction, split.split, split.seed)
    scored = evaluate(mixture.model, HeldOut.of_text(val_text, mixture.vocab, reference_vocab(train_text)))
    assert scored.ppl == pytest.approx(result.val_ppl["mixture"], rel=1e-4)
    assert mixture.meta["parent"] == base.weights_sha256 and mixture.meta["train_config"]["val_fraction"] == 0.1
    corpus_part = load_checkpoint(tmp_path / "t" / "mixture" / "corpus")
    assert corpus_part.single.config.hidden == 32 and corpus_part.meta["init_from"] == "base"


def test_fine_tuning_a_mixture_tunes_its_adapted_part_and_grows_its_vocabulary(
    two_models: tuple[Path, Path], tmp_path: Path
) -> None:
    from charrnn.finetune import finetune, save_finetuned

    a, b = load_checkpoint(two_models[0]), load_checkpoint(two_models[1])
    save_mixture(tmp_path / "m", [("corpus", a), ("adapted", b)], [0.6, 0.4])
    parent = load_checkpoint(tmp_path / "m")
    song = "天空之城 在哭泣\n雾里看花 水中望月\n" * 12
    config = TrainConfig(epochs=20, batch_size=8, seq_len=16, lr=5e-3, warmup_steps=5, patience=0, unk_min_count=1,
                         device="cpu")
    result = finetune(parent, song, LYRICS, config)
    assert [name for name, _ in result.components] == ["corpus", "adapted"] and result.weights == (0.6, 0.4)
    assert result.vocab.symbols[: len(parent.vocab)] == parent.vocab.symbols and "城" in result.vocab
    assert result.after_new.nll < result.before_new.nll  # it learnt the new song
    assert result.components[0][1] is not None and result.components[0][1].path == parent.path / "corpus"
    save_finetuned(result, tmp_path / "child", train_config=config.to_json(), corpus_sha256=None,
                   parent=parent.weights_sha256)
    child = load_checkpoint(tmp_path / "child")
    assert isinstance(child.model, MixtureLM) and child.vocab == result.vocab
    assert child.meta["parent"] == parent.weights_sha256
    assert load_checkpoint(tmp_path / "child" / "corpus").weights_sha256 == a.weights_sha256  # untouched
