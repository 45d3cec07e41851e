"""Setting lyrics to music with the shipped tune model: one note a syllable, one phrase a line, whole bars, the
tonic last, the key asked for; music21 (an independent reader) agrees. One batch sings many lyrics, each as it
would alone."""

from __future__ import annotations

from fractions import Fraction
from xml.etree import ElementTree

import pytest

from charrnn.checkpoint import TUNE, Checkpoint, load_checkpoint
from charrnn.music.lyric import words_line
from charrnn.music.melody import MAX_BARS
from charrnn.music.sing import Choices, SingError, Song, melody_request, sing

LYRICS = [
    ("浣溪沙", "一曲新词酒一杯，去年天气旧亭台。\n夕阳西下几时回？\n"
               "无可奈何花落去，似曾相识燕归来。\n小园香径独徘徊。"),
    ("", "I cry alone in the cold dark night\nThe tears are gone but the pain is here"),
    ("春晓", "春眠不觉晓\n处处闻啼鸟\n夜来风雨声\n花落知多少"),
]


@pytest.fixture(scope="module")
def tune() -> Checkpoint:
    return load_checkpoint(TUNE)


@pytest.fixture(scope="module")
def songs(tune: Checkpoint) -> list[Song]:
    requests = [melody_request(lyric, title=title) for title, lyric in LYRICS]
    requests.append(melody_request(LYRICS[2][1], Choices(key="Eb", meter="3/4", tempo=120)))
    requests.append(melody_request(LYRICS[2][1], Choices(meter="6/8")))
    return sing(tune.model, tune.vocab, requests, seeds=[1, 2, 3, 4, 5])


def test_one_note_a_syllable_one_phrase_a_line_whole_bars(songs: list[Song]) -> None:
    for song in songs:
        assert len(song.tune.lines) == len(song.lines)
        bar = song.tune.meter / Fraction(1, 8)
        for music, line in zip(song.tune.lines, song.lines, strict=True):
            assert sum(1 for b in music for n in b if not n.rest) == len(line.syllables)
            assert all(sum(n.length for n in b) == bar for b in music)
        last = [n for n in song.tune.notes if not n.rest][-1]
        assert (last.midi - {"C": 0, "A": 9, "E": 3}[song.tune.key.tonic[0]]) % 12 == 0  # the tonic


def test_the_key_follows_the_mood_or_the_choice(songs: list[Song]) -> None:
    assert str(songs[0].tune.key) == "C" and songs[0].tempo == 96  # glad enough
    assert str(songs[1].tune.key) == "Am" and songs[1].tempo == 72  # cry, alone, cold, dark, tears, pain
    chosen = songs[3]
    assert (str(chosen.tune.key), chosen.tune.meter_text, chosen.tempo) == ("Eb", "3/4", 120)
    assert songs[4].tune.meter_text == "6/8" and "Q:3/8=64" in songs[4].abc


def test_music21_reads_the_notes_and_bars_of_the_abc(songs: list[Song]) -> None:
    """An independent reader: music21 finds every note and every bar full. (music21 10.5 reads ``w:`` lines and
    drops them, so the syllables are checked with Verovio's reader below.)"""
    converter = pytest.importorskip("music21").converter
    for song in songs:
        score = converter.parse(song.abc, format="abc")
        assert len(score.flatten().notes) == sum(len(line.syllables) for line in song.lines)
        part = score.parts[0] if score.parts else score
        measures = list(part.getElementsByClass("Measure"))
        assert measures and all(m.duration.quarterLength == m.barDuration.quarterLength for m in measures)


def test_verovio_puts_each_syllable_under_its_note(songs: list[Song]) -> None:
    """What the lead sheet shows: Verovio's ABC reader, its score as MEI, a <syl> in every note, in order."""
    verovio = pytest.importorskip("verovio")
    for song in songs:
        toolkit = verovio.toolkit()
        toolkit.setOptions({"inputFrom": "abc"})
        assert toolkit.loadData(song.abc)
        root = ElementTree.fromstring(toolkit.getMEI())
        notes = root.iter("{http://www.music-encoding.org/ns/mei}note")
        sung = [(note.find(".//{http://www.music-encoding.org/ns/mei}syl").text or "") for note in notes]
        assert sung == [s.rstrip("-") for line in song.lines for s in line.syllables]


def test_a_lyric_sings_the_same_alone_and_in_a_batch(tune: Checkpoint, songs: list[Song]) -> None:
    (alone,) = sing(tune.model, tune.vocab, [melody_request(LYRICS[2][1], title="春晓")], seeds=[3])
    assert alone.abc == songs[2].abc


@pytest.mark.parametrize(("lyric", "choices", "reason"), [
    ("，。！", {}, "nothing to sing"),
    ("我" * 400, {}, "first line is too long"),
    ("la " + "ta" * 17, {"meter": "2/4"}, "a word of 17 syllables"),  # a 2/4 phrase holds 16
    ("春眠不觉晓", {"key": "H"}, "a key like"),
    ("春眠不觉晓", {"key": "Ddor"}, "major or minor"),
    ("春眠不觉晓", {"tempo": 500}, "tempo"),
    ("春眠不觉晓", {"meter": "5/4"}, "meter"),
])
def test_what_cannot_be_sung_says_why(lyric: str, choices: dict[str, object], reason: str) -> None:
    with pytest.raises(SingError, match=reason) as error:
        melody_request(lyric, Choices(**choices))  # type: ignore[arg-type]
    assert error.value.code  # what a program that speaks another language words it by


@pytest.mark.parametrize(("lyric", "meter", "sung"), [
    ("\n".join(["我们一起唱"] * 40), "4/4", 32),  # 32 phrases: a lead sheet's staves
    ("我们一起唱\n春风\n" + "ta" * 17 + "\n秋月", "2/4", 2),  # a later line no phrase holds: the lines before it
    ("\n".join(["我们一起唱歌跳舞"] * 40 + [""]), "4/4", 32),
    ("\n".join(["一二三四五六七八九十"] * 40), "4/4", 32),  # 320 syllables
    ("\n".join(["啊"] * 30 + ["我" * 200, "好"]), "2/4", 30),  # the long line's 13 phrases would pass 32
])
def test_a_lyric_longer_than_a_lead_sheet_is_sung_from_its_start_in_whole_lines(
        lyric: str, meter: str, sung: int) -> None:
    request = melody_request(lyric, Choices(meter=meter))
    lines = [line for line in lyric.split("\n") if line]
    assert (request.sung, request.of) == (sung, len(lines))
    assert ["".join(line.syllables) for line in request.lines][:sung] == lines[:sung]
    assert len(request.lines) <= 32 and sum(len(line.syllables) for line in request.lines) <= 320


@pytest.mark.parametrize(("lyric", "meter", "phrases"), [
    ("我" * 60, "4/4", ["我" * 30, "我" * 30]),  # no clause end: the most even cut
    ("春风又绿江南岸，明月何时照我还，京口瓜洲一水间，钟山只隔数重山，" * 2, "4/4",
     ["春风又绿江南岸明月何时照我还京口瓜洲一水间钟山只隔数重山"] * 2),  # cut where a clause ends
    # A 2/4 phrase holds 16: the clause end (after 6) rather than the even cut; where a clause is too long
    # (17 after the comma at 3), the even cut inside it.
    ("一二三四五六，七八九十一二三四五六七八九十", "2/4", ["一二三四五六", "七八九十一二三四五六七八九十"]),
    ("一二三，四五六七八九十一二三四五六七八九十", "2/4", ["一二三四五六七八九十", "一二三四五六七八九十"]),
    ("春眠不觉晓，处处闻啼鸟", "2/4", ["春眠不觉晓处处闻啼鸟"]),  # short enough: one phrase
])
def test_a_line_too_long_for_one_phrase_is_sung_as_the_fewest_that_hold_it(
        lyric: str, meter: str, phrases: list[str]) -> None:
    request = melody_request(lyric, Choices(meter=meter))
    assert ["".join(line.syllables) for line in request.lines] == phrases
    assert all(request.plan.bars(i) <= MAX_BARS for i in range(len(phrases)))


def test_a_long_english_line_is_cut_between_words_and_sung(tune: Checkpoint) -> None:
    line = ("I wandered lonely as a cloud that floats on high above the vales and hills "
            "when all at once I saw a crowd a host of golden daffodils")
    request = melody_request(line, Choices(meter="2/4"))
    words = [words_line(phrase.syllables) for phrase in request.lines]
    assert len(words) == 3 and " ".join(words).replace("- ", "-").replace("-", "") == line
    assert all(not phrase.syllables[-1].endswith("-") for phrase in request.lines)  # no word cut in two
    (song,) = sing(tune.model, tune.vocab, [request], seeds=[1])
    assert len(song.tune.lines) == 3
    bar = song.tune.meter / Fraction(1, 8)
    for music, phrase in zip(song.tune.lines, song.lines, strict=True):
        assert sum(1 for b in music for n in b if not n.rest) == len(phrase.syllables)
        assert all(sum(n.length for n in b) == bar for b in music)
