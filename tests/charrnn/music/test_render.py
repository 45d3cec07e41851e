"""What a person receives, looked at: the lead sheet is a real engraving, the voice message is OGG Opus of the
tune's length, the MIDI file holds the tune's notes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from charrnn.checkpoint import TUNE, load_checkpoint
from charrnn.music.render import RATE, Renderer, midi_bytes, timed_notes
from charrnn.music.sing import Choices, Song, melody_request, sing

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
    dark = image[..., :3].mean(axis=2) < 0.8  # a line one pixel thin is drawn grey by anti-aliasing
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
    av = pytest.importorskip("av")
    ogg = renderer.ogg(song)
    assert ogg[:4] == b"OggS" and ogg[28:36] == b"OpusHead"
    with av.open(io.BytesIO(ogg)) as container:  # decoded again, by FFmpeg's reader
        (stream,) = container.streams.audio
        assert (container.format.name, stream.codec_context.name, stream.channels) == ("ogg", "opus", 1)
        audio = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
        rate = stream.codec_context.sample_rate  # Opus decodes at 48 kHz whatever rate it was made at
    assert int.from_bytes(ogg[40:44], "little") == RATE  # the rate it was made at, in its header (RFC 7845)
    tune_seconds = timed_notes(song)[-1].end
    assert tune_seconds < len(audio) / rate <= tune_seconds + 1.0
    assert np.abs(audio).max() > 0.1  # sound, not silence


@pytest.fixture(scope="module")
def compound() -> Song:
    """A song in 6/8, whose beat is a dotted quarter."""
    tune = load_checkpoint(TUNE)
    request = melody_request("Oh, my love\nmy darling", Choices(meter="6/8", tempo=60))
    return sing(tune.model, tune.vocab, [request], seeds=[SEED])[0]


def test_the_midi_file_holds_the_notes_at_the_tempo(song: Song, compound: Song) -> None:
    mido = pytest.importorskip("mido")
    for sung, quarters_a_minute in ((song, song.tempo), (compound, compound.tempo * 3 / 2)):
        midi = mido.MidiFile(file=io.BytesIO(midi_bytes(sung)))
        ons = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
        assert [m.note for m in ons] == [n.midi for n in sung.tune.notes if not n.rest]
        (tempo,) = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
        assert mido.tempo2bpm(tempo) == pytest.approx(quarters_a_minute, rel=1e-3)
        assert midi.length == pytest.approx(timed_notes(sung)[-1].end, abs=0.01)
    assert timed_notes(compound)[-1].end == pytest.approx(  # 60 dotted quarters a minute: a bar of 6/8 is 2 s
        2.0 * sum(len(line) for line in compound.tune.lines), abs=1.0)


def test_a_long_lyric_is_one_lead_sheet(renderer: Renderer) -> None:
    tune = load_checkpoint(TUNE)
    lyric = "\n".join(["春风又绿江南岸明月照"] * 12)  # more staves than one page of Verovio's holds by default
    (long_song,) = sing(tune.model, tune.vocab, [melody_request(lyric)], seeds=[1])
    check_engraving(renderer.png(long_song), 12)
