import pytest
import torch
from torch import nn

from charrnn.model import CELLS, CharRNN, ModelConfig, concat_states, select_state


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("tie", [True, False])
def test_each_cell_forward_shapes_and_state(cell: str, tie: bool) -> None:
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=11, cell=cell, layers=2, embed=8, hidden=12, tie_weights=tie))  # type: ignore[arg-type]
    x = torch.randint(0, 11, (3, 5))
    logits, state = model(x)
    assert logits.shape == (3, 5, 11)
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (2, 3, 12)
    # Feeding the sequence in two halves with the state carried gives the same logits.
    first, mid = model.eval()(x[:, :2])
    second, _ = model(x[:, 2:], mid)
    full, _ = model(x)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full)


def test_unknown_cell_lists_the_options() -> None:
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        ModelConfig(vocab_size=5, cell="transformer")  # type: ignore[arg-type]


def test_tied_weights_share_one_tensor() -> None:
    model = CharRNN(ModelConfig(vocab_size=9, embed=6, hidden=10, tie_weights=True))
    assert model.decoder.weight is model.embedding.weight


def test_tanh_rnn_equations_match_nn_rnn() -> None:
    """h_t = tanh(x_t W_xh + h_{t-1} W_hh + b), as the d2l chapter writes it."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=9, cell="rnn", layers=1, embed=4, hidden=6, tie_weights=False)).eval()
    rnn = model.rnn
    assert isinstance(rnn, nn.RNN)
    x = model.embedding(torch.randint(0, 9, (2, 7)))
    expected, h_last = rnn(x)
    w_xh, w_hh = rnn.weight_ih_l0.T, rnn.weight_hh_l0.T
    b = rnn.bias_ih_l0 + rnn.bias_hh_l0
    h = torch.zeros(2, 6)
    outputs = []
    for t in range(7):
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)
        outputs.append(h)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected)
    torch.testing.assert_close(h, h_last[0])


def test_lstm_gate_equations_match_nn_lstm() -> None:
    """Input, forget and output gates and the candidate cell, as the seeds write them."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=9, cell="lstm", layers=1, embed=3, hidden=5, tie_weights=False)).eval()
    lstm = model.rnn
    assert isinstance(lstm, nn.LSTM)
    x = model.embedding(torch.randint(0, 9, (2, 6)))
    expected, (_h_last, c_last) = lstm(x)
    # PyTorch stacks the gate weights in the order input, forget, cell candidate, output.
    w_x = lstm.weight_ih_l0.chunk(4)
    w_h = lstm.weight_hh_l0.chunk(4)
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4)
    h, c = torch.zeros(2, 5), torch.zeros(2, 5)
    outputs = []
    for t in range(6):
        x_t = x[:, t]
        i = torch.sigmoid(x_t @ w_x[0].T + h @ w_h[0].T + b[0])
        f = torch.sigmoid(x_t @ w_x[1].T + h @ w_h[1].T + b[1])
        c_tilde = torch.tanh(x_t @ w_x[2].T + h @ w_h[2].T + b[2])
        o = torch.sigmoid(x_t @ w_x[3].T + h @ w_h[3].T + b[3])
        c = f * c + i * c_tilde
        h = o * torch.tanh(c)
        outputs.append(h)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected)
    torch.testing.assert_close(c, c_last[0])


@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocab_keeps_old_outputs(tie: bool) -> None:
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=10, cell="lstm", layers=1, embed=8, hidden=8, tie_weights=tie)).eval()
    x = torch.randint(0, 10, (2, 9))
    before, _ = model(x)
    model.grow_vocab(13)
    after, _ = model(x)
    assert after.shape[-1] == 13 and model.config.vocab_size == 13
    # A 13-row output layer may take another matmul kernel than a 10-row one, so the old logits agree to
    # float32 rounding, not bit for bit: assert_close's float32 defaults (rtol 1.3e-6, atol 1e-5).
    torch.testing.assert_close(after[..., 1:10], before[..., 1:])
    p_before, p_after = before.detach().softmax(-1), after.detach().softmax(-1)
    torch.testing.assert_close(p_after[..., 1:10], p_before[..., 1:])  # every old character keeps its probability
    # The new characters share what <unk> had: half of it, in equal parts; <unk> keeps the other half.
    torch.testing.assert_close(p_after[..., 10:], (p_before[..., :1] / 6).expand(-1, -1, 3))
    torch.testing.assert_close(p_after[..., 0], p_before[..., 0] / 2)
    with pytest.raises(ValueError, match="only grows"):
        model.grow_vocab(5)


def test_state_select_and_concat_for_batching() -> None:
    model = CharRNN(ModelConfig(vocab_size=5, cell="lstm", layers=2, embed=4, hidden=4))
    _, state = model(torch.randint(0, 5, (3, 2)))
    assert isinstance(state, tuple)
    picked = select_state(state, torch.tensor([2, 0]))
    assert torch.equal(picked[0][:, 0], state[0][:, 2])
    joined = concat_states([picked, select_state(state, torch.tensor([1]))])
    assert joined[1].shape == (2, 3, 4)
