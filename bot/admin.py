"""Admin commands: corpus, retraining, model versions, rollback. Only the ids in ``ADMIN_IDS``.

Every admin handler is wrapped in ``admin_only``: anyone else gets a polite refusal and nothing
changes; an empty ``ADMIN_IDS`` means nobody is admin. Ids, never usernames, which can change hands.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from telegram import Update
from telegram.error import TelegramError

from bot.context import Context
from bot.handlers import Handler, command_argument, person_of, reply, services
from bot.services.styles import DEFAULT_STYLE
from bot.services.training import RunReport, TrainingService
from charrnn.data import CorpusError

log = logging.getLogger(__name__)


def training(context: Context) -> TrainingService:
    return context.bot_data.training


def admin_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None or user.id not in services(context).settings.admin_ids:
            log.warning("refused admin command from user %s", user.id if user else None)
            await reply(update, context, "Sorry, that command is only for the bot's admins. / 这个命令只有管理员能用。")
            return
        await handler(update, context)

    return wrapper


def style_argument(text: str) -> str | None:
    """The style a corpus or training command names after the command word (None: the default style)."""
    words = text.split()[1:2]
    name = words[0].strip().lower() if words else DEFAULT_STYLE
    return None if name == DEFAULT_STYLE else name


async def add_corpus(update: Update, context: Context) -> None:
    """/addcorpus [style] as a reply to a text message, or as the caption of an uploaded .txt document."""
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    style = style_argument(message.text or message.caption or "")
    document = message.document or (message.reply_to_message.document if message.reply_to_message else None)
    if document is not None:
        if not (document.file_name or "").lower().endswith(".txt"):
            await reply(update, context, "Please upload a UTF-8 .txt file.")
            return
        limit = services(context).settings.max_corpus_bytes
        if document.file_size and document.file_size > limit:
            await reply(update, context, f"That file is too large (limit {limit:,} bytes).")
            return
        file = await document.get_file()
        raw, name = bytes(await file.download_as_bytearray()), document.file_name or "upload.txt"
    elif message.reply_to_message is not None and message.reply_to_message.text:
        raw, name = message.reply_to_message.text.encode("utf-8"), "message"
    else:
        await reply(update, context, "Reply /addcorpus to a text message, or send it as the caption of a .txt file.")
        return
    await services(context).lyrics.remember(person_of(update))
    try:
        added = await training(context).add_document(name=name, raw=raw, added_by=update.effective_user.id,
                                                     style=style)
    except (CorpusError, LookupError) as exc:
        await reply(update, context, f"Not added: {exc}")
        return
    if added.duplicate:
        await reply(update, context, f"Already in the corpus as document {added.document_id}; nothing changed.")
        return
    await reply(update, context, f"Added document {added.document_id}: {added.chars:,} characters, "
                                 f"{len(added.new_chars)} new to the model's vocabulary.")


async def corpus(update: Update, context: Context) -> None:
    """/corpus: documents, sizes, and whether the model has trained on them."""
    lines = await training(context).describe_corpus()
    await reply(update, context, "\n".join(lines) or "The corpus has no added documents yet.")


async def retrain(update: Update, context: Context) -> None:
    """/retrain [style]: start a fine-tuning run of a style (the default's) now (one at a time)."""
    service = training(context)
    style = style_argument(update.effective_message.text or "") if update.effective_message else None
    if service.busy():
        await reply(update, context, "A training run is already going; /jobs shows it.")
        return
    try:
        new = await service.new_document_ids(style)
    except LookupError as exc:
        await reply(update, context, f"No training: {exc}.")
        return
    if not new:
        await reply(update, context, "No new corpus text since the active model was trained: nothing to do.")
        return
    user = update.effective_user
    task = service.start_retrain(trigger="admin", requested_by=user.id if user else None, style=style)
    task.add_done_callback(_log_outcome)
    await reply(update, context, "Training started. I'll send the result here when it's done.")


def _log_outcome(task: asyncio.Task[RunReport | str]) -> None:
    if task.cancelled():
        return
    if (exc := task.exception()) is not None:
        log.error("admin-started training failed", exc_info=exc)
    elif isinstance(outcome := task.result(), RunReport):
        log.info("admin run %s: %s", outcome.run_id, outcome.status)


async def jobs(update: Update, context: Context) -> None:
    """/jobs: recent training runs."""
    lines = await training(context).describe_runs()
    await reply(update, context, "\n".join(lines) or "No training runs yet.")


async def models(update: Update, context: Context) -> None:
    """/models [style]: a style's versions (the default's without one), perplexities, ratings, the active one."""
    argument = command_argument(update.effective_message) if update.effective_message else ""
    styles = services(context).styles
    if argument and styles is not None:
        try:
            lines = await styles.describe_versions(argument)
        except LookupError as exc:
            await reply(update, context, f"{exc}. {await styles.summary()}")
            return
    else:
        lines = await training(context).describe_versions()
    text = "\n".join(lines) or "No model versions recorded yet."
    if styles is not None:
        text += "\n\n" + await styles.summary()
    await reply(update, context, text)


async def rollback(update: Update, context: Context) -> None:
    """/rollback [style] [version]: serve the previous (or the named) version of a style (the default's) at once."""
    argument = command_argument(update.effective_message) if update.effective_message else ""
    words = argument.split()
    styles = services(context).styles
    try:
        # A first word naming a live style is that style; otherwise it is a version of the default style.
        if words and styles is not None and await styles.find(words[0]) is not None and len(words) <= 2:
            version = await styles.rollback(words[0], words[1] if len(words) > 1 else None)
        else:
            version = await training(context).rollback(argument or None)
    except (LookupError, ValueError) as exc:
        await reply(update, context, f"No rollback: {exc}")
        return
    await reply(update, context, f"Now serving model {version}.")


async def delete_style(update: Update, context: Context) -> None:
    """/delstyle <name>: stop offering a style (its versions stay on disk; its people fall back to the default)."""
    argument = command_argument(update.effective_message) if update.effective_message else ""
    styles = services(context).styles
    assert styles is not None
    if not argument:
        await reply(update, context, f"Usage: /delstyle <name>. {await styles.summary()}")
        return
    if not await styles.delete(argument):
        await reply(update, context, f"No style {argument[:40]} to delete. {await styles.summary()}")
        return
    await reply(update, context, f"Style {argument.strip().lower()} deleted; its people now get the default style.")


async def notify_admins(context_bot: Any, admin_ids: frozenset[int], text: str, chart: bytes | None) -> None:
    """Tell every admin the outcome of a run, with the loss chart when there is one."""
    for admin in sorted(admin_ids):
        try:
            if chart is not None:
                await context_bot.send_photo(admin, chart, caption=text[:1024])
            else:
                await context_bot.send_message(admin, text)
        except TelegramError as exc:
            log.warning("could not notify admin %s: %s", admin, exc)
