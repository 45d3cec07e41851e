"""Melodies for lyrics (issue 20), measured: the tune model against counting, the songs it sets, and the bot's speed.

    python benchmarks/melody.py [--songs 40] [--real 150] [--people 10] [--rounds 3] [--skip-bot]

1. The shipped tune model's held-out perplexity on the tune corpus (``charrnn fetch tunes``: the last tenth, as
   in training) beside a Kneser-Ney 5-gram counted on the same training part, both scored on the same ids under
   the same rule (every character given all before it).
2. Songs: held-out Song ci (the last tenth of songci.txt, up to 8 lines each) and held-out Shakespeare verse
   (4-line passages of the last tenth), each set to a melody by the shipped tune model, one batch. For each:
   syllables with exactly one note and lines that are one phrase (read back from the tune), well-formed (music21
   parses the ABC; Verovio engraves it; bars complete in their meter), and musical by music21's own key
   analysis: the share of notes in the key's scale and whether the last note is its tonic, beside the same two
   figures for held-out real tunes of the corpus.
3. The bot: ``--people`` people each press 🎵 under their own lyric at the same moment, through the local Bot API
   server, the singer in its worker process (warm: one song first); the latency from the press to the last of
   the three media (photo, voice, ABC document), ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import SHARED_DATA, percentile, print_table

from charrnn.checkpoint import TUNE, load_checkpoint
from charrnn.data import split_corpus
from charrnn.evaluate import evaluate
from charrnn.music.abc import AbcSkip, split_tunes
from charrnn.music.corpus import build_tunes
from charrnn.music.render import Renderer
from charrnn.music.sing import Song, melody_request, sing
from charrnn.ngram import kneser_ney_nll


def perplexity_vs_kn(text: str) -> None:
    tune = load_checkpoint(TUNE)
    train, val = split_corpus(text, 0.1, "tail")
    encode = tune.vocab.encode
    train_ids, val_ids = encode(train), encode(val)
    model_nll = evaluate(tune.model, torch.tensor(val_ids)).nll
    kn_nll = kneser_ney_nll(train_ids, val_ids, len(tune.vocab), order=5)
    print(f"\n== the tune model on {len(val):,} held-out characters ({len(list(split_tunes(val)))} tunes)")
    print_table(["model", "perplexity", "nats/char", "vs the tune model"], [
        ("tune model (shipped, fp16)", math.exp(model_nll), model_nll, 1.0),
        ("Kneser-Ney 5-gram", math.exp(kn_nll), kn_nll, math.exp(kn_nll - model_nll)),
    ])


def held_out_lyrics(count: int) -> list[tuple[str, str]]:
    """(title, lyric): Song ci of the last tenth of songci.txt, and Shakespeare verse of its last tenth."""
    out: list[tuple[str, str]] = []
    songci = (SHARED_DATA / "songci.txt").read_text(encoding="utf-8")
    _, tail = split_corpus(songci, 0.1, "tail")
    for block in tail.split("\n\n")[1:]:
        lines = [line for line in block.strip().split("\n") if line]
        if len(lines) >= 3 and len(out) < count // 2:
            out.append((lines[0], "\n".join(lines[1:9])))
    shakespeare = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")
    _, tail = split_corpus(shakespeare, 0.1, "tail")
    for speech in tail.split("\n\n"):
        verse = [line for line in speech.split("\n")[1:] if 4 <= len(line.split()) <= 9]
        if len(verse) >= 4 and len(out) < count:
            out.append(("", "\n".join(verse[:4])))
    return out


def musical(score) -> tuple[float, bool]:  # type: ignore[no-untyped-def]
    """By music21's key analysis: the share of notes in the key's scale, and whether the last note is its tonic."""
    key = score.analyze("key")
    scale = {p.pitchClass for p in key.getScale(key.mode).getPitches()}
    notes = [n for n in score.flatten().notes if n.isNote]
    if not notes:
        return 0.0, False
    in_scale = sum(n.pitch.pitchClass in scale for n in notes) / len(notes)
    return in_scale, notes[-1].pitch.pitchClass == key.tonic.pitchClass


def song_figures(songs: list[Song], renderer: Renderer) -> dict[str, float]:
    from music21 import converter

    syllables = aligned = lines = phrases = parsed = engraved = bars = full = 0
    in_scale: list[float] = []
    tonic = 0
    for song in songs:
        for music, line in zip(song.tune.lines, song.lines, strict=True):
            notes = sum(1 for b in music for n in b if not n.rest)
            syllables += len(line.syllables)
            aligned += len(line.syllables) if notes == len(line.syllables) else 0
        lines += len(song.lines)
        phrases += len(song.tune.lines) if len(song.tune.lines) == len(song.lines) else 0
        try:
            score = converter.parse(song.abc, format="abc")
            parsed += 1
        except Exception as error:  # counted, and said
            print(f"music21 could not parse a song: {error}", file=sys.stderr)
            continue
        try:
            engraved += bool(renderer.png(song))
        except Exception as error:
            print(f"Verovio could not engrave a song: {error}", file=sys.stderr)
        part = score.parts[0] if score.parts else score
        for measure in part.getElementsByClass("Measure"):
            bars += 1
            full += measure.duration.quarterLength == measure.barDuration.quarterLength
        share, on_tonic = musical(score)
        in_scale.append(share)
        tonic += on_tonic
    n = len(songs)
    return {"syllables with one note": aligned / syllables, "lines as one phrase": phrases / lines,
            "parse (music21)": parsed / n, "engrave (Verovio)": engraved / n, "bars complete": full / max(1, bars),
            "notes in the key's scale": statistics.mean(in_scale), "last note on the tonic": tonic / n}


def real_figures(text: str, count: int) -> dict[str, float]:
    from music21 import converter

    _, tail = split_corpus(text, 0.1, "tail")
    shares, tonic, n = [], 0, 0
    for tune_text in list(split_tunes(tail))[:count]:
        try:
            score = converter.parse(tune_text, format="abc")
        except (AbcSkip, Exception):
            continue
        share, on_tonic = musical(score)
        shares.append(share)
        tonic += on_tonic
        n += 1
    return {"notes in the key's scale": statistics.mean(shares), "last note on the tonic": tonic / n, "tunes": n}


async def bot_latency(people: int, rounds: int) -> list[float]:
    from bot.app import build_application, running
    from bot.sandbox import FakeTelegram
    from bot.serving.singer import SongAsk
    from bot.settings import Settings

    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        model_dir = Path(work) / "models"
        async with FakeTelegram() as fake:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, telegram_bot_token=fake.token, telegram_base_url=fake.base_url,
                telegram_base_file_url=fake.base_file_url, database_url=f"sqlite+aiosqlite:///{work}/bot.db",
                model_dir=model_dir, device="cpu", rate_limit_per_minute=10_000, log_level="WARNING",
                default_length=80,
            )
            async with running(build_application(settings)) as app:
                songs = app.bot_data.services.songs
                await songs.singer.sing(SongAsk("春风又绿江南岸", ""))  # the worker is started and warm
                ids = [20_000 + i for i in range(people)]
                lyrics = {}
                for person in ids:
                    fake.add_user(person, f"P{person}", "zh")
                    fake.send_text(person, person, "/write 春风")
                    (lyric,) = await fake.wait_for_sent(person, 1, timeout=120)
                    lyrics[person] = lyric
                for _ in range(rounds):
                    counts = {p: len(fake.sent(p)) for p in ids}
                    pressed = time.perf_counter()
                    for person in ids:
                        data = [b["callback_data"] for row in lyrics[person]["reply_markup"]["inline_keyboard"]
                                for b in row if b.get("callback_data", "").startswith("m:")]
                        fake.press_button(person, person, lyrics[person]["message_id"], data[0])
                    for person in ids:
                        await fake.wait_for_sent(person, counts[person] + 3, timeout=300)
                        latencies.append(fake.sent_times(person)[-1] - pressed)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--real", type=int, default=150)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-bot", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    text, report = build_tunes()
    print(f"tune corpus: {sum(report.kept.values()):,} tunes, sha256 {report.sha256[:12]}")
    perplexity_vs_kn(text)

    lyrics = held_out_lyrics(args.songs)
    tune = load_checkpoint(TUNE)
    requests = [melody_request(lyric, title=title) for title, lyric in lyrics]
    started = time.perf_counter()
    songs = sing(tune.model, tune.vocab, requests, seeds=list(range(len(requests))))
    seconds = time.perf_counter() - started
    syllables = sum(len(line.syllables) for s in songs for line in s.lines)
    print(f"\n== {len(songs)} held-out lyrics ({sum(bool(re.search('[A-Za-z]', t)) for _, t in lyrics)} English), "
          f"{syllables:,} syllables, set in one batch in {seconds:.1f} s")
    ours = song_figures(songs, Renderer())
    real = real_figures(text, args.real)
    rows = [(name, f"{value:.1%}", f"{real[name]:.1%}" if name in real else "") for name, value in ours.items()]
    print_table(["measure", "our songs", f"held-out real tunes ({real['tunes']:.0f})"], rows)

    if not args.skip_bot:
        latencies = asyncio.run(bot_latency(args.people, args.rounds))
        print(f"\n== the bot: {args.people} people press \U0001f3b5 at once, {args.rounds} rounds "
              f"({len(latencies)} songs), press -> last of the three media")
        print_table(["p50 s", "p95 s", "max s"],
                    [(percentile(latencies, 0.5), percentile(latencies, 0.95), max(latencies))])


if __name__ == "__main__":
    main()
