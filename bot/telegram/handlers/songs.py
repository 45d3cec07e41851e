"""Singing in Telegram: /tune, the 🎵 button under lyrics, and the private link that sings an inline lyric.

The answer is three messages: the lead sheet (a photo, its caption the title, key and tempo), the tune as a
voice message (OGG Opus), and the ABC file with the words under the notes. In a group they reply to the lyric.
"""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import timedelta

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest

from bot.services.forms import without_notes
from bot.services.songs import SongRefused, read_choices
from bot.serving.singer import SongAsk, SongFiles
from bot.telegram.callbacks import Music, decode
from bot.telegram.context import Context
from bot.telegram.delivery import quoting, reply, send_outcome
from bot.telegram.i18n import BOT_NOTES, sing_reason, t
from charrnn.music.sing import SingError
from charrnn.text.titles import untitled

log = logging.getLogger(__name__)



async def tune(update: Update, context: Context) -> None:
    """/tune: sing the lyric it replies to, or the words after it."""
    message = update.effective_message
    assert message is not None
    replied = message.reply_to_message
    lang = context.lang
    try:
        choices, text = read_choices(context.argument)
    except SingError as error:
        await reply(update, context, t(lang, "sing_cannot", detail=sing_reason(lang, error.code, error.params,
                                                                                str(error))))
        return
    if not text.strip() and replied is not None:
        text = replied.text or replied.caption or ""
        if replied.from_user is not None and replied.from_user.id == context.bot.id:
            text = without_notes(text, BOT_NOTES)  # our lyric: its notes ("never seen: x") are no lines to sing
    if not text.strip():
        await reply(update, context, t(lang, "tune_usage"))
        return
    title, lyric = untitled(text)
    await sing(update, context, SongAsk(lyric, title, choices=choices), under=replied or message)


async def music_button(update: Update, context: Context) -> None:
    """🎵 under a lyric: sing it here; under an inline message, a link to hear it in private."""
    query = update.callback_query
    assert query is not None
    songs = context.services.songs
    lang = context.lang
    if query.inline_message_id is not None:
        payload = await songs.link_for_inline(query.inline_message_id)
        with contextlib.suppress(BadRequest):
            if payload is None:
                await query.answer(t(lang, "inline_not_recorded"), show_alert=True)
            else:
                await query.answer(url=f"https://t.me/{context.bot.username}?start={payload}")
        return
    under = query.message if isinstance(query.message, Message) else None
    pressed = decode(query.data)
    ask = None
    if isinstance(pressed, Music):
        ask = await songs.for_button(request_id=pressed.request_id, place=context.place,
                                     button_message_id=under.message_id if under is not None else None)
    with contextlib.suppress(BadRequest):
        await query.answer(None if ask is not None else t(lang, "button_foreign"), show_alert=ask is None)
    if ask is not None:
        await sing(update, context, ask, under=under)


async def tune_link(update: Update, context: Context) -> None:
    """/start tune-<request>-<signature>: the lyric of an inline message, sung in the private chat."""
    message = update.effective_message
    assert message is not None
    ask = await context.services.songs.for_link(context.argument.strip())
    if ask is None:
        await reply(update, context, t(context.lang, "sing_link_bad"))
        return
    await sing(update, context, ask, under=None)


async def sing(update: Update, context: Context, ask: SongAsk, under: Message | None) -> None:
    chat = update.effective_chat
    assert chat is not None
    with contextlib.suppress(Exception):  # an indicator only
        await context.bot.send_chat_action(chat.id, ChatAction.RECORD_VOICE)
    result = await context.services.songs.sing(ask, context.person, context.place)
    if isinstance(result, SongRefused):
        if result.reason == "sing_cannot":
            detail = sing_reason(context.lang, result.code, dict(result.params), result.detail)
            await reply(update, context, t(context.lang, "sing_cannot", detail=detail))
        else:
            await send_outcome(update, context, result)
        return
    await deliver(update, context, result, under)


async def deliver(update: Update, context: Context, song: SongFiles, under: Message | None) -> None:
    """The lead sheet, the voice message, the ABC file; in a group, each a reply to the lyric."""
    chat = update.effective_chat
    assert chat is not None
    lang = context.lang
    quote = quoting(update, under) if under is not None else None
    title = f"{song.title} \u00b7 " if song.title else ""
    tonic, _, mode = song.key.partition(" ")
    caption = t(lang, "sing_caption", title=title, tonality=t(lang, f"key_{mode}", tonic=tonic), tempo=song.tempo)
    if song.sung < song.of:
        caption += t(lang, "sing_part", sung=song.sung, of=song.of)

    name = "".join(c for c in song.title if c.isalnum())[:40] or "tune"
    await context.bot.send_photo(chat.id, io.BytesIO(song.png), caption=caption, reply_parameters=quote,
                                 filename=f"{name}.png")
    await context.bot.send_voice(chat.id, io.BytesIO(song.ogg), duration=timedelta(seconds=round(song.seconds)),
                                 reply_parameters=quote, filename=f"{name}.ogg")
    await context.bot.send_document(chat.id, io.BytesIO(song.abc.encode("utf-8")), filename=f"{name}.abc",
                                    caption=t(lang, "sing_abc_caption"), reply_parameters=quote)
    log.info("sang a tune of %.0f s in chat %s", song.seconds, chat.id)
