"""Building and running the Telegram application: every handler and service is wired here, once.

Two ways to receive updates. Polling (the default): one bot per database, enforced by the instance lock.
Webhook (``Webhook``): Telegram POSTs each update, with the secret token in a header, to one of possibly
several replicas behind a load balancer sharing one database; replicas take no instance lock, and the
fine-tune (scheduled, ``/retrain`` or the clean-up of a crashed run) is guarded per run by
``FinetuneLock``, so it happens once across them (see ``bot.ops.instance``). Replicas must share
``MODEL_DIR`` (a promotion is written there; every request names the version its style's row points at, so
the others serve a promotion or a rollback from their next request on), and should
be started after ``lyricbot db upgrade``, since replicas starting together would each migrate. What stays
per process: the rate limit and the in-chat answer order (``ChatOrder``) hold per replica, not overall.

Lifecycle (python-telegram-bot's order): ``post_init`` migrates the database, loads the default style's model,
starts the generation worker and re-answers what a crash left unanswered; ``post_stop`` stops the
worker after PTB has drained the running handlers; ``post_shutdown`` disposes the database engine so
nothing hangs at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
)

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.ops.instance import FinetuneLock, InstanceLock, InstanceLocked
from bot.ops.logs import Redactor, RedactTokens
from bot.ops.schedule import (
    FINETUNE_JOB,
    LEASE_JOB,
    TAKE_OVER_JOB,
    finetune_trigger,
    make_scheduler,
    register,
)
from bot.services.admission import ChatOrder
from bot.services.inline import InlineService
from bot.services.lyrics import LyricsService
from bot.services.preferences import PreferencesService
from bot.services.quality import CopyGuard
from bot.services.ratings import RatingService
from bot.services.songs import SongService
from bot.services.styles import StyleService
from bot.services.training import TrainingService
from bot.serving.backends import make_backends
from bot.serving.generation import GenerationBackend
from bot.serving.model_store import ModelStore
from bot.serving.singer import Singer
from bot.settings import Settings
from bot.telegram import catalogue, routes
from bot.telegram.context import CONTEXT_TYPES, Services
from bot.telegram.delivery import answer_unfinished, notify_admins
from bot.telegram.typing_indicator import TypingIndicator
from bot.telegram.webhook import SafeUpdater

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Webhook:
    """Where Telegram POSTs updates, and where this process listens for them (behind a proxy)."""

    url: str
    secret: str
    listen: str
    port: int

    @property
    def path(self) -> str:
        """PTB serves the path of the public URL; the proxy forwards it unchanged."""
        return urlsplit(self.url).path.lstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> Webhook:
        """``url`` (``--webhook``) or ``WEBHOOK_URL``; refuses without a secret: an open webhook takes
        updates from anyone who finds it."""
        url = url or settings.webhook_url
        if not url:
            raise ValueError("webhook mode needs a URL: --webhook URL or WEBHOOK_URL")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"webhook URL {url!r} is not an http(s) URL")
        if settings.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is not set: webhook mode refuses to start without one, since "
                             "anyone who finds the URL could send the bot updates")
        return cls(url, settings.webhook_secret.get_secret_value(), settings.webhook_listen, settings.webhook_port)


class Runtime:
    """The pieces with a lifetime: engine, worker. Owned by the application, closed in its hooks.

    ``replica``: one of several webhook bots sharing the database, so no instance lock.
    """

    def __init__(self, settings: Settings, replica: bool = False) -> None:
        self.replica = replica
        self.finetune_lock = FinetuneLock(settings.database_url, settings.model_dir)
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.backend: GenerationBackend | None = None
        self.singer: Singer | None = None
        self.leftovers: asyncio.Task[None] | None = None
        self.training: TrainingService | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.instance = InstanceLock(settings.database_url, settings.model_dir)
        self.lost_lock: str | None = None  # why the instance lock was lost while running, if it was

    async def open(self, application: Application) -> None:  # type: ignore[type-arg]
        s = self.settings
        self.engine = make_engine(s.database_url)
        try:
            # Before anything reads or writes: a second polling bot must not answer the first one's requests.
            if not self.replica:
                await self.instance.acquire(self.engine,
                                            on_lost=lambda why: self.stop_for_lost_lock(application, why))
        except InstanceLocked as exc:
            log.error("not starting: %s", exc)
            application.stop_running()
            raise
        try:
            await upgrade(self.engine)
        except Exception:
            log.exception("database migration failed; not starting")
            application.stop_running()
            raise
        store = ModelStore(s.model_dir, s.device)
        sessions = make_sessionmaker(self.engine)
        backends = make_backends(s, store)
        self.backend = backends.generation
        # Styles: several models at once, one lane each; the default style is a row like the others.
        styles = StyleService(sessions, store, self.backend)
        default_version = await styles.ensure_default()  # the shipped base on the very first start
        await self.backend.warm(default_version)  # loaded before the first request, not by it
        await self.backend.start()
        guard = CopyGuard(store.corpus_text(s.corpus_path), s.copy_threshold)

        async def notify(text: str, chart: bytes | None) -> None:
            await notify_admins(application.bot, s.admin_ids, text, chart)

        engine = self.engine
        self.training = TrainingService(s, sessions, styles, notify, guard,
                                        exclusive=lambda: self.finetune_lock.try_hold(engine),
                                        runner=backends.finetune)
        for text in (await self.training.corpus.corpus_texts()).values():
            guard.add(text)
        await styles.reserve()
        for text in await styles.corpus_texts():
            guard.add(text)
        preferences = PreferencesService(s, sessions, styles)
        lyrics = LyricsService(s, sessions, self.backend, guard, preferences)
        inline = InlineService(lyrics)
        self.singer = Singer(s.tune_checkpoint, workers=s.sing_workers, queue_size=s.sing_queue,
                             threads=s.torch_threads)
        services = Services(
            settings=s, lyrics=lyrics, preferences=preferences, ratings=RatingService(lyrics), styles=styles,
            inline=inline, songs=SongService(lyrics, inline, self.singer, s.token or ""), training=self.training,
            order=ChatOrder(),
            typing=TypingIndicator(lambda chat_id: application.bot.send_chat_action(chat_id, ChatAction.TYPING)),
        )
        application.bot_data.fill(services)
        stale = await self.training.interrupt_stale()
        if stale:
            log.warning("marked %d training run(s) left running by a crash as interrupted", stale)
        self.scheduler = make_scheduler()
        register(self.scheduler, FINETUNE_JOB, self.scheduled_retrain,
                 finetune_trigger(s.finetune_cron, s.finetune_interval_s))
        # Requests are this process's only while it says so: a heartbeat every third of the lease, and a look for
        # what a replica that died left behind once per lease.
        register(self.scheduler, LEASE_JOB, lyrics.renew_leases, IntervalTrigger(seconds=s.request_lease_s / 3))
        register(self.scheduler, TAKE_OVER_JOB, functools.partial(self.take_over, application),
                 IntervalTrigger(seconds=s.request_lease_s))
        self.scheduler.start()
        log.info("the default style serves %s (%s generation)", default_version, s.generation_backend)
        await catalogue.set_menus(application, s)
        # Read what a crash left unanswered now, before polling starts: a request that arrives once the bot
        # is up is answered by its own handler, never also by this catch-up.
        unfinished = await lyrics.unfinished(everyone=not self.replica)
        # Not application.create_task: the application is not running yet during post_init.
        self.leftovers = asyncio.create_task(answer_unfinished(application.bot, lyrics, unfinished),
                                             name="answer-unfinished")

    def stop_for_lost_lock(self, application: Application, why: str) -> None:  # type: ignore[type-arg]
        """The instance lock ended with its connection and could not be taken again (another bot holds it, or
        the database is out of reach): stop cleanly, as a second bot refuses to start beside a first one.
        ``close`` then ends ``run_polling`` with the reason."""
        log.error("lost the instance lock (%s): stopping", why)
        self.lost_lock = why
        application.stop_running()

    async def take_over(self, application: Application) -> None:  # type: ignore[type-arg]
        """Answer what a process that died left (its leases ran out): a replica that crashed while others live."""
        lyrics = application.bot_data.services.lyrics
        records = await lyrics.unfinished()
        if records:
            log.warning("taking over %d request(s) whose bot stopped answering", len(records))
            await answer_unfinished(application.bot, lyrics, records)

    async def scheduled_retrain(self) -> None:
        """The nightly job: fine-tune when there is new corpus text, otherwise do nothing."""
        assert self.training is not None
        outcome = await self.training.retrain(trigger="schedule")
        log.info("scheduled fine-tuning: %s", outcome if isinstance(outcome, str) else outcome.status)

    async def stop(self, application: Application) -> None:  # type: ignore[type-arg]
        if self.training is not None:
            # A fine-tune would take minutes: end it now and record it as interrupted.
            await self.training.shutdown(timeout=10.0)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leftovers is not None and not self.leftovers.done():
            try:
                await asyncio.wait_for(self.leftovers, timeout=self.settings.request_timeout_s)
            except Exception:
                log.warning("left-over requests were not all answered before shutdown", exc_info=True)
        if self.backend is not None:
            await self.backend.close()
        if self.singer is not None:
            await self.singer.close()

    async def close(self, application: Application) -> None:  # type: ignore[type-arg]
        """Last hook, reached even when start-up failed half-way (then ``stop`` never ran)."""
        if self.backend is not None:
            await self.backend.close()
        await self.instance.release()
        if self.engine is not None:
            await self.engine.dispose()
        if self.lost_lock is not None:  # a non-zero exit (``lyricbot run``), not a quiet stop
            raise InstanceLocked(f"stopped: lost the lock on this PostgreSQL database ({self.lost_lock})")


def runtime_of(application: Application) -> Runtime:  # type: ignore[type-arg]
    """The ``Runtime`` whose hooks run ``application``: its engine, worker, scheduler and left-over task, for
    operators' tools and fault tests."""
    runtime = getattr(application.post_init, "__self__", None)
    if not isinstance(runtime, Runtime):
        raise TypeError("not an application made by build_application")
    return runtime


def build_application(settings: Settings, replica: bool = False) -> Application:  # type: ignore[type-arg]
    """The bot, wired: handlers, rate limiter, lifecycle hooks. Nothing runs until it is started.

    ``replica``: a webhook bot that may share its database with others (no instance lock).
    """
    if not settings.token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    # httpx logs every request URL at INFO, and the URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx").addFilter(RedactTokens(Redactor(settings.secrets)))
    runtime = Runtime(settings, replica)
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.telegram_base_url)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(runtime.open)
        .post_stop(runtime.stop)
        .post_shutdown(runtime.close)
        .context_types(CONTEXT_TYPES)
    )
    if settings.telegram_base_file_url:
        builder = builder.base_file_url(settings.telegram_base_file_url)
    application = builder.build()
    # PTB's webhook server reads a body before checking the secret; this one does not (see bot.telegram.webhook).
    application.updater = SafeUpdater(application.bot, application.update_queue)
    routes.register(application)
    return application


@contextlib.asynccontextmanager
async def running(
    application: Application,  # type: ignore[type-arg]
    poll_timeout: float = 1.0,
    webhook: Webhook | None = None,
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Start polling (or serve ``webhook``) inside an existing event loop, in the order ``run_polling``
    uses, and stop likewise.

    The sandbox and the tests use this; production uses ``run_polling`` or ``run_webhook``.
    """
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        assert application.updater is not None
        if webhook is None:
            await application.updater.start_polling(
                poll_interval=0.0, timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES
            )
        else:
            await application.updater.start_webhook(
                listen=webhook.listen, port=webhook.port, url_path=webhook.path, webhook_url=webhook.url,
                secret_token=webhook.secret, allowed_updates=Update.ALL_TYPES,
            )
        await application.start()
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            if application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


def run(settings: Settings, webhook: Webhook | None = None) -> None:
    """Poll Telegram, or serve the webhook, until interrupted."""
    if webhook is None:
        build_application(settings).run_polling(allowed_updates=Update.ALL_TYPES)
        return
    log.info("serving the webhook on %s:%d/%s", webhook.listen, webhook.port, webhook.path)
    build_application(settings, replica=True).run_webhook(
        listen=webhook.listen, port=webhook.port, url_path=webhook.path, webhook_url=webhook.url,
        secret_token=webhook.secret, allowed_updates=Update.ALL_TYPES,
    )
