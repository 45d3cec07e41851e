import itertools
from pathlib import Path

import pytest
import torch

from charrnn.data import (
    ConsecutiveSampling,
    CorpusError,
    RandomSampling,
    ReplayMix,
    demo_corpus_path,
    load_corpus,
    split_corpus,
)


def test_demo_corpus_ships_with_the_package() -> None:
    text = load_corpus(demo_corpus_path())
    assert len(text.splitlines()) > 300
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text) and "the" in text.lower()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"aaaa", "single distinct character"),
        (b"\x00\x01\x02binary", "binary"),
        (b"\xff\xfe\xfa not utf8", "UTF-8"),
    ],
)
def test_bad_corpora_get_one_line_errors(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(payload)
    with pytest.raises(CorpusError, match=message) as info:
        load_corpus(path)
    assert "\n" not in str(info.value)


def test_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "nope.txt")


def test_tail_split_holds_out_the_end_at_a_line_boundary() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    train, val = split_corpus(text, 0.1)
    assert train + val == text
    assert val.startswith("line ") and train.endswith("\n")
    assert 0.08 < len(val) / len(text) < 0.12


def test_lines_split_is_seeded() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    assert split_corpus(text, 0.2, "lines", seed=1) == split_corpus(text, 0.2, "lines", seed=1)
    train, val = split_corpus(text, 0.2, "lines", seed=1)
    assert sorted((train + val).splitlines()) == sorted(text.splitlines())
    assert len(val.splitlines()) == 20


@pytest.mark.parametrize("cls", [RandomSampling, ConsecutiveSampling])
def test_batches_have_shapes_and_targets_shifted_by_one(cls: type) -> None:
    ids = torch.arange(1000)
    source = cls(ids, batch_size=4, seq_len=10, seed=3)
    batches = list(source.epoch(0))
    assert len(batches) == source.batches_per_epoch() > 0
    for x, y in batches:
        assert x.shape == y.shape == (4, 10)
        assert torch.equal(y, x + 1)  # ids are positions, so the next character is id + 1


def test_consecutive_batches_continue_each_other() -> None:
    source = ConsecutiveSampling(torch.arange(1000), batch_size=4, seq_len=10, seed=0)
    batches = list(source.epoch(0))
    for (x0, _), (x1, _) in itertools.pairwise(batches):
        assert torch.equal(x1[:, 0], x0[:, -1] + 1)
    assert source.carries_state


def test_random_sampling_is_seeded_per_epoch_and_independent_windows() -> None:
    source = RandomSampling(torch.arange(1000), batch_size=4, seq_len=10, seed=0)
    first = [x for x, _ in source.epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in source.epoch(0)], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in source.epoch(1)], strict=True))
    starts = torch.cat([x[:, 0] for x in first])
    assert len(set(starts.tolist())) == len(starts)  # no window used twice in an epoch
    assert not source.carries_state


def test_replay_mix_takes_old_windows_into_every_batch() -> None:
    new = RandomSampling(torch.arange(0, 500), batch_size=8, seq_len=10, seed=0)
    old = RandomSampling(torch.arange(10_000, 12_000), batch_size=8, seq_len=10, seed=1)
    for x, y in ReplayMix(new, old, replay_fraction=0.25).epoch(0):
        assert x.shape == (8, 10) and torch.equal(y, x + 1)
        assert int((x[:, 0] >= 10_000).sum()) == 2


def test_corpus_shorter_than_a_window_is_refused() -> None:
    with pytest.raises(CorpusError):
        RandomSampling(torch.arange(5), batch_size=2, seq_len=10)
