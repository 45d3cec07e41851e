"""/settings end to end: one panel of buttons edited in place, the person's own settings in private and a group's
in a group (changed only by its administrators), typed commands beside it, forged taps refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest

from bot.db import repository
from bot.sandbox import FakeTelegram
from tests.helpers.bot import Harness, ask, bot_running, buttons, eventually, quiet, run
from tests.helpers.migrated import with_session
from tests.helpers.panel import WORDS, message, tap, ticked

USER, ADMIN, MEMBER, GROUP = 501, 601, 602, -100777






def last(h: Harness, chat: int) -> int:
    return int(h.fake.messages(chat)[-1]["message_id"])




@pytest.mark.parametrize("lang", ["en", "zh"])
def test_private_panel_taps_edit_one_message_and_typed_commands_still_work(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ann", lang)
            words = WORDS[lang]
            panel = await ask(h, "/settings")
            pid = panel["message_id"]
            assert panel["text"].startswith(words["private"]) and "0.8" in panel["text"]
            assert {"s:t:0.5", "s:t:1.3", "s:l:80", "s:r:0", "s:y", "s:x"} <= set(buttons(panel))
            assert all(len(d.encode()) <= 64 for d in buttons(panel))
            assert ticked(panel) == ["s:t:0.8", "s:l:40"]  # the bot's defaults (these tests' default length: 40)

            answer = await tap(h, USER, USER, pid, "s:t:1.3")
            assert "1.3" in answer["text"] and not answer.get("show_alert")
            assert h.rows("SELECT temperature FROM user_settings WHERE user_id = ?", USER) == [(1.3,)]
            edited = message(h, USER, pid)
            assert "s:t:1.3" in ticked(edited) and "1.3" in edited["text"] and "edit_date" in edited
            await tap(h, USER, USER, pid, "s:l:80")
            await tap(h, USER, USER, pid, "s:r:0")
            assert h.rows("SELECT temperature, length, rhyme FROM user_settings") == [(1.3, 80, 0)]
            assert "s:r:1" in buttons(message(h, USER, pid))  # the switch now turns rhymes back on
            # A double tap sets the same value again; the unchanged panel is not an error.
            again = await tap(h, USER, USER, pid, "s:l:80")
            assert not again.get("show_alert") and h.rows("SELECT length FROM user_settings") == [(80,)]
            assert len(h.fake.sent(USER)) == 1  # every tap edited the one panel; nothing new was sent

            # Typed commands still work, and the next tap shows them on the (stale) panel.
            assert "0.5" in (await ask(h, "/temp 0.5"))["text"]
            await tap(h, USER, USER, pid, "s:l:160")
            assert "s:t:0.5" in ticked(message(h, USER, pid))
            assert h.rows("SELECT temperature, length FROM user_settings") == [(0.5, 160)]

            # Forged data: refused in a popup, nothing stored, the panel untouched.
            before = message(h, USER, pid)
            for forged in ("s:t:nan", "s:t:inf", "s:t:5", "s:t:0", "s:t:", "s:l:99999", "s:l:-5", "s:l:1e3",
                           "s:r:2", "s:zz", "s:x:1", "s:y:no-such-style"):  # fmt: skip
                refused = await tap(h, USER, USER, pid, forged, forge=True)
                assert refused.get("show_alert") is True, forged
                assert words["stale"] in refused["text"] or words["foreign"] in refused["text"], forged
            assert h.rows("SELECT temperature, length, rhyme FROM user_settings") == [(0.5, 160, 0)]
            assert message(h, USER, pid) == before
            # A valid value under a message that is not a panel (the /temp answer): refused, that message unchanged.
            typed = h.fake.sent(USER)[-1]
            refused = await tap(h, USER, USER, typed["message_id"], "s:t:1.3", forge=True)
            assert refused["show_alert"] is True and words["foreign"] in refused["text"]
            assert message(h, USER, typed["message_id"]) == typed
            assert h.rows("SELECT temperature FROM user_settings") == [(0.5,)]

            # The style row opens the choices, picking one goes back, "done" leaves the text without buttons.
            await tap(h, USER, USER, pid, "s:y")
            choices = message(h, USER, pid)
            assert choices["text"].startswith(words["styles"]) and {"s:y:default", "s:b"} <= set(buttons(choices))
            await tap(h, USER, USER, pid, "s:y:default")
            assert "s:t:0.5" in ticked(message(h, USER, pid))
            await tap(h, USER, USER, pid, "s:y")
            await tap(h, USER, USER, pid, "s:b")
            assert "s:y" in buttons(message(h, USER, pid))
            await tap(h, USER, USER, pid, "s:x")
            done = message(h, USER, pid)
            assert "reply_markup" not in done and "0.5" in done["text"]
            assert len(h.fake.sent(USER)) == 2  # the panel and the /temp answer

    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_groups_settings_are_its_own_and_only_its_admins_change_them(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            words = WORDS[lang]
            h.fake.add_user(ADMIN, "Ada", lang)
            h.fake.add_user(MEMBER, "Mo", lang)
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            h.fake.set_member(GROUP, ADMIN, ChatMemberStatus.ADMINISTRATOR)
            h.fake.set_member(GROUP, MEMBER, ChatMemberStatus.MEMBER)

            # Anyone may look; the panel is the group's and says who may change it.
            panel = await ask(h, "/settings@LyricBot", chat=GROUP, user=MEMBER)
            pid = panel["message_id"]
            assert panel["text"].startswith(words["group"]) and panel["reply_to_message"]["from"]["id"] == MEMBER

            refused = await tap(h, MEMBER, GROUP, pid, "s:t:1.3")
            assert refused["show_alert"] is True and words["admins_only"] in refused["text"]
            assert h.rows("SELECT * FROM chat_settings") == [] and message(h, GROUP, pid) == panel

            answer = await tap(h, ADMIN, GROUP, pid, "s:t:1.3")
            assert not answer.get("show_alert") and "1.3" in answer["text"]
            assert h.rows("SELECT chat_id, temperature, updated_by FROM chat_settings") == [(GROUP, 1.3, ADMIN)]
            assert "s:t:1.3" in ticked(message(h, GROUP, pid))
            refused = await tap(h, MEMBER, GROUP, pid, "s:y")  # even opening the style choices
            assert refused["show_alert"] is True and "s:y" in buttons(message(h, GROUP, pid))

            # Typed: a member is told no and nothing changes; an admin sets the group's values.
            denied = await ask(h, "/temp@LyricBot 0.5", chat=GROUP, user=MEMBER)
            assert words["admins_only"] in denied["text"]
            denied = await ask(h, "/rhyme@LyricBot off", chat=GROUP, user=MEMBER)
            assert words["admins_only"] in denied["text"]
            assert h.rows("SELECT temperature, length, rhyme FROM chat_settings") == [(1.3, None, None)]
            await ask(h, "/temp@LyricBot 0.5", chat=GROUP, user=ADMIN)
            await ask(h, "/len@LyricBot 50", chat=GROUP, user=ADMIN)
            assert h.rows("SELECT temperature, length, rhyme FROM chat_settings") == [(0.5, 50, None)]
            shown = await ask(h, "/temp@LyricBot", chat=GROUP, user=MEMBER)  # showing is open to everyone
            assert "0.5" in shown["text"]
            helptext = await ask(h, "/help@LyricBot", chat=GROUP, user=MEMBER)
            assert "0.5" in helptext["text"] and "/settings" in helptext["text"]

            # The member's own settings apply in private, never in the group.
            await ask(h, "/temp 1.9", chat=MEMBER, user=MEMBER)
            await ask(h, "/rhyme off", chat=MEMBER, user=MEMBER)
            await ask(h, "/write@LyricBot 天青色", chat=GROUP, user=MEMBER)
            await ask(h, "/write 天青色", chat=MEMBER, user=MEMBER)
            await eventually(lambda: len(h.rows("SELECT id FROM requests")) == 2)
            rows = h.rows("SELECT chat_id, temperature, length, rhyme FROM requests ORDER BY id")
            assert rows == [(GROUP, 0.5, 50, 1), (MEMBER, 1.9, 40, 0)]  # the group never set rhymes: the default
            assert h.rows("SELECT user_id, temperature FROM user_settings") == [(MEMBER, 1.9)]

    run(scenario())


def test_an_anonymous_admin_and_the_creator_may_change_a_groups_settings_and_one_who_left_may_not(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            h.fake.add_user(ADMIN, "Cy", "en")
            h.fake.add_user(MEMBER, "Gone", "en")
            h.fake.set_member(GROUP, ADMIN, ChatMemberStatus.OWNER)
            h.fake.set_member(GROUP, MEMBER, ChatMemberStatus.LEFT)
            before = len(h.fake.sent(GROUP))
            h.fake.send_as_chat(GROUP, GROUP, "/len@LyricBot 120")  # an anonymous admin speaks as the group
            await h.fake.wait_for_sent(GROUP, before + 1)
            assert h.rows("SELECT length, updated_by FROM chat_settings") == [(120, GROUP)]
            panel = await ask(h, "/settings@LyricBot", chat=GROUP, user=ADMIN)
            assert not (await tap(h, ADMIN, GROUP, panel["message_id"], "s:r:0")).get("show_alert")
            assert (await tap(h, MEMBER, GROUP, panel["message_id"], "s:r:1"))["show_alert"] is True
            assert h.rows("SELECT length, rhyme, updated_by FROM chat_settings") == [(120, 0, ADMIN)]
            h.fake.fail_next("getChatMember", 500, description="Internal Server Error", retry_after=None)
            denied = await tap(h, ADMIN, GROUP, panel["message_id"], "s:r:1")  # Telegram cannot say: no change
            assert denied["show_alert"] is True and h.rows("SELECT rhyme FROM chat_settings") == [(0,)]

    run(scenario())


def test_a_tap_that_fails_inside_still_stops_the_spinner_with_an_apology(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """The database away for a moment: the button is answered (a popup with the error id), not left spinning
    until the client gives up, and the person's settings are unchanged."""

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ann", "en")
            panel = await ask(h, "/settings", chat=USER, user=USER)
            preferences = h.app.bot_data.services.preferences

            async def database_away(*args: Any, **kwargs: Any) -> None:
                raise ConnectionError("database is away")

            preferences.change = database_away  # type: ignore[method-assign]
            answer = await tap(h, USER, USER, panel["message_id"], "s:t:0.5")
            assert answer["show_alert"] is True and "(error " in answer["text"]
            assert h.rows("SELECT COUNT(*) FROM user_settings") == [(0,)]
            assert await quiet(h, USER, 0.5) == 0  # the popup is the apology: no second one in the chat

    run(scenario())


def test_a_groups_settings_move_with_it_when_it_becomes_a_supergroup(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """Telegram gives an upgraded group a new id and says so twice (in the old chat and in the new): the group's
    settings go with it, once, and its /write there uses them."""
    old_id, new_id = -4001, -1004001

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_chat(old_id, "group", "Lyrics club")
            h.fake.add_user(ADMIN, "Cy", "zh")
            h.fake.set_member(old_id, ADMIN, ChatMemberStatus.ADMINISTRATOR)
            await ask(h, "/temp@LyricBot 0.5", chat=old_id, user=ADMIN)
            await ask(h, "/len@LyricBot 30", chat=old_id, user=ADMIN)
            h.fake.upgrade_group(old_id, new_id)
            await eventually(lambda: len(h.rows("SELECT * FROM chat_settings")) == 2)
            await quiet(h, new_id, 0.5)  # the second announcement changes nothing more, and nothing is said
            assert h.rows("SELECT chat_id, temperature, length FROM chat_settings ORDER BY chat_id") == [
                (new_id, 0.5, 30), (old_id, 0.5, 30)]
            assert h.rows("SELECT type FROM chats WHERE id = ?", new_id) == [("supergroup",)]
            await ask(h, "/write@LyricBot 窗外", chat=new_id, user=ADMIN)
            assert h.rows("SELECT chat_id, temperature, length FROM requests") == [(new_id, 0.5, 30)]

    run(scenario())


@pytest.mark.parametrize(("lang", "line"), [("en", "The night is young and so are we"), ("zh", "窗外的麻雀多嘴")])
def test_write_as_a_reply_continues_the_replied_message(
    tmp_path: Path, trained_store: tuple[Path, Path], lang: str, line: str
) -> None:
    async def scenario() -> None:
        # Six candidates: the tiny test model knows no English letter and now and then writes nothing after an
        # English opening (a known rough edge, issue 17's notes); what is tested here is the reply's plumbing.
        async with bot_running(tmp_path, trained_store, max_prefix_chars=50, candidates=6) as h:
            h.fake.add_user(USER, "Ann", lang)
            h.fake.add_user(MEMBER, "Mo", lang)
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            # Mo's chatter is hidden from the bot by privacy mode, but Ann can reply to it with /write.
            assert h.fake.send_text(MEMBER, GROUP, line) == -1
            said = h.fake.messages(GROUP)[-1]["message_id"]
            before = len(h.fake.sent(GROUP))
            h.fake.send_text(USER, GROUP, "/write@LyricBot", reply_to_message_id=said)
            lyric = (await h.fake.wait_for_sent(GROUP, before + 1))[-1]
            assert lyric["text"].startswith(line)
            assert lyric["reply_markup"]["inline_keyboard"][0][0]["callback_data"].startswith("r:")  # a lyric
            assert lyric["reply_to_message"]["from"]["id"] == USER  # the answer quotes the requester
            await eventually(lambda: h.rows("SELECT prefix, user_id FROM requests") == [(line, USER)])
            # Only the quoted part, when the person quoted a part (Telegram's "reply with quote").
            quoted = line[-4:]
            h.fake.push_raw_update({"update_id": 90_001, "message": {
                "message_id": 9_001, "date": 1_700_000_000, "chat": {"id": GROUP, "type": "supergroup"},
                "from": {"id": USER, "is_bot": False, "first_name": "Ann", "language_code": lang},
                "text": "/write@LyricBot", "entities": [{"type": "bot_command", "offset": 0, "length": 15}],
                "reply_to_message": {"message_id": said, "date": 1_700_000_000, "text": line,
                                     "chat": {"id": GROUP, "type": "supergroup"},
                                     "from": {"id": MEMBER, "is_bot": False, "first_name": "Mo"}},
                "quote": {"text": quoted, "position": len(line) - 4, "is_manual": True}}})  # fmt: skip
            before += 1
            assert (await h.fake.wait_for_sent(GROUP, before + 1))[-1]["text"].startswith(quoted)
            await eventually(lambda: h.rows("SELECT prefix FROM requests WHERE update_id = 90001") == [(quoted,)])
            # An argument wins over the replied message; a caption counts; a reply to our prompt is no prefix.
            h.fake.send_text(USER, GROUP, "/write@LyricBot 天", reply_to_message_id=said)
            assert (await h.fake.wait_for_sent(GROUP, before + 2))[-1]["text"].startswith("天")
            h.fake.send_document(MEMBER, GROUP, "song.txt", b"x", caption="我不要")
            h.fake.send_text(USER, GROUP, "/write@LyricBot", reply_to_message_id=last(h, GROUP))
            assert (await h.fake.wait_for_sent(GROUP, before + 3))[-1]["text"].startswith("我不要")
            prompt = await ask(h, "/write@LyricBot", chat=GROUP, user=USER)
            assert prompt["reply_markup"].get("force_reply") is True
            again = await ask(h, "/write@LyricBot", chat=GROUP, user=USER)  # no reply at all: the prompt again
            assert again["reply_markup"].get("force_reply") is True
            # Too long a message to continue: the usual refusal, with its real length.
            h.fake.send_text(MEMBER, GROUP, "我" * 51)
            h.fake.send_text(USER, GROUP, "/write@LyricBot", reply_to_message_id=last(h, GROUP))
            refusal = (await h.fake.wait_for_sent(GROUP, before + 6))[-1]
            assert "51" in refusal["text"] and "50" in refusal["text"] and "reply_markup" not in refusal
            # In private too: a reply to one's own earlier line (which, alone, is a /write of itself).
            h.fake.send_text(USER, USER, line)
            own = h.fake.messages(USER)[-1]["message_id"]
            assert (await h.fake.wait_for_sent(USER, 1))[-1]["text"].startswith(line)
            h.fake.send_text(USER, USER, "/write", reply_to_message_id=own)
            assert (await h.fake.wait_for_sent(USER, 2))[-1]["text"].startswith(line)
            assert len(h.rows("SELECT id FROM requests")) == 6

    run(scenario())


def test_get_chat_member_reports_each_persons_standing_as_telegram_does() -> None:
    async def scenario() -> None:
        async with FakeTelegram() as fake:
            fake.add_chat(GROUP, "supergroup", "Club")
            fake.add_user(ADMIN, "Ada")
            fake.add_user(MEMBER, "Mo")
            fake.set_member(GROUP, ADMIN, "administrator", is_anonymous=True)
            async with Bot(fake.token, base_url=fake.base_url) as bot:
                admin = await bot.get_chat_member(GROUP, ADMIN)
                assert admin.status == ChatMemberStatus.ADMINISTRATOR and getattr(admin, "is_anonymous", None)
                assert (await bot.get_chat_member(GROUP, MEMBER)).status == ChatMemberStatus.MEMBER
                for status in ("creator", "left", "kicked"):
                    fake.set_member(GROUP, MEMBER, status)
                    assert (await bot.get_chat_member(GROUP, MEMBER)).status == status
                with pytest.raises(BadRequest, match=r"(?i)participant_id_invalid"):
                    await bot.get_chat_member(GROUP, 123456)  # nobody the fake knows
                # A toast or popup over 200 characters is refused, and the query stays open for a proper answer.
                fake.add_user(USER)
                fake.add_chat(USER)
                sent = await bot.send_message(USER, "panel", reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("0.8", callback_data="s:t:0.8")]]))
                fake.press_button(USER, USER, sent.message_id, "s:t:0.8")
                query_id = (await bot.get_updates())[-1].callback_query.id  # type: ignore[union-attr]
                with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
                    await bot.answer_callback_query(query_id, "x" * 201)
                assert await bot.answer_callback_query(query_id, "x" * 200)
            with pytest.raises(ValueError, match="restricted"):
                fake.set_member(GROUP, MEMBER, "restricted")

    asyncio.run(scenario())


def test_the_terminal_sandbox_shows_the_panel_redrawn_after_a_tap(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    model_dir, corpus = trained_store
    env = {"MODEL_DIR": str(model_dir), "CORPUS_PATH": str(corpus), "DEVICE": "cpu", "PATH": "",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "TELEGRAM_BOT_TOKEN": ""}  # fmt: skip
    chat = subprocess.run([sys.executable, "-m", "bot", "sandbox"], input="/settings\n!2\n!4\n/quit\n",
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-2000:]
    panels = chat.stdout.split("bot> 你的设置")[1:]
    assert len(panels) == 3, chat.stdout  # opened, then redrawn after each tap
    assert "[1] \u2713 0.5" in panels[0] and "[3] \U0001f321 1.0" in panels[0]  # the default; 1.0 as the text says it
    assert "[2] \u2713 0.8" in panels[1] and "[4] \u2713 1.3" in panels[2] and "温度：1.3" in panels[2]


def test_chat_settings_partial_update_and_which_settings_apply(url: str) -> None:
    async def fn(session: AsyncSession) -> None:
        await repository.upsert_user(session, user_id=MEMBER, first_name="Mo", username=None, language_code="en")
        await repository.upsert_chat(session, chat_id=GROUP, type="supergroup", title="Club")
        await repository.set_settings(session, user_id=MEMBER, temperature=1.9, rhyme=False)
        empty = await repository.applicable_settings(session, user_id=MEMBER, group_id=GROUP)
        assert (empty.temperature, empty.length, empty.rhyme, empty.updated_at) == (None, None, None, None)
        await repository.set_chat_settings(session, chat_id=GROUP, updated_by=ADMIN, temperature=0.5)
        await repository.set_chat_settings(session, chat_id=GROUP, updated_by=GROUP, length=300)
        group = await repository.get_chat_settings(session, chat_id=GROUP)
        assert (group.temperature, group.length, group.rhyme, group.updated_by) == (0.5, 300, None, GROUP)
        assert group.form is None  # the bot's default: free lines
        await repository.set_chat_settings(session, chat_id=GROUP, updated_by=ADMIN, form="浣溪沙")
        group = await repository.get_chat_settings(session, chat_id=GROUP)
        assert (group.form, group.length) == ("浣溪沙", 300)
        await repository.upsert_chat(session, chat_id=GROUP - 1, type="supergroup", title="Club")
        assert await repository.move_chat_settings(session, from_chat_id=GROUP, to_chat_id=GROUP - 1) is True
        assert (await repository.get_chat_settings(session, chat_id=GROUP - 1)).form == "浣溪沙"
        own = await repository.applicable_settings(session, user_id=MEMBER, group_id=None)
        assert (own.temperature, own.rhyme) == (1.9, False)
        await repository.set_chat_settings(session, chat_id=GROUP, updated_by=ADMIN, temperature=None)
        assert (await repository.get_chat_settings(session, chat_id=GROUP)).temperature is None
        with pytest.raises(IntegrityError):  # a group the bot never saw has no row to hang settings on
            async with session.begin_nested():
                await repository.set_chat_settings(session, chat_id=-1, updated_by=ADMIN, length=40)

    with_session(url, fn)


def test_the_style_row_picks_a_groups_style_from_the_styles_service(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")  # the style gets a version directory of its own

    async def scenario() -> None:
        async with bot_running(tmp_path, (tmp_path / "models", corpus)) as h:
            styles = h.app.bot_data.services.styles
            assert styles is not None
            active = str(h.served())
            shutil.copytree(h.settings.model_dir / active, h.settings.model_dir / "jay-v1")
            await styles.create(name="jay", title="Jay Chou", version="jay-v1", created_by=ADMIN)
            h.fake.add_user(ADMIN, "Ada", "en")
            h.fake.add_user(MEMBER, "Mo", "en")
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            h.fake.set_member(GROUP, ADMIN, ChatMemberStatus.ADMINISTRATOR)
            panel = await ask(h, "/settings", chat=GROUP, user=MEMBER)
            pid = panel["message_id"]
            await tap(h, ADMIN, GROUP, pid, "s:y")
            assert {"s:y:default", "s:y:jay"} <= set(buttons(message(h, GROUP, pid)))
            assert (await tap(h, MEMBER, GROUP, pid, "s:y:jay"))["show_alert"] is True
            assert h.rows("SELECT style FROM chat_settings") == []
            assert "Jay Chou" in (await tap(h, ADMIN, GROUP, pid, "s:y:jay"))["text"]
            assert h.rows("SELECT style, updated_by FROM chat_settings") == [("jay", ADMIN)]
            assert "Style: Jay Chou" in message(h, GROUP, pid)["text"]
            await ask(h, "/write 天青色", chat=GROUP, user=MEMBER)
            await eventually(lambda: h.rows("SELECT style, status FROM requests") == [("jay", "answered")])

    run(scenario())
