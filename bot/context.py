"""The application's shared data, typed: what handlers reach through ``context.bot_data``.

PTB builds one ``BotData`` per application (``ContextTypes(bot_data=BotData)``); ``Runtime.open`` fills
it in ``post_init``, before the first update, so a handler that finds a part missing is a bug, said loud.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from telegram.ext import CallbackContext, ContextTypes, ExtBot

if TYPE_CHECKING:
    from bot.app import Runtime
    from bot.handlers import BotServices
    from bot.services.training import TrainingService


class BotData:
    def __init__(self) -> None:
        self._services: BotServices | None = None
        self._training: TrainingService | None = None
        self._runtime: Runtime | None = None

    def fill(self, services: BotServices, training: TrainingService, runtime: Runtime) -> None:
        self._services, self._training, self._runtime = services, training, runtime

    @property
    def services(self) -> BotServices:
        return _ready(self._services, "services")

    @property
    def training(self) -> TrainingService:
        return _ready(self._training, "training")

    @property
    def runtime(self) -> Runtime:
        return _ready(self._runtime, "runtime")


T = TypeVar("T")


def _ready(part: T | None, name: str) -> T:
    if part is None:
        raise RuntimeError(f"bot_data.{name} is used before the application started")
    return part


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
CONTEXT_TYPES = ContextTypes(bot_data=BotData)
