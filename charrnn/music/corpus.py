"""The tune corpus: folk tunes from the ABC collections that music21 installs, in the plain dialect.

No network: the files are read from the installed ``music21`` package (found without importing it, which takes
seconds). Only collections whose terms allow any use go in by default: tunes printed in the 18th and 19th
centuries, transcribed into ABC by folk musicians who shared them, redistributed with music21 under its
corpus terms without a further restriction. The Essen folksongs (the largest, and songs rather than dance
tunes) are licensed for non-commercial use only; our code and models are MIT, so they go in only when asked
(``non_commercial=True``), and the shipped tune model never saw them.

Each tune is read by ``charrnn.music.abc.read_tune`` and moved to the key of its mode without a signature
(C major, A minor, D dorian...): the model learns melody, not twelve copies of it; a melody is moved to the
key a person asks for when it is sung. Tunes the plain dialect cannot hold are left out and counted by
reason; duplicates (the same notes in the same meter and mode) are kept once. The tunes are shuffled with a
fixed seed so that the held-out tail (the last tenth, as for every corpus) holds tunes of every collection.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from charrnn.music.abc import AbcSkip, plain_key, read_tune, split_tunes, transpose
from charrnn.music.abc_write import write_body, write_tune


@dataclass(frozen=True)
class Collection:
    folder: str  # under music21/corpus
    source: str
    terms: str
    free: bool  # any use allowed (False: non-commercial only)


COLLECTIONS = (
    Collection("ryansMammoth", "Ryan's Mammoth Collection (Boston, 1883), ABC by Ray Davies and others",
               "public domain music; ABC contributed to the folk community, redistributed with music21", True),
    Collection("oneills1850", "O'Neill's Music of Ireland (Chicago, 1903; 1,850 melodies), ABC by Henrik Norbeck, "
               "Bob Safranek, John Chambers and others", "public domain music; ABC shared by its transcribers, "
               "redistributed with music21", True),
    Collection("airdsAirs", "Aird's Selection of Scotch, English, Irish and Foreign Airs (Glasgow, 1778-1803), "
               "ABC by Jack Campin (2009)", "public domain music; ABC redistributed with music21", True),
    Collection("miscFolk", "Northumbrian Minstrelsy (1882) and colonial American fife music, ABC by Jack Campin",
               "public domain music; ABC redistributed with music21", True),
    Collection("nottingham-dataset", "Nottingham Music Database (two reels in music21's copy)",
               "redistributed with music21", True),
    Collection("essenFolksong", "Essen Folksong Collection (EsAC), ABC by Seymour Shlien",
               "non-commercial distribution and use only (corpus/essenFolksong/license.txt)", False),
)
SEED = 0
TUNE_CORPUS = "tunes"  # its name for charrnn fetch
# The corpus the shipped tune model learnt (make pretrained-tune), built from music21 10.5.1's files: another
# music21 may carry other files, and the text then differs (the builder prints its SHA-256).
TUNES_SHA256 = {"10.5.1": "a76a995022ed486f76e5a4b28e6838c8f0bd0a80be79b9e636d12c31fb6de680"}


@dataclass
class Report:
    """What went in and what was left out, per collection."""

    kept: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (collection, reason)
    duplicates: int = 0
    characters: int = 0
    sha256: str = ""

    def lines(self) -> list[str]:
        out = [f"{name}: {count:,} tunes" for name, count in self.kept.items()]
        reasons: Counter[str] = Counter()
        for (_, reason), count in self.skipped.items():
            reasons[reason] += count
        out.append(f"left out: {sum(reasons.values()):,} tunes (" +
                   ", ".join(f"{reason} {count}" for reason, count in reasons.most_common()) + ")")
        out.append(f"duplicates kept once: {self.duplicates:,}")
        out.append(f"{sum(self.kept.values()):,} tunes, {self.characters:,} characters, sha256 {self.sha256}")
        return out


def installed(package: str) -> Path:
    """An installed package's folder, found without importing it (music21 takes seconds to import);
    ``FileNotFoundError`` when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed: pip install {package}")
    return Path(next(iter(spec.submodule_search_locations)))


def music21_corpus() -> Path:
    """The installed music21's corpus folder."""
    return installed("music21") / "corpus"


def reason_of(error: AbcSkip) -> str:
    """The reason without its particulars: "key 'HP'" and "key 'none'" are one reason."""
    text = str(error)
    for kind in ("key", "meter", "unit length", "a note of", "a stray", "a length"):
        if text.startswith(kind):
            return kind
    return text


def build_tunes(root: Path | None = None, non_commercial: bool = False,
                report: Callable[[str], None] | None = None) -> tuple[str, Report]:
    """The corpus text (tunes separated by blank lines) and what went into it."""
    root = root or music21_corpus()
    stats = Report()
    seen: set[tuple[str, str, str]] = set()
    tunes = []
    for collection in COLLECTIONS:
        if not collection.free and not non_commercial:
            continue
        for path in sorted((root / collection.folder).rglob("*.abc")):
            for text in split_tunes(path.read_text(encoding="latin-1")):
                try:
                    tune = read_tune(text)
                    tune = transpose(tune, plain_key(tune.key))
                except AbcSkip as error:
                    stats.skipped[(collection.folder, reason_of(error))] += 1
                    continue
                fingerprint = (tune.meter_text, str(tune.key), write_body(tune))
                if fingerprint in seen:
                    stats.duplicates += 1
                    continue
                seen.add(fingerprint)
                tunes.append(tune)
                stats.kept[collection.folder] += 1
    random.Random(SEED).shuffle(tunes)
    text = "\n\n".join(write_tune(tune, number) for number, tune in enumerate(tunes, 1)) + "\n"
    stats.characters = len(text)
    stats.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    for line in stats.lines() if report else ():
        report(line)  # type: ignore[misc]
    return text, stats
