"""The bot writes in forms and to the length asked (issue 17): /len as visible characters in whole lines, a ci tune
or a pattern named in /write, new words to a replied lyric's line lengths (填词), and titles that name the form.

The end-to-end tests run the real Application on the tiny test model (``trained_store``), whose vocabulary has no
punctuation: a form's clauses are checked by their lengths (``follows(..., punctuation=False)``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.services.forms import Asked, lines_pattern, lyric_body, parse_write
from bot.serving.jobs import GenerationJob, GenerationResult
from bot.serving.lanes import REPEATED_CHAR_PENALTY, REPEATED_WORD_PENALTY, lyric_config
from bot.settings import LENGTH_FLOOR, Settings
from bot.telegram.i18n import t
from charrnn.config import MIN_TARGET
from charrnn.generation.shape import lyric_length, visible
from charrnn.text.forms import follows, parse_pattern, tune_plan
from charrnn.text.lyrics import lines_of
from charrnn.text.titles import is_tune_name
from tests.helpers.bot import USER, ask, bot_running, eventually, run

TOLERANCE = 0.2  # /len's promise, charrnn's target_length: within a fifth of the length asked


@pytest.mark.parametrize(("text", "asked"), [
    ("浣溪沙：一曲新词", Asked("一曲新词", form="浣溪沙")),
    ("浣溪沙: 一曲新词", Asked("一曲新词", form="浣溪沙")),
    ("忆江南：江南好", Asked("江南好", form="望江南・忆江南")),  # another name of a tune: the table's name
    ("7,7,5,7: 春风", Asked("春风", pattern="7,7,5,7")),
    ("7，7，5，7：春风", Asked("春风", pattern="7,7,5,7")),  # full-width commas separate lines here too
    ("5A。/5A。：月", Asked("月", pattern="5A。/5A。")),
    ("他说：你好", Asked("他说：你好")),  # not a tune: words with a colon
    ("浣纱溪：一曲", Asked("浣纱溪：一曲")),  # a near-miss of a tune's name is words
    ("12:30 我们走", Asked("12:30 我们走")),  # one line is no pattern: a time
    ("天青色等烟雨", Asked("天青色等烟雨")),
    # Without a colon, as people type them: a tune's name alone, three line lengths or more alone or before
    # Chinese words.
    ("菩萨蛮", Asked("", form="菩萨蛮")),
    (" 忆江南\n", Asked("", form="望江南・忆江南")),
    ("7,7,5,7 秋夜", Asked("秋夜", pattern="7,7,5,7")),
    ("7, 7, 5, 7  秋夜", Asked("秋夜", pattern="7,7,5,7")),
    ("7，7，5，7", Asked("", pattern="7,7,5,7")),
    ("7,7,5,7 夜半钟声：到客船", Asked("夜半钟声：到客船", pattern="7,7,5,7")),  # a colon in the words
    # ...and what stays words:
    ("一剪梅 雪花飘飘北风萧萧", Asked("一剪梅 雪花飘飘北风萧萧")),  # a tune's name that is a pop song's first words
    ("长相思 长相忆", Asked("长相思 长相忆")),
    ("菩萨蛮笺", Asked("菩萨蛮笺")),
    ("3,4 个人", Asked("3,4 个人")),  # two numbers: words
    ("2,3 years ago", Asked("2,3 years ago")),
    ("10, 20, 30 people", Asked("10, 20, 30 people")),  # English words are no pattern's
    ("1,000 miles", Asked("1,000 miles")),
    ("1,2,3 木头人", Asked("1,2,3 木头人")),  # no line of one character
    ("７,７,５,７ 秋夜", Asked("７,７,５,７ 秋夜")),  # full-width digits are words
    ("天青色 等烟雨", Asked("天青色 等烟雨")),
    ("Love me tender", Asked("Love me tender")),
])
def test_write_reads_a_tune_or_a_pattern_before_the_first_colon_or_space(text: str, asked: Asked) -> None:
    assert parse_write(text) == asked


def test_a_replied_lyric_gives_its_line_lengths_without_its_title_and_notes() -> None:
    shown = "《浣溪沙》\n\n一曲新词酒一杯\n去年天气旧亭台\n夕阳西下\n\n(I have never seen these characters: x)"
    body = lyric_body(shown, ("(I have never",))
    assert body == "一曲新词酒一杯\n去年天气旧亭台\n夕阳西下"
    assert [line.clauses[0].low for line in parse_pattern(lines_pattern(body, 600) or "").lines] == [7, 7, 4]
    assert lines_pattern(body, 15) == "7/7 -"  # whole lines within the most a lyric may have
    assert lines_pattern("一行字", 600) is None  # one line stays a prefix, as before
    level = "一曲新歌唱晚风\n去年天气旧时同\n夕阳西下几时红\n小园香径独从容"  # 风 同 红 容: one rhyme, level
    assert lines_pattern(level, 600) == "7A/7A/7A/7A A=平" and lines_pattern(level, 15) == "7A/7A A=平"


def test_a_job_asks_for_its_length_in_whole_lines_with_a_guard_of_twice_it() -> None:
    config = lyric_config(GenerationJob("我", 0.8, 300, form="", pattern="7,7", phrases=4), seed=1)
    assert (config.target_length, config.max_length, config.pattern, config.topics) == (300, 600, "7,7", True)
    tune = lyric_config(GenerationJob("我", 0.8, 300, form="浣溪沙", phrases=4), seed=1)
    free = lyric_config(GenerationJob("我", 0.8, 300, phrases=4), seed=1)
    assert not free.topics  # free lines: no keyword plan
    assert config.phrase_candidates == tune.phrase_candidates == free.phrase_candidates == 4  # clauses are ranked
    assert lyric_config(GenerationJob("我", 0.8, 300), seed=1).phrase_candidates == 1  # an inline job's, written once
    short = lyric_config(GenerationJob("我", 0.8, 5, phrases=4), seed=1)  # shorter than a line: a plain cut
    assert (short.target_length, short.max_length, short.phrase_candidates) == (0, 5, 1)
    # A model that writes ci does not come back to its words; one of modern lyrics repeats them as a figure.
    ci = lyric_config(GenerationJob("我", 0.8, 300), seed=1, ci=True)
    assert ci.repeated_word_penalty == REPEATED_WORD_PENALTY > 1
    assert free.repeated_word_penalty == 1.0
    # Nor, in free lines, to its characters; a tune or a pattern is written as before (where readers saw no gain).
    ci_tune = lyric_config(GenerationJob("我", 0.8, 300, form="浣溪沙", phrases=4), seed=1, ci=True)
    ci_pattern = lyric_config(GenerationJob("我", 0.8, 300, pattern="7,7", phrases=4), seed=1, ci=True)
    assert ci.repeated_char_penalty == REPEATED_CHAR_PENALTY > 1
    assert free.repeated_char_penalty == ci_tune.repeated_char_penalty == ci_pattern.repeated_char_penalty == 1.0
    assert LENGTH_FLOOR == MIN_TARGET
    with pytest.raises(ValueError, match="min_length"):
        Settings(_env_file=None, min_length=MIN_TARGET - 1)  # type: ignore[call-arg]


def test_len_gives_a_lyric_of_about_that_many_visible_characters(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, max_length=600, phrase_candidates=3) as h:
            h.fake.add_user(USER, "Ann", "en")
            await ask(h, "/len 300")
            backend = h.app.bot_data.services.lyrics.backend
            real, jobs = backend.generate, []

            async def recording(job: GenerationJob, timeout: float) -> GenerationResult:
                jobs.append(job)
                return await real(job, timeout)

            backend.generate = recording
            for prefix in ("我", "天青色"):
                lyric = (await ask(h, f"/write {prefix}"))["text"]
                assert lyric.startswith(prefix)
                assert abs(lyric_length(lyric) - 300) <= TOLERANCE * 300, (lyric_length(lyric), lyric)
            assert [job.phrases for job in jobs] == [3] * 2  # each clause ranked among PHRASE_CANDIDATES
            usage = await ask(h, "/len 5")
            assert "10" in usage["text"] and "600" in usage["text"] and "whole lines" in usage["text"]

    run(scenario())


def test_write_in_a_tune_a_pattern_and_to_a_replied_lyrics_lines(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, title_candidates=3) as h:
            h.fake.add_user(USER, "Lin", "zh")
            tune = await ask(h, "/write 浣溪沙：天青")
            title, _, lyric = tune["text"].partition("\n\n")
            assert title == "《浣溪沙》" and lyric.startswith("天青"), tune["text"]  # the tune names its lyric
            assert follows(lyric, tune_plan("浣溪沙"), punctuation=False), lyric
            await eventually(lambda: h.rows("SELECT prefix, form FROM requests") == [("天青", "浣溪沙")])

            before = len(h.fake.sent(USER))  # "write again" writes the same tune
            h.fake.press_button(USER, USER, tune["message_id"], tune["reply_markup"]["inline_keyboard"][1][0]
                                ["callback_data"])
            again = (await h.fake.wait_for_sent(USER, before + 1))[-1]["text"]
            assert again.startswith("《浣溪沙》\n\n天青") and follows(again.partition("\n\n")[2], tune_plan("浣溪沙"),
                                                                     punctuation=False), again

            pattern = (await ask(h, "/write 7，7，5，7：窗外"))["text"]
            title, _, lyric = pattern.partition("\n\n")
            assert lyric.startswith("窗外") and follows(lyric, parse_pattern("7,7,5,7"), punctuation=False), pattern
            assert not is_tune_name(title.strip("《》")), pattern  # not in a tune's form: no tune's name

            # 填词: a reply to the tune's lyric writes new words to its line lengths, under a title of its own.
            h.fake.send_text(USER, USER, "/write 而我", reply_to_message_id=tune["message_id"])
            filled = (await h.fake.wait_for_sent(USER, before + 3))[-1]["text"]
            title, _, lyric = filled.partition("\n\n")
            assert lyric.startswith("而我") and title != "《浣溪沙》", filled
            original = tune["text"].partition("\n\n")[2]
            assert [visible(line) for line in lines_of(lyric)] == [
                visible(line) for line in lines_of(original)], (original, lyric)

            # A tune's name alone: the tune, opened by the model. Lines that add up past the longest lyric: refused.
            alone = (await ask(h, "/write 浣溪沙"))["text"]
            title, _, lyric = alone.partition("\n\n")
            assert title == "《浣溪沙》" and follows(lyric, tune_plan("浣溪沙"), punctuation=False), alone
            lines = (h.settings.max_length // 40 + 1) * ["40"]
            too_long = (await ask(h, f"/write {','.join(lines)} 窗外"))["text"]
            assert too_long == t("zh", "pattern_too_long", limit=h.settings.max_length), too_long

    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_form_row_of_settings_writes_every_write_in_the_chosen_tune(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str
) -> None:
    """/settings has a form row: free lines or a ci tune. A chosen tune is how every /write is written (rhyming,
    titled by the tune) until free lines are chosen again; a /write that names its own form still wins, and a
    forged tune is refused."""
    from tests.helpers.bot import buttons
    from tests.helpers.panel import WORDS, message, tap, ticked

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, title_candidates=3) as h:
            h.fake.add_user(USER, "Lin", lang)
            panel = await ask(h, "/settings")
            pid = panel["message_id"]
            assert "s:f" in buttons(panel)
            await tap(h, USER, USER, pid, "s:f")
            choices = message(h, USER, pid)
            assert {"s:f:-", "s:f:浣溪沙", "s:f:菩萨蛮", "s:b"} <= set(buttons(choices))
            assert ticked(choices) == ["s:f:-"]  # free lines until a tune is chosen
            answer = await tap(h, USER, USER, pid, "s:f:浣溪沙")
            assert "浣溪沙" in answer["text"] and not answer.get("show_alert")
            redrawn = message(h, USER, pid)
            assert "s:t:0.8" in ticked(redrawn) and "浣溪沙" in redrawn["text"]
            assert h.rows("SELECT form FROM user_settings WHERE user_id = ?", USER) == [("浣溪沙",)]
            for forged in ("s:f:no-such-tune", "s:f:浣纱溪", "s:f:" + "调" * 20):
                refused = await tap(h, USER, USER, pid, forged, forge=True)
                assert refused.get("show_alert") is True and WORDS[lang]["stale"] in refused["text"], forged
            assert h.rows("SELECT form FROM user_settings") == [("浣溪沙",)]

            tune = (await ask(h, "/write 天青"))["text"]
            title, _, lyric = tune.partition("\n\n")
            assert title == "《浣溪沙》" and lyric.startswith("天青"), tune
            assert follows(lyric, tune_plan("浣溪沙"), punctuation=False), lyric
            own = (await ask(h, "/write 7,7：窗外"))["text"]  # the request's own pattern wins over the setting
            assert follows(own.partition("\n\n")[2], parse_pattern("7,7"), punctuation=False), own
            english = (await ask(h, "/write The night"))["text"]  # a ci tune is Chinese: English goes free
            assert not english.startswith("《浣溪沙》"), english
            assert h.rows("SELECT prefix, form, pattern FROM requests ORDER BY id") == [
                ("天青", "浣溪沙", None), ("窗外", None, "7,7"), ("The night", None, None)]

            await tap(h, USER, USER, pid, "s:f")
            await tap(h, USER, USER, pid, "s:f:-")
            assert h.rows("SELECT form FROM user_settings") == [("",)]
            free = (await ask(h, "/write 窗外"))["text"]
            assert not free.startswith("《浣溪沙》"), free
            assert h.rows("SELECT form FROM requests ORDER BY id DESC LIMIT 1") == [(None,)]

    run(scenario())


def test_restart_writes_a_left_over_request_in_its_form(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    from bot.domain import Person, Place
    from bot.sandbox import FakeTelegram

    async def scenario() -> None:
        fake = FakeTelegram()
        await fake.start()
        try:
            fake.add_user(USER, "Iv", "zh")
            fake.add_chat(USER, "private")
            async with bot_running(tmp_path, trained_store, fake=fake) as h:
                await h.app.bot_data.services.lyrics.register(
                    update_id=10_001, person=Person(USER, "Iv", None, "zh"), place=Place(USER, "private", None),
                    message_id=None, prefix="我不", pattern="5,5,5")
            async with bot_running(tmp_path, trained_store, fake=fake):
                (answer,) = await fake.wait_for_sent(USER, 1, timeout=120)
            assert follows(answer["text"], parse_pattern("5,5,5"), punctuation=False), answer["text"]
        finally:
            await fake.stop()

    asyncio.run(scenario())
