"""Helpers shared by the benchmarks: where the real corpora are, and how tables are printed."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

SHARED_DATA = Path(os.environ.get("LYRICBOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CORPORA = {"jaychou": "jaychou_lyrics.txt", "shakespeare": "tinyshakespeare.txt", "songci": "songci.txt"}


def corpus_path(name: str) -> Path:
    """The real corpus, or a clear exit: benchmarks never download."""
    path = SHARED_DATA / CORPORA[name]
    if not path.is_file():
        sys.exit(
            f"{path} is missing: put the corpora in ../shared/data or set LYRICBOT_SHARED_DATA "
            f"(python -m charrnn fetch {name} --out {path})"
        )
    return path


def train_default_model(out_dir: Path, minutes: float) -> Path:
    """The default architecture trained briefly on the Jay Chou corpus: realistic output distributions
    (sampling cost depends on them) without a long wait. Returns the checkpoint directory."""
    from charrnn.data import load_corpus
    from charrnn.pipeline import train_model
    from charrnn.train_config import TrainConfig

    print(f"training the default model on the Jay Chou corpus for {minutes:g} min ...", file=sys.stderr)
    train_model(load_corpus(corpus_path("jaychou")), None, TrainConfig(max_minutes=minutes, device="cpu"),
                out_dir=out_dir)
    return out_dir / "best"


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank (NaN for no values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)
