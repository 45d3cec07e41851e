"""``lyricbot run|train|db|sandbox|worker|...``: the bot's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.settings import Settings
from bot.telegram.i18n import LANGUAGES

log = logging.getLogger("lyricbot")
T = TypeVar("T")
ADMIN_COMMANDS = ("corpus", "retrain", "models", "rollback")  # one-shot commands that answer in the terminal


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import Webhook, run

    if args.sandbox:
        return cmd_sandbox(settings, args)
    if not settings.token:
        if args.webhook:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set: webhook mode needs the bot's token")
        print("TELEGRAM_BOT_TOKEN is not set: starting the local sandbox instead.", file=sys.stderr)
        return cmd_sandbox(settings, args)
    # Checked before anything else happens: no secret, no webhook (a ValueError: exit status 2).
    webhook = Webhook.from_settings(settings, args.webhook) if args.webhook or settings.webhook_url else None
    run(settings, webhook)  # on the first start it serves the shipped base: no first-run training
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from charrnn.deadline import Deadline

    # Started before torch is imported: --minutes is for the whole command, loading and saving included.
    deadline = Deadline.after(60 * args.minutes) if args.minutes > 0 else None
    from bot.serving.model_store import ModelStore

    store = ModelStore(settings.model_dir, settings.device)
    from charrnn.cli_options import ProgressBar
    from charrnn.train_config import TrainConfig

    if args.style:
        from bot.styles_cli import check_new_style

        check_new_style(settings, args.style)  # before minutes of training, not after
    corpus = Path(args.corpus) if args.corpus else settings.corpus_path
    version = store.train_first(
        corpus, args.minutes, callback=ProgressBar(TrainConfig()), from_base=not args.from_scratch,
        prefix=f"{args.style.strip().lower()}-v" if args.style else "v", deadline=deadline,
    )
    from bot.styles_cli import register_style, serve_in_default

    if args.style:
        name = register_style(settings, args.style, args.title, version, corpus)
        print(f"trained model {version} in {settings.model_dir}; style {name} now serves it")
        return 0
    serve_in_default(settings, version)
    print(f"trained model {version} in {settings.model_dir}; the default style now serves it")
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import migrate
    from bot.db.engine import make_engine

    announce(settings, args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(engine, args.revision or "head")
            elif args.action == "downgrade":
                try:
                    await migrate.downgrade(engine, args.revision or "-1")
                except RuntimeError as exc:  # a downgrade that would lose data refuses, and says what to do
                    print(f"not downgraded: {exc}", file=sys.stderr)
                    print(f"database revision: {await migrate.current(engine)}", file=sys.stderr)
                    return 2
            print(f"database revision: {await migrate.current(engine)}")
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(go())


def read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, refused (``CorpusError``) past ``limit`` without reading further: ``/dev/zero``, a pipe
    or a huge file would otherwise be read whole into memory before the size check."""
    from charrnn.data import CorpusError

    with path.open("rb") as file:
        raw = file.read(limit + 1)
    if len(raw) > limit:
        raise CorpusError(f"{path.name} is larger than the limit of {limit:,} bytes (MAX_CORPUS_BYTES); not added")
    return raw


async def unless_terminated(work: Coroutine[Any, Any, T]) -> T | None:
    """``work``'s result, or None when SIGTERM cancelled it first, its clean-up done (a fine-tune kills its
    trainer and records its run interrupted). SIGTERM's default would end this process on the spot: the
    trainer would train on as an orphan, and the run would stay ``running``."""
    task = asyncio.ensure_future(work)
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated and task.cancelled():
            return None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def style_option(args: argparse.Namespace) -> str:
    """``--style NAME`` as the services take it (the default style without one)."""
    from bot.domain import DEFAULT_STYLE

    return (getattr(args, "style", None) or "").strip().lower() or DEFAULT_STYLE


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    """``corpus add``, ``retrain``, ``models``, ``rollback``: the admin commands, for the server's shell."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade
    from bot.domain import DEFAULT_STYLE
    from bot.ops.instance import FinetuneLock
    from bot.services.run_reports import RunReport, format_report
    from bot.services.styles import StyleService
    from bot.services.training import TrainingService
    from bot.serving.model_store import ModelStore

    announce(settings, args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            sessions = make_sessionmaker(engine)
            styles = StyleService(sessions, ModelStore(settings.model_dir, settings.device))
            if args.command in ("corpus", "retrain"):  # they need a model: the bot's first start would give one
                await styles.ensure_default()
            else:  # a look, or a rollback: an older model directory's ACTIVE is adopted, nothing is installed
                await styles.adopt_default()
            lock = FinetuneLock(settings.database_url, settings.model_dir)
            service = TrainingService(settings, sessions, styles, exclusive=lambda: lock.try_hold(engine))
            if args.command == "corpus":
                path = Path(args.file)
                raw = read_capped(path, settings.max_corpus_bytes)
                added = await service.corpus.add_document(name=path.name, raw=raw, added_by=None,
                                                          style=style_option(args))
                state = "already present" if added.duplicate else "added"
                print(f"document {added.document_id} {state}: {added.chars:,} characters, "
                      f"{len(added.new_chars)} new to the model's vocabulary")
            elif args.command == "retrain":
                from bot.ops.instance import InstanceLock

                instance = InstanceLock(settings.database_url, settings.model_dir)
                await instance.acquire(engine)  # a running bot trains itself: /retrain in Telegram
                try:
                    await service.interrupt_stale()
                    outcome = await unless_terminated(service.retrain(trigger="cli", style=style_option(args)))
                finally:
                    await instance.release()
                if outcome is None:
                    print("stopped by SIGTERM: the trainer was ended and the run recorded as interrupted",
                          file=sys.stderr)
                    return 128 + signal.SIGTERM
                print(format_report(outcome) if isinstance(outcome, RunReport)
                      else "no new corpus text since the active model was trained" if outcome == "nothing_new"
                      else "a training run is already going")
            elif args.command in ("models", "rollback"):
                if args.command == "models":
                    lines = await styles.describe_versions(args.style or DEFAULT_STYLE)
                    print("\n".join(lines) or "no model versions recorded yet")
                    print(await styles.summary())
                elif args.version and await styles.find(args.version) is not None:  # rollback STYLE [VERSION]
                    print(f"now serving {await styles.rollback(args.version, args.style_version)}")
                else:
                    print(f"now serving {await styles.rollback(DEFAULT_STYLE, args.version)}")
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(go())


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    """The sandbox chat; ``settings`` stay production's, of which it only reads the version its default style serves."""
    from bot.sandbox import run_sandbox

    asyncio.run(run_sandbox(settings, lang=args.lang))
    return 0


def database_shown(url: str) -> str:
    """The database URL without its password, for a terminal."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy reads: nothing to show of it
        return "(an unreadable DATABASE_URL)"


def announce(settings: Settings, args: argparse.Namespace) -> None:
    """Say which database and models a command works on: the sandbox keeps its own (``--sandbox``)."""
    whose = "the sandbox's" if args.sandbox else f"lyricbot --sandbox {args.command} for the sandbox's"
    print(f"lyricbot {args.command}: database {database_shown(settings.database_url)}, models {settings.model_dir} "
          f"({whose})", file=sys.stderr)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.worker import run_worker

    run_worker(settings, args.queue, args.concurrency, settings.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lyricbot", description="A Telegram bot that writes song lyrics.")
    parser.add_argument("--sandbox", action="store_true",
                        help="work on the sandbox's database and models (var/sandbox.db, var/sandbox-models), "
                             "not DATABASE_URL and MODEL_DIR; with run: the sandbox even with a token")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, load the model, poll Telegram (the sandbox without a token)")
    run.add_argument("--webhook", metavar="URL",
                     help="receive updates at this public URL instead of polling (default: WEBHOOK_URL; "
                          "needs WEBHOOK_SECRET); several replicas may then share one database")
    run.add_argument("--lang", choices=LANGUAGES, default="zh", help="the sandbox person's language (default zh)")
    train = sub.add_parser("train", help="train a model on a corpus into MODEL_DIR (from the base) and serve it")
    train.add_argument("--corpus", help="UTF-8 text file (default: CORPUS_PATH or the demo corpus)")
    train.add_argument("--minutes", type=float, default=10.0)
    train.add_argument("--from-scratch", action="store_true",
                       help="random weights instead of transfer from the pretrained base model")
    train.add_argument("--style", metavar="NAME",
                       help="make a new named style of it (served beside the others) instead of the default style's")
    train.add_argument("--title", help="the style's title on the /style buttons (default: its name)")
    db = sub.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    sandbox = sub.add_parser("sandbox", help="chat with the real bot through a local Bot API server, in this terminal")
    sandbox.add_argument("--lang", choices=LANGUAGES, default="zh", help="the language you speak there (default zh)")
    corpus = sub.add_parser("corpus", help="add a UTF-8 text file to the corpus")
    corpus.add_argument("action", choices=["add"])
    corpus.add_argument("file")
    corpus.add_argument("--style", help="the style this text trains (default: the default style)")
    retrain = sub.add_parser("retrain", help="fine-tune on new corpus text now (promoted only if measurably better)")
    retrain.add_argument("--style", help="fine-tune this style (default: the default style)")
    models = sub.add_parser("models", help="model versions with held-out perplexity and ratings")
    models.add_argument("style", nargs="?", help="a style's versions (default: the default style's)")
    rollback = sub.add_parser("rollback", help="serve the previous (or the named) model version (of a style)")
    rollback.add_argument("version", nargs="?", help="a version of the default style, or a style's name")
    rollback.add_argument("style_version", nargs="?", help="after a style's name: its version to serve")
    worker = sub.add_parser("worker", help="a Celery worker: generation for bots with GENERATION_BACKEND=celery, "
                                           "or fine-tuning (--queue training)")
    worker.add_argument("--queue", choices=["generation", "training"], default="generation")
    worker.add_argument("--concurrency", type=int, help="generation tasks in one batch (default WORKER_CONCURRENCY)")
    return parser


COMMANDS = {
    "run": cmd_run, "train": cmd_train, "db": cmd_db, "sandbox": cmd_sandbox,
    "corpus": cmd_admin, "retrain": cmd_admin, "models": cmd_admin, "rollback": cmd_admin, "worker": cmd_worker,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: bad configuration: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    from telegram.error import InvalidToken

    from bot.ops.instance import InstanceLocked
    from bot.ops.logs import configure_logging

    chat_in_terminal = args.command == "sandbox" or (args.command == "run" and (args.sandbox or not settings.token))
    # In the sandbox the terminal is the chat: logs go to a file instead. One-shot commands print their answer
    # to the terminal; the migrations they run on the way are for the log, not for it.
    redact = configure_logging(
        settings.log_level, Path("var/sandbox.log") if chat_in_terminal else None, secrets=settings.secrets,
        quiet_migrations=args.command in ADMIN_COMMANDS,
    )
    try:
        if args.sandbox and not chat_in_terminal:
            if args.command == "worker":
                raise ValueError("the sandbox generates in its own process: it has no workers")
            from bot.sandbox.home import for_commands

            settings = for_commands(settings, seed=args.command != "db")
        return COMMANDS[args.command](settings, args)
    except InvalidToken:  # its message quotes the token whole
        log.error("Telegram rejected the bot token")
        print("error: Telegram rejected the bot token; check TELEGRAM_BOT_TOKEN (from @BotFather)", file=sys.stderr)
        return 2
    except InstanceLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, LookupError, ValueError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: the traceback goes to the log (redacted there), one line here
        log.critical("lyricbot %s failed", args.command, exc_info=exc)
        print(f"error: lyricbot {args.command} failed: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1
