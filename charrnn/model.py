"""One character-level language model class for the RNN, LSTM and GRU cells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CellType = Literal["rnn", "lstm", "gru"]
CELLS: tuple[CellType, ...] = ("rnn", "lstm", "gru")
# LSTM state is (h, c); the others carry h alone. Each tensor is (layers, B, hidden). A mixture of models
# carries a tuple of its components' states.
State = torch.Tensor | tuple[Any, ...]

# When the vocabulary grows, the new characters take this share of <unk>'s probability (see grow_vocab).
NEW_SYMBOLS_SHARE_OF_UNK = 0.5
ADAPTIVE_DIV = 4.0  # each tail cluster of an adaptive softmax is this many times narrower than the last
UNK_INDEX = 0  # charrnn.vocab.UNK_ID; the vocabulary module is not imported here


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    # Defaults chosen by held-out perplexity on the Jay Chou corpus (63k characters) under a 10-minute
    # CPU budget: one wide GRU layer beat two narrower ones and every LSTM tried (README, "Quality").
    # `charrnn train` sizes its model to each corpus (charrnn.sizing); for a small lyric corpus, this one.
    cell: CellType = "gru"
    layers: int = 1
    embed: int = 512
    hidden: int = 512
    # A lyric corpus is tiny and validation is new songs: the model memorises within ~5 epochs unless
    # dropout is this strong (0.35 -> 0.8 took held-out perplexity from 190 to 154).
    dropout: float = 0.8
    # Tying the input and output embeddings saves V*E parameters and regularises the rare characters.
    tie_weights: bool = True
    # An adaptive softmax for large vocabularies (thousands of Chinese characters), where the output
    # layer dominates: the most frequent characters (ids below the first cutoff: vocabularies are sorted
    # by frequency) get a full-width head, rarer clusters narrower projections (``ADAPTIVE_DIV`` times
    # narrower each). Empty: the plain softmax. An adaptive model is not tied and its vocabulary cannot
    # grow (fine-tuning on new characters needs the plain one).
    adaptive_cutoffs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell type {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("vocab_size", "layers", "embed", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        cutoffs = tuple(self.adaptive_cutoffs)
        object.__setattr__(self, "adaptive_cutoffs", cutoffs)  # JSON gives a list
        if cutoffs:
            if any(c < 1 for c in cutoffs) or list(cutoffs) != sorted(set(cutoffs)):
                raise ValueError(f"adaptive cutoffs must be increasing positive sizes, got {list(cutoffs)}")
            if self.tie_weights:
                raise ValueError("an adaptive softmax cannot be tied to the input embedding (tie_weights=False)")

    @property
    def adaptive(self) -> bool:
        return bool(self.adaptive_cutoffs)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["adaptive_cutoffs"] = list(self.adaptive_cutoffs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**{**data, "adaptive_cutoffs": tuple(data.get("adaptive_cutoffs", ()))})


class CharRNN(nn.Module):
    """Embedding -> stacked recurrent cell -> (projection) -> decoder over the vocabulary."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        rnn_class = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[config.cell]
        self.embedding = nn.Embedding(config.vocab_size, config.embed)
        self.drop = nn.Dropout(config.dropout)
        self.rnn = rnn_class(
            config.embed,
            config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        # Tied weights need the decoder input to live in the embedding space.
        self.proj = (
            nn.Linear(config.hidden, config.embed) if config.tie_weights and config.hidden != config.embed else None
        )
        self.decoder: nn.Linear | None = None
        self.adaptive: nn.AdaptiveLogSoftmaxWithLoss | None = None
        if config.adaptive:
            if config.adaptive_cutoffs[-1] >= config.vocab_size:
                raise ValueError(f"adaptive cutoffs {list(config.adaptive_cutoffs)} must be below the vocabulary "
                                 f"size {config.vocab_size}")
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                config.hidden, config.vocab_size, list(config.adaptive_cutoffs), div_value=ADAPTIVE_DIV
            )
        else:
            self.decoder = nn.Linear(config.embed if config.tie_weights else config.hidden, config.vocab_size)
            if config.tie_weights:
                self.decoder.weight = self.embedding.weight
            nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits for the next character at every position, and the state after the last one.

        (An adaptive model gives log-probabilities, which are logits too: softmax leaves them as they are.)
        """
        out, state = self._hidden(x, state)
        return self.decode(out), state

    def loss(self, x: torch.Tensor, y: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Mean cross-entropy of the targets ``y`` (B, T), and the state after the last input.

        The adaptive softmax computes a rare cluster only for the targets that fall in it: the speed-up.
        """
        out, state = self._hidden(x, state)
        if self.adaptive is not None:
            # In float32 whatever autocast says: its tail clusters copy bfloat16 results into a float32 buffer.
            with torch.autocast(out.device.type, enabled=False):
                return self.adaptive(out.float().flatten(0, 1), y.flatten()).loss, state
        logits = self.decode(out)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten()), state

    def _hidden(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        emb = self.drop(self.embedding(x))  # (B, T, E)
        out, state = self.rnn(emb, state)  # (B, T, H)
        return self.drop(out), state

    def prime(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, State]:
        """Read sequences of different lengths in one packed pass.

        Returns the logits after each sequence's last character, ``(B, V)``, and the state there: how
        requests join a running batch without padding changing what they read.
        """
        device = next(self.parameters()).device
        lengths = torch.tensor([len(sequence) for sequence in sequences])
        padded = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
        for i, sequence in enumerate(sequences):
            padded[i, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        packed = pack_padded_sequence(self.embedding(padded.to(device)), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, state = self.rnn(packed, None)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, H)
        last = out[torch.arange(len(sequences)), lengths.to(out.device) - 1]  # (B, H)
        return self.decode(last), state

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One character per row, ``(B,)``: the next logits ``(B, V)`` and the new state."""
        logits, state = self(tokens[:, None], state)
        return logits[:, -1], state

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """Recurrent outputs (..., H) to vocabulary logits (..., V)."""
        if self.adaptive is not None:
            with torch.autocast(out.device.type, enabled=False):
                flat = self.adaptive.log_prob(out.reshape(-1, out.shape[-1]).to(self.adaptive.head.weight.dtype))
            return flat.reshape(*out.shape[:-1], self.config.vocab_size)
        if self.proj is not None:
            out = self.proj(out)
        assert self.decoder is not None
        return cast(torch.Tensor, self.decoder(out))

    def set_dropout(self, dropout: float) -> None:
        """Change the dropout of a built model (fine-tuning a pretrained model on a small corpus)."""
        self.config = ModelConfig(**{**self.config.to_json(), "dropout": dropout})
        self.drop.p = dropout
        if self.config.layers > 1:
            self.rnn.dropout = dropout

    def grow_vocab(self, vocab_size: int) -> None:
        """Add rows for new characters so that the model, before any training, behaves as it did.

        Until now it read and predicted these characters as ``<unk>``. So each new row starts as a copy
        of the ``<unk>`` row (embedding and output weights: the model reads a new character as it read
        it before), and the new characters split half of ``<unk>``'s probability among them (biases
        ``b_unk + log(1/2k)``, and ``b_unk + log(1/2)`` for ``<unk>``). The normaliser is unchanged, so
        every old character keeps its probability at every step, exactly, and the mass of "unknown"
        characters is unchanged too; fine-tuning then tells the new characters apart.
        """
        old = self.config.vocab_size
        if self.decoder is None and vocab_size != old:
            raise ValueError("the vocabulary of an adaptive-softmax model cannot grow: fine-tune a plain one")
        assert self.decoder is not None or vocab_size == old
        if vocab_size < old:
            raise ValueError(f"the vocabulary only grows: {vocab_size} < {old}")
        if vocab_size == old:
            return
        unk, added = UNK_INDEX, vocab_size - old
        weight = self.embedding.weight.data
        new_embedding = nn.Embedding(vocab_size, self.config.embed).to(weight.device, weight.dtype)
        new_embedding.weight.data[:old] = weight
        new_embedding.weight.data[old:] = weight[unk]
        assert self.decoder is not None
        bias = self.decoder.bias.data
        new_decoder = nn.Linear(self.decoder.in_features, vocab_size).to(bias.device, bias.dtype)
        new_decoder.bias.data[:old] = bias
        new_decoder.bias.data[old:] = bias[unk] + math.log(NEW_SYMBOLS_SHARE_OF_UNK / added)
        new_decoder.bias.data[unk] = bias[unk] + math.log(1.0 - NEW_SYMBOLS_SHARE_OF_UNK)
        if self.config.tie_weights:
            new_decoder.weight = new_embedding.weight  # the new rows are <unk>'s, on both sides
        else:
            new_decoder.weight.data[:old] = self.decoder.weight.data
            new_decoder.weight.data[old:] = self.decoder.weight.data[unk]
        self.embedding, self.decoder = new_embedding, new_decoder
        self.config = ModelConfig(**{**self.config.to_json(), "vocab_size": vocab_size})


# The helpers below work on any nesting of tuples of (layers, B, hidden) tensors.


def select_state(state: State, rows: torch.Tensor) -> State:
    """Keep only the given batch rows (dim 1) of a state."""
    if isinstance(state, tuple):
        return tuple(select_state(part, rows) for part in state)
    return state.index_select(1, rows)


def concat_states(states: Sequence[State]) -> State:
    """Stack states of separate batches into one batch (dim 1)."""
    first = states[0]
    if isinstance(first, tuple):
        parts = cast(Sequence[tuple[Any, ...]], states)
        return tuple(concat_states([s[i] for s in parts]) for i in range(len(first)))
    return torch.cat(list(cast(Sequence[torch.Tensor], states)), dim=1)


def detach_state(state: State) -> State:
    """Cut the graph at a batch boundary: truncated backpropagation through time."""
    if isinstance(state, tuple):
        return tuple(detach_state(part) for part in state)
    return state.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
