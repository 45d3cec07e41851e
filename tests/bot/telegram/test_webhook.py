"""Webhook mode and replicas: the real Application served as a webhook, the local Bot API server POSTing
updates to it as Telegram does; two replicas on one database; refusal without a secret, and no secret in
the logs."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from telegram.ext import Application

from bot.app import Runtime, runtime_of
from bot.cli import main
from bot.ops.logs import configure_logging
from bot.sandbox import FakeTelegram
from bot.settings import Settings
from tests.helpers.bot import SECRET, make_settings, replica
from tests.helpers.training import FAST, NEW_SONG

PERSON = 77
HEADER = "X-Telegram-Bot-Api-Secret-Token"








@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``configure_logging`` (and ``main``) reconfigure the process's logging and excepthooks: put them back."""
    root, httpx = logging.getLogger(), logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, httpx.filters[:], httpx.level, sys.excepthook, threading.excepthook)
    yield
    root.handlers[:], httpx.filters[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    httpx.setLevel(saved[3])
    sys.excepthook, threading.excepthook = saved[4], saved[5]


def test_updates_with_the_secret_are_answered_and_forged_ones_refused(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, webhook_secret=SECRET)
            async with replica(settings):
                assert fake.webhook["secret_token"] == SECRET  # PTB registered the secret with Telegram
                fake.send_text(PERSON, PERSON, "/start")
                # A forger who found the URL: a wrong secret, or none at all.
                assert await fake.deliver_webhook({HEADER: "not-the-secret-0123456789"}) == [403]
                assert await fake.deliver_webhook({}) == [403]
                await asyncio.sleep(1.0)
                assert fake.sent(PERSON) == []  # neither was processed
                # Telegram itself, with the secret: answered, once.
                assert await fake.deliver_webhook() == [200]
                await fake.wait_for_sent(PERSON, 1, timeout=120)
                await asyncio.sleep(0.5)
                assert len(fake.sent(PERSON)) == 1

    asyncio.run(scenario())


async def run_rows(app: Application) -> list[Any]:  # type: ignore[type-arg]
    """The ``training_runs`` table, read through the bot's own database connection (SQLite or PostgreSQL)."""
    sessions = app.bot_data.services.training.sessions
    async with sessions() as session:
        return list((await session.execute(text("SELECT trigger, status FROM training_runs"))).all())


def test_two_replicas_share_a_database_and_fine_tune_once(
    tmp_path: Path, trained_store: tuple[Path, Path], url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Both start on one database; the schedule fires in both at the same moment; one run happens."""
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")  # runs write to MODEL_DIR; the replicas share this one

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, (tmp_path / "models", corpus), fake, database_url=url,
                                     webhook_secret=SECRET, **FAST)
            async with replica(settings) as first, replica(settings) as second:
                await first.bot_data.services.training.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(),
                                                                    added_by=None)
                runtimes: list[Runtime] = [runtime_of(first), runtime_of(second)]
                with caplog.at_level(logging.INFO):
                    await asyncio.gather(*(r.scheduled_retrain() for r in runtimes))
                rows = await run_rows(first)
                assert len(rows) == 1 and rows[0][0] == "schedule" and rows[0][1] != "running", rows
                assert await run_rows(second) == rows
                assert "a fine-tune is running in another bot on this database" in caplog.text
                assert caplog.text.count("scheduled fine-tuning: running") == 1  # the replica that skipped

    asyncio.run(scenario())


def test_webhook_mode_refuses_to_start_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("WEBHOOK_SECRET", "WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-token-for-the-refusal")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "models"))
    assert main(["run", "--webhook", "https://bot.example.com/hook"]) == 2
    err = capsys.readouterr().err
    assert "WEBHOOK_SECRET is not set" in err
    assert not (tmp_path / "models").exists()  # refused before doing anything: no model installed
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.com/hook")  # the setting alone means webhook mode too
    assert main(["run"]) == 2
    assert "WEBHOOK_SECRET is not set" in capsys.readouterr().err


def test_a_guessable_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, webhook_secret="short")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, webhook_secret="has spaces and is long enough")  # type: ignore[call-arg]


def test_the_secret_never_reaches_the_log(
    tmp_path: Path, trained_store: tuple[Path, Path], restore_logging: None
) -> None:
    """At DEBUG, PTB logs every Bot API call with its parameters: setWebhook's include the secret."""
    log_file = tmp_path / "bot.log"

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, webhook_secret=SECRET, log_level="DEBUG")
            configure_logging("DEBUG", log_file, secrets=settings.secrets)
            async with replica(settings):
                fake.send_text(PERSON, PERSON, "/start")
                assert await fake.deliver_webhook({HEADER: SECRET[:-1]}) == [403]
                assert await fake.deliver_webhook() == [200]
                await fake.wait_for_sent(PERSON, 1, timeout=120)

    asyncio.run(scenario())
    for handler in logging.getLogger().handlers:
        handler.flush()
    logged = log_file.read_text(encoding="utf-8")
    assert "setWebhook" in logged  # the call whose parameters carry the secret was logged...
    assert SECRET not in logged  # ...with the secret redacted


# --- what reaches the webhook before the secret is known ----------------------------------------------------

CEILING_S = 60.0  # a server that waits for a body nobody sends would wait forever: this ends such a test


async def response_to_headers(url: str, headers: dict[str, str], path: str | None = None) -> int | None:
    """Send a POST's headers (a Content-Length among them) and no body; the status the server answers with
    without waiting for that body, or None if it closed the connection instead. A server that reads the body
    before deciding times out here."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    try:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"POST {path or where.path} HTTP/1.1\r\nHost: {where.netloc}\r\n{head}\r\n".encode("latin-1"))
        await writer.drain()
        try:
            status_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), CEILING_S)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return int(status_line.split()[1])
    finally:
        writer.close()


async def chunked_bytes_taken(url: str, headers: dict[str, str], total: int) -> int:
    """POST ``total`` bytes as a chunked body (no Content-Length to refuse up front); how many were sent before
    the server cut the connection, or ``total`` if it took them all."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    sent, piece = 0, b"x" * 65536
    try:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"POST {where.path} HTTP/1.1\r\nHost: {where.netloc}\r\n{head}"
                     "Transfer-Encoding: chunked\r\n\r\n".encode("latin-1"))
        while sent < total:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await asyncio.wait_for(writer.drain(), CEILING_S)
            sent += len(piece)
            if reader.at_eof():
                break
        writer.write(b"0\r\n\r\n")
        await asyncio.wait_for(writer.drain(), CEILING_S)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


def test_a_forged_request_is_refused_on_its_headers(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """A wrong or missing secret, or another path: refused before the body is read, which here is never sent."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, webhook_secret=SECRET)
            async with replica(settings):
                url = fake.webhook["url"]
                json_body = {"Content-Type": "application/json", "Content-Length": "1000"}
                assert await response_to_headers(url, {**json_body, HEADER: "not-the-secret-0123456789"}) == 403
                assert await response_to_headers(url, {**json_body, HEADER: SECRET[:-1]}) == 403
                assert await response_to_headers(url, json_body) == 403
                assert await response_to_headers(url, {**json_body, HEADER: SECRET}, path="/elsewhere") == 404
                fake.send_text(PERSON, PERSON, "/start")  # Telegram itself is still served
                assert await fake.deliver_webhook() == [200]
                await fake.wait_for_sent(PERSON, 1, timeout=CEILING_S)

    asyncio.run(scenario())


def test_an_oversized_body_is_refused_without_being_read(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """Even with the secret: a Content-Length past the cap is refused before the body is sent, and a chunked body
    is cut off at the cap, not read on (PTB's own server reads up to 100 MB of either)."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, webhook_secret=SECRET)
            async with replica(settings):
                url = fake.webhook["url"]
                good = {"Content-Type": "application/json", HEADER: SECRET}
                big = str(90 * 1024 * 1024)
                assert await response_to_headers(url, {**good, "Content-Length": big}) in (400, 413, None)
                total = 64 * 1024 * 1024
                taken = await chunked_bytes_taken(url, good, total)
                assert taken < total
                fake.send_text(PERSON, PERSON, "/start")  # and an update, whose body is small, still works
                assert await fake.deliver_webhook() == [200]
                await fake.wait_for_sent(PERSON, 1, timeout=CEILING_S)

    asyncio.run(scenario())
