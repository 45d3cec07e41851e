"""The bot end to end in tests: the real Application against the local Bot API server with a real SQLite file,
and what a person does there (ask, press, type inline), waiting on conditions with generous ceilings."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import Webhook, build_application, running
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.domain import DEFAULT_STYLE
from bot.sandbox import FakeTelegram
from bot.services.styles import StyleService
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from tests.helpers.models import LYRICS

CORPUS = LYRICS + "窗外的麻雀 在电线杆上多嘴\n你说这一句 很有夏天的感觉\n" * 6


def make_settings(tmp_path: Path, trained_store: tuple[Path, Path], fake: FakeTelegram, **overrides: Any) -> Settings:
    model_dir, corpus = trained_store
    values: dict[str, Any] = {
        "telegram_bot_token": fake.token,
        "telegram_base_url": fake.base_url,
        "telegram_base_file_url": fake.base_file_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "model_dir": model_dir,
        "corpus_path": corpus,
        "device": "cpu",
        "candidates": 2,
        "default_length": 40,
        "default_temperature": 0.8,  # apart from the 0.5 and 1.3 the settings tests set, to see each change
        "min_length": 10,
        "rate_limit_per_minute": 1000,
        "copy_threshold": 40,  # the tiny model memorises its corpus; the copy filter has its own tests
        "title_candidates": 0,  # titles have their own tests (test_titles.py); others read the lyric's first words
        # A generous ceiling, not Telegram's 8 s: a busy test machine must not turn answers into "took too long".
        "inline_timeout_s": 120.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def trained_version(model_dir: Path) -> str | None:
    """The model ``lyricbot train`` left in ``model_dir`` (the session's tiny one), None where there is none."""
    trained = re.compile(r"v\d{8}-\d{6}")  # ModelStore.train_first's names (a fine-tune's end in -r<run>)
    versions = sorted(p.name for p in model_dir.glob("v*") if trained.fullmatch(p.name) and (p / "meta.json").is_file())
    return versions[0] if versions else None


async def serve_trained(settings: Settings) -> None:
    """What ``lyricbot train`` did before this bot's first start: the default style serves the trained model
    (unless the database already serves one, as on a bot's second start)."""
    await serve_trained_at(settings.database_url, settings.model_dir)


async def serve_trained_at(database_url: str, model_dir: Path) -> None:
    version = trained_version(model_dir)
    if version is None:  # a fresh machine: the bot serves the shipped base itself
        return
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        styles = StyleService(make_sessionmaker(engine), ModelStore(model_dir, "cpu"))
        if await styles.find(DEFAULT_STYLE) is None:
            await styles.serve(DEFAULT_STYLE, version, expected_current=None)
    finally:
        await engine.dispose()


def served_in(database: Path, style: str = DEFAULT_STYLE) -> str | None:
    """The version ``style`` serves, read from the SQLite file as an operator would (its row is the pointer)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT active_version FROM styles WHERE name = ?", (style,)).fetchone()
    return row[0] if row else None


@dataclass
class Harness:
    fake: FakeTelegram
    app: Application  # type: ignore[type-arg]
    settings: Settings
    db_path: Path

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the real SQLite file, as an operator would."""
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()

    def served(self, style: str = DEFAULT_STYLE) -> str | None:
        return served_in(self.db_path, style)


@asynccontextmanager
async def bot_running(
    tmp_path: Path, trained_store: tuple[Path, Path], fake: FakeTelegram | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    own_fake = fake is None
    fake = fake or FakeTelegram()
    if own_fake:
        await fake.start()
    try:
        settings = make_settings(tmp_path, trained_store, fake, **overrides)
        await serve_trained(settings)
        async with running(build_application(settings)) as app:
            yield Harness(fake, app, settings, tmp_path / "bot.db")
    finally:
        if own_fake:
            await fake.stop()


USER, GROUP = 501, -100777


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def ask(h: Harness, text: str, chat: int = USER, user: int = USER, count: int = 1) -> dict[str, Any]:
    before = len(h.fake.sent(chat))
    h.fake.send_text(user, chat, text)
    sent = await h.fake.wait_for_sent(chat, before + count, timeout=120)
    return sent[-1]


async def quiet(h: Harness, chat: int, seconds: float = 1.0) -> int:
    """How many messages the chat got while we waited: for 'nothing is answered' checks."""
    before = len(h.fake.sent(chat))
    await asyncio.sleep(seconds)
    return len(h.fake.sent(chat)) - before


async def eventually(check: Any, timeout: float = 90.0) -> None:
    """Wait for a condition that the bot makes true right after sending (its bookkeeping)."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


def buttons(message: dict[str, Any]) -> list[str]:
    """The callback data of the message's buttons ("send to a chat" has none: it opens an inline query)."""
    return [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row
            if "callback_data" in b]  # fmt: skip


INLINE_USER = 601


async def inline(h: Harness, text: str, user: int = INLINE_USER) -> tuple[str, dict[str, Any]]:
    query_id = h.fake.send_inline_query(user, text)
    return query_id, await h.fake.wait_for_inline_answer(query_id, timeout=90)


SECRET = "s3cret-Webhook_token-0123456789"


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """One webhook bot, started as ``lyricbot run --webhook`` starts it (a replica: no instance lock)."""
    await serve_trained(settings)
    async with running(build_application(settings, replica=True), webhook=webhook_for(settings)) as app:
        yield app


def webhook_for(settings: Settings) -> Webhook:
    """Listens on a free local port; Telegram (the fake) is told to POST to that same address."""
    port = free_port()
    return Webhook.from_settings(settings.model_copy(update={"webhook_port": port}),
                                 f"http://127.0.0.1:{port}/hook")


def free_port() -> int:
    """A port nobody listens on now, on 127.0.0.1 only."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
