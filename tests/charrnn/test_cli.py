"""The command line, in process (fast) and once through ``python -m charrnn`` (real exit codes)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn.cli import main
from tests.helpers.models import LYRICS

TINY_ARGS = [
    "--layers",
    "1",
    "--hidden",
    "24",
    "--embed",
    "16",
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--seq-len",
    "16",
    "--sample-every",
    "0",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "lyrics.txt"
    corpus.write_text(LYRICS, encoding="utf-8")
    assert main(["train", str(corpus), "--out", str(root / "run"), *TINY_ARGS]) == 0
    return corpus, root / "run" / "best"


def last_json(out: str) -> object:
    return json.loads(out.strip().splitlines()[-1])


def test_train_json_reports_final_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(LYRICS, encoding="utf-8")
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), *TINY_ARGS, "--json"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert isinstance(summary, dict)
    assert summary["val_ppl"] > 1 and summary["chars_per_s"] > 0 and summary["epochs"] == 3
    assert (tmp_path / "run" / "best" / "meta.json").is_file()


def test_eval_matches_training_split(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    corpus, ckpt = trained
    assert main(["eval", str(ckpt), str(corpus), "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert isinstance(out, dict)
    meta = json.loads((ckpt / "meta.json").read_text())
    assert out["val_ppl"] == pytest.approx(meta["metrics"]["val_ppl"], rel=1e-6)
    assert out["chars"] == meta["metrics"]["val_chars"] and out["bpc"] > 0


def test_generate_batched_with_seed(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, ckpt = trained
    args = ["generate", str(ckpt), "--prefix", "我", "--num", "3", "--max-length", "12", "--seed", "5", "--json"]
    assert main(args) == 0
    first = last_json(capsys.readouterr().out)
    assert main(args) == 0
    assert last_json(capsys.readouterr().out) == first
    assert isinstance(first, list) and len(first) == 3
    assert all(item["text"].startswith("我") for item in first)


@pytest.mark.parametrize(
    "extra",
    [
        ["--temperature", "0"],
        ["--temperature", "-1"],
        ["--temperature", "nan"],
        ["--temperature", "inf"],
        ["--max-length", "0"],
        ["--max-length", "5000000"],
        ["--length", "5"],
        ["--form", "no such tune"],
    ],
)
def test_bad_sampling_arguments_exit_2_with_one_line(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    _, ckpt = trained
    assert main(["generate", str(ckpt), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("payload", [b"", b"x", b"xxxxxxxx", b"\x00\x01binary\x00", b"caf\xe9 latin-1"])
def test_bad_corpora_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: bytes) -> None:
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(payload)
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


def test_missing_and_corrupted_checkpoints_exit_2(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", str(tmp_path / "missing")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in trained[1].iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    assert main(["generate", str(broken)]) == 2
    assert main(["eval", str(broken), str(trained[0])]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error:") for line in lines)


def test_module_entry_point_exit_codes(trained: tuple[Path, Path], tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "charrnn", "generate", str(trained[1]), "--temperature", "nan"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")
    good = subprocess.run(
        [sys.executable, "-m", "charrnn", "generate", str(trained[1]), "--max-length", "5", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0 and good.stdout.strip()


def test_train_init_from_grows_the_vocabulary_and_records_the_parent(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, parent = trained
    corpus = tmp_path / "new.txt"
    corpus.write_text("蒲公英的约定\n一起长大的约定\n" * 30, encoding="utf-8")
    out = tmp_path / "child"
    assert main(["train", str(corpus), "--out", str(out), "--init-from", str(parent), *TINY_ARGS, "--json"]) == 0
    summary = last_json(capsys.readouterr().out)
    child, base = json.loads((out / "best" / "meta.json").read_text()), json.loads((parent / "meta.json").read_text())
    assert child["vocab"][: len(base["vocab"])] == base["vocab"] and "蒲" in child["vocab"]
    assert child["parent"] == base["files"]["weights"]["sha256"] and child["init_from"] == str(parent)
    assert child["model_config"]["hidden"] == base["model_config"]["hidden"]  # the parent's shape, not the flags'
    assert isinstance(summary, dict) and summary["vocab_size"] == len(child["vocab"])
    assert main(["train", str(corpus), "--out", str(out), "--replay", str(corpus), *TINY_ARGS]) == 2


def test_export_in_half_precision_halves_the_file_and_keeps_the_model(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from charrnn.checkpoint import load_checkpoint

    _, ckpt = trained
    assert main(["export", str(ckpt), str(tmp_path / "half"), "--half"]) == 0
    full, half = load_checkpoint(ckpt), load_checkpoint(tmp_path / "half")

    def weights_size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.glob("weights-*.safetensors"))

    assert weights_size(tmp_path / "half") < 0.6 * weights_size(ckpt)
    assert half.vocab == full.vocab and half.metrics == full.metrics
    x = torch.tensor([full.vocab.encode("我不要再想你")])
    # float16 keeps 11 bits of mantissa: weights within 1e-3 relative, logits within a few 1e-3.
    torch.testing.assert_close(half.model.eval()(x)[0], full.model.eval()(x)[0], rtol=1e-2, atol=1e-2)


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse formats help with %: a bare "20%" in one option's help made ``generate --help`` crash."""
    from charrnn.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices  # type: ignore[union-attr]
    assert {"train", "generate", "eval", "topics"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0, command
        assert "usage:" in capsys.readouterr().out
