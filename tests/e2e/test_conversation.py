"""The real bot end to end: python-telegram-bot's Application, real HTTP to the local Bot API server,
a real SQLite file, a real trained model. Each test is one conversation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.sandbox import FakeTelegram
from bot.telegram.i18n import MESSAGES
from tests.helpers.bot import GROUP, USER, ask, bot_running, buttons, eventually, quiet, run


def test_private_write_rate_and_write_again(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ann", "en")
            lyric = await ask(h, "/write 我不要")
            assert lyric["text"].startswith("我不要")
            assert (USER, "typing") in h.fake.chat_actions
            data = buttons(lyric)
            assert data[:5] == [f"r:{data[0].split(':')[1]}:{n}" for n in range(1, 6)]
            request_id = int(data[0].split(":")[1])
            await eventually(
                lambda: (
                    h.rows("SELECT status, prefix FROM requests WHERE id = ?", request_id) == [("answered", "我不要")]
                )
            )

            h.fake.press_button(USER, USER, lyric["message_id"], f"r:{request_id}:4")
            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            assert h.rows("SELECT user_id, stars FROM ratings WHERE request_id = ?", request_id) == [(USER, 4)]
            h.fake.press_button(USER, USER, lyric["message_id"], f"r:{request_id}:2")  # rating again replaces
            await eventually(lambda: len(h.fake.answered_callbacks) == 2)
            assert h.rows("SELECT user_id, stars FROM ratings WHERE request_id = ?", request_id) == [(USER, 2)]

            before = len(h.fake.sent(USER))
            h.fake.press_button(USER, USER, lyric["message_id"], f"a:{request_id}")
            again = (await h.fake.wait_for_sent(USER, before + 1))[-1]
            assert again["text"].startswith("我不要") and again["text"] != lyric["text"]
            assert h.rows("SELECT COUNT(*) FROM requests WHERE parent_id = ?", request_id) == [(1,)]

            stats = await ask(h, "/stats")
            assert "2" in stats["text"]
            best = await ask(h, "/top")
            assert "我不要" in best["text"]

    run(scenario())


def test_group_chat_addressing_and_force_reply(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Bo", "zh")
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            before = len(h.fake.sent(GROUP))
            update_id = h.fake.send_text(USER, GROUP, "/write@LyricBot 天青色")
            lyric = (await h.fake.wait_for_sent(GROUP, before + 1))[-1]
            assert lyric["text"].startswith("天青色")
            assert lyric["reply_to_message"]["from"]["id"] == USER and update_id > 0

            h.fake.send_text(USER, GROUP, "/write@SomeOtherBot 天青色")
            assert await quiet(h, GROUP) == 0

            prompt = await ask(h, "/write@LyricBot", chat=GROUP)
            assert prompt["reply_markup"].get("force_reply") is True
            before = len(h.fake.sent(GROUP))
            h.fake.send_text(USER, GROUP, "窗外", reply_to_message_id=prompt["message_id"])
            answer = (await h.fake.wait_for_sent(GROUP, before + 1))[-1]
            assert answer["text"].startswith("窗外")

            # A group's settings are the group's, changed by its administrators only
            # (tests/bot/telegram/test_settings_panel.py).
            refused = await ask(h, "/temp 1.5", chat=GROUP)
            assert "管理员" in refused["text"] and h.rows("SELECT * FROM chat_settings") == []
            h.fake.set_member(GROUP, USER, "administrator")
            await ask(h, "/temp 1.5", chat=GROUP)
            assert h.rows("SELECT chat_id, temperature FROM chat_settings") == [(GROUP, 1.5)]
            assert h.rows("SELECT * FROM user_settings") == []

    run(scenario())


@pytest.mark.parametrize("language", ["en", "zh"])
def test_bad_temperature_and_length_change_nothing(
    tmp_path: Path, trained_store: tuple[Path, Path], language: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Cy", language)
            usage_word = "Usage" if language == "en" else "用法"
            for bad in ["abc", "-1", "0", "nan", "inf", "1e9", "-inf", "0.05", "2.5"]:
                answer = await ask(h, f"/temp {bad}")
                assert usage_word in answer["text"], (bad, answer["text"])
            for bad in ["0", "-5", "abc", "99999999", "1.5", "3001"]:
                answer = await ask(h, f"/len {bad}")
                assert usage_word in answer["text"], (bad, answer["text"])
            assert h.rows("SELECT temperature, length FROM user_settings") in ([], [(None, None)])
            await ask(h, "/temp 0.5")
            await ask(h, "/len 50")
            assert h.rows("SELECT temperature, length FROM user_settings") == [(0.5, 50)]
            shown = await ask(h, "/temp")
            assert "0.5" in shown["text"]
            helptext = await ask(h, "/help")
            assert ("/write" in helptext["text"]) and (("歌词" in helptext["text"]) == (language == "zh"))

    run(scenario())


def test_bad_write_inputs(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, max_prefix_chars=50) as h:
            h.fake.add_user(USER, "Di", "en")
            too_long = await ask(h, "/write " + "我" * 51)
            assert "50" in too_long["text"] and "reply_markup" not in too_long
            unseen = await ask(h, "/write 😀火星我")
            assert unseen["text"].startswith("😀火星我") and "😀" in unseen["text"].split("\n\n")[-1]
            empty = await ask(h, "/write")
            assert empty["text"].strip() and "r:" in buttons(empty)[0]
            multiline = await ask(h, "/write 天青色等烟雨\n而我")
            assert multiline["text"].startswith("天青色等烟雨\n而我")
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(3,)])

    run(scenario())


def test_edited_message_and_repeated_update_are_not_answered_twice(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ed", "en")
            first = await ask(h, "/write 我")
            h.fake.edit_text(USER, USER, first["message_id"] - 1, "/write 你")
            assert await quiet(h, USER, 1.5) == 0
            update = {
                "update_id": 424242,
                "message": {
                    "message_id": 9000,
                    "date": 1_700_000_000,
                    "text": "/write 天",
                    "chat": {"id": USER, "type": "private", "first_name": "Ed"},
                    "from": {"id": USER, "is_bot": False, "first_name": "Ed", "language_code": "en"},
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                },
            }
            h.fake.push_raw_update(update)
            h.fake.push_raw_update(update)
            await h.fake.wait_for_sent(USER, 2)
            assert await quiet(h, USER, 1.5) == 0
            assert h.rows("SELECT COUNT(*) FROM requests WHERE update_id = 424242") == [(1,)]

    run(scenario())


def test_429_on_send_delivers_exactly_once(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Fa", "en")
            h.fake.fail_next("sendMessage", 429, retry_after=1)
            calls_before = h.fake.calls["sendMessage"]
            lyric = await ask(h, "/write 我不要")
            assert lyric["text"].startswith("我不要")
            assert await quiet(h, USER, 1.5) == 0
            assert len(h.fake.sent(USER)) == 1
            assert h.fake.calls["sendMessage"] - calls_before == 2  # refused once, then delivered

    run(scenario())


def test_telegram_refusal_is_logged_and_the_bot_keeps_going(
    tmp_path: Path, trained_store: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Gu", "en")
            h.fake.fail_next("sendMessage", 400, description="Bad Request: something odd", retry_after=None)
            h.fake.send_text(USER, USER, "/write 我")
            apology = (await h.fake.wait_for_sent(USER, 1))[-1]
            assert "error" in apology["text"] and "Traceback" not in apology["text"]
            assert h.fake.calls["sendMessage"] == 2  # the refused lyric, then the apology: no retry loop
            await eventually(lambda: h.rows("SELECT status FROM requests") == [("failed",)])
            lyric = await ask(h, "/write 你")
            assert lyric["text"].startswith("你")

    with caplog.at_level(logging.INFO):
        run(scenario())
    token = FakeTelegram().token
    assert all(token not in record.getMessage() for record in caplog.records)
    assert all(token not in (record.exc_text or "") for record in caplog.records)


def test_flood_of_200_requests_from_20_people(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, queue_size=12, max_batch=16) as h:
            people = [7000 + i for i in range(20)]
            for person in people:
                h.fake.add_user(person, f"P{person}", "en")
            for round_ in range(10):
                for person in people:
                    h.fake.send_text(person, person, f"/write 我{round_}")
            for person in people:
                await h.fake.wait_for_sent(person, 10, timeout=120)
            answers = [m["text"] for p in people for m in h.fake.sent(p)]
            busy = [a for a in answers if "busy" in a]
            lyrics = [a for a in answers if a.startswith("我")]
            # The tiny model now and then writes nothing but line breaks for both candidates: that is an
            # answer too ("could not write anything worth showing"), not a lost request.
            empty = [a for a in answers if "worth showing" in a]
            assert len(answers) == 200 and len(busy) + len(lyrics) + len(empty) == 200, answers[:5]
            assert busy and lyrics  # the queue filled up, and most people still got lyrics
            await eventually(
                lambda: (
                    dict(h.rows("SELECT status, COUNT(*) FROM requests GROUP BY status"))
                    == {"answered": len(lyrics), "failed": len(busy) + len(empty)}
                )
            )
            await asyncio.sleep(0.5)
            after = await ask(h, "/write 你", chat=people[0], user=people[0])
            assert after["text"].startswith("你")

    run(scenario())


def test_answers_in_a_chat_keep_request_order(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ho", "en")
            h.fake.send_text(USER, USER, "/write 我不要再想你")
            h.fake.send_text(USER, USER, "/len 10")  # instant, but must wait for the lyric before it
            h.fake.send_text(USER, USER, "/write 天")
            sent = await h.fake.wait_for_sent(USER, 3)
            assert sent[0]["text"].startswith("我不要再想你")
            assert "10" in sent[1]["text"]
            assert sent[2]["text"].startswith("天")

    run(scenario())


def test_restart_answers_left_over_requests_exactly_once(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    from bot.domain import Person, Place

    async def scenario() -> None:
        fake = FakeTelegram()
        await fake.start()
        try:
            fake.add_user(USER, "Iv", "en")
            fake.add_chat(USER, "private")
            async with bot_running(tmp_path, trained_store, fake=fake) as h:
                lyrics = h.app.bot_data.services.lyrics  # it looked for left-overs at start: none yet
                # The crash: requests were written (as the handler does first), then the process died.
                for update_id, prefix in ((1, "我"), (2, "天青色")):
                    await lyrics.register(
                        update_id=10_000 + update_id,
                        person=Person(USER, "Iv", None, "zh"),
                        place=Place(USER, "private", None),
                        message_id=None,
                        prefix=prefix,
                    )
                assert h.rows("SELECT COUNT(*) FROM requests WHERE status = 'queued'") == [(2,)]
            async with bot_running(tmp_path, trained_store, fake=fake) as h:
                sent = await fake.wait_for_sent(USER, 2, timeout=120)
                assert sorted(m["text"][:1] for m in sent) == ["天", "我"]
                labels = {b["text"] for m in sent for row in m["reply_markup"]["inline_keyboard"] for b in row}
                assert MESSAGES["zh"]["write_again"] in labels  # in the language the person asked in
                await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(2,)])
            async with bot_running(tmp_path, trained_store, fake=fake) as h:
                assert await quiet(h, USER, 1.5) == 0  # nothing is answered a second time
        finally:
            await fake.stop()

    run(scenario())



def test_a_lyric_whose_answer_was_lost_is_not_followed_by_an_apology(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """Telegram took the message but the bot never heard back: one message, not a lyric and an apology."""

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Jo", "en")
            h.fake.fail_next("sendMessage", 502, description="Bad Gateway", retry_after=None, after_effect=True)
            lyric = await ask(h, "/write 我不要")
            assert lyric["text"].startswith("我不要")
            assert await quiet(h, USER, 1.5) == 0, [m["text"] for m in h.fake.sent(USER)]
            status, error = h.rows("SELECT status, error FROM requests")[0]
            assert status == "failed" and "delivery unknown" in error

    run(scenario())
