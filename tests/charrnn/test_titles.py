"""Titles: candidates sampled in line mode, the one that fits the lyric kept; English lyrics titled by their hook."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn.batching import generate_many
from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.sample import SampleConfig
from charrnn.titles import (
    TITLE_CONTEXT,
    choose_titles,
    fit_requests,
    form_title,
    hook_title,
    is_title,
    is_tune_name,
    title_config,
    title_options,
    titled,
)

from .conftest import Tiny

# A stated tolerance: one batched, padded pass against one sequence at a time through prime/step.
SCORE_ATOL = 1e-3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("浣溪沙", True), ("木兰花・忆秦娥", True), ("Don't Stop", True), ("前腔", False), ("幺", False),
     ("ROMEO:", False), ("春风好，东风里", False), ("", False), ("这是一个太长太长太长的名字啊", False),
     ("The city sleeps tonight under a", True), ("a sentence of many words that goes on and on", False)],
)
def test_a_title_is_a_name_not_a_sentence_or_a_marker(text: str, expected: bool) -> None:
    assert is_title(text) is expected


def test_an_english_lyric_is_titled_by_its_hook_or_its_first_words() -> None:
    chorus = "walking in the rain again\nI hold on\nwalking in the rain again\nthe night is long"
    assert hook_title(chorus) == "Walking in the rain again"
    assert hook_title("the city sleeps tonight under a silver sky, my love\nand I") == "The city sleeps tonight under a"
    assert hook_title("夜色\n\n") == "夜色"
    assert hook_title("") is None and hook_title("……\n!!") is None
    # A line mostly in letters that mixes in Chinese is titled by its English words (a title, not the line).
    mixed = hook_title("窗外的雀嘴里h gnsoie ongtg so s\n")
    assert mixed == "H gnsoie ongtg so s" and is_title(mixed)
    for lyric in (chorus, "the city sleeps tonight under a silver sky, my love"):
        assert is_title(hook_title(lyric) or "")


def test_a_fitted_title_scores_the_lyric_head_as_read_after_it_by_hand(tiny_trained: Tiny) -> None:
    """Each (lyric, title) pair is a teacher-forced row: its logprob is log p(head | blank line, title line),
    whatever else shares the batch (here a sampled request)."""
    model, vocab = tiny_trained.model, tiny_trained.vocab
    lyrics, titles = ["我不要再想你\n我不能", "天青色等烟雨"], ["烟雨", "隔江千万里"]
    requests = [r for lyric in lyrics for r in fit_requests(lyric, titles, head_chars=6)]
    sampled = ("我", SampleConfig(max_length=12, seed=3))
    *fitted, alone = generate_many(model, vocab, [*requests, sampled])
    assert alone.text == generate_many(model, vocab, [sampled])[0].text  # forced rows change no one else
    for k, (lyric, title) in enumerate((lyric, title) for lyric in lyrics for title in titles):
        assert fitted[k].continuation == lyric[:6]  # read, not sampled
        start, head = vocab.encode(TITLE_CONTEXT + title + "\n"), vocab.encode(lyric[:6])
        with torch.inference_mode():
            logits, state = model.prime([start])
            total = 0.0
            for token in head:
                total += float(F.log_softmax(logits.float(), dim=-1)[0, token])
                logits, state = model.step(torch.tensor([token]), state)
        assert math.isclose(fitted[k].logprob, total, abs_tol=SCORE_ATOL)


def test_characters_the_model_never_saw_are_left_out_of_the_forced_text(tiny_trained: Tiny) -> None:
    model, vocab = tiny_trained.model, tiny_trained.vocab
    clean, noisy = generate_many(model, vocab, [*fit_requests("我不要再想你", ["烟雨"]),
                                                *fit_requests("我不要😀再想你", ["烟雨"])])
    assert noisy.continuation == clean.continuation == "我不要再想你"
    assert math.isclose(noisy.logprob, clean.logprob, abs_tol=SCORE_ATOL)
    assert choose_titles(model, vocab, ["😀😀"], ["烟雨"]) == [None]  # nothing to score, no words to use


def test_a_tune_name_titles_only_a_lyric_in_that_tunes_form() -> None:
    """Sampled tune names (词牌) are never put on a lyric: one not written in the tune's form would be misnamed, even
    famous opening lines of the tune (they are not its whole form). Such a lyric gets its own words instead; a
    lyric written in the form gets the tune's name (``form_title``, which the bot and the CLI use)."""
    base = load_checkpoint(BASE)
    tunes = ["水调歌头", "浣溪沙", "菩萨蛮", "念奴娇", "蝶恋花", "江城子", "望江南"]
    assert all(is_tune_name(t) for t in tunes) and not is_tune_name("天青色")
    assert title_options([*tunes, "静夜思"]) == ["静夜思"]
    songs = ["明月几时有，把酒问青天。不知天上宫阙，今夕是何年。",
             "十年生死两茫茫，不思量，自难忘。千里孤坟，无处话凄凉。"]
    assert choose_titles(base.model, base.vocab, songs, tunes) == [hook_title(song) for song in songs]
    assert form_title("浣溪沙") == "浣溪沙" and form_title("忆江南") == "望江南・忆江南"


def test_sampled_candidates_from_the_base_read_as_titles() -> None:
    """Line mode after a blank line writes tune names and titles: most candidates pass ``is_title``."""
    base = load_checkpoint(BASE)
    candidates = generate_many(base.model, base.vocab, [(TITLE_CONTEXT, title_config(seed=s)) for s in range(16)])
    titles = [c.continuation for c in candidates if is_title(c.continuation)]
    assert len(titles) >= 10, [c.continuation for c in candidates]
    lyric = "天青色等烟雨，而我在等你。炊烟袅袅升起，隔江千万里。"
    (chosen,) = choose_titles(base.model, base.vocab, [lyric], [c.continuation for c in candidates])
    assert (chosen in titles and not is_tune_name(chosen)) or chosen == hook_title(lyric)
    english = choose_titles(base.model, base.vocab, ["the rain falls down\non the city"], titles)
    assert english == ["The rain falls down"]


def test_generate_titles_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from charrnn.cli import main

    args = ["generate", BASE, "--prefix", "明月", "--max-length", "40", "--seed", "1", "--num", "2"]
    assert main([*args, "--titles", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(is_title(row["title"]) for row in rows), rows
    assert main([*args, "--json"]) == 0  # the same lyrics without titles: title rows come after the lyric rows
    assert [row["text"] for row in json.loads(capsys.readouterr().out)] == [row["text"] for row in rows]
    assert main([*args, "--titles", "4"]) == 0
    assert capsys.readouterr().out.startswith(f"《{rows[0]['title']}》\n\n明月")
    with pytest.raises(SystemExit):
        main([*args, "--titles", "-1"])


def test_titled_puts_the_title_on_the_first_line() -> None:
    assert titled("明月几时有", "水调歌头") == "《水调歌头》\n\n明月几时有"
    assert titled("the rain falls", "The Rain") == "The Rain\n\nthe rain falls"
    assert titled("明月几时有", None) == "明月几时有"
