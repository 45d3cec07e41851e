"""Logging that never shows the bot token, and a last line of defence for what escapes logging.

The token travels in every request URL (``/bot<TOKEN>/sendMessage``), and exceptions carry it:
python-telegram-bot's ``InvalidToken`` quotes it whole. So every log record, every traceback printed by
an uncaught exception (in the main thread or any other) and every error line of the CLI passes through
``redact``, which removes both the configured token and anything shaped like one.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

TOKEN_PATTERN = re.compile(r"bot\d+:[\w-]+|\d{6,}:[\w-]{20,}")
REDACTED = "<redacted-token>"
# What Alembic says at INFO on every connection it is handed (which dialect, which DDL mode) and while it sets
# up its plugins: nothing about the database. Its "Running upgrade" lines do say something, and stay.
ALEMBIC_CHATTER = ("Context impl ", "Will assume ")


class Redactor:
    """Replaces the known secrets and anything shaped like a bot token."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a token that contains another secret is removed whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Bot tokens travel in request URLs; whatever logs a URL or an exception must not leak one."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class DropAlembicChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ALEMBIC_CHATTER)


def configure_logging(
    level: str, file: Path | None = None, secrets: Iterable[str | None] = (), quiet_migrations: bool = False
) -> Redactor:
    """Root logging with token redaction on every handler; also installs ``install_excepthooks``.

    ``quiet_migrations``: Alembic only warns (for commands that print their answer in the terminal: the
    migrations they run on the way are not it).
    """
    redact = Redactor(secrets)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        filename=file, force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens(redact))
    httpx = logging.getLogger("httpx")
    httpx.setLevel(logging.WARNING)  # it logs every URL, token included
    httpx.addFilter(RedactTokens(redact))
    logging.getLogger("alembic").setLevel(logging.WARNING if quiet_migrations else logging.NOTSET)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, DropAlembicChatter) for f in migration.filters):
        migration.addFilter(DropAlembicChatter())
    install_excepthooks(redact)
    return redact


def format_exception(redact: Redactor, exc: BaseException) -> str:
    return redact("".join(traceback.format_exception(exc)))


def install_excepthooks(redact: Redactor) -> None:
    """Uncaught exceptions print a redacted traceback, in the main thread and in every other thread."""

    def main_hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        sys.stderr.write(f"Exception in thread {name}:\n" + format_exception(redact, args.exc_value))

    sys.excepthook = main_hook
    threading.excepthook = thread_hook
