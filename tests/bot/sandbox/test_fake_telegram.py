"""The local Bot API server against the real python-telegram-bot client: if PTB accepts it, bots can trust it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, InvalidToken, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bot.sandbox import FakeTelegram

USER, GROUP = 501, -100777


def with_bot(scenario: Callable[[FakeTelegram, Bot], Awaitable[None]]) -> None:
    """Runs one scenario against a fresh server and a real PTB Bot pointed at it."""

    async def main() -> None:
        async with FakeTelegram() as fake:
            bot = Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url)
            async with bot:
                await scenario(fake, bot)

    asyncio.run(main())


def test_get_me_describes_a_bot_in_privacy_mode() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        me = await bot.get_me()
        assert (me.username, me.id, me.is_bot) == ("LyricBot", 999, True)
        assert me.can_read_all_group_messages is False and me.supports_inline_queries is True  # inline mode on
        assert fake.calls["getMe"] >= 1

    with_bot(scenario)


def test_get_updates_delivers_a_command_with_its_entity_and_offset_confirms_it() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_user(USER, "Ann", "en")
        first = fake.send_text(USER, USER, "/write 我不要")
        (update,) = await bot.get_updates()
        assert update.update_id == first and update.message is not None
        assert update.message.text == "/write 我不要"
        assert update.message.parse_entities() == {update.message.entities[0]: "/write"}
        assert update.message.entities[0].type == "bot_command" and update.message.from_user is not None
        assert update.message.from_user.language_code == "en" and update.message.chat.type == "private"
        assert [u.update_id for u in await bot.get_updates()] == [first]  # not confirmed yet
        second = fake.send_text(USER, USER, "hello")
        assert [u.update_id for u in await bot.get_updates(offset=first + 1)] == [second]
        assert await bot.get_updates(offset=second + 1) == ()

    with_bot(scenario)


def test_long_poll_wakes_as_soon_as_an_update_arrives() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        asyncio.get_running_loop().call_later(0.2, fake.send_text, USER, USER, "late")
        # A poll that did not wake would sit out its 60 s; the 20 s guard is slack for a slow machine,
        # not a speed target.
        updates = await asyncio.wait_for(bot.get_updates(timeout=60, read_timeout=70), 20)
        assert [u.message.text for u in updates if u.message] == ["late"]
        started = time.monotonic()
        assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=timedelta(seconds=0.3)) == ()
        # An empty long poll waits its timeout out (a lower bound: a slow machine only waits longer).
        assert time.monotonic() - started >= 0.25

    with_bot(scenario)


def test_send_message_is_refused_like_telegram_refuses_it() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(USER, "nobody has written yet")
        fake.send_text(USER, USER, "/start")
        for text, error in ((" \n", "Message text is empty"), ("x" * 4097, "Message is too long")):
            with pytest.raises(BadRequest, match=error):
                await bot.send_message(USER, text)
        with pytest.raises(BadRequest, match="Message to be replied not found"):
            await bot.send_message(USER, "hi", reply_parameters=ReplyParameters(message_id=77))
        lenient = ReplyParameters(message_id=77, allow_sending_without_reply=True)
        assert (await bot.send_message(USER, "hi", reply_parameters=lenient)).reply_to_message is None
        reply = await bot.send_message(USER, "<b>ok</b>", parse_mode="HTML", reply_to_message_id=1)
        assert reply.reply_to_message is not None and reply.reply_to_message.text == "/start"
        assert (await bot.send_message(USER, "x" * 4096)).text == "x" * 4096
        assert fake.requests[-2][1]["parse_mode"] == "HTML"
        assert [m["text"][:2] for m in fake.sent(USER)] == ["hi", "<b", "xx"]

    with_bot(scenario)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter.__init__
def test_429_is_a_retry_after_and_the_message_is_not_stored() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_chat(USER)
        fake.fail_next("sendMessage", 429, retry_after=2)
        with pytest.raises(RetryAfter, match="Retry in 2 seconds"):  # PTB's wording of retry_after=2
            await bot.send_message(USER, "lyric")
        assert fake.sent(USER) == []
        assert (await bot.send_message(USER, "lyric")).message_id == 1
        assert [m["text"] for m in fake.sent(USER)] == ["lyric"] and fake.calls["sendMessage"] == 2

    with_bot(scenario)


def test_inline_keyboard_round_trip_and_callback_answered_once() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_user(USER, "Ann")
        fake.send_text(USER, USER, "/write")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("★4", callback_data="r:1:4")]])
        message = await bot.send_message(USER, "天青色", reply_markup=markup)
        assert message.reply_markup == markup
        assert fake.sent(USER)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "r:1:4"
        with pytest.raises(ValueError, match="no button"):
            fake.press_button(USER, USER, message.message_id, "r:1:5")
        update_id = fake.press_button(USER, USER, message.message_id, "r:1:4")
        update = (await bot.get_updates(offset=update_id))[0]
        query = update.callback_query
        assert query is not None and query.data == "r:1:4" and query.from_user.id == USER
        assert query.message is not None and query.message.message_id == message.message_id
        assert await query.answer("thanks") is True
        with pytest.raises(BadRequest, match="Query is too old"):
            await query.answer("again")
        assert fake.answered_callbacks[0]["text"] == "thanks"
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(
                USER, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("long", callback_data="x" * 65)]])
            )

    with_bot(scenario)


def test_edits_are_checked_and_recorded() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.send_text(USER, USER, "/write 我")
        message = await bot.send_message(USER, "draft")
        edited = await bot.edit_message_text("final", USER, message.message_id)
        assert isinstance(edited, Message) and edited.text == "final" and edited.edit_date is not None
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("final", USER, message.message_id)
        with pytest.raises(BadRequest, match="Message can't be edited"):
            await bot.edit_message_text("mine", USER, 1)
        assert fake.sent(USER)[0]["text"] == "final" and "edit_date" in fake.sent(USER)[0]
        assert await bot.delete_message(USER, message.message_id) is True
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(USER, message.message_id)

    with_bot(scenario)


def test_a_person_editing_their_message_is_an_edited_message_update() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        first = fake.send_text(USER, USER, "/write 我")
        fake.edit_text(USER, USER, 1, "/write 你")
        updates = await bot.get_updates(offset=first + 1)
        edited = updates[0].edited_message
        assert edited is not None and edited.text == "/write 你" and edited.edit_date is not None
        assert updates[0].message is None and edited.message_id == 1

    with_bot(scenario)


def test_a_wrong_token_is_an_invalid_token() -> None:
    async def main() -> None:
        async with FakeTelegram() as fake:
            bot = Bot("123456:WRONG", base_url=fake.base_url, base_file_url=fake.base_file_url)
            with pytest.raises(InvalidToken):
                await bot.get_me()
            assert fake.calls["getMe"] == 0

    asyncio.run(main())


def test_documents_round_trip_both_ways() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.send_document(USER, USER, "corpus.txt", "窗外的麻雀\n".encode(), caption="/train")
        (update,) = await bot.get_updates()
        assert update.message is not None and update.message.document is not None
        assert update.message.document.file_name == "corpus.txt" and update.message.caption == "/train"
        data = await (await update.message.document.get_file()).download_as_bytearray()
        assert bytes(data) == "窗外的麻雀\n".encode()

        sent = await bot.send_document(USER, b"\x89PNG chart bytes", filename="loss.png", caption="loss")
        assert sent.document is not None and sent.caption == "loss"
        back = await (await bot.get_file(sent.document.file_id)).download_as_bytearray()
        assert bytes(back) == b"\x89PNG chart bytes"
        photo = await bot.send_photo(USER, png_header(640, 480), caption="plot")
        assert photo.photo and fake.sent(USER)[-1]["caption"] == "plot"
        assert fake.requests[-1][1]["photo"]["size"] == len(png_header(640, 480))

    with_bot(scenario)


def test_group_commands_address_the_bot_and_privacy_mode_hides_chatter() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_user(USER, "Bo", "zh")
        fake.add_chat(GROUP, "supergroup", "Lyrics club")
        update_id = fake.send_text(USER, GROUP, "/write@LyricBot hi")
        assert fake.send_text(USER, GROUP, "just chatting") == -1
        assert fake.send_text(USER, GROUP, "/write@OtherBot hi") == -1
        (update,) = await bot.get_updates()
        message = update.message
        assert update.update_id == update_id and message is not None
        assert message.chat.type == "supergroup" and message.chat.title == "Lyrics club"
        assert message.parse_entities(["bot_command"]) == {message.entities[0]: "/write@LyricBot"}
        chat = await bot.get_chat(GROUP)
        assert chat.title == "Lyrics club"

    with_bot(scenario)


def test_a_real_application_answers_start() -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("hello from the fake")

    async def main() -> None:
        async with FakeTelegram() as fake:
            app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).base_file_url(fake.base_file_url)
            application = app.build()
            application.add_handler(CommandHandler("start", start))
            await application.initialize()
            await application.start()
            assert application.updater is not None
            await application.updater.start_polling(poll_interval=0, timeout=1)
            try:
                fake.add_user(USER)
                fake.send_text(USER, USER, "/start")
                (reply,) = await fake.wait_for_sent(USER, 1, timeout=60)
                assert reply["text"] == "hello from the fake"  # PTB 22 quotes only in groups by default
                with pytest.raises(TimeoutError, match="sent 1 of 2"):
                    await fake.wait_for_sent(USER, 2, timeout=0.2)
            finally:
                await application.updater.stop()
                await application.stop()
                await application.shutdown()
            assert fake.calls["deleteWebhook"] == 1 and fake.calls["getUpdates"] >= 2
            async with Bot(fake.token, base_url=fake.base_url) as bot:  # the last poll confirmed what it handled
                assert (await bot.get_webhook_info()).pending_update_count == 0

    asyncio.run(main())


def test_commands_chat_actions_and_keyboard_edits() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        assert await bot.set_my_commands([("write", "Write a lyric"), ("len", "Set the length")]) is True
        assert [c.command for c in await bot.get_my_commands()] == ["write", "len"]
        assert await bot.get_my_commands(language_code="zh") == ()
        with pytest.raises(BadRequest, match="Bot_command_invalid"):
            await bot.set_my_commands([("Write", "capitals are refused")])
        fake.send_text(USER, USER, "/write")
        assert await bot.send_chat_action(USER, "typing") is True
        assert fake.chat_actions == [(USER, "typing")]
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("again", callback_data="a:1")]])
        message = await bot.send_message(USER, "lyric", reply_markup=keyboard)
        cleared = await bot.edit_message_reply_markup(USER, message.message_id, reply_markup=None)
        assert isinstance(cleared, Message) and cleared.reply_markup is None
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_reply_markup(USER, message.message_id, reply_markup=None)

    with_bot(scenario)


def test_json_bodies_are_accepted_and_a_second_long_poll_ends_the_first() -> None:
    async def main() -> None:
        async with FakeTelegram() as fake, aiohttp.ClientSession() as http:
            fake.add_chat(USER)
            url = f"{fake.base_url}{fake.token}"
            async with http.post(f"{url}/SENDMESSAGE", json={"chat_id": USER, "text": "json"}) as response:
                assert (await response.json())["result"]["text"] == "json"
            first = asyncio.create_task(http.post(f"{url}/getUpdates", data={"timeout": "5"}))
            await asyncio.sleep(0.1)
            async with http.post(f"{url}/getUpdates", data={"timeout": "0"}) as second:
                assert (await second.json()) == {"ok": True, "result": []}
            async with await first as superseded:
                assert superseded.status == 409 and "Conflict" in (await superseded.json())["description"]
            async with http.post(f"{url}/noSuchMethod") as missing:
                assert missing.status == 404

    asyncio.run(main())


def _article(result_id: str, text: str = "天青色等烟雨", **extra: object) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(result_id, "title", InputTextMessageContent(text), **extra)  # type: ignore[arg-type]


def test_inline_queries_are_answered_once_and_checked_like_telegram() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_user(USER, "Ann", "zh")
        query_id = fake.send_inline_query(USER, "天青色", chat_type="supergroup")
        (update,) = await bot.get_updates()
        inline = update.inline_query
        assert inline is not None and inline.id == query_id and inline.query == "天青色"
        assert inline.from_user.id == USER and inline.chat_type == "supergroup" and update.effective_chat is None
        refusals = [
            ([_article("a"), _article("a")], "Result_id_duplicate"),
            ([_article("x" * 65)], "Result_id_invalid"),
            ([_article(str(i)) for i in range(51)], "Results_too_much"),
            ([_article("a", text=" ")], "Message_empty"),
            ([_article("a", text="x" * 4097)], "Message_too_long"),
        ]
        for results, error in refusals:
            with pytest.raises(BadRequest, match=error):
                await bot.answer_inline_query(query_id, results)
        with pytest.raises(BadRequest, match="Start_param_invalid"):
            await bot.answer_inline_query(query_id, [], button=InlineQueryResultsButton("go", start_parameter="a b"))
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_inline_query("nosuchquery", [])
        assert fake.inline_answers == {}  # refused answers leave no trace, and the query stays open
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("★5", callback_data="ir:5")]])
        button = InlineQueryResultsButton("open", start_parameter="inline")
        assert await inline.answer([_article("t.0", reply_markup=keyboard), _article("t.1")], cache_time=30,
                                   is_personal=True, button=button)  # fmt: skip
        answer = await fake.wait_for_inline_answer(query_id, timeout=1)
        assert [r["id"] for r in answer["results"]] == ["t.0", "t.1"] and answer["cache_time"] == 30
        assert answer["is_personal"] is True and answer["button"] == {"text": "open", "start_parameter": "inline"}
        with pytest.raises(BadRequest, match="Query is too old"):
            await inline.answer([_article("t.2")])  # answered already
        with pytest.raises(ValueError, match="was not answered with a result"):
            fake.choose_inline_result(USER, query_id, "t.9")

    with_bot(scenario)


def test_a_chosen_inline_result_becomes_an_inline_message_with_working_buttons() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.add_user(USER, "Ann", "en")
        query_id = fake.send_inline_query(USER, "the night")
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("★5", callback_data="ir:5")]])
        await bot.answer_inline_query(query_id, [_article("t.0", "the night is long", reply_markup=keyboard),
                                                 _article("t.1")])  # fmt: skip
        assert fake.choose_inline_result(USER, query_id, "t.1") is None  # no keyboard: no inline_message_id
        inline_message_id = fake.choose_inline_result(USER, query_id, "t.0")
        assert inline_message_id is not None
        updates = await bot.get_updates()
        chosen = [u.chosen_inline_result for u in updates if u.chosen_inline_result is not None]
        assert [(c.result_id, c.query, c.inline_message_id) for c in chosen] == [
            ("t.1", "the night", None), ("t.0", "the night", inline_message_id)]
        fake.press_inline_button(USER, inline_message_id, "ir:5")
        (update,) = await bot.get_updates(offset=updates[-1].update_id + 1)
        query = update.callback_query
        assert query is not None and query.message is None and query.inline_message_id == inline_message_id
        assert query.data == "ir:5" and update.effective_chat is None
        assert await query.answer("thanks") is True
        assert await query.edit_message_text("the night is longer", reply_markup=keyboard) is True
        assert fake.inline_messages[inline_message_id]["text"] == "the night is longer"
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("the night is longer", inline_message_id=inline_message_id,
                                        reply_markup=keyboard)  # fmt: skip
        with pytest.raises(BadRequest, match="Message_id_invalid"):
            await bot.edit_message_text("x", inline_message_id="IMnone")
        with pytest.raises(ValueError, match="no button"):
            fake.press_inline_button(USER, inline_message_id, "ir:4")

    with_bot(scenario)


def test_without_inline_feedback_telegram_sends_no_chosen_result() -> None:
    async def main() -> None:
        async with FakeTelegram(inline_feedback=False) as fake, Bot(fake.token, base_url=fake.base_url) as bot:
            query_id = fake.send_inline_query(USER, "我")
            await bot.answer_inline_query(query_id, [_article("a")])
            fake.choose_inline_result(USER, query_id, "a")
            updates = await bot.get_updates()
            assert [u.inline_query is not None for u in updates] == [True]

    asyncio.run(main())


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG of that size: all the fake reads of a photo (Telegram decodes the whole file)."""
    size = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + size + bytes(64)


def test_photos_voice_messages_and_documents_are_checked_like_telegram() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.send_text(USER, USER, "/start")  # the person opens the chat
        await bot.get_updates()
        photo = await bot.send_photo(USER, png_header(1400, 300), caption="a lead sheet")
        assert (photo.photo[0].width, photo.photo[0].height) == (1400, 300)
        for width, height in ((9000, 1001), (4000, 150)):  # sides over 10000 together; over 20 to 1
            with pytest.raises(BadRequest, match=r"(?i)photo_invalid_dimensions"):
                await bot.send_photo(USER, png_header(width, height))
        with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
            await bot.send_photo(USER, b"not a picture")

        opus = b"OggS" + bytes(24) + b"OpusHead" + bytes(100)
        voice = await bot.send_voice(USER, opus, duration=timedelta(seconds=12))
        assert voice.voice is not None and voice.voice.mime_type == "audio/ogg"
        assert fake.sent(USER)[-1]["voice"]["duration"] == 12
        with pytest.raises(BadRequest, match=r"(?i)ogg file encoded with opus"):
            await bot.send_voice(USER, b"OggS" + bytes(24) + b"\x01vorbis" + bytes(100))  # Vorbis is no voice
        with pytest.raises(BadRequest, match=r"(?i)ogg file encoded with opus"):
            await bot.send_voice(USER, b"ID3" + bytes(100))  # nor is an MP3
        assert [m.get("photo") is not None or m.get("voice") is not None for m in fake.sent(USER)] == [True, True]

    with_bot(scenario)


def test_a_callback_answer_may_only_open_this_bot_with_a_start_payload() -> None:
    async def scenario(fake: FakeTelegram, bot: Bot) -> None:
        fake.send_text(USER, USER, "/start")
        offset = (await bot.get_updates())[-1].update_id + 1
        sent = await bot.send_message(USER, "x", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("go", callback_data="go")]]))
        fake.press_button(USER, USER, sent.message_id, "go")
        (update,) = await bot.get_updates(offset=offset)
        assert update.callback_query is not None
        with pytest.raises(BadRequest, match=r"(?i)url_invalid"):
            await update.callback_query.answer(url="https://example.com/")
        assert await update.callback_query.answer(url="https://t.me/LyricBot?start=tune-1-abc")

    with_bot(scenario)
