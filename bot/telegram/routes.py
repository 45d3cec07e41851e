"""Every handler registration, in the order PTB tries them: which update goes to which handler.

The commands come from ``bot.telegram.catalogue``, each with its handler (the menus and /help read the same list).
Buttons are routed by their data's shape
(``bot.telegram.callbacks``). Handlers that answer in a chat are wrapped in ``in_order``, so each chat's answers
leave in the order its updates came; inline updates have no chat, and the settings panel only edits its own
message, so they are not.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.services.songs import LINK_PREFIX
from bot.telegram.callbacks import MUSIC_PATTERN, PANEL_PATTERN, STYLE_PATTERN
from bot.telegram.catalogue import COMMANDS
from bot.telegram.context import Context
from bot.telegram.delivery import in_order
from bot.telegram.handlers import admin, info, inline, settings, songs, styles, write


async def button(update: Update, context: Context) -> None:
    """A button no pattern above took: under an inline lyric, its stars; in a chat, stars and "write again"."""
    query = update.callback_query
    assert query is not None
    if query.inline_message_id is not None:  # under a lyric sent through inline mode: no chat, no message
        await inline.inline_button(update, context)
    else:
        await write.button(update, context)


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Every handler, in order; PTB tries them top to bottom, and the first that matches a group wins."""
    new_messages = filters.UpdateType.MESSAGE  # an edited message never starts a second generation
    # Before the commands: /start with a tune link sings; a plain /start is /help.
    application.add_handler(CommandHandler("start", songs.tune_link, block=False,
                                           filters=filters.Regex(rf"^/start {LINK_PREFIX}")))
    for command in COMMANDS:
        callback = admin.admin_only(command.handler) if command.admin else command.handler
        application.add_handler(CommandHandler([command.name, *command.aliases], in_order(callback),
                                               filters=new_messages, block=False))
    # Plain text: a /write in private, an answer to our first-line prompt, a group message that mentions us.
    plain_text = new_messages & filters.TEXT & ~filters.COMMAND
    application.add_handler(MessageHandler(plain_text, in_order(write.text_message), block=False))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, write.chat_migrated, block=False))
    # Buttons by the shape of their data (bot.telegram.callbacks), the catch-all last.
    application.add_handler(CallbackQueryHandler(in_order(styles.style_button), pattern=STYLE_PATTERN, block=False))
    application.add_handler(CallbackQueryHandler(settings.tap, pattern=PANEL_PATTERN, block=False))
    application.add_handler(CallbackQueryHandler(songs.music_button, pattern=MUSIC_PATTERN, block=False))
    application.add_handler(CallbackQueryHandler(in_order(button), block=False))
    # Inline mode: no chat, so no answer order to keep; block=False, as a person types several queries at once.
    application.add_handler(InlineQueryHandler(inline.inline_query, block=False))
    application.add_handler(ChosenInlineResultHandler(inline.chosen_result, block=False))
    # An uploaded .txt whose caption is /addcorpus (captions are not commands to CommandHandler).
    caption = new_messages & filters.Document.ALL & filters.CaptionRegex(r"^/addcorpus(@\w+)?(\s|$)")
    application.add_handler(MessageHandler(caption, in_order(admin.admin_only(admin.add_corpus)), block=False))
    # Last, so every command and message above had its chance: nobody in a private chat is left in silence.
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, in_order(info.unknown_command),
                                           block=False))
    anything_else = new_messages & filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL
    application.add_handler(MessageHandler(anything_else, in_order(info.not_text), block=False))
    application.add_error_handler(info.on_error)

