"""How one request samples (``SampleConfig``), and how a request can end: what every generation path shares.

The settings live apart from the code that applies them (``charrnn.generation``), so a rule, a row and the
sampler all read one definition, and the bot's job carries it as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from charrnn.music.melody import parse_melody
from charrnn.text.forms import plan_of

FinishReason = Literal["length", "lines", "cancelled"]

MAX_LENGTH = 100_000
MIN_TARGET = 10  # fewer characters than a line
MAX_PHRASE_CANDIDATES = 16


@dataclass(frozen=True)
class SampleConfig:
    """How one request samples. Invalid values raise ``ValueError`` with a one-line reason."""

    temperature: float = 0.5  # the bot's default: what blind readers preferred (docs/charrnn.md, "Temperature")
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
    # How many times less likely a Chinese character is where it would write again a two-character word the lyric
    # has written (the person's own words aside: a lyric may return to its opening); 1.0: off.
    repeated_word_penalty: float = 1.0
    # How many times less likely a Chinese character is for each time the lyric has written it (its second use this
    # many times, its third this squared; right after itself one time fewer: 悠悠); the prefix's aside; 1.0: off.
    repeated_char_penalty: float = 1.0
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
    # Sample-and-rank by phrase (charrnn.generation.phrases): every clause written this many times side by side in
    # the running batch, the likeliest kept, ending where a phrase ends; 1: off.
    phrase_candidates: int = 1
    # With phrase_candidates: the candidate clauses whose text clashes on the fewest axes of season and mood (黄花
    # after 海棠, 断魂 after 称觞: charrnn.text.themes) are the ones ranked.
    one_theme: bool = True
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
        if not (math.isfinite(self.repeated_word_penalty) and self.repeated_word_penalty >= 1):
            raise ValueError(f"repeated_word_penalty must be at least 1, got {self.repeated_word_penalty}")
        if not (math.isfinite(self.repeated_char_penalty) and self.repeated_char_penalty >= 1):
            raise ValueError(f"repeated_char_penalty must be at least 1, got {self.repeated_char_penalty}")
        if self.target_length and not MIN_TARGET <= self.target_length <= MAX_LENGTH:
            raise ValueError(f"target length must be 0 (off) or {MIN_TARGET} to {MAX_LENGTH}, got {self.target_length}")
        plan_of(self.form, self.pattern, self.song, self.target_length)  # a bad name or pattern fails here
        if self.melody:
            parse_melody(self.melody)
        if not isinstance(self.phrase_candidates, int) or not 1 <= self.phrase_candidates <= MAX_PHRASE_CANDIDATES:
            raise ValueError(
                f"phrase candidates must be 1 (off) to {MAX_PHRASE_CANDIDATES}, got {self.phrase_candidates!r}")
        if self.repetition_window < 0 or self.no_repeat_ngram < 0 or self.stop_after_lines < 0:
            raise ValueError("repetition_window, no_repeat_ngram and stop_after_lines cannot be negative")
