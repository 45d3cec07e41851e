"""Sampling one request: its settings, its result, and the plain loop that writes it.

The rules (temperature, top-k/top-p, repetition penalty, n-gram ban, rhyme, stop rules) live in
``charrnn.processors``; ``generate`` below and ``charrnn.batching.BatchGenerator`` (many requests at
once) apply the same ones, so every feature behaves identically alone and in a crowd.

Every request draws its randomness from its own seeded ``random.Random``, one number per character,
so a request's output does not depend on which other requests shared its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from charrnn.forms import plan_of
from charrnn.lookahead import look_ahead
from charrnn.lyrics import tidy
from charrnn.mixture import LanguageModel
from charrnn.music.melody import parse_melody
from charrnn.processors import (
    SAMPLING,
    SHAPING,
    Batch,
    FinishReason,
    Row,
    VocabTables,
    advance,
    choose,
    forced_or,
    new_row,
    process,
)
from charrnn.vocab import Vocab
from charrnn.words import whole_lines_end

MAX_LENGTH = 100_000
MIN_TARGET = 10  # fewer characters than a line


@dataclass(frozen=True)
class SampleConfig:
    """How one request samples. Invalid values raise ``ValueError`` with a one-line reason."""

    temperature: float = 0.8
    top_k: int = 0  # 0: off
    top_p: float = 0.95  # 1.0: off
    greedy: bool = False
    # Divides the logit of characters used in the last ``repetition_window`` characters (CTRL-style);
    # whitespace is exempt because line breaks are supposed to repeat.
    repetition_penalty: float = 1.2
    repetition_window: int = 16
    # Forbid any character that would repeat an n-gram already in the text; 0: off. A loop like
    # "我不要再想 我不要再想" is the most common complaint about char-RNN lyrics.
    no_repeat_ngram: int = 0
    # New characters at most, for free text (a plan or a target length ends on its own). A sample it stops
    # ends at its last whole line (or word), never in the middle.
    max_length: int = 200
    stop_after_lines: int = 0  # stop at the N-th generated line break; 0: no limit
    line_mode: bool = False  # one line from a line start (names, titles): stop at the line break
    stop_at_blank_line: bool = True  # a blank line ends a song in lyric corpora
    # Every rhyme position ends on its rhyme, by construction (charrnn.shape): in free lyrics every line end,
    # on the song's rhyme (set by its first line); in a tune or a pattern, the form's rhyme positions.
    rhyme: bool = False
    # The lyric's length in visible characters (prefix included, line breaks not): whole lines, no end
    # before 0.8x, none after 1.2x. 0: off (then max_length cuts, as for any text). A tune or a pattern has
    # its own length; a song form is sized by it.
    target_length: int = 0
    form: str = ""  # a ci tune by name (python -m charrnn forms list): its lines, punctuation and rhymes
    pattern: str = ""  # clause lengths, punctuation and rhymes, like 7,7,5,7 (charrnn.forms.parse_pattern)
    song: str = ""  # a song form: verses and a chorus that returns (charrnn.forms.SONG_FORMS)
    # A keyword plan (charrnn.topics): one word related to the prefix for each line, which the line is steered
    # to contain; Chinese lines of a shaped lyric (a target length, a form or a pattern) only.
    topics: bool = False
    # One script, the prefix's: after a Chinese opening no Latin letter ("I莫与他家…" came out of a base that also
    # learnt Shakespeare), after an English one no Han character; where the model can write that script at all.
    one_script: bool = True
    # Before a tune's or a pattern's rhyme, choose the character the rhyme can follow (charrnn.lookahead).
    look_ahead: bool = True
    seed: int | None = None
    # Teacher forcing: read this text instead of sampling, and score it (``Generation.logprob``) in the batch
    # with everyone else; how titles are fitted to lyrics (charrnn.titles). Unknown characters are left out.
    force: str = ""
    # A melody for a lyric (charrnn.music.melody): "4/4 C 3+4,7,5" is the meter, the key and each line's syllables;
    # the row writes ABC notes that fit it (a tune model's row, after the tune's header as its prefix).
    melody: str = ""

    def __post_init__(self) -> None:
        t = self.temperature
        if not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a positive finite number, got {t!r}")
        if not isinstance(self.max_length, int) or not 1 <= self.max_length <= MAX_LENGTH:
            raise ValueError(f"length must be between 1 and {MAX_LENGTH}, got {self.max_length!r}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty >= 1):
            raise ValueError(f"repetition_penalty must be at least 1, got {self.repetition_penalty}")
        if self.target_length and not MIN_TARGET <= self.target_length <= MAX_LENGTH:
            raise ValueError(f"target length must be 0 (off) or {MIN_TARGET} to {MAX_LENGTH}, got {self.target_length}")
        plan_of(self.form, self.pattern, self.song, self.target_length)  # a bad name or pattern fails here
        if self.melody:
            parse_melody(self.melody)
        if self.repetition_window < 0 or self.no_repeat_ngram < 0 or self.stop_after_lines < 0:
            raise ValueError("repetition_window, no_repeat_ngram and stop_after_lines cannot be negative")


@dataclass(frozen=True)
class Generation:
    prefix: str
    continuation: str
    skipped: tuple[str, ...]  # prefix characters the model has never seen, left out of its context
    logprob: float  # log-likelihood of the continuation under the untempered model, nats
    finish_reason: FinishReason

    @property
    def text(self) -> str:
        return self.prefix + self.continuation

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, len(self.continuation))

    @property
    def lyric(self) -> str:
        """The text as people should see it: clean lines (``charrnn.lyrics.tidy``)."""
        return tidy(self.text)


def generate(
    model: LanguageModel,
    vocab: Vocab,
    prefix: str = "",
    config: SampleConfig | None = None,
    words: frozenset[str] | None = None,
) -> Generation:
    """One request, start to finish: read the prefix, then choose and append until a stop rule fires.

    ``words``: the model's English words (``Checkpoint.words``); every English word written is one of them.
    """
    config = config or SampleConfig()
    device = next(model.parameters()).device
    tables = VocabTables(vocab, device, words)
    row = new_row(0, prefix, config, vocab, tables)
    batch = Batch.of([row], tables)
    model.eval()
    with torch.inference_mode():
        logits, state = model.prime([row.context])
        while True:
            logits = logits.float()
            shaped = look_ahead(model, state, process(logits, batch, SHAPING), [row], tables)
            token = forced_or(row, int(choose(process(shaped, batch, SAMPLING), batch)[0]))
            logprob = float(F.log_softmax(logits, dim=-1)[0, token])
            reason = advance(row, token, logprob, tables)
            if reason is not None:
                return result(row, reason, vocab)
            logits, state = model.step(torch.tensor([token], device=device), state)


def result(row: Row, reason: FinishReason, vocab: Vocab) -> Generation:
    """The request's answer. One the length limit stopped ends at its last whole line (or word), never in the
    middle of one; a teacher-forced row is scored on all of its text."""
    text = vocab.decode(row.generated)
    if reason != "length" or row.forced:
        return Generation(row.prefix, text, row.skipped, row.logprob, reason)
    end = whole_lines_end(text)
    return Generation(row.prefix, text[:end], row.skipped, sum(row.logprobs[:end]), reason)


def serving_dtype(device: torch.device) -> torch.dtype:
    """The precision to generate in: bfloat16 where the hardware does it natively, else float32.

    On a CPU with AVX-512 BF16 or AMX it halves the batched step (measured: 1.45 -> 0.73 ms for 64 rows
    of the default model) at no measurable cost (held-out perplexity 188.83 in both); a single row
    is overhead-bound and gains nothing.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32
