"""A newcomer is never left in silence, and nobody gets more answers than the limits allow: plain text in private
is a /write, unknown commands and non-text get a hint, groups stay quiet unless addressed, every refusal in a
private chat is said, and everything that answers in a group counts against the rate limit first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.services.admission import RateLimiter, RefusalThrottle
from tests.helpers.bot import ask, bot_running, buttons, eventually, quiet

ANN, BOB, GROUP = 601, 602, -100601


def test_private_text_is_a_write_and_unknown_commands_and_stickers_get_a_hint(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(ANN, "Ann", "zh")
            for text in ("写一首关于秋天的歌", "hello"):
                lyric = await ask(h, text, chat=ANN, user=ANN)
                assert lyric["text"].startswith(text) and buttons(lyric), lyric["text"]
            hint = await ask(h, "/foo bar", chat=ANN, user=ANN)
            assert "/foo" in hint["text"] and "/help" in hint["text"]
            h.fake.push_raw_update({"message": {
                "message_id": 9001, "date": 0, "chat": {"id": ANN, "type": "private", "first_name": "Ann"},
                "from": {"id": ANN, "is_bot": False, "first_name": "Ann", "language_code": "zh"},
                "sticker": {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                            "is_animated": False, "is_video": False}}})
            sent = await h.fake.wait_for_sent(ANN, 4, timeout=120)
            assert "/help" in sent[-1]["text"]
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(2,)])

    asyncio.run(scenario())


def test_a_group_hears_only_what_is_addressed_to_the_bot(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_chat(GROUP, "supergroup", "Club")
            for text in ("/foo", "/foo@OtherBot", "/write@OtherBot 窗外", "hello everyone"):
                h.fake.send_text(ANN, GROUP, text)
            assert await quiet(h, GROUP, 2.0) == 0
            hint = await ask(h, "/foo@LyricBot", chat=GROUP, user=ANN)
            assert "/foo" in hint["text"] and "/help" in hint["text"]
            lyric = await ask(h, "@LyricBot 窗外的麻雀", chat=GROUP, user=ANN)
            assert lyric["text"].startswith("窗外的麻雀") and buttons(lyric)
            prompt = await ask(h, "@LyricBot", chat=GROUP, user=ANN)  # addressed, no words: ask for them
            assert "first line" in prompt["text"]

    asyncio.run(scenario())


def test_every_refusal_in_private_is_said_and_a_stored_spare_costs_nothing(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=1, candidates=2) as h:
            h.fake.add_user(ANN, "Ann", "en")
            lyric = await ask(h, "/write 我不要", chat=ANN, user=ANN)
            request_id = int(buttons(lyric)[0].split(":")[1])
            await eventually(lambda: h.rows("SELECT status FROM requests WHERE id = ?", request_id) == [("answered",)])
            for n in range(3):  # each refused /write is answered: a private chat is never left in silence
                refusal = await ask(h, f"/write 天{n}", chat=ANN, user=ANN)
                assert "faster than I can sing" in refusal["text"]
            # "Write again" shows the spare candidate generated with the first lyric: no new generation, no limit.
            before = len(h.fake.sent(ANN))
            h.fake.press_button(ANN, ANN, lyric["message_id"], f"a:{request_id}")
            spare = (await h.fake.wait_for_sent(ANN, before + 1, timeout=120))[-1]
            assert spare["text"].startswith("我不要") and "faster" not in spare["text"]
            # The spare is used up: the next press would generate, and that counts.
            before = len(h.fake.sent(ANN))
            h.fake.press_button(ANN, ANN, spare["message_id"], f"a:{int(buttons(spare)[0].split(':')[1])}")
            again = (await h.fake.wait_for_sent(ANN, before + 1, timeout=120))[-1]
            assert "faster than I can sing" in again["text"]

    asyncio.run(scenario())


def test_too_long_prefixes_and_bare_prompts_count_against_the_limit_in_a_group(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=2, max_prefix_chars=10) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_chat(GROUP, "supergroup", "Club")
            for _ in range(6):
                h.fake.send_text(ANN, GROUP, "/write@LyricBot " + "长" * 50)
            for _ in range(6):
                h.fake.send_text(ANN, GROUP, "/write@LyricBot")  # a bare /write: the first-line prompt
            answers = await h.fake.wait_for_sent(GROUP, 3, timeout=120)
            await quiet(h, GROUP, 2.0)
            texts = [m["text"] for m in h.fake.sent(GROUP)]
            # Two answers within the limit (a prefix too long, said with its length, or the first-line prompt:
            # whichever was counted first), then one refusal, and nothing more.
            assert len(texts) == 3, texts
            assert all("50 characters" in text or "first line" in text for text in texts[:2]), texts
            assert "faster than I can sing" in texts[2] and answers[0]["text"] == texts[0]
            # Someone else in the group is not held back by Ann's flood.
            lyric = await ask(h, "/write@LyricBot 窗外", chat=GROUP, user=BOB)
            assert lyric["text"].startswith("窗外")

    asyncio.run(scenario())


def test_lone_surrogates_are_written_around_not_a_database_error(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(ANN, "Ann", "en")
            lyric = await ask(h, "/write 我\ud800不要", chat=ANN, user=ANN)
            assert lyric["text"].startswith("我\ufffd不要") and buttons(lyric), lyric["text"]
            await eventually(lambda: h.rows("SELECT prefix, status FROM requests") == [("我\ufffd不要", "answered")])

    asyncio.run(scenario())


def test_the_rate_limiter_and_the_throttle_forget_people_idle_for_a_minute() -> None:
    limiter, throttle = RateLimiter(per_minute=3), RefusalThrottle()
    for person in range(200_000):
        assert limiter.check(person, now=0.0) == 0
        assert throttle.tell(-1, person, now=0.0)
    assert len(limiter) == 200_000 and len(throttle) == 200_000
    assert limiter.check(7, now=30.0) == 0 and len(limiter) == 200_000  # within the minute: everyone is kept
    assert limiter.check(1, now=61.0) == 0 and throttle.tell(-1, 1, now=61.0)
    assert len(limiter) == 2 and len(throttle) == 1  # 1, who just asked, and 7 (30 s ago); the idle were forgotten
    # Forgetting never frees a slot early: person 7 asked at 30 s, a sweep ran at 61 s, 7 is still limited at 89 s.
    limiter = RateLimiter(per_minute=1)
    assert limiter.check(1, now=0.0) == 0 and limiter.check(7, now=30.0) == 0 and limiter.check(1, now=61.0) == 0
    assert limiter.check(7, now=89.0) > 0
