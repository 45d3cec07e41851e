"""Titles from the lyric's own words: its hook, its short opening, or the phrase of it the model fits best."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.generation.batching import choose_titles, generate_many
from charrnn.text.titles import (
    TITLE_CONTEXT,
    fit_requests,
    fitted,
    form_title,
    hook_title,
    is_title,
    is_tune_name,
    own_title,
    pick,
    title_options,
    title_requests,
    titled,
)
from tests.helpers.models import Tiny

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
    assert hook_title("the city sleeps tonight under a silver sky, my love\nand I") == "The city sleeps tonight"
    # The base's lines, as the bot titled them before ("My hearts of the solemn in", "The night dead hence that"):
    assert hook_title("My heart of the solemn in down.\nMore your son's news? Farewell") == "My heart of the solemn"
    assert hook_title("The night dead hence, that") == "The night dead hence"
    assert hook_title("Rain on the window noble of his son,\nFor that you make") == "Rain on the window noble"
    assert hook_title("Of the, and\nthe rest") == "Of the"  # a clause that ends by itself keeps its words
    for hook in ("Let it be", "Hold on", "I love her", "It's over"):
        assert hook_title(f"{hook}\nsome other line\n{hook}") == hook
    assert hook_title("Hey, Jude, don't make it bad") == "Hey Jude"  # two words at least
    assert hook_title("O, what a noble mind is here o'erthrown") == "O what a noble mind"
    assert hook_title("I am for a life is sentence? For you") == "I am for a life"  # the bot wrote "...is"
    assert hook_title("Tonight the stars I shall not see again") == "Tonight the stars"
    assert hook_title("Nay，but this dotage") == "Nay but this dotage"  # full-width punctuation ends a clause too
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
    assert choose_titles(model, vocab, ["😀😀"], 4) == [None]  # nothing to score, no words to use


@pytest.mark.parametrize(
    ("lyric", "title"),
    [("晴天\n故事的小黄花，从出生那年就飘着", "晴天"),  # a short opening phrase is the title as it stands
     ("我想你，想你在每个夜里。\n说好的幸福呢，我想你。", "我想你"),  # the phrase that returns
     ("窗外的麻雀在电线杆上多嘴，你说这一句很有夏天的感觉\n手中的铅笔，在纸上来来回回\n手中的铅笔，在纸上来来回回",
      "在纸上来来回回"),  # the longest that returns: the chorus line, not a word within it
     ("walking in the rain again\nI hold on\nwalking in the rain again", "Walking in the rain again"),
     ("炊烟袅袅升起隔江千万里，天青色等烟雨。", None),  # a long opening: the model chooses among its phrases
     ("浣溪沙，一曲新词酒一杯。", None)],  # a tune's name is no title for a lyric not in its form
)
def test_a_lyric_titled_by_what_it_repeats_or_its_short_opening(lyric: str, title: str | None) -> None:
    assert own_title(lyric) == title
    assert pick(lyric, [], []) == (title or hook_title(lyric))


def test_the_options_are_whole_short_phrases_else_where_verse_breaks_a_long_line() -> None:
    assert title_options("炊烟袅袅升起隔江千万里，天青色等烟雨。\n而我在等你", 8) == ["天青色等烟雨", "而我在等你"]
    assert title_options("炊烟袅袅升起隔江千万里，\n月色被打捞起晕开了结局", 8) == ["炊烟", "千万里", "月色", "了结局"]
    assert title_options("把酒醒来欲拈青飞渐苦断，坐沈香枕懒还欢。", 3) == ["把酒", "渐苦断", "坐沈"]
    assert title_options("浣溪沙，一曲新词酒一杯。", 8) == ["一曲", "酒一杯"]  # never a tune's name
    assert title_options("前腔，尾声", 8) == [] and title_options("the rain", 8) == []


def test_a_lines_lead_in_words_name_nothing() -> None:
    """A ci line's leading words hand on to the rest of it (待莫教、一夜相思): 《待莫教》 and 《记当年》 were titles."""
    lyric = "窗外的风吹过了整个夏天。\n待莫教、一夜相思，也不似、月明花谢。\n记当年、一夜。\n记当年、西湖。"
    assert own_title(lyric) is None  # 记当年 returns, but as a lead-in: no chorus
    assert title_options(lyric, 8) == ["一夜相思", "月明花谢", "一夜", "西湖"]
    assert own_title("我想你、此身无一事。\n且休论，一时一笑。", prefix="我想你") == "我想你"  # the person's own words
    assert own_title("我记当年、西湖烟雨。\n且休论，一时一笑。", prefix="我") is None  # the model's lead-in
    assert own_title("记当年、西湖烟雨。\n且休论，一时一笑。") is None


def test_options_come_from_the_lyric_as_written_never_across_a_character_the_model_lacks() -> None:
    """Leaving an unknown character out would join two phrases into a word the lyric never had (把酒问青天 of
    把酒问😀青天); a phrase with a character the model cannot read is no option."""
    base = load_checkpoint(BASE)
    assert "㐀" not in base.vocab
    options, requests = title_requests("明月几时有把酒问😀青天不知天上宫阙。\n对㐀长空", base.vocab, 8)
    assert options == ["明月", "把酒问", "青天", "上宫阙"] and len(requests) == len(options)
    assert all("😀" not in config.force for _, config in requests)  # the head is what the model can read
    assert title_requests("晴天\n故事的小黄花", base.vocab, 8) == ([], [])  # its own title needs no fitting


def test_a_tune_name_titles_only_a_lyric_in_that_tunes_form() -> None:
    """A tune's name (词牌) is never put on a lyric that opens with it: the lyric is not written in the tune's
    form. Such a lyric gets its own words instead; a lyric written in the form gets the tune's name
    (``form_title``, which the bot and the CLI use)."""
    base = load_checkpoint(BASE)
    tunes = ["水调歌头", "浣溪沙", "菩萨蛮", "念奴娇", "蝶恋花", "江城子", "望江南"]
    assert all(is_tune_name(t) for t in tunes) and not is_tune_name("天青色")
    songs = [f"{tune}，明月几时有，把酒问青天，不知天上宫阙今夕是何年。" for tune in tunes]
    chosen = choose_titles(base.model, base.vocab, songs, 4)
    assert all(title in ("明月几时有", "把酒问青天") for title in chosen), chosen
    assert form_title("浣溪沙") == "浣溪沙" and form_title("忆江南") == "望江南・忆江南"


def test_the_base_titles_a_lyric_by_the_phrase_that_predicts_its_opening() -> None:
    """Among a lyric's phrases, the base keeps the one under which its opening is likeliest: the scores are
    the fit rows' own, checked here against the same rows run one at a time."""
    base = load_checkpoint(BASE)
    lyric = "炊烟袅袅升起隔江千万里，\n月色被打捞起晕开了结局，如传世的青花瓷"
    assert fitted(lyric, base.vocab) and not fitted("晴天\n故事的小黄花", base.vocab)
    options = title_options(lyric, 4)
    scores = [generate_many(base.model, base.vocab, [row])[0].logprob for row in fit_requests(lyric, options)]
    (chosen,) = choose_titles(base.model, base.vocab, [lyric], 4)
    best = max(scores)
    assert chosen in options and is_title(chosen)
    assert scores[options.index(chosen)] >= best - SCORE_ATOL, (options, scores, chosen)
    english = choose_titles(base.model, base.vocab, ["the rain falls down\non the city"], 4)
    assert english == ["The rain falls down"]


def test_generate_titles_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from charrnn.cli import main

    args = ["generate", BASE, "--prefix", "明月", "--max-length", "40", "--seed", "1", "--num", "2"]
    assert main([*args, "--titles", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(is_title(row["title"]) for row in rows), rows
    for row in rows:  # each title is the lyric's own words
        assert row["title"] in row["text"], rows
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
