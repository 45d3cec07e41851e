"""The blind pairs: held-out real text beside ours from the same opening, shuffled, the key kept apart; and the
reader's answers scored against that key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn.text.forms import follows, parse_pattern, pattern_of
from tests.helpers.corpora import real_corpus

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from blind_pairs import opening_of  # noqa: E402


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "blind_pairs.py"), *args], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_opening_is_the_first_clause_at_most_four_characters() -> None:
    assert opening_of("春风又绿江南岸，明月何时照我还。") == "春风又绿"
    assert opening_of("小桥，流水") == "小桥" and opening_of("天青色 等烟雨") == "天青色"


def test_pairs_hold_the_real_held_out_ci_and_ours_in_its_form_shuffled_with_the_key_apart(tmp_path: Path) -> None:
    real_corpus("songci.txt")
    run("--out", str(tmp_path), "--pairs", "2", "--seed", "3")
    key = json.loads((tmp_path / "key.json").read_text(encoding="utf-8"))
    pages = (tmp_path / "pairs.md").read_text(encoding="utf-8")
    assert set(key) == {"1", "2"} and set(key.values()) <= {"A", "B"}
    songci = real_corpus("songci.txt").read_text(encoding="utf-8")
    for n in ("1", "2"):
        pair = pages.split(f"## Pair {n}\n")[1].split("## Pair")[0]
        texts = {"A": pair.split("A:\n\n")[1].split("\n\nB:")[0].strip(), "B": pair.split("B:\n\n")[1].strip()}
        machine, real = texts[key[n]], texts["B" if key[n] == "A" else "A"]
        assert real in songci and machine not in songci  # the real one is the corpus's own, ours is not
        assert machine.startswith(opening_of(real))  # the same opening
        assert follows(machine, parse_pattern(pattern_of(real))), (real, machine)  # in the real one's form
    assert "machine" not in json.dumps(key) and str(key) not in pages  # the reader's page holds no key


def test_scores_count_sure_right_answers_and_average_the_machines_and_the_reals(tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text(json.dumps({"1": "A", "2": "B"}), encoding="utf-8")
    answers = [{"pair": 1, "machine": "A", "confidence": 0.9, "fluency": {"A": 2, "B": 5}, "sense": {"A": 1, "B": 4},
                "craft": {"A": 2, "B": 4}},
               {"pair": 2, "machine": "A", "confidence": 0.6, "fluency": {"A": 4, "B": 4}, "sense": {"A": 5, "B": 3},
                "craft": {"A": 4, "B": 2}}]  # fmt: skip
    (tmp_path / "answers.json").write_text(json.dumps(answers), encoding="utf-8")
    out = run("--score", str(tmp_path / "answers.json"), "--key", str(tmp_path / "key.json"))
    assert "detected at 80% confidence or more: 1 of 2 (50%)" in out and "right at any confidence: 1 of 2" in out
    assert "sense: machine 2.0, real 4.5" in out and "craft: machine 2.0, real 4.0" in out
    with pytest.raises(AssertionError):  # answers that leave a pair out are refused, not scored
        (tmp_path / "answers.json").write_text(json.dumps(answers[:1]), encoding="utf-8")
        run("--score", str(tmp_path / "answers.json"), "--key", str(tmp_path / "key.json"))
