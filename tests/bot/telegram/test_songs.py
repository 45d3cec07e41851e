"""Singing in the bot (issue 20): the 🎵 button and /tune answer with a lead sheet, a voice message and an ABC file,
through the real Application and the fake Bot API (which refuses a voice message that is not OGG Opus and a photo
Telegram would not take), on the shipped tune model in a worker process."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.services.songs import LINK_PREFIX, read_choices
from bot.serving.singer import Singer, SingerBusy, SongAsk, SongFiles
from charrnn.checkpoint import TUNE
from charrnn.music.sing import Choices, SingError
from tests.helpers.bot import GROUP, USER, Harness, ask, bot_running, buttons, eventually, inline, run

OTHER = 502
SONG_TIMEOUT = 180.0  # the worker process starts on the first song: torch, the tune model, the renderers


async def song_after(h: Harness, chat: int, before: int) -> list[dict[str, Any]]:
    return (await h.fake.wait_for_sent(chat, before + 3, timeout=SONG_TIMEOUT))[before:]


async def tune(h: Harness, text: str, reply_to: int | None = None) -> list[dict[str, Any]]:
    """/tune as the person sends it; the three messages of its song."""
    before = len(h.fake.sent(USER))
    h.fake.send_text(USER, USER, text, reply_to_message_id=reply_to)
    return await song_after(h, USER, before)


def check_song(messages: list[dict[str, Any]], syllables: int | None = None) -> str:
    photo, voice, document = messages
    (size,) = photo["photo"]
    assert size["width"] >= 400 and size["height"] >= 100 and size["file_size"] > 2_000
    assert re.search(r"(major|minor|大调|小调)", photo["caption"]) and "\u2669" in photo["caption"]
    assert voice["voice"]["duration"] >= 1 and voice["voice"]["mime_type"] == "audio/ogg"
    assert document["document"]["file_name"].endswith(".abc")
    return str(document["document"]["file_id"])


def abc_of(h: Harness, file_id: str) -> str:
    return h.fake.file_content(file_id).decode("utf-8")


def sung_syllables(abc: str) -> list[int]:
    """Per phrase, its notes, checked equal to the syllables of its w: line (one note a syllable)."""
    lines = abc.splitlines()
    counts = []
    for music, words in itertools.pairwise(lines):
        if words.startswith("w:") and not music.startswith("w:"):
            notes = len(re.findall(r"[A-Ga-g]", music))
            assert notes == len(re.split(r"[ -]+", words[2:].strip())), (music, words)
            counts.append(notes)
    return counts


def test_the_music_button_sings_a_lyric_in_private_and_in_a_group(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ann", "en")
            h.fake.add_user(OTHER, "Bo", "zh")
            lyric = await ask(h, "/write 我不要")
            request_id = int(buttons(lyric)[0].split(":")[1])
            assert f"m:{request_id}" in buttons(lyric)
            before = len(h.fake.sent(USER))
            h.fake.press_button(USER, USER, lyric["message_id"], f"m:{request_id}")
            song = await song_after(h, USER, before)
            abc = abc_of(h, check_song(song))
            assert abc.startswith("X:1") and "w:" in abc and sung_syllables(abc)
            assert (USER, "record_voice") in h.fake.chat_actions

            # The same lyric sings the same melody (its request seeds the tune).
            before = len(h.fake.sent(USER))
            h.fake.press_button(USER, USER, lyric["message_id"], f"m:{request_id}")
            assert abc_of(h, check_song(await song_after(h, USER, before))) == abc

            # In a group: anyone may press it; each part replies to the lyric.
            h.fake.add_chat(GROUP, "supergroup", "Lyrics club")
            before = len(h.fake.sent(GROUP))
            h.fake.send_text(USER, GROUP, "/write@LyricBot 天青色")
            group_lyric = (await h.fake.wait_for_sent(GROUP, before + 1, timeout=120))[-1]
            group_id = int(buttons(group_lyric)[0].split(":")[1])
            before = len(h.fake.sent(GROUP))
            h.fake.press_button(OTHER, GROUP, group_lyric["message_id"], f"m:{group_id}")
            song = await song_after(h, GROUP, before)
            check_song(song)
            assert all(m["reply_to_message"]["message_id"] == group_lyric["message_id"] for m in song)
            assert re.search("大调|小调", song[0]["caption"])  # in the language of the person who pressed

            # A forged button (another request's id under this message) sings nothing and says so.
            answered = len(h.fake.answered_callbacks)
            before = len(h.fake.sent(GROUP))
            h.fake.forge_callback(OTHER, GROUP, group_lyric["message_id"], f"m:{request_id}")
            await eventually(lambda: len(h.fake.answered_callbacks) == answered + 1)
            assert h.fake.answered_callbacks[-1]["show_alert"] is True
            for forged in ("im", "m:99999999999999999999999", "m:-1"):  # inline data in a chat; no request
                answered = len(h.fake.answered_callbacks)
                h.fake.forge_callback(OTHER, GROUP, group_lyric["message_id"], forged)
                await eventually(lambda n=answered: len(h.fake.answered_callbacks) == n + 1)
                assert h.fake.answered_callbacks[-1]["show_alert"] is True
            assert len(h.fake.sent(GROUP)) == before

    run(scenario())


def test_tune_sings_a_replied_text_or_its_words_and_refuses_clearly(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "Ann", "en")
            usage = await ask(h, "/tune")
            assert "Reply /tune" in usage["text"]

            words = "Yesterday, all my troubles seemed so far away\nNow it looks as though they're here to stay"
            await ask(h, words)  # plain text in private is a /write: the bot answers it with a lyric
            (mine,) = [m for m in h.fake.messages(USER) if m.get("text") == words and m["from"]["id"] == USER]
            abc = abc_of(h, check_song(await tune(h, "/tune", reply_to=mine["message_id"])))
            assert "w: Yes-ter-day all my troub-les seemed so far a-way" in abc

            # The key, meter and tempo chosen on /tune's first line.
            abc = abc_of(h, check_song(await tune(h, "/tune D 3/4 100", reply_to=mine["message_id"])))
            assert "K:D\n" in abc and "M:3/4" in abc and "Q:1/4=100" in abc and "w: Yes-ter-day" in abc

            song = await tune(h, "/tune 《春晓》\n\n春眠不觉晓\n处处闻啼鸟")
            abc = abc_of(h, check_song(song))
            assert "T:春晓" in abc and "w: 春 眠 不 觉 晓" in abc and song[0]["caption"].startswith("春晓")

            # Our own lyric, replied to: the note under it (characters it never saw) is no line of the song.
            lyric = await ask(h, "/write 我不要\u2603")
            assert "never seen" in lyric["text"]
            abc = abc_of(h, check_song(await tune(h, "/tune", reply_to=lyric["message_id"])))
            assert "seen" not in abc and "think" not in abc and "w: 我 不 要" in abc

            # Longer than a lead sheet holds: its first lines are sung, and the caption says so.
            long = await tune(h, "/tune " + "\n".join(["我们一起唱"] * 40))
            assert "first 32 of the 40 lines" in long[0]["caption"]
            assert abc_of(h, check_song(long)).count("w: ") == 32

            refused = await ask(h, "/tune 500\nla la la")
            assert "can't sing" in refused["text"] and "40 to 200 beats a minute, not 500" in refused["text"]
            h.fake.add_user(OTHER, "Li", "zh")  # the reason in the person's language
            refused = await ask(h, "/tune 500\n啦啦啦", chat=OTHER, user=OTHER)
            assert "这个我唱不了" in refused["text"] and "40 到 200 拍" in refused["text"], refused["text"]

    run(scenario())


def test_the_music_button_under_an_inline_lyric_opens_a_signed_private_link(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(USER, "In", "en")
            await ask(h, "/len 30")  # a short lyric: the tiny test model's long lines can be too long to sing
            query_id, answer = await inline(h, "the night", user=USER)
            chosen = answer["results"][0]
            assert "im" in [b.get("callback_data") for row in chosen["reply_markup"]["inline_keyboard"] for b in row]
            inline_message_id = h.fake.choose_inline_result(USER, query_id, chosen["id"])
            assert inline_message_id is not None
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests") == [(1,)])
            h.fake.press_inline_button(USER, inline_message_id, "im")
            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            url = h.fake.answered_callbacks[0]["url"]
            payload = url.split("?start=")[1]
            assert payload.startswith(LINK_PREFIX)

            before = len(h.fake.sent(USER))
            h.fake.send_text(USER, USER, f"/start {payload}")
            check_song(await song_after(h, USER, before))

            request_id = payload.split("-")[1]
            forged = await ask(h, f"/start {LINK_PREFIX}{request_id}-{'0' * 16}")
            assert "does not name a lyric" in forged["text"]

    run(scenario())


def test_the_sandbox_terminal_sings_and_saves_the_files(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """make run without a token: !7 under a lyric sings it; the picture, the voice and the ABC land in a folder."""
    model_dir, corpus = trained_store
    env = {"MODEL_DIR": str(model_dir), "CORPUS_PATH": str(corpus), "DEVICE": "cpu", "PATH": "",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "TELEGRAM_BOT_TOKEN": ""}  # fmt: skip
    chat = subprocess.run([sys.executable, "-m", "bot", "sandbox"], input="/len 30\n/write 天青色\n!7\n/quit\n",
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "bot> [picture]" in chat.stdout and "bot> [voice message," in chat.stdout, chat.stdout[-1500:]
    saved = sorted(p.suffix for p in (tmp_path / "var" / "sandbox-files").iterdir())
    assert saved == [".abc", ".ogg", ".png"]
    abc = next((tmp_path / "var" / "sandbox-files").glob("*.abc")).read_text(encoding="utf-8")
    assert "w: 天 青 色" in abc


def test_the_first_line_of_tune_may_choose_key_meter_and_tempo() -> None:
    assert read_choices("G 3/4 100\n春风又绿江南岸") == (Choices(meter="3/4", key="G", tempo=100), "春风又绿江南岸")
    assert read_choices("F#m ♩=80") == (Choices(key="F#m", tempo=80), "")  # in a reply: the words are the reply's
    assert read_choices("B♭ 6/8") == (Choices(meter="6/8", key="Bb"), "")
    for lyric in ("A day in the life", "G is for the garden\nwe grew", "春风又绿江南岸", ""):
        assert read_choices(lyric) == (Choices(), lyric)  # a first line with words of its own is the lyric's
    with pytest.raises(SingError, match="tempo"):
        read_choices("C 500")


def test_a_full_queue_refuses_at_once_and_loses_nothing_queued() -> None:
    async def scenario() -> None:
        singer = Singer(TUNE, workers=1, queue_size=1)
        try:
            first = asyncio.ensure_future(singer.sing(SongAsk("春风又绿江南岸", "")))
            second = asyncio.ensure_future(singer.sing(SongAsk("明月何时照我还", "")))
            # Both reach the queue before its feeder runs: the first fills it, the second is refused at once.
            with pytest.raises(SingerBusy):
                await second
            sung = await asyncio.wait_for(first, SONG_TIMEOUT)
            assert isinstance(sung, SongFiles) and "w: 春 风 又 绿 江 南 岸" in sung.abc
        finally:
            await singer.close()

    run(scenario())
