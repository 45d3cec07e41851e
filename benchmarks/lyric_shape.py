"""The shape of the base's lyrics: rhyme at rhyme positions, length on target, ci tunes to the letter.

    python benchmarks/lyric_shape.py                  # 200 samples a measure, about 10 CPU minutes
    python benchmarks/lyric_shape.py --samples 40

Three measures, on the shipped base at the bot's settings (no_repeat_ngram 8):

- rhyme accuracy: rhyme positions on their rhyme / rhyme positions (``charrnn.text.rhyme.free_rhymes``: every
  line end after the first that sets the song's rhyme), Chinese (two-character openings of held-out Jay
  Chou lines) and English (first words of held-out Shakespeare lines): free text of 200 characters, as
  the bot asked before (a line cut by the length limit is left out), and with a target of 160;
- length accuracy: the share of lyrics within 20% of a target of 20, 60, 160, 300 and 600 characters
  (``charrnn.generation.shape.lyric_length``), and whether they ended on a whole line;
- format accuracy on held-out tunes: the blocks of the Song ci corpus's held-out tail whose tune is in the
  table, each written to its tune from its first two characters; the share written exactly (clause
  lengths and punctuation, ``charrnn.text.forms.follows``), the rhyme at the tune's rhyme positions, the
  rhymes on the tune's tone (level or oblique, where the tune keeps one: ``charrnn.form_mining``), sentence
  integrity (SongNet's: the base's mean probability that each clause ends where it ends; a phrase a form cut
  short scores low), and the share whose seasons or moods clash (words of spring beside words of autumn, of
  joy beside sorrow: ``charrnn.text.themes``). For comparison: the corpus's own blocks, and the base
  prompted with the tune's name but no form.

``lyric_quality.py`` reuses these measures for its columns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from typing import NamedTuple

from common import corpus_path, print_table

from bot.settings import Settings
from charrnn.checkpoint import BASE, Checkpoint, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.data import load_corpus, split_corpus
from charrnn.evaluate import phrase_end_probabilities
from charrnn.form_mining import blocks_of
from charrnn.generation.batching import generate_many
from charrnn.generation.result import Generation
from charrnn.generation.shape import lyric_length
from charrnn.mixture import LanguageModel
from charrnn.text.forms import follows, plan_rhymes, plan_tones, tune_plan, tunes
from charrnn.text.rhyme import free_rhymes
from charrnn.text.themes import clashes
from charrnn.vocab import Vocab

PHRASE_CANDIDATES = Settings.model_fields["phrase_candidates"].default  # as the bot's /write

BOT = SampleConfig(no_repeat_ngram=8)
TARGETS = (20, 60, 160, 300, 600)


def spread(items: list[str], count: int) -> list[str]:
    step = max(1, len(items) // count)
    return [items[(i * step) % len(items)] for i in range(count)]


def chinese_openings(count: int) -> list[str]:
    _, held = split_corpus(load_corpus(corpus_path("jaychou")))
    return spread([line.replace(" ", "")[:2] for line in held.split("\n") if len(line.replace(" ", "")) >= 4], count)


def english_openings(count: int) -> list[str]:
    _, held = split_corpus(load_corpus(corpus_path("shakespeare")))
    lines = [line for line in held.split("\n") if len(line) > 20 and line[0].isupper() and not line.endswith(":")]
    return spread([line.split(" ")[0] + " " for line in lines], count)


def held_out_tunes(count: int) -> list[tuple[str, list[str]]]:
    """(tune, lines) of the held-out Song ci blocks whose tune is in the table."""
    _, held = split_corpus(load_corpus(corpus_path("songci")))
    table = tunes()
    return [(name, lines) for name, lines in blocks_of(held) if name in table and lines][:count]


def rhyme_accuracy(generations: list[Generation]) -> tuple[int, int]:
    """Rhyme positions on the song's rhyme, and all of them; a last line cut by the length limit is left out."""
    hits = total = 0
    for g in generations:
        lyric = g.lyric.rsplit("\n", 1)[0] if g.finish_reason == "length" else g.lyric
        h, t = free_rhymes(lyric)
        hits, total = hits + h, total + t
    return hits, total


def length_accuracy(model: LanguageModel, vocab: Vocab, prefixes: list[str], rhyme: bool,
                    targets: tuple[int, ...] = TARGETS) -> dict[int, tuple[float, float, float]]:
    """Per target: (share within 20%, median length / target, share ended on a whole line)."""
    requests = [(prefix, replace(BOT, target_length=n, rhyme=rhyme, seed=i)) for n in targets
                for i, prefix in enumerate(prefixes)]
    out: dict[int, list[tuple[float, bool]]] = {n: [] for n in targets}
    for (_, config), g in zip(requests, generate_many(model, vocab, requests), strict=True):
        out[config.target_length].append((lyric_length(g.lyric) / config.target_length, g.finish_reason == "lines"))
    return {n: (sum(0.8 <= r <= 1.2 for r, _ in rows) / len(rows), statistics.median(r for r, _ in rows),
                sum(whole for _, whole in rows) / len(rows)) for n, rows in out.items()}


class FormScore(NamedTuple):
    exact: float  # share of lyrics written exactly to their tune
    hits: int  # rhyme positions on their rhyme
    total: int  # rhyme positions
    integrity: float  # mean probability, under the base, of each clause's ending where it ends
    logprob: float | None  # the samples' mean log-probability per character under the model; None for the corpus
    clash: float  # share of lyrics with words of opposite seasons or moods (charrnn.text.themes)
    tones: tuple[int, int]  # rhyme positions on their tune's tone (平 or 仄), of those whose tune keeps one


def integrity(model: LanguageModel, vocab: Vocab, lyrics: list[str]) -> float:
    """Sentence integrity (SongNet's measure, ``charrnn.evaluate.phrase_end_probabilities``): the model's mean
    probability that a clause ends where it ends; near the corpus's own figure when phrases end whole."""
    return statistics.fmean(p for lyric in lyrics for p in phrase_end_probabilities(model, vocab, lyric))


def format_accuracy(model: LanguageModel, vocab: Vocab, blocks: list[tuple[str, list[str]]], use_form: bool = True,
                    rhyme: bool = True, punctuation: bool = True, config: SampleConfig = BOT) -> FormScore:
    """Each held-out ci's tune written from its first two characters, scored as ``FormScore`` says (integrity
    under ``model``: the base, for the shipped one).

    Without the form, the model reads the tune's name as a prompt (what the corpus puts before a ci)."""
    requests = [(lines[0][:2], replace(config, form=name, rhyme=rhyme, seed=i)) if use_form
                else (f"{name}\n{lines[0][:2]}", replace(config, seed=i)) for i, (name, lines) in enumerate(blocks)]
    generations = generate_many(model, vocab, requests)
    lyrics = [g.lyric if use_form else g.lyric.split("\n", 1)[1] for g in generations]
    exact = [follows(lyric, tune_plan(name), punctuation) for lyric, (name, _) in zip(lyrics, blocks, strict=True)]
    rhymes = [plan_rhymes(lyric, tune_plan(name)) for lyric, (name, _) in zip(lyrics, blocks, strict=True)]
    return FormScore(sum(exact) / len(exact), sum(h for h, _ in rhymes), sum(t for _, t in rhymes),
                     integrity(model, vocab, lyrics), statistics.fmean(g.mean_logprob for g in generations),
                     statistics.fmean(clashes(lyric) for lyric in lyrics), tone_hits(lyrics, blocks))


def corpus_format(blocks: list[tuple[str, list[str]]], reference: Checkpoint) -> FormScore:
    """The same measures on the held-out blocks themselves: how often real ci keep their tune's form."""
    lyrics = ["\n".join(lines) for _, lines in blocks]
    exact = [follows(lyric, tune_plan(name)) for lyric, (name, _) in zip(lyrics, blocks, strict=True)]
    rhymes = [plan_rhymes(lyric, tune_plan(name)) for lyric, (name, _) in zip(lyrics, blocks, strict=True)]
    return FormScore(sum(exact) / len(exact), sum(h for h, _ in rhymes), sum(t for _, t in rhymes),
                     integrity(reference.model, reference.vocab, lyrics), None,
                     statistics.fmean(clashes(lyric) for lyric in lyrics), tone_hits(lyrics, blocks))


def tone_hits(lyrics: list[str], blocks: list[tuple[str, list[str]]]) -> tuple[int, int]:
    """Rhyme positions on their tune's tone, of those whose tune keeps one (``plan_tones``), over the lyrics."""
    counted = [plan_tones(lyric, tune_plan(name)) for lyric, (name, _) in zip(lyrics, blocks, strict=True)]
    return sum(h for h, _ in counted), sum(t for _, t in counted)


def percent(hits: int, total: int) -> str:
    return f"{hits / total:.1%} ({hits}/{total})" if total else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    base = load_checkpoint(BASE, device=args.device)
    model, vocab = base.model.eval(), base.vocab
    started = time.perf_counter()
    rows = []
    free = replace(BOT, max_length=200, stop_at_blank_line=False)
    requests = (("free, 200 characters, rhyme off", free),
                ("free, 200 characters, rhyme on", replace(free, rhyme=True)),
                ("target 160, rhyme on", replace(BOT, target_length=160, rhyme=True)))
    languages = (("Chinese", chinese_openings(args.samples)), ("English", english_openings(args.samples)))
    for language, prefixes in languages:
        for label, config in requests:
            generations = generate_many(model, vocab, [(p, replace(config, seed=i)) for i, p in enumerate(prefixes)])
            lines = [len(line) for g in generations for line in g.lyric.split("\n") if line.strip()]
            rows.append([language, label, percent(*rhyme_accuracy(generations)), statistics.fmean(lines),
                         statistics.fmean(g.mean_logprob for g in generations)])
    print(f"Rhyme accuracy, the shipped base, {args.samples} samples each:")
    print_table(["language", "request", "rhyme positions on rhyme", "line length", "sample logprob"], rows)

    per_target = max(4, args.samples // len(TARGETS))
    openings = chinese_openings(per_target)
    rows = []
    for rhyme in (False, True):
        for n, (share, ratio, whole) in length_accuracy(model, vocab, openings, rhyme).items():
            rows.append([n, "on" if rhyme else "off", f"{share:.0%}", ratio, f"{whole:.0%}"])
    print(f"\nLength accuracy, {per_target} Chinese samples per target:")
    print_table(["target", "rhyme", "within 20%", "median length / target", "ended on a whole line"], rows)

    blocks = held_out_tunes(args.samples)
    real = corpus_format(blocks, base)
    rows = [["the held-out ci themselves", f"{real.exact:.1%}", percent(real.hits, real.total),
             percent(*real.tones), real.integrity, f"{real.clash:.1%}", "-"]]
    written = (("base, the tune's name as the prompt", False, BOT), ("base, --form TUNE --rhyme", True, BOT),
               ("the same without the rhyme look-ahead", True, replace(BOT, look_ahead=False)),
               (f"the same, each clause the likeliest of {PHRASE_CANDIDATES}", True,
                replace(BOT, phrase_candidates=PHRASE_CANDIDATES, one_theme=False)),
               (f"the same, each clause the best of {PHRASE_CANDIDATES} keeping one season and mood (the bot)", True,
                replace(BOT, phrase_candidates=PHRASE_CANDIDATES)))
    for label, use_form, config in written:
        score = format_accuracy(model, vocab, blocks, use_form, config=config)
        rows.append([label, f"{score.exact:.1%}", percent(score.hits, score.total), percent(*score.tones),
                     score.integrity, f"{score.clash:.1%}", score.logprob])
    print(f"\nFormat accuracy on {len(blocks)} held-out ci ({len({n for n, _ in blocks})} tunes):")
    print_table(["lyrics", "written exactly to the tune", "rhyme positions on rhyme", "on the tune's tone",
                 "sentence integrity", "season or mood clash", "sample logprob"], rows)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
