"""The transformer ``benchmarks/right_size.py`` measures against: it learns, and it is scored as a CharRNN is."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from tiny_gpt import GPTConfig, GPTTrainConfig, TinyGPT, train_gpt

from charrnn.evaluate import HeldOut, evaluate, reference_vocab
from charrnn.model import count_parameters
from charrnn.vocab import Vocab

TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 40


def test_nanogpts_cpu_configuration_has_its_parameter_count() -> None:
    # nanoGPT reports 0.80M for Shakespeare's 65 characters, position embeddings left out (the head is tied).
    model = TinyGPT(GPTConfig(vocab_size=65))
    assert count_parameters(model) - 64 * 128 == 795_904  # 4 x (12 x 128^2 + 2 LayerNorms) + 65 x 128 + 128


def test_long_text_is_scored_with_at_least_half_a_block_of_context() -> None:
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=11, block=8, layers=1, heads=2, width=16)).eval()
    x = torch.randint(0, 11, (2, 30))
    with torch.no_grad():
        whole, state = model(x[:, :20])
        # Within one block: plain causal logits (the same, up to float rounding: the attention runs over another
        # length, and its kernel may sum in another order).
        torch.testing.assert_close(whole[:, :8], model.logits(x[:, :8]), rtol=1e-5, atol=1e-5)
        # Position 13 is in the stride [12, 16), read in the window of the block that ends at 16.
        torch.testing.assert_close(whole[:, 13], model.logits(x[:, 8:16])[:, 5], rtol=1e-5, atol=1e-5)
        # The state carries the last block - 1 characters: the next call reads them as context.
        after, _ = model(x[:, 20:30], state)
        torch.testing.assert_close(after, model(x)[0][:, 20:30], rtol=1e-5, atol=1e-5)


def test_a_few_steps_lower_the_held_out_loss() -> None:
    vocab = Vocab.build(TEXT)
    cut = len(TEXT) * 9 // 10
    train_ids = torch.tensor(vocab.encode(TEXT[:cut]))
    val = HeldOut.of_text(TEXT[cut:], vocab, reference_vocab(TEXT[:cut]))
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=len(vocab), block=16, layers=1, heads=2, width=32))
    before = evaluate(model, val).nll
    tiny_schedule = GPTTrainConfig(batch_size=8, lr=3e-3, warmup_steps=5, max_steps=60)
    result = train_gpt(model, train_ids, val, seconds=3600.0, config=tiny_schedule)  # the steps end it, not the time
    assert result.steps == 60
    assert result.val_nll < before - 0.5  # from about ln(V) towards the text's few choices
    x = train_ids[None, :16]
    assert F.cross_entropy(model.logits(x)[0, :-1], x[0, 1:]).item() < before
