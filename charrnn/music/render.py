"""A song as a person receives it: a lead sheet picture, a voice message, a MIDI file.

- PNG: the song's ABC engraved by Verovio (its own ABC reader puts each ``w:`` syllable under its note) into
  SVG, drawn by resvg with WenQuanYi Micro Hei (a CJK font shipped on PyPI in ``paperang-p2-fonts-cjk``, OFL) so
  that Chinese lyrics and titles show; a white background, as Telegram shows pictures on dark themes too.
- MIDI: written here (a type-0 file: tempo, a voice and the notes), so that the notes heard are the notes read.
- OGG Opus: the same notes played by TinySoundFont on the General MIDI SoundFont that ``pretty_midi`` ships
  (TimGM6mb), mono at 24 kHz, encoded by libopus through PyAV (``av``; libsndfile's Opus encoder took five times
  as long, the bot's slowest step): what Telegram shows as a voice bubble.

A ``Renderer`` loads the SoundFont and the font once; rendering is CPU work of a fraction of a second, which
callers run off their event loop.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from charrnn.music.corpus import installed
from charrnn.music.sing import Song

RATE = 24_000  # Opus's wideband rate: a melody on a phone speaker loses nothing, and half the work of 48 kHz
OPUS_BITRATE = 32_000  # bits a second: a voice message's rate, clear for a solo line (240 KB a minute)
OPUS_COMPLEXITY = "2"  # of libopus's 0-10: a third of the time of 10, and no difference a phone speaker shows
PROGRAM = 73  # General MIDI flute: a clear line, like a voice without words
VELOCITY = 96
TICKS = 480  # per quarter note
TAIL_S = 0.8  # the last note rings


class RenderError(RuntimeError):
    """A renderer that cannot run here (a package or a file missing); the message says which."""


def _package_file(package: str, *parts: str) -> Path:
    try:
        path = installed(package).joinpath(*parts)
    except FileNotFoundError as error:
        raise RenderError(str(error)) from None
    if not path.is_file():
        raise RenderError(f"{path} is missing")
    return path


def soundfont_path() -> Path:
    return _package_file("pretty_midi", "TimGM6mb.sf2")


def font_path() -> Path:
    return _package_file("paperang_p2_fonts_cjk", "fonts", "wqy-microhei.ttc")


@dataclass(frozen=True)
class Timed:
    start: float  # seconds
    end: float
    pitch: int


def timed_notes(song: Song) -> list[Timed]:
    """The notes with their times at the song's tempo; ties join, rests are silence."""
    seconds_per_unit = float(Fraction(1, 8) / song.beat) * 60 / song.tempo
    out: list[Timed] = []
    now, tied = 0.0, False
    for note in song.tune.notes:
        length = float(note.length) * seconds_per_unit
        if not note.rest:
            if tied and out and out[-1].pitch == note.midi:
                out[-1] = Timed(out[-1].start, now + length, note.midi)
            else:
                out.append(Timed(now, now + length, note.midi))
        tied = note.tie
        now += length
    return out


def midi_bytes(song: Song) -> bytes:
    """A type-0 MIDI file of the song."""
    microseconds = int(60_000_000 / song.tempo * float(Fraction(1, 4) / song.beat))
    events: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03" + microseconds.to_bytes(3, "big")),
                                       (0, bytes([0xC0, PROGRAM]))]
    ticks_per_second = TICKS * 1_000_000 / microseconds
    for note in timed_notes(song):
        events.append((round(note.start * ticks_per_second), bytes([0x90, note.pitch, VELOCITY])))
        events.append((round(note.end * ticks_per_second) - 1, bytes([0x80, note.pitch, 0])))
    events.sort(key=lambda event: event[0])
    track, last = bytearray(), 0
    for tick, data in [*events, (events[-1][0], b"\xff\x2f\x00")]:
        track += _variable_length(tick - last) + data
        last = tick
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def opus_ogg(mono: np.ndarray) -> bytes:
    """Mono float32 samples at ``RATE`` as an OGG file of Opus audio, at the bitrate of a voice message."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = OPUS_BITRATE
        stream.codec_context.options = {"compression_level": OPUS_COMPLEXITY, "application": "audio"}
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def _variable_length(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class Renderer:
    """Loads the SoundFont and the font once; renders songs to PNG, OGG Opus and MIDI bytes."""

    def __init__(self, width: int = 1400) -> None:
        import resvg_py
        import tinysoundfont
        import verovio

        self._verovio, self._resvg = verovio, resvg_py
        self._font = str(font_path())
        self._synth = tinysoundfont.Synth(samplerate=RATE)
        self._soundfont = self._synth.sfload(str(soundfont_path()))
        self._width = width
        verovio.enableLog(verovio.LOG_OFF)

    def svg(self, song: Song) -> str:
        toolkit = self._verovio.toolkit()
        # One page however long the song (adjustPageHeight trims it): pages joined would be no SVG.
        toolkit.setOptions({"inputFrom": "abc", "pageWidth": self._width * 2, "pageHeight": 60_000,
                            "adjustPageHeight": True,
                            "scale": 50, "footer": "none", "header": "auto", "breaks": "line",
                            "spacingLinear": 0.6, "spacingNonLinear": 0.4,
                            "pageMarginTop": 60, "pageMarginBottom": 60, "pageMarginLeft": 60,
                            "pageMarginRight": 60})
        if not toolkit.loadData(song.abc_with(subtitle=True)):
            raise RenderError("Verovio could not read the song's ABC")
        if toolkit.getPageCount() != 1:
            raise RenderError(f"the lead sheet took {toolkit.getPageCount()} pages")
        return str(toolkit.renderToSVG(1))

    def png(self, song: Song) -> bytes:
        family = "WenQuanYi Micro Hei"
        return bytes(self._resvg.svg_to_bytes(
            svg_string=self.svg(song), font_files=[self._font], skip_system_fonts=True, background="white",
            font_family=family, serif_family=family, sans_serif_family=family,
        ))

    def audio(self, song: Song) -> np.ndarray:
        """The song played, mono float32 at ``RATE``."""
        synth = self._synth
        synth.notes_off()
        synth.program_select(0, self._soundfont, 0, PROGRAM)
        events = sorted([(n.start, 1, n.pitch) for n in timed_notes(song)] +
                        [(n.end, 0, n.pitch) for n in timed_notes(song)])
        chunks, now = [], 0
        for time, on, pitch in events:
            samples = round(time * RATE) - now
            if samples > 0:
                chunks.append(np.frombuffer(synth.generate(samples), dtype=np.float32).copy())
                now += samples
            synth.noteon(0, pitch, VELOCITY) if on else synth.noteoff(0, pitch)
        chunks.append(np.frombuffer(synth.generate(round(TAIL_S * RATE)), dtype=np.float32).copy())
        stereo = np.concatenate(chunks).reshape(-1, 2)
        mono: np.ndarray = stereo.mean(axis=1)
        peak = float(np.abs(mono).max()) or 1.0
        return np.asarray(mono * (0.9 / peak), dtype=np.float32)

    def ogg(self, song: Song) -> bytes:
        """The song as OGG Opus, mono: a Telegram voice message (libopus through PyAV, about 0.1 s for a minute)."""
        return opus_ogg(self.audio(song))

    def midi(self, song: Song) -> bytes:
        return midi_bytes(song)
