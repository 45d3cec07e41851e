"""Buttons, rate limits, identities, delivery and instances, as an attacker or an unlucky operator meets them.

Each test runs the real bot against the local Bot API server and reads the real SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application, running
from bot.db import repository
from bot.ops.instance import FileLock, InstanceLocked
from bot.sandbox import FakeTelegram
from bot.sandbox.protocol import ANONYMOUS_ADMIN
from tests.helpers.bot import ask, bot_running, buttons, eventually, make_settings, quiet

ANN, BOB, GROUP, OTHER_GROUP, CHANNEL = 501, 502, -100777, -100888, -100999


def request_of(message: dict[str, Any]) -> int:
    return int(buttons(message)[0].split(":")[1])


def test_forged_button_data_reveals_and_changes_nothing(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_user(BOB, "Bob", "en")
            secret = await ask(h, "/write 我的秘密", chat=ANN, user=ANN)
            mine = await ask(h, "/write 天青色", chat=BOB, user=BOB)
            ann_request = request_of(secret)
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(2,)])
            rows_before = h.rows("SELECT COUNT(*) FROM requests")

            # Bob's client sends Ann's request ids under Bob's own lyric.
            for data in (f"a:{ann_request}", f"r:{ann_request}:5"):
                answered = len(h.fake.answered_callbacks)
                h.fake.forge_callback(BOB, BOB, mine["message_id"], data)
                await eventually(lambda n=answered: len(h.fake.answered_callbacks) == n + 1)
                assert "does not belong" in h.fake.answered_callbacks[-1]["text"]
            assert await quiet(h, BOB, 1.0) == 0
            assert all("秘密" not in m.get("text", "") for m in h.fake.sent(BOB))
            assert h.rows("SELECT COUNT(*) FROM requests") == rows_before
            assert h.rows("SELECT COUNT(*) FROM ratings") == [(0,)]

            # In a group, the buttons under Ann's lyric are real, and everyone sees them.
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            shared = await ask(h, "/write@LyricBot 窗外", chat=GROUP, user=ANN)
            shared_request = request_of(shared)
            await eventually(lambda: h.rows("SELECT status FROM requests WHERE id = ?", shared_request)
                             == [("answered",)])
            answered = len(h.fake.answered_callbacks)
            h.fake.press_button(BOB, GROUP, shared["message_id"], f"a:{shared_request}")
            await eventually(lambda: len(h.fake.answered_callbacks) == answered + 1)
            assert "Only the person who asked" in h.fake.answered_callbacks[-1]["text"]
            assert await quiet(h, GROUP, 1.0) == 0
            answered = len(h.fake.answered_callbacks)
            h.fake.press_button(BOB, GROUP, shared["message_id"], f"r:{shared_request}:4")  # rating is for all
            await eventually(lambda: h.rows("SELECT user_id, stars FROM ratings") == [(BOB, 4)])
            # (its answer comes after the row: counted before the next press, or the two could land together)
            await eventually(lambda: len(h.fake.answered_callbacks) == answered + 1)
            # ... but a forged id under that group message still refers to another request.
            answered = len(h.fake.answered_callbacks)
            h.fake.forge_callback(BOB, GROUP, shared["message_id"], f"r:{ann_request}:5")
            await eventually(lambda: len(h.fake.answered_callbacks) == answered + 1)
            assert "does not belong" in h.fake.answered_callbacks[-1]["text"]
            assert h.rows("SELECT request_id FROM ratings") == [(shared_request,)]

    asyncio.run(scenario())


def test_rate_limit_comes_before_any_row_or_typing_and_refuses_once_a_minute(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=2) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            for prefix in ("我", "你"):
                await ask(h, f"/write@LyricBot {prefix}", chat=GROUP, user=ANN)
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(2,)])
            typing_before, messages_before = len(h.fake.chat_actions), len(h.fake.sent(GROUP))
            for i in range(5):  # the flood
                h.fake.send_text(ANN, GROUP, f"/write@LyricBot 天{i}")
            refusal = (await h.fake.wait_for_sent(GROUP, messages_before + 1))[-1]
            assert "faster than I can sing" in refusal["text"]
            assert await quiet(h, GROUP, 1.5) == 0  # one refusal, not five
            assert len(h.fake.chat_actions) == typing_before  # no "typing..." for refused requests
            assert h.rows("SELECT COUNT(*) FROM requests") == [(2,)]  # and no rows
            # Someone else in the same group is not limited by Ann.
            lyric = await ask(h, "/write@LyricBot 窗外", chat=GROUP, user=BOB)
            assert lyric["text"].startswith("窗外")

    asyncio.run(scenario())


def test_anonymous_admins_and_channels_are_each_their_own_person(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, rate_limit_per_minute=1, admin_ids=frozenset({1})) as h:
            for chat, title in ((GROUP, "Club"), (OTHER_GROUP, "Choir")):
                h.fake.add_chat(chat, "supergroup", title)
            h.fake.add_chat(CHANNEL, "channel", "Songs daily")
            for sender, chat in ((GROUP, GROUP), (OTHER_GROUP, OTHER_GROUP), (CHANNEL, GROUP)):
                before = len(h.fake.sent(chat))
                h.fake.send_as_chat(sender, chat, "/write@LyricBot 我")
                answer = (await h.fake.wait_for_sent(chat, before + 1))[-1]
                assert answer["text"].startswith("我"), answer["text"]  # not "writing faster than I can sing"
            people = {row[0] for row in h.rows("SELECT user_id FROM requests")}
            assert people == {GROUP, OTHER_GROUP, CHANNEL} and ANONYMOUS_ADMIN["id"] not in people
            # An anonymous admin is nobody's admin id.
            before = len(h.fake.sent(GROUP))
            h.fake.send_as_chat(GROUP, GROUP, "/jobs@LyricBot")
            refusal = (await h.fake.wait_for_sent(GROUP, before + 1))[-1]
            assert "only for the bot's admins" in refusal["text"]

    asyncio.run(scenario())


def test_an_answer_whose_bookkeeping_failed_is_never_sent_again(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        fake = FakeTelegram()
        await fake.start()
        try:
            fake.add_user(ANN, "Ann", "en")
            real = repository.mark_answered

            async def database_down(*args: Any, **kwargs: Any) -> None:
                raise OSError("disk I/O error")

            monkeypatch.setattr(repository, "mark_answered", database_down)
            async with bot_running(tmp_path, trained_store, fake=fake) as h:
                lyric = await ask(h, "/write 我不要", chat=ANN, user=ANN)
                assert lyric["text"].startswith("我不要")
                await asyncio.sleep(4)  # the retries give up
                assert h.rows("SELECT status FROM requests") == [("sending",)]
            monkeypatch.setattr(repository, "mark_answered", real)
            async with bot_running(tmp_path, trained_store, fake=fake) as h:  # the restart
                assert await quiet(h, ANN, 2.0) == 0
                assert len(fake.sent(ANN)) == 1
                status, error = h.rows("SELECT status, error FROM requests")[0]
                assert status == "failed" and "delivery unknown" in error
        finally:
            await fake.stop()

    asyncio.run(scenario())


def test_a_second_bot_on_the_same_database_refuses_to_start(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as first:
            first.fake.add_user(ANN, "Ann", "en")
            async with first.app.bot_data.services.training.sessions.begin() as session:  # the first bot is training
                run = await repository.create_run(session, trigger="cli", requested_by=None, parent_version=None,
                                                  document_ids=[])
                await repository.start_run(session, run_id=run.id)
            second = build_application(make_settings(tmp_path, trained_store, first.fake))
            with pytest.raises(InstanceLocked, match="already running on the database"):
                async with running(second):
                    pass
            assert first.rows("SELECT status FROM training_runs") == [("running",)]  # not marked interrupted
            lyric = await ask(first, "/write 我", chat=ANN, user=ANN)  # the first bot carries on
            assert lyric["text"].startswith("我")

    asyncio.run(scenario())


def test_the_instance_lock_dies_with_its_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from bot.ops.instance import FileLock;"
         f"FileLock(Path({str(tmp_path / 'db.lock')!r}), 'x').acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InstanceLocked, match="pid"):
            FileLock(tmp_path / "db.lock", "x").acquire()
        os.kill(holder.pid, signal.SIGKILL)  # a crash
        holder.wait(timeout=30)
        lock = FileLock(tmp_path / "db.lock", "x")
        lock.acquire()
        lock.release()
    finally:
        holder.kill()


def test_a_rejected_token_is_never_printed(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    token = "8123456789:AAHr0ngT0kenThatTelegramRefusesXYZ12345"

    async def scenario() -> tuple[int, str]:
        async with FakeTelegram() as fake:  # it answers 401 to any other token, as Telegram does
            model_dir, corpus = trained_store
            env = {**os.environ, "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_BASE_URL": fake.base_url,
                   "MODEL_DIR": str(model_dir), "CORPUS_PATH": str(corpus), "DEVICE": "cpu",
                   "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "LOG_LEVEL": "DEBUG"}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode is not None
            return process.returncode, output.decode()

    code, output = asyncio.run(scenario())
    assert code == 2, output[-3000:]
    assert "rejected the bot token" in output
    assert token not in output and token.split(":")[1] not in output


def test_top_shows_a_chat_only_its_own_lyrics(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_user(BOB, "Bob", "en")
            h.fake.add_chat(GROUP, "supergroup", "Club")
            secret = await ask(h, "/write 我的银行密码是", chat=ANN, user=ANN)
            in_group = await ask(h, "/write@LyricBot 窗外", chat=GROUP, user=BOB)
            for message, chat, voter in ((secret, ANN, ANN), (in_group, GROUP, BOB)):
                await eventually(lambda m=message: h.rows("SELECT status FROM requests WHERE id = ?",  # type: ignore[misc]
                                                          request_of(m)) == [("answered",)])
                h.fake.press_button(voter, chat, message["message_id"], f"r:{request_of(message)}:5")
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM ratings") == [(2,)])
            # Each lyric by its first line (the tiny model may well write 窗外 in Ann's lyric too).
            ann_line, group_line = (m["text"].split("\n")[0] for m in (secret, in_group))
            assert ann_line.startswith("我的银行密码是") and group_line.startswith("窗外") and ann_line != group_line
            bobs = await ask(h, "/top", chat=BOB, user=BOB)
            assert ann_line not in bobs["text"] and group_line not in bobs["text"]  # neither was written here
            groups = await ask(h, "/top", chat=GROUP, user=ANN)
            assert group_line in groups["text"] and ann_line not in groups["text"]
            anns = await ask(h, "/top", chat=ANN, user=ANN)
            assert ann_line in anns["text"] and group_line not in anns["text"]
            assert "(1 rating)" in anns["text"]  # one, not "1 ratings"

    asyncio.run(scenario())


def test_an_anonymous_admin_may_write_again_what_they_wrote_as_the_group(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, candidates=2) as h:
            h.fake.add_user(ANN, "Ann", "en")
            h.fake.add_user(BOB, "Bob", "en")
            h.fake.add_chat(GROUP, "supergroup", "Club")
            h.fake.set_member(GROUP, ANN, "administrator", is_anonymous=True)
            h.fake.send_as_chat(GROUP, GROUP, "/write@LyricBot 我")
            lyric = (await h.fake.wait_for_sent(GROUP, 1, timeout=120))[-1]
            request_id = request_of(lyric)
            await eventually(lambda: h.rows("SELECT status FROM requests WHERE id = ?", request_id) == [("answered",)])
            # Bob, a member, did not write it: refused in a popup, nothing in the chat.
            h.fake.press_button(BOB, GROUP, lyric["message_id"], f"a:{request_id}")
            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            assert h.fake.answered_callbacks[0].get("show_alert") and len(h.fake.sent(GROUP)) == 1
            # Ann, the anonymous admin (Telegram names her when she presses), gets another take, as the group.
            h.fake.press_button(ANN, GROUP, lyric["message_id"], f"a:{request_id}")
            again = (await h.fake.wait_for_sent(GROUP, 2, timeout=120))[-1]
            assert again["text"].startswith("我") and buttons(again)
            await eventually(lambda: h.rows("SELECT user_id FROM requests WHERE parent_id = ?", request_id)
                             == [(GROUP,)])

    asyncio.run(scenario())
