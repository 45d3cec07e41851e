"""Setting a lyric to music: the melody plan of its syllables, the tune model's notes, the ABC a musician reads.

``melody_request`` turns a lyric and a person's choices into the tune row's prefix and ``SampleConfig`` (one
phrase a line, or the fewest phrases that hold a long one; one note a syllable: ``charrnn.music.melody``);
``sing`` runs any number of them in one batch of the tune model (``generate_many``: the same batched generation
as the lyrics) and ``song_of`` reads what it wrote back into a ``Song``: the tune moved to the chosen key, with
the lyric under its notes in ``w:`` lines. The key and the tempo follow the lyric's mood
(``charrnn.music.lyric.is_sad``: A minor and slower, else C major) unless the person chose them; the meter is
4/4 unless chosen.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import torch

from charrnn.config import SampleConfig
from charrnn.generation.batching import generate_many
from charrnn.mixture import LanguageModel
from charrnn.music.abc import AbcSkip, Key, Tune, parse_key, read_tune, transpose
from charrnn.music.abc_write import note_text
from charrnn.music.lyric import SungLine, is_sad, sung_lines, words_line
from charrnn.music.melody import MAX_BARS, MelodyCursor, MelodyError, MelodyPlan, bar_length, parse_melody, phrase_bars
from charrnn.vocab import Vocab

METERS = ("4/4", "3/4", "6/8", "2/4")
MAX_LINES = 32  # a lead sheet a phone can show: 32 staves stay within Telegram's photo limits
MAX_SYLLABLES = 320
GLAD_TEMPO, SAD_TEMPO = 96, 72  # quarter notes a minute (in 6/8, dotted quarters: two thirds of it)
TEMPERATURE = 0.8


class SingError(ValueError):
    """A lyric that cannot be sung as asked; the message says why, in English; ``code`` and ``params`` say it for
    a program that speaks other languages (the bot: ``sing_why_<code>``)."""

    def __init__(self, message: str, code: str = "", **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Choices:
    """What a person may choose; empty or zero: follow the lyric."""

    meter: str = ""
    key: str = ""  # "D", "Bb", "F#m", "Em"
    tempo: int = 0  # beats a minute, 40-200: quarter notes, dotted quarters in 6/8

    def __post_init__(self) -> None:
        if self.meter and self.meter not in METERS:
            raise SingError(f"meter must be one of {', '.join(METERS)}, got {self.meter!r}", "meter",
                            meters=", ".join(METERS), got=self.meter)
        if self.key:
            try:
                key = parse_key(self.key)
            except AbcSkip:
                raise SingError(f"a key like D, Bb, F#m or Em, got {self.key!r}", "key", got=self.key) from None
            if key.mode not in ("", "m"):
                raise SingError(f"a major or minor key, like D or F#m, got {self.key!r}", "mode", got=self.key)
        if self.tempo and not 40 <= self.tempo <= 200:
            raise SingError(f"tempo must be 40 to 200 beats a minute, got {self.tempo}", "tempo", got=self.tempo)


@dataclass(frozen=True)
class SongRequest:
    title: str
    lines: tuple[SungLine, ...]
    plan: MelodyPlan
    key: Key  # the key it will be in
    tempo: int
    sung: int = 0  # of the lyric's lines with a syllable, those sung (all unless the lyric was too long)
    of: int = 0


@dataclass(frozen=True)
class Song:
    title: str
    lines: tuple[SungLine, ...]
    tune: Tune  # one line a phrase, in the chosen key
    tempo: int
    sung: int = 0  # as in SongRequest
    of: int = 0

    @property
    def beat(self) -> Fraction:
        """The beat Q: counts, as a fraction of a whole note: a dotted quarter in 6/8, else a quarter."""
        return Fraction(3, 8) if self.tune.meter_text == "6/8" else Fraction(1, 4)

    @property
    def abc(self) -> str:
        """The tune as ABC for musicians: the lyric under its notes (``w:``), spaces at the beats."""
        return self.abc_with()

    @property
    def tempo_mark(self) -> str:
        """The tempo as a lead sheet writes it: "♩ = 96", "♩. = 64"."""
        return f"{'♩.' if self.beat == Fraction(3, 8) else '♩'} = {self.tempo}"

    @property
    def key_name(self) -> str:
        key = self.tune.key
        return f"{key.tonic.replace('b', '♭').replace('#', '♯')} {'minor' if key.mode == 'm' else 'major'}"

    def abc_with(self, subtitle: bool = False) -> str:
        """``abc``; with ``subtitle``, the key and the tempo as a second title line (what a lead sheet shows
        above the music, and Verovio does not draw from ``Q:``)."""
        beat_units = self.beat / Fraction(1, 8)
        head = ["X:1", f"T:{self.title}" if self.title else "",
                f"T:{self.key_name}, {self.tempo_mark}" if subtitle else "", f"M:{self.tune.meter_text}", "L:1/8",
                f"Q:{self.beat.numerator}/{self.beat.denominator}={self.tempo}", f"K:{self.tune.key}"]
        body = []
        for music, line in zip(self.tune.lines, self.lines, strict=True):
            bars = []
            for bar in music:
                accidentals: dict[int, int] = {}
                text, position = "", Fraction(0)
                for note in bar:
                    if position and position % beat_units == 0:
                        text += " "
                    text += note_text(note, self.tune.key, accidentals)
                    position += note.length
                bars.append(text)
            body.append(" | ".join(bars) + " |")
            body.append("w: " + words_line(line.syllables))
        body[-2] += "]"
        return "\n".join([h for h in head if h] + body) + "\n"


def melody_request(lyric: str, choices: Choices = Choices(), title: str = "") -> SongRequest:
    """What the tune model must write for this lyric; ``SingError`` when it cannot be sung. A lyric longer than a
    lead sheet holds (``MAX_LINES`` phrases, ``MAX_SYLLABLES``) is sung from its start, in whole lines, as far as
    they fit: ``SongRequest.sung`` of ``SongRequest.of`` lines."""
    written = sung_lines(lyric)
    if not written:
        raise SingError("there is nothing to sing: no line has a word", "nothing")
    meter = choices.meter or "4/4"
    phrases: list[SungLine] = []
    sung = syllables = 0
    for line in written:
        syllables += len(line.syllables)
        if syllables > MAX_SYLLABLES:
            break
        try:
            parts = phrases_of(line, meter)
        except SingError:
            if not sung:
                raise
            break  # a later line with a word too long to sing: the lines before it are the song
        if len(phrases) + len(parts) > MAX_LINES:
            break
        phrases += parts
        sung += 1
    if not sung:
        raise SingError(f"its first line is too long to sing ({len(written[0].syllables)} syllables)", "first_line",
                        syllables=len(written[0].syllables))
    lines = tuple(phrases)
    sad = is_sad(lyric)
    key = parse_key(choices.key) if choices.key else Key("A", "m") if sad else Key("C", "")
    plain = "Am" if key.mode == "m" else "C"
    counts = ",".join("+".join(str(len(clause)) for clause in line.clauses) for line in lines)
    try:
        plan = parse_melody(f"{meter} {plain} {counts}")
        MelodyCursor(plan)  # every phrase fits its bars (in 6/8 a clause end takes a dotted quarter)
    except MelodyError as error:
        raise SingError(str(error)) from None
    tempo = choices.tempo or (SAD_TEMPO if sad else GLAD_TEMPO)
    if plan.meter == "6/8" and not choices.tempo:
        tempo = tempo * 2 // 3
    return SongRequest(title, lines, plan, key, tempo, sung, len(written))



def phrases_of(line: SungLine, meter: str) -> list[SungLine]:
    """The line as one phrase, or, when it is longer than a phrase can be (``MAX_BARS``), as the fewest phrases
    that hold it: cut where a clause ends if that can do, else between words, never inside one; of those, the
    most even. An exact search over the cuts (a phrase holds at most a few dozen syllables)."""
    syllables = line.syllables
    if phrase_bars([len(c) for c in line.clauses], meter) <= MAX_BARS:
        return [line]
    clause_ends = set(itertools.accumulate(len(c) for c in line.clauses))
    cuts = [p for p in range(1, len(syllables)) if not syllables[p - 1].endswith("-")]

    def counts(start: int, end: int) -> list[int]:
        inner = [start, *(p for p in range(start + 1, end) if p in clause_ends), end]
        return [b - a for a, b in itertools.pairwise(inner)]

    # best[p]: (phrases, cuts inside a clause, the longest phrase's syllables, where the last phrase began)
    # for the syllables before p, cut into phrases that each fit.
    best: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 0)}
    starts = [0]  # the keys of best, in order
    most = MAX_BARS * bar_length(meter) // 4  # syllables a phrase can hold at all
    for end in [*cuts, len(syllables)]:
        options = []
        for start in starts[bisect.bisect_left(starts, end - most):]:
            phrases, inside, longest, _ = best[start]
            if phrase_bars(counts(start, end), meter) <= MAX_BARS:
                inside_here = inside + (end != len(syllables) and end not in clause_ends)
                options.append((phrases + 1, inside_here, max(longest, end - start), start))
        if options:
            best[end] = min(options)
            starts.append(end)
    if len(syllables) not in best:  # a single word longer than a phrase
        longest = max(b - a for a, b in itertools.pairwise([0, *cuts, len(syllables)]))
        raise SingError(f"a word of {longest} syllables is too long to sing", "word", syllables=longest)
    bounds = [len(syllables)]
    while bounds[-1]:
        bounds.append(best[bounds[-1]][3])
    pieces = []
    for start, end in itertools.pairwise(reversed(bounds)):
        sizes = counts(start, end)
        offsets = list(itertools.accumulate(sizes, initial=start))
        pieces.append(SungLine(tuple(syllables[a:b] for a, b in itertools.pairwise(offsets))))
    return pieces


def config_of(request: SongRequest, seed: int | None = None) -> SampleConfig:
    """The tune row's sampling: no repetition penalty (a tune repeats its notes), the melody's grammar."""
    spec = f"{request.plan.meter} {request.plan.key} " + ",".join(
        "+".join(str(c) for c in phrase) for phrase in request.plan.phrases)
    return SampleConfig(temperature=TEMPERATURE, repetition_penalty=1.0, melody=spec, seed=seed,
                        stop_at_blank_line=False)


def song_of(request: SongRequest, written: str) -> Song:
    """The song from the notes the tune row wrote (after its header), in the chosen key."""
    tune = read_tune(request.plan.header + written)
    tune = transpose(tune, request.key) if str(request.key) != str(tune.key) else tune
    return Song(request.title, request.lines, replace(tune, title=request.title), request.tempo, request.sung,
                request.of)


def sing(model: LanguageModel, vocab: Vocab, requests: Sequence[SongRequest],
         seeds: Sequence[int | None] | None = None) -> list[Song]:
    """Melodies for many lyrics in one batch of the tune model."""
    seeds = seeds if seeds is not None else [None] * len(requests)
    jobs = [(request.plan.header, config_of(request, seed)) for request, seed in zip(requests, seeds, strict=True)]
    # PyTorch's oneDNN LSTM repacks the weights on every call: one step of the tune model took 7.9 ms with it and
    # 0.7 ms without (batch 1; 1.4 ms for 5), and a melody is hundreds of single steps. (A process-wide switch,
    # restored after: call this from one thread, as the singer's workers and the CLI do.)
    with _without_onednn():
        results = generate_many(model, vocab, jobs)
    return [song_of(request, result.continuation) for request, result in zip(requests, results, strict=True)]


@contextlib.contextmanager
def _without_onednn() -> Iterator[None]:
    """oneDNN off (``torch.backends.mkldnn.flags`` would also warn about TF32 on every call)."""
    before = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(before)

