"""The sandbox: the real bot without Telegram, through a local Bot API server.

A product feature, not only test support: ``make run`` (``lyricbot run``) without a token, and ``lyricbot
sandbox``, chat in the terminal with the real bot (the same ``Application``, worker and model as in
production, with a database of its own) through this server; the tests and benchmarks drive the bot through the
same server, so what the sandbox shows is what they check. It lives apart from the bot's runtime: only the
command line imports it, for the sandbox.

- ``protocol``: the Bot API's requests decoded and checked, refused in Telegram's words.
- ``server``: ``FakeTelegram``, the HTTP server, its update queue, the Bot API methods and webhook delivery.
- ``people``: the simulated people and chats: what they send the bot, and what they saw it send.
- ``home``: the sandbox's own database and model directory; production's are never opened, only read for the
  version to serve.
- ``console``: the terminal's input and output, neither waiting for the other.
- ``terminal``: the terminal chat, ``run_sandbox``.
"""

from bot.sandbox.protocol import TelegramApiError
from bot.sandbox.server import FakeTelegram
from bot.sandbox.terminal import run_sandbox

__all__ = ["FakeTelegram", "TelegramApiError", "run_sandbox"]
