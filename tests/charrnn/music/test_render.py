"""What a person receives, looked at: the lead sheet is a real engraving, the voice message is OGG Opus of the
tune's length, the MIDI file holds the tune's notes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from charrnn.checkpoint import TUNE, load_checkpoint
from charrnn.music.render import RATE, Renderer, midi_bytes, timed_notes
from charrnn.music.sing import Song, melody_request, sing

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLE = DOCS / "lead_sheet.txt"  # the README's example: python -m charrnn sing --lyric docs/lead_sheet.txt ...
SEED = 7


@pytest.fixture(scope="module")
def song() -> Song:
    tune = load_checkpoint(TUNE)
    request = melody_request(EXAMPLE.read_text(encoding="utf-8"), title="浣溪沙")
    return sing(tune.model, tune.vocab, [request], seeds=[SEED])[0]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def staff_lines(png: bytes) -> list[int]:
    """Rows of the picture where a dark line runs across most of it: the lines of the staves."""
    image = pytest.importorskip("matplotlib.image").imread(io.BytesIO(png), format="png")
    dark = image[..., :3].mean(axis=2) < 0.5
    return [row for row in range(dark.shape[0]) if dark[row].mean() > 0.5]


def check_engraving(png: bytes, phrases: int) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 600 <= width <= 4000 and 150 <= height <= 4000
    image = pytest.importorskip("matplotlib.image").imread(io.BytesIO(png), format="png")
    ink = (image[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.01 < ink < 0.3  # not blank, not a black box
    rows = staff_lines(png)
    # Lines one or two pixels thick: group adjacent rows, then the staves are runs of five evenly spaced lines.
    lines = [r for i, r in enumerate(rows) if i == 0 or r - rows[i - 1] > 2]
    assert len(lines) == 5 * phrases, lines  # a staff a phrase (a line of the lyric)
    for staff in range(phrases):
        gaps = np.diff(lines[5 * staff : 5 * staff + 5])
        assert gaps.max() - gaps.min() <= 2


def test_the_lead_sheet_is_an_engraving_with_a_staff_a_phrase(song: Song, renderer: Renderer) -> None:
    check_engraving(renderer.png(song), len(song.lines))


def test_the_readme_lead_sheet_is_this_one(song: Song, renderer: Renderer) -> None:
    """docs/lead_sheet.png, shown in the README, is the example's engraving at its seed (made by the command in
    docs/lead_sheet.txt's neighbour, the README); it is checked as an engraving, and its ABC is the one made now."""
    check_engraving((DOCS / "lead_sheet.png").read_bytes(), len(song.lines))
    assert (DOCS / "lead_sheet.abc").read_text(encoding="utf-8") == song.abc


def test_the_voice_message_is_ogg_opus_as_long_as_the_tune(song: Song, renderer: Renderer) -> None:
    soundfile = pytest.importorskip("soundfile")
    ogg = renderer.ogg(song)
    assert ogg[:4] == b"OggS" and ogg[28:36] == b"OpusHead"
    info = soundfile.info(io.BytesIO(ogg))
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("OGG", "OPUS", 1, RATE)
    tune_seconds = timed_notes(song)[-1].end
    assert tune_seconds < info.duration <= tune_seconds + 1.0
    audio, _ = soundfile.read(io.BytesIO(ogg))
    assert np.abs(audio).max() > 0.1  # sound, not silence


def test_the_midi_file_holds_the_notes(song: Song) -> None:
    mido = pytest.importorskip("mido")
    midi = mido.MidiFile(file=io.BytesIO(midi_bytes(song)))
    ons = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert [m.note for m in ons] == [n.midi for n in song.tune.notes if not n.rest]
    (tempo,) = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert round(mido.tempo2bpm(tempo)) == song.tempo
    assert midi.length == pytest.approx(timed_notes(song)[-1].end, abs=0.01)
