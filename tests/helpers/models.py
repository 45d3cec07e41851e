"""Models for the tests: a lyric corpus, tiny models (trained fast or not at all), a model whose output is known, and
greedy text compared with a stated tolerance for near ties."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from charrnn.model import CharRNN, ModelConfig
from charrnn.train_config import TrainConfig
from charrnn.vocab import Vocab

LYRICS = (
    "我不要再想你\n我不能再想\n天青色等烟雨\n而我在等你\n炊烟袅袅升起\n隔江千万里\n"
    "the night is long\nthe road is gone\nI sing along\n"
) * 8


@dataclass(frozen=True)
class Tiny:
    model: CharRNN
    vocab: Vocab


def tiny_untrained(cell: str = "gru", seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    vocab = Vocab.build(LYRICS)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), cell=cell, layers=1, embed=16, hidden=32, dropout=0.0))  # type: ignore[arg-type]
    return Tiny(model.eval(), vocab)


def constant_model(vocab: Vocab, probs: list[float]) -> CharRNN:
    """A real CharRNN whose next-character distribution is ``probs`` whatever it reads."""
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=2, hidden=2, dropout=0.0, tie_weights=False))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.copy_(torch.tensor(probs).log())
    return model.eval()


# Greedy decoding is an argmax over float logits. A batch of 64 and a batch of 1 (or a grown output
# layer) take different matrix kernels on different CPUs, so logits agree only to float32 rounding
# (~1e-6 relative), and an argmax between two characters that close may flip. What the library
# promises, and what these tests check on the discrete text, is: identical greedy text up to the first
# such near tie. TIE_TOLERANCE is far above float32 rounding for logits of this size, and far below
# any gap a trained model's real preferences show.
TIE_TOLERANCE = 1e-3


def greedy_margin(model: CharRNN, vocab: Vocab, text: str, position: int) -> float:
    """Gap between the two best logits when the model predicts ``text[position]`` from what precedes it.

    The context is what ``BatchGenerator`` feeds: a line break, then the known characters.
    """
    context = [vocab.encode("\n")[0]] + [i for i in vocab.encode(text[:position]) if i != 0]
    with torch.inference_mode():
        logits, _ = model.eval()(torch.tensor([context]))
    values = logits[0, -1, 1:].topk(2).values  # <unk> (index 0) is never chosen
    return float(values[0] - values[1])


def assert_same_greedy_text(
    model: CharRNN, vocab: Vocab, got: str, expected: str, tolerance: float = TIE_TOLERANCE
) -> None:
    """``got == expected``, or they part at a near tie (see TIE_TOLERANCE), which is all a float argmax allows."""
    if got == expected:
        return
    pairs = enumerate(zip(got, expected, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), min(len(got), len(expected)))
    margin = greedy_margin(model, vocab, expected, first)
    assert margin < tolerance, (
        f"greedy texts part at {first}, where the choice was clear (margin {margin:.2e}):\n{got!r}\n{expected!r}"
    )


TINY = ModelConfig(vocab_size=1, cell="gru", layers=1, embed=16, hidden=32, dropout=0.0)


def fast(**kwargs: object) -> TrainConfig:
    base = {
        "epochs": 4,
        "batch_size": 8,
        "seq_len": 16,
        "lr": 1e-2,
        "warmup_steps": 2,
        "patience": 0,
        "unk_min_count": 1,
        "device": "cpu",
        "seed": 0,
    }
    return TrainConfig(**{**base, **kwargs})  # type: ignore[arg-type]


# bfloat16 keeps 8 bits of mantissa: logits of size 10-30 are resolved to about 0.1.
BFLOAT16_TIE_TOLERANCE = 0.25
