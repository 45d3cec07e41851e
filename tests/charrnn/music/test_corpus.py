"""The tune corpus: built from the installed music21's ABC files, free collections only unless asked."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from charrnn.cli import main
from charrnn.music.abc import read_tune, split_tunes
from charrnn.music.corpus import TUNES_SHA256, build_tunes

# Plain Python over 4,400 tunes (seconds each build): nothing here depends on the CPU's kernels, so the
# make test-portable matrix leaves it to make test.
pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def corpus() -> tuple[str, object]:
    return build_tunes()


def test_the_corpus_is_the_free_collections_in_the_plain_dialect(corpus: tuple[str, object]) -> None:
    text, report = corpus
    assert set(report.kept) == {"ryansMammoth", "oneills1850", "airdsAirs", "miscFolk", "nottingham-dataset"}  # type: ignore[attr-defined]
    tunes = list(split_tunes(text))
    assert len(tunes) == sum(report.kept.values()) > 3000  # type: ignore[attr-defined]
    for tune_text in tunes[:300]:
        head = tune_text.split("\n")[:4]
        assert [line[:2] for line in head] == ["X:", "M:", "L:", "K:"] and head[2] == "L:1/8"
        tune = read_tune(tune_text)  # reads back
        assert tune.key.fifths == 0  # in the key of its mode without a signature
    assert not set(text) & set('"!{}()[+~'), "chords, decorations, graces, slurs and tuplets are left out"


def test_the_corpus_is_the_one_the_shipped_model_learnt(corpus: tuple[str, object]) -> None:
    pinned = TUNES_SHA256.get(version("music21"))
    if pinned is None:
        pytest.skip(f"no pinned corpus for music21 {version('music21')}")
    assert corpus[1].sha256 == pinned  # type: ignore[attr-defined]


def test_the_non_commercial_collection_only_when_asked() -> None:
    _, report = build_tunes(non_commercial=True)
    assert report.kept["essenFolksong"] > 5000


def test_charrnn_fetch_tunes_writes_it(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["fetch", "tunes", "--out", str(tmp_path / "tunes.txt")]) == 0
    printed = capsys.readouterr().out
    assert "tuplets" in printed and "sha256" in printed
    assert (tmp_path / "tunes.txt").read_text(encoding="utf-8").startswith("X:1\nM:")
