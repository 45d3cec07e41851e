"""Admin commands: corpus, retraining, model versions, rollback. Only the ids in ``ADMIN_IDS``.

Every admin handler is wrapped in ``admin_only``: anyone else gets a polite refusal and nothing
changes; an empty ``ADMIN_IDS`` means nobody is admin. Ids, never usernames, which can change hands.
The replies are in the admin's language (``bot.telegram.i18n``); the lines the services describe (versions, runs,
documents, reports) stay in English, as the command line prints them too.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from telegram import Update

from bot.services.run_reports import RunReport
from bot.services.styles import DEFAULT_STYLE
from bot.services.training import TrainingService
from bot.telegram.context import Context
from bot.telegram.delivery import Handler, reply
from bot.telegram.i18n import t
from charrnn.data import CorpusError

log = logging.getLogger(__name__)


def training(context: Context) -> TrainingService:
    return context.services.training


def admin_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None or user.id not in context.services.settings.admin_ids:
            log.warning("refused admin command from user %s", user.id if user else None)
            await reply(update, context, t(context.lang, "admin_only"))
            return
        await handler(update, context)

    return wrapper


def style_argument(text: str) -> str:
    """The style a corpus or training command names after the command word (the default style without one)."""
    words = text.split()[1:2]
    return words[0].strip().lower() if words else DEFAULT_STYLE


async def add_corpus(update: Update, context: Context) -> None:
    """/addcorpus [style] as a reply to a text message, or as the caption of an uploaded .txt document."""
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    lang = context.lang
    style = style_argument(message.text or message.caption or "")
    document = message.document or (message.reply_to_message.document if message.reply_to_message else None)
    if document is not None:
        if not (document.file_name or "").lower().endswith(".txt"):
            await reply(update, context, t(lang, "admin_not_txt"))
            return
        limit = context.services.settings.max_corpus_bytes
        if document.file_size and document.file_size > limit:
            await reply(update, context, t(lang, "admin_too_large", limit=limit))
            return
        file = await document.get_file()
        raw, name = bytes(await file.download_as_bytearray()), document.file_name or "upload.txt"
    elif message.reply_to_message is not None and message.reply_to_message.text:
        raw, name = message.reply_to_message.text.encode("utf-8"), "message"
    else:
        await reply(update, context, t(lang, "admin_corpus_how"))
        return
    await context.services.preferences.remember(context.person)
    try:
        added = await training(context).corpus.add_document(name=name, raw=raw, added_by=update.effective_user.id,
                                                     style=style)
    except (CorpusError, LookupError) as exc:
        await reply(update, context, t(lang, "admin_not_added", reason=exc))
        return
    if added.duplicate:
        await reply(update, context, t(lang, "admin_duplicate", document_id=added.document_id))
        return
    await reply(update, context, t(lang, "admin_added", document_id=added.document_id, chars=added.chars,
                                   new=len(added.new_chars)))


async def corpus(update: Update, context: Context) -> None:
    """/corpus: documents, sizes, and whether the model has trained on them."""
    lines = await training(context).corpus.describe_corpus()
    await reply(update, context, "\n".join(lines) or t(context.lang, "admin_corpus_empty"))


async def retrain(update: Update, context: Context) -> None:
    """/retrain [style]: start a fine-tuning run of a style (the default's) now (one at a time)."""
    service, lang = training(context), context.lang
    style = style_argument(update.effective_message.text or "") if update.effective_message else DEFAULT_STYLE
    if service.busy():
        await reply(update, context, t(lang, "admin_retrain_busy"))
        return
    try:
        new = await service.corpus.new_document_ids(style)
    except LookupError as exc:
        await reply(update, context, t(lang, "admin_no_training", reason=exc))
        return
    if not new:
        await reply(update, context, t(lang, "admin_nothing_new"))
        return
    user = update.effective_user
    task = service.start_retrain(trigger="admin", requested_by=user.id if user else None, style=style)
    task.add_done_callback(_log_outcome)
    await reply(update, context, t(lang, "admin_retrain_started"))


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
    await reply(update, context, "\n".join(lines) or t(context.lang, "admin_no_runs"))


async def models(update: Update, context: Context) -> None:
    """/models [style]: a style's versions (the default's without one), perplexities, ratings, the active one."""
    argument = context.argument
    styles = context.services.styles
    try:
        lines = await styles.describe_versions(argument or DEFAULT_STYLE)
    except LookupError as exc:
        await reply(update, context, f"{exc}. {await styles.summary()}")
        return
    text = "\n".join(lines) or t(context.lang, "admin_no_versions")
    text += "\n\n" + await styles.summary()
    await reply(update, context, text)


async def rollback(update: Update, context: Context) -> None:
    """/rollback [style] [version]: serve the previous (or the named) version of a style (the default's) at once."""
    argument = context.argument
    words = argument.split()
    styles = context.services.styles
    try:
        # A first word naming a live style is that style; otherwise it is a version of the default style.
        if words and await styles.find(words[0]) is not None and len(words) <= 2:
            version = await styles.rollback(words[0], words[1] if len(words) > 1 else None)
        else:
            version = await styles.rollback(DEFAULT_STYLE, argument or None)
    except (LookupError, ValueError) as exc:
        await reply(update, context, t(context.lang, "admin_no_rollback", reason=exc))
        return
    await reply(update, context, t(context.lang, "admin_serving", version=version))


async def delete_style(update: Update, context: Context) -> None:
    """/delstyle <name>: stop offering a style (its versions stay on disk; its people fall back to the default)."""
    argument = context.argument
    styles, lang = context.services.styles, context.lang
    if not argument:
        await reply(update, context, t(lang, "admin_delstyle_usage", styles=await styles.summary()))
        return
    if not await styles.delete(argument):
        summary = await styles.summary()
        await reply(update, context, t(lang, "admin_delstyle_unknown", name=argument[:40], styles=summary))
        return
    await reply(update, context, t(lang, "admin_style_deleted", name=argument.strip().lower()))
