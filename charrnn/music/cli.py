"""``python -m charrnn sing``: a lyric file in, its song out (ABC, MIDI, lead sheet PNG, OGG Opus voice)."""

from __future__ import annotations

import argparse
from pathlib import Path

from charrnn.checkpoint import TUNE, load_checkpoint
from charrnn.music.sing import METERS, Choices, melody_request, sing
from charrnn.train_config import select_device


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sing_parser = sub.add_parser("sing", help="set a lyric to a melody: .abc, .mid, .png and .ogg")
    sing_parser.add_argument("--lyric", required=True, metavar="FILE", help="the lyric, UTF-8, a line a phrase")
    sing_parser.add_argument("--out", required=True, metavar="DIR", help="folder for NAME.abc/.mid/.png/.ogg")
    sing_parser.add_argument("--name", default="song", help="the files' name (default: song)")
    sing_parser.add_argument("--title", default="", help="the title on the lead sheet")
    sing_parser.add_argument("--checkpoint", default=TUNE, help=f"the tune model (default: '{TUNE}', the shipped one)")
    sing_parser.add_argument("--key", default="", help="D, Bb, F#m, Em... (default: by the lyric's mood)")
    sing_parser.add_argument("--meter", default="", choices=("", *METERS), help="default 4/4")
    sing_parser.add_argument("--tempo", type=int, default=0, help="beats a minute (default: by the lyric's mood)")
    sing_parser.add_argument("--seed", type=int, default=None)
    sing_parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    from charrnn.music.render import Renderer  # engraving and sound load only when asked

    request = melody_request(Path(args.lyric).read_text(encoding="utf-8"),
                             Choices(meter=args.meter, key=args.key, tempo=args.tempo), title=args.title)
    checkpoint = load_checkpoint(args.checkpoint, device=select_device(args.device))
    (song,) = sing(checkpoint.model, checkpoint.vocab, [request], seeds=[args.seed])
    renderer = Renderer()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"abc": song.abc.encode("utf-8"), "mid": renderer.midi(song), "png": renderer.png(song),
             "ogg": renderer.ogg(song)}
    for suffix, data in files.items():
        (out / f"{args.name}.{suffix}").write_bytes(data)
    print(song.abc)
    print(f"{song.key_name}, {song.tempo} a minute: " + ", ".join(f"{out / args.name}.{s}" for s in files))
    if song.sung < song.of:
        print(f"sang the first {song.sung} of the {song.of} lines: a lead sheet holds no more")
    return 0
