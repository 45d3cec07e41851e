"""The webhook's HTTP server: it checks the secret and caps the body before reading any of it.

PTB 22's own server (``telegram.ext._utils.webhookhandler``) reads a whole request body, up to tornado's
default of 100 MB, before it looks at the secret token, and then compares the token with ``!=``. So anyone who
finds the URL can make the bot hold 100 MB per connection they open, and can time the comparison. Here the
handler streams the body (tornado's ``@stream_request_body``), so ``prepare`` runs on the headers alone: a wrong
or missing secret is refused there, compared in constant time (``hmac.compare_digest``), and nothing of the body
is read. Bodies are capped at ``MAX_BODY_BYTES`` on the server itself, for every path: tornado refuses a longer
``Content-Length`` and cuts a chunked body that grows past it, closing the connection instead of reading on.
Unknown paths are refused on the headers too.

``SafeUpdater`` is PTB's ``Updater`` with this server behind ``start_webhook`` (polling stays PTB's own), so
``Application.run_webhook`` and ``bot.app.running`` work unchanged; ``build_application`` installs it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Bot, Update
from telegram.ext import ExtBot, Updater
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram POSTs one update per request: JSON of one message, query or member change. A text is at most
# 4096 characters and a caption 1024; with the message it replies to, its entities, a quote and a keyboard,
# that stays well under 256 KiB, even with every character escaped as \uXXXX (12 bytes for one outside the
# BMP). 1 MiB leaves room for what Telegram adds later; at setWebhook's 40 connections (the default
# max_connections), bodies can cost 40 MiB at most, and only Telegram, which knows the secret, gets that far.
MAX_BODY_BYTES = 1024 * 1024
# Connections that send their headers or body too slowly are closed (tornado waits an hour by default).
IDLE_TIMEOUT_S = 60.0


def _same_secret(given: str, secret: str) -> bool:
    # tornado decodes header bytes as Latin-1, so this gives back the bytes that were sent.
    return hmac.compare_digest(given.encode("latin-1", "replace"), secret.encode())


@tornado.web.stream_request_body
class UpdateHandler(tornado.web.RequestHandler):
    """Telegram's POSTs: the secret is checked on the headers; the body, at most ``MAX_BODY_BYTES``, is read after."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, bot: Bot, update_queue: asyncio.Queue[object], secret: str | None) -> None:
        self.bot, self.update_queue, self.secret = bot, update_queue, secret
        self.chunks: list[bytes] = []

    def prepare(self) -> None:
        """Only the headers have been read: refuse here, and the body never is."""
        if self.secret is not None and not _same_secret(self.request.headers.get(SECRET_HEADER, ""), self.secret):
            log.debug("webhook: refused a request without the right secret token from %s", self.request.remote_ip)
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        if self.request.headers.get("Content-Type") != "application/json":  # what PTB's server refuses, with 403
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)  # at most MAX_BODY_BYTES in all: the server stops reading past it

    async def post(self) -> None:
        try:
            update = Update.de_json(json.loads(b"".join(self.chunks)), self.bot)
        except Exception as exc:  # not JSON, or not an update: PTB's server answers 400 too
            log.warning("webhook: a body with the right secret is not an update: %s", type(exc).__name__)
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from exc
        log.debug("webhook: update %d", update.update_id)
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        await self.update_queue.put(update)


@tornado.web.stream_request_body
class NotHere(tornado.web.RequestHandler):
    """Any other path: 404 on the headers (tornado's own 404 handler would read the body first)."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(HTTPStatus.NOT_FOUND)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Not tornado's access log: a forger's requests would fill it with warnings.
    log.debug("webhook: %d %s %s", handler.get_status(), handler.request.method, handler.request.remote_ip)


def _value(option: Any) -> Any:
    """The value of one of PTB's ``DefaultValue`` placeholders (what ``run_webhook`` passes when not told)."""
    return getattr(option, "value", option)


class SafeUpdater(Updater):
    """PTB's Updater; ``start_webhook`` serves ``UpdateHandler`` on a plain-HTTP port behind a TLS proxy."""

    def __init__(self, bot: Bot, update_queue: asyncio.Queue[object]) -> None:
        super().__init__(bot=bot, update_queue=update_queue)
        self._server: HTTPServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None or super().running

    async def start_webhook(
        self,
        listen: Any = "127.0.0.1",
        port: Any = 80,
        url_path: str = "",
        cert: object = None,
        key: object = None,
        bootstrap_retries: int = 0,
        webhook_url: str | None = None,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix: object = None,
    ) -> asyncio.Queue[object]:
        """Listen, then register the webhook with Telegram (so the first POST finds the server up)."""
        if cert is not None or key is not None or unix is not None or bootstrap_retries:
            raise ValueError("the webhook serves plain HTTP on a TCP port, behind a proxy that terminates TLS; "
                             "cert, key, unix and bootstrap_retries are not supported")
        if self.running:
            raise RuntimeError("This Updater is already running!")
        listen, port = _value(listen), _value(port)
        path = "/" + url_path.lstrip("/")
        app = tornado.web.Application(
            [(rf"{re.escape(path)}/?", UpdateHandler,
              {"bot": self.bot, "update_queue": self.update_queue, "secret": secret_token})],
            default_handler_class=NotHere,
            log_function=_log_request,
        )
        server = HTTPServer(app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=IDLE_TIMEOUT_S,
                            body_timeout=IDLE_TIMEOUT_S)
        server.listen(port, address=listen)
        self._server = server
        try:
            await self.bot.set_webhook(
                url=webhook_url or f"http://{listen}:{port}{path}", allowed_updates=allowed_updates,
                drop_pending_updates=drop_pending_updates, ip_address=ip_address, max_connections=max_connections,
                secret_token=secret_token,
            )
        except BaseException:
            await self.stop()
            raise
        log.debug("webhook: serving %s on %s:%s", path, listen, port)
        return self.update_queue

    async def stop(self) -> None:
        """Stop serving (or polling: PTB's own)."""
        if self._server is None:
            await super().stop()
            return
        server, self._server = self._server, None
        server.stop()
        await server.close_all_connections()
