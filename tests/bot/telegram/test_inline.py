"""Inline mode end to end: ``@LyricBot first words`` through the real Application and the local Bot API server,
the chosen result recorded as a request, stars under the inline message, and the "send to a chat" button."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import FakeTelegram
from bot.serving.generation import GenerationJob, GenerationResult
from tests.helpers.bot import Harness, ask, bot_running, eventually, inline

USER, OTHER = 601, 602
QUERIES = {"zh": "天青色", "en": "the night"}
HINTS = {  # a word of each hint's title, per language
    "en": {"inline_empty": "first words", "inline_too_long": "200", "inline_unknown": "none of these",
           "rate_limited": "faster", "pattern_too_long": "line lengths"},
    "zh": {"inline_empty": "开头", "inline_too_long": "200", "inline_unknown": "不认识", "rate_limited": "太快",
           "pattern_too_long": "加起来"},
}  # fmt: skip


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextmanager
def counted_jobs(h: Harness) -> Iterator[list[GenerationJob]]:
    """Every job that reaches the generation backend, as the worker receives it: the honest count of generations."""
    backend = h.app.bot_data.services.lyrics.backend
    real = backend.generate
    jobs: list[GenerationJob] = []

    async def counting(job: GenerationJob, timeout: float) -> GenerationResult:
        jobs.append(job)
        return await real(job, timeout)

    backend.generate = counting  # type: ignore[method-assign]
    try:
        yield jobs
    finally:
        backend.generate = real  # type: ignore[method-assign]




class Gate:
    """The generation backend held shut: each job is counted as it arrives and waits until ``opened``; a job
    cancelled while it waits (a superseded query) unwinds only once ``unwound`` is set, as a backend that has
    work to do on cancellation (revoking a Celery task) does."""

    def __init__(self) -> None:
        self.jobs: list[GenerationJob] = []
        self.opened = asyncio.Event()
        self.unwound = asyncio.Event()
        self.unwound.set()
        self.cancelled = 0


@contextmanager
def gated(h: Harness) -> Iterator[Gate]:
    backend = h.app.bot_data.services.lyrics.backend
    real = backend.generate
    gate = Gate()

    async def held(job: GenerationJob, timeout: float) -> GenerationResult:
        gate.jobs.append(job)
        try:
            await gate.opened.wait()
        except asyncio.CancelledError:
            gate.cancelled += 1
            await gate.unwound.wait()
            raise
        return await real(job, timeout)

    backend.generate = held  # type: ignore[method-assign]
    try:
        yield gate
    finally:  # nothing left held: the application waits for every handler when it stops
        gate.unwound.set()
        gate.opened.set()
        backend.generate = real  # type: ignore[method-assign]


def keyboard(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in result["reply_markup"]["inline_keyboard"] for b in row]


@pytest.mark.parametrize("titles", [0, 4], ids=["untitled", "titled"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_inline_query_offers_lyrics_records_the_choice_and_its_rating(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str, titles: int
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, title_candidates=titles) as h:
            h.fake.add_user(USER, "In", lang)
            prefix = QUERIES[lang]
            with counted_jobs(h) as jobs:
                query_id, answer = await inline(h, prefix)
                results = answer["results"]
                assert 1 <= len(results) <= 3 and {r["type"] for r in results} == {"article"}
                assert len(jobs) == 1 and jobs[0].candidates == 3 and jobs[0].prefix == prefix  # one batch
                assert jobs[0].titles == titles and jobs[0].phrases == 1  # each clause written once: fast
                assert answer["is_personal"] is True and answer["cache_time"] == 30
                assert answer["button"]["start_parameter"] == "inline"
                for result in results:
                    text = result["input_message_content"]["message_text"]
                    assert prefix in text and "parse_mode" not in result["input_message_content"]
                    # The lyric's title (shown on its first line), or, for a lyric without one, its first line.
                    assert result["title"].rstrip("…") in text.split("\n")[0]
                    buttons = keyboard(result)
                    assert [b.get("callback_data") for b in buttons[:5]] == [f"ir:{n}" for n in range(1, 6)]
                    assert buttons[5]["switch_inline_query"] == prefix
                assert len({r["id"] for r in results}) == len(results)

                # The same words again: answered from the bot's cache, the same results, no second generation.
                _, again = await inline(h, prefix)
                assert [r["id"] for r in again["results"]] == [r["id"] for r in results] and len(jobs) == 1

            chosen = results[-1]
            inline_message_id = h.fake.choose_inline_result(USER, query_id, chosen["id"])
            assert inline_message_id is not None
            # A star pressed at once, in the same batch of updates as the choice: it waits for the row.
            h.fake.press_inline_button(OTHER, inline_message_id, "ir:4")
            text = chosen["input_message_content"]["message_text"]
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests") == [(1,)])
            (row,) = h.rows("SELECT id, source, chat_id, prefix, output, status, inline_message_id, model_version, "
                            "user_id FROM requests")  # fmt: skip
            assert row[1:7] == ("inline", None, prefix, text, "answered", inline_message_id) and row[7]
            assert row[8] == USER
            ((title,),) = h.rows("SELECT title FROM requests")
            if titles:  # the result's title is the lyric's own, on the first line of what was sent
                assert title == chosen["title"] and text.split("\n")[0] in (title, f"《{title}》")
            else:
                assert title is None and text.split("\n")[0].startswith(chosen["title"].rstrip("…"))

            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            assert h.rows("SELECT user_id, stars FROM ratings WHERE request_id = ?", row[0]) == [(OTHER, 4)]
            assert "4" in h.fake.answered_callbacks[0]["text"]

            stats = await ask(h, "/stats", chat=USER, user=USER)
            counts = "asked for 1 lyrics, 1 answered" if lang == "en" else "请求了 1 首歌词，已回答 1 首"
            assert counts in stats["text"]
            assert ("average 4.0" if lang == "en" else "平均 4.0") in stats["text"]

    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_inline_queries_get_a_hint_and_generate_nothing(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Bad", lang)
            with counted_jobs(h) as jobs:
                for text, reason in (("", "inline_empty"), ("   ", "inline_empty"), ("我" * 300, "inline_too_long"),
                                     ("😀🎵😀", "inline_unknown"), ("🎸 ✨", "inline_unknown"),
                                     (",".join(["40"] * 40) + " 天青", "pattern_too_long")):  # fmt: skip
                    query_id, answer = await inline(h, text)
                    (hint,) = answer["results"]
                    assert hint["id"] == "hint" and HINTS[lang][reason] in hint["title"], (text, hint)
                    assert "@LyricBot" in hint["input_message_content"]["message_text"]
                    assert answer["button"]["start_parameter"] == "inline"
                    assert answer["cache_time"] == (300 if reason == "inline_empty" else 0)
                assert jobs == []
                # Choosing the hint sends it to the chat, and records nothing.
                h.fake.choose_inline_result(USER, query_id, "hint")
                # Unknown characters beside known ones are skipped, as in /write.
                _, mixed = await inline(h, "😀" + QUERIES[lang])
                assert mixed["results"][0]["id"] != "hint" and len(jobs) == 1
            await asyncio.sleep(0.3)
            assert h.rows("SELECT COUNT(*) FROM requests") == [(0,)]

    run(scenario())


def test_inline_rate_limit_answers_with_a_hint_and_the_cache_still_serves(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=2) as h:
            h.fake.add_user(USER, "Ra", "zh")
            h.fake.add_user(OTHER, "Lu", "en")
            await inline(h, "我不要")
            await inline(h, "天青色")
            _, limited = await inline(h, "窗外")
            (hint,) = limited["results"]
            assert hint["id"] == "hint" and "太快" in hint["title"] and limited["cache_time"] == 0
            _, cached = await inline(h, "天青色")  # cached answers cost nothing
            assert cached["results"][0]["id"] != "hint"
            refused = await ask(h, "/write 窗外", chat=USER, user=USER)  # one budget per person, inline or not
            assert "太快" in refused["text"]
            _, other = await inline(h, "the night", user=OTHER)  # others are still served
            assert other["results"][0]["id"] != "hint"

    run(scenario())


def test_typing_on_drops_the_older_query_but_its_generation_still_counts(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """Telegram sends a query at every pause in typing: a newer one from the same person stops the older one's
    generation (answered with no results). A generation that started counts against the person's rate limit, as
    a /write does: typing on is not a free generator. Past the limit, the query is answered with a hint that
    says to wait, not with silence."""

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=3) as h:
            h.fake.add_user(USER, "Ty", "zh")
            typed = "天青色等烟雨而我在等你"  # typed letter by letter, as a person types "分开的"
            asked: list[str] = []
            with gated(h) as gate:
                for n in range(1, 4):  # 天, 天青, 天青色: each generates, each stops the one before
                    asked.append(h.fake.send_inline_query(USER, typed[:n]))
                    await eventually(lambda n=n: len(gate.jobs) == n)
                for n in range(4, len(typed) + 1):  # typing on past the limit: no more generations
                    query_id, answer = await inline(h, typed[:n])
                    asked.append(query_id)
                    (hint,) = answer["results"]
                    assert hint["id"] == "hint" and "太快" in hint["title"] and answer["cache_time"] == 0
                assert [j.prefix for j in gate.jobs] == ["天", "天青", "天青色"]
                for query_id in asked[:3]:  # each superseded: answered empty
                    dropped = await h.fake.wait_for_inline_answer(query_id, timeout=90)
                    assert dropped["results"] == [] and dropped["cache_time"] == 0
                assert gate.cancelled == 3
            refused = await ask(h, "/write 窗外", chat=USER, user=USER)  # one budget, inline or not
            assert "太快" in refused["text"]

    run(scenario())


def test_typing_on_answers_the_words_the_person_settled_on(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=2) as h:
            h.fake.add_user(USER, "Ty", "en")
            with gated(h) as gate:
                first = h.fake.send_inline_query(USER, "the")
                await eventually(lambda: len(gate.jobs) == 1)
                settled = h.fake.send_inline_query(USER, "the night")
                await eventually(lambda: len(gate.jobs) == 2)
                gate.opened.set()
                dropped = await h.fake.wait_for_inline_answer(first, timeout=90)
                answer = await h.fake.wait_for_inline_answer(settled, timeout=90)
            assert dropped["results"] == [] and dropped["cache_time"] == 0
            assert answer["results"] and answer["results"][0]["id"] != "hint"
            _, cached = await inline(h, "the night")  # the same words again: the cache, free
            assert cached["results"][0]["id"] == answer["results"][0]["id"]
            _, limited = await inline(h, "the road")  # two generations started: the budget of two is spent
            assert limited["results"][0]["id"] == "hint"

    run(scenario())


def test_an_identical_query_waiting_on_a_superseded_one_is_answered(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """The same words twice share one generation. If a newer query supersedes it, the second one is answered
    (empty, as the first); and the same words typed again after that get a generation of their own rather than
    waiting on the one being dropped."""

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Id", "en")
            service = h.app.bot_data.services.inline
            assert service is not None
            lyrics = service.lyrics
            real_vocab = lyrics.vocab
            looked = 0  # queries past their last await before the cache and the in-flight check

            async def vocab(prefs: Any) -> Any:
                nonlocal looked
                result = await real_vocab(prefs)
                looked += 1
                return result

            lyrics.vocab = vocab  # type: ignore[method-assign]
            with gated(h) as gate:
                # the night, the night (waits on the first), the road: both the night queries are superseded.
                first = h.fake.send_inline_query(USER, "the night")
                await eventually(lambda: len(gate.jobs) == 1)
                again = h.fake.send_inline_query(USER, "the night")
                await eventually(lambda: looked == 2)  # it is waiting on the first one's generation
                assert len(gate.jobs) == 1
                newer = h.fake.send_inline_query(USER, "the road")
                await eventually(lambda: len(gate.jobs) == 2)
                for query_id in (first, again):
                    dropped = await h.fake.wait_for_inline_answer(query_id, timeout=90)
                    assert dropped["results"] == [] and dropped["cache_time"] == 0

                # the sea, the wind (supersedes it; the sea's generation is slow to unwind), the sea again.
                gate.unwound.clear()
                sea = h.fake.send_inline_query(USER, "the sea")
                await eventually(lambda: len(gate.jobs) == 3)
                wind = h.fake.send_inline_query(USER, "the wind")
                await eventually(lambda: len(gate.jobs) == 4)
                sea_again = h.fake.send_inline_query(USER, "the sea")
                await eventually(lambda: len(gate.jobs) == 5)  # a generation of its own
                assert [j.prefix for j in gate.jobs] == ["the night", "the road", "the sea", "the wind", "the sea"]
                gate.unwound.set()
                gate.opened.set()
                for query_id in (newer, sea, wind):
                    dropped = await h.fake.wait_for_inline_answer(query_id, timeout=90)
                    assert dropped["results"] == [], query_id
                answer = await h.fake.wait_for_inline_answer(sea_again, timeout=90)
                assert answer["results"] and answer["results"][0]["id"] != "hint"
            assert not service._in_flight and not service._latest  # nothing left behind

    run(scenario())


def test_share_button_under_a_written_lyric(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Sh", "en")
            lyric = await ask(h, "/write 天青色等烟雨\n而我", chat=USER, user=USER)
            rows = lyric["reply_markup"]["inline_keyboard"]
            assert rows[-1] == [{"text": "\u2197 send to a chat", "switch_inline_query": "天青色等烟雨 而我"}]
            assert rows[0][0]["callback_data"].startswith("r:")

    run(scenario())


def test_no_share_button_where_the_bot_has_no_inline_mode(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """Without BotFather's /setinline, "send to a chat" would open an inline query nobody answers."""

    async def scenario() -> None:
        async with FakeTelegram(inline_mode=False) as fake, bot_running(tmp_path, trained_store, fake=fake) as h:
            h.fake.add_user(USER, "Sh", "en")
            lyric = await ask(h, "/write 天青色", chat=USER, user=USER)
            buttons = [b for row in lyric["reply_markup"]["inline_keyboard"] for b in row]
            assert buttons and all("callback_data" in b for b in buttons)

    run(scenario())


def test_forged_and_repeated_inline_updates_change_nothing(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Fo", "en")
            _, answer = await inline(h, "the night")
            user = {"id": USER, "is_bot": False, "first_name": "Fo", "language_code": "en"}
            chosen = {"update_id": 777_000, "chosen_inline_result": {
                "result_id": answer["results"][0]["id"], "from": user, "query": "the night",
                "inline_message_id": "IMx"}}  # fmt: skip
            h.fake.push_raw_update(chosen)
            h.fake.push_raw_update(chosen)  # a redelivery: one row
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests") == [(1,)])
            # A chat button's data under an inline message: no chat to check it against, so it is refused.
            # Nor do the settings panel's and the style picker's, which change a chat's settings: there is none.
            for data in ("r:1:5", "s:t:0.5", "st:default"):
                h.fake.forge_inline_callback(USER, "IMx", data)
            # A result id the bot never gave (or forgot): nothing is recorded, nothing breaks.
            h.fake.push_raw_update({"update_id": 777_002, "chosen_inline_result": {
                "result_id": "nosuchtoken.0", "from": user, "query": "the night"}})  # fmt: skip
            await asyncio.sleep(1.0)
            assert h.rows("SELECT update_id, inline_message_id FROM requests") == [(777_000, "IMx")]
            assert h.rows("SELECT COUNT(*) FROM ratings") == [(0,)]
            assert h.rows("SELECT COUNT(*) FROM user_settings") == [(0,)]
            await eventually(lambda: len(h.fake.answered_callbacks) == 3)  # each answered: no spinner left turning
            assert all(a.get("text") for a in h.fake.answered_callbacks), h.fake.answered_callbacks  # each says why
            _, still = await inline(h, "the night")  # the bot still answers
            assert still["results"][0]["id"] != "hint"

            backend = h.app.bot_data.services.lyrics.backend

            async def broken(job: GenerationJob, timeout: float) -> GenerationResult:
                raise RuntimeError("the worker fell over")

            real, backend.generate = backend.generate, broken  # type: ignore[method-assign]
            _, failed = await inline(h, "the road")
            backend.generate = real  # type: ignore[method-assign]
            (hint,) = failed["results"]  # an apology with an error id, not silence
            assert hint["id"] == "hint" and "went wrong" in hint["title"] and "(error " in hint["title"]

    run(scenario())


def test_a_result_offered_to_someone_else_is_not_recorded_for_them(
    tmp_path: Path, trained_store: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram sends a chosen result only to the person who picked it from their own results: a
    ``chosen_inline_result`` that names another person's result id is forged, and records nothing."""

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Own", "en")
            h.fake.add_user(OTHER, "Thief", "en")
            query_id, answer = await inline(h, "the night")
            result_id = answer["results"][0]["id"]
            thief = {"id": OTHER, "is_bot": False, "first_name": "Thief", "language_code": "en"}
            forged = {"result_id": result_id, "from": thief, "query": "the night", "inline_message_id": "IMthief"}
            with caplog.at_level(logging.WARNING, logger="bot.services.inline"):
                h.fake.push_raw_update({"update_id": 778_000, "chosen_inline_result": forged})
                await eventually(lambda: f"offered to {USER}, not to {OTHER}" in caplog.text)
            assert h.rows("SELECT COUNT(*) FROM requests") == [(0,)]
            # The owner's own pick: recorded, as theirs.
            inline_message_id = h.fake.choose_inline_result(USER, query_id, result_id)
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests") == [(1,)])
            assert h.rows("SELECT user_id, inline_message_id FROM requests") == [(USER, inline_message_id)]
            assert h.rows("SELECT COUNT(*) FROM users WHERE id = ?", OTHER) == [(0,)]

    run(scenario())


def test_the_inline_cache_is_bounded_and_expires(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ca", "zh")
            cache = h.app.bot_data.services.inline
            assert cache is not None
            cache.max_entries = 2
            with counted_jobs(h) as jobs:
                first_query, first = await inline(h, "我")
                await inline(h, "天")
                await inline(h, "雨")  # a third answer: the oldest is forgotten
                _, again = await inline(h, "我")
                assert len(jobs) == 4 and again["results"][0]["id"] != first["results"][0]["id"]
                _, cached = await inline(h, "雨")
                assert len(jobs) == 4
                cache.answer_ttl_s = 0.0  # past the answer cache's lifetime: generated afresh
                _, fresh = await inline(h, "雨")
                assert len(jobs) == 5 and fresh["results"][0]["id"] != cached["results"][0]["id"]
            # A forgotten result, chosen late: its text is no longer known, so nothing is recorded.
            h.fake.choose_inline_result(USER, first_query, first["results"][0]["id"])
            await asyncio.sleep(0.5)
            assert h.rows("SELECT COUNT(*) FROM requests") == [(0,)]

    run(scenario())


def test_without_inline_feedback_a_star_says_it_was_not_recorded(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with FakeTelegram(inline_feedback=False) as fake, bot_running(tmp_path, trained_store, fake=fake) as h:
            fake.add_user(USER, "Nf", "en")
            query_id, answer = await inline(h, "the night")
            inline_message_id = fake.choose_inline_result(USER, query_id, answer["results"][0]["id"])
            assert inline_message_id is not None
            fake.press_inline_button(USER, inline_message_id, "ir:5")
            await eventually(lambda: len(fake.answered_callbacks) == 1)
            assert "not saved" in fake.answered_callbacks[0]["text"]
            assert h.rows("SELECT COUNT(*) FROM requests") == [(0,)]

    run(scenario())


def test_inline_mode_in_the_sandbox_terminal(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """The terminal chat plays inline mode too: @LyricBot words, #N to send one, !N under it, and "send to a chat"."""
    model_dir, corpus = trained_store
    env = {"MODEL_DIR": str(model_dir), "CORPUS_PATH": str(corpus), "DEVICE": "cpu", "PATH": "",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "TELEGRAM_BOT_TOKEN": "",
           "INLINE_TIMEOUT_S": "120"}  # fmt: skip  # Telegram's 8 s is a ceiling a busy test machine can pass
    chat = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox"],
        input="@LyricBot 我不要\n#1\n!4\n/write 天青色\n!8\n/quit\n",
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "inline> [#1]" in chat.stdout and "bot> 我不要" in chat.stdout, chat.stdout
    assert "谢谢！你打了 4★" in chat.stdout  # the star under the inline message was recorded
    assert chat.stdout.count("inline> [#1]") == 2, chat.stdout  # "send to a chat" asked inline for 天青色
