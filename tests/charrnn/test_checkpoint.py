import json
import pickle
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from tests.helpers.models import tiny_untrained


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_round_trip_gives_identical_logits(tmp_path: Path, cell: str) -> None:
    tiny = tiny_untrained(cell)
    save_checkpoint(
        tmp_path / "ckpt",
        tiny.model,
        tiny.vocab,
        metrics={"val_ppl": 12.5},
        corpus_sha256="ab" * 32,
        parent="parent-sha",
    )
    loaded = load_checkpoint(tmp_path / "ckpt")
    # The stored numbers round-trip bit for bit; what they compute is compared as floats.
    saved, restored = tiny.model.state_dict(), loaded.model.state_dict()
    assert saved.keys() == restored.keys() and all(torch.equal(saved[k], restored[k]) for k in saved)
    x = torch.randint(0, len(tiny.vocab), (2, 7))
    torch.testing.assert_close(loaded.model.eval()(x)[0], tiny.model.eval()(x)[0])
    assert loaded.vocab == tiny.vocab
    assert loaded.metrics["val_ppl"] == 12.5
    assert loaded.meta["corpus_sha256"] == "ab" * 32 and loaded.meta["parent"] == "parent-sha"
    assert loaded.meta["model_config"]["cell"] == cell


def test_tied_weights_stay_tied_after_loading(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    assert tiny.model.config.tie_weights
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab))
    assert loaded.model.decoder.weight is loaded.model.embedding.weight


def test_overwrite_is_atomic_and_sweeps_old_files(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    with torch.no_grad():
        tiny.model.decoder.bias.add_(1.0)
    save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    files = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert len(files) == 2 and "meta.json" in files  # one weights file, no temp files left
    assert torch.equal(load_checkpoint(tmp_path / "c").model.decoder.bias, tiny.model.decoder.bias)


def test_flipped_byte_is_refused(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    weights = next(directory.glob("weights-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(directory)


def test_truncated_weights_are_refused(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    weights = next(directory.glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(directory)


def test_broken_meta_and_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"meta\.json is missing"):
        load_checkpoint(tmp_path / "empty")
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    (directory / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_meta(directory)


class _Exploit:
    """Unpickling this writes a marker file: proof that pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (self.marker, "pwned"))  # type: ignore[return-value]


def test_a_pickled_checkpoint_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    directory = tmp_path / "evil"
    directory.mkdir()
    (directory / "model.pt").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(directory)
    # Even a meta.json that points at the pickle gets it refused (checksum, then safetensors parsing).
    tiny = tiny_untrained()
    save_checkpoint(directory, tiny.model, tiny.vocab)
    meta = json.loads((directory / "meta.json").read_text())
    import hashlib

    pickle_sha = hashlib.sha256((directory / "model.pt").read_bytes()).hexdigest()
    meta["files"]["weights"] = {"name": "model.pt", "sha256": pickle_sha}
    (directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_checkpoint(directory)
    assert not marker.exists()


def test_path_escape_in_meta_is_refused(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    meta = json.loads((directory / "meta.json").read_text())
    meta["files"]["weights"]["name"] = "../../etc/passwd"
    (directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="bad file name"):
        load_checkpoint(directory)


def test_a_crash_before_the_switch_leaves_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab, metrics={"v": 1})
    import charrnn.files as module  # where checkpoints are written, atomically

    real_replace = module.os.replace

    def crash_on_meta(src: str, dst: str | Path) -> None:
        if str(dst).endswith("meta.json"):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(module.os, "replace", crash_on_meta)
    with torch.no_grad():
        tiny.model.decoder.bias.add_(1.0)
    with pytest.raises(OSError, match="power cut"):
        save_checkpoint(directory, tiny.model, tiny.vocab, metrics={"v": 2})
    monkeypatch.undo()
    loaded = load_checkpoint(directory)
    assert loaded.metrics == {"v": 1}
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
