"""Webhook mode on the local Bot API server: what setWebhook registered, and delivery of the queued updates by POST,
as Telegram does (an update leaves the queue only once the bot answered 200)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.sandbox.protocol import JSONDict, bad


class Webhooks:
    """setWebhook, deleteWebhook, getWebhookInfo and ``deliver_webhook``; mixed into ``FakeTelegram``."""

    webhook: JSONDict
    if TYPE_CHECKING:
        _queue: list[Any]  # the server's queued updates

    def _m_setWebhook(self, p: JSONDict) -> bool:
        """Records where to deliver; unlike Telegram it accepts http:// URLs, for tests on 127.0.0.1."""
        url, secret = str(p.get("url", "")), p.get("secret_token")
        if not re.match(r"https?://[^/]+", url):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad("bad webhook: secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self.webhook = {"url": url} | ({"secret_token": str(secret)} if secret is not None else {})
        return True

    def _m_deleteWebhook(self, p: JSONDict) -> bool:
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self.webhook = {}
        return True

    def _m_getWebhookInfo(self, p: JSONDict) -> JSONDict:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._queue)}  # fmt: skip

    async def deliver_webhook(self, headers: dict[str, str] | None = None) -> list[int]:
        """POST each queued update to the registered webhook, as Telegram does; returns the HTTP statuses.

        ``headers`` None: the registered secret, as Telegram sends it; anything else plays a forger. An
        update leaves the queue only once the bot answered 200, as Telegram retries the others.
        """
        if not (url := self.webhook.get("url")):
            raise RuntimeError("no webhook is set")
        if headers is None:
            secret = self.webhook.get("secret_token")
            headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        statuses: list[int] = []
        async with aiohttp.ClientSession() as session:
            for queued in list(self._queue):
                async with session.post(url, json=queued.update, headers=headers) as response:
                    statuses.append(response.status)
                if response.status == 200:
                    self._queue.remove(queued)
        return statuses
