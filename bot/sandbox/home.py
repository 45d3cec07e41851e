"""Where the sandbox keeps its state: a database and a model directory of its own, never production's.

``DATABASE_URL`` and ``MODEL_DIR`` (in ``.env`` or the environment) name the real bot's database and models.
The sandbox plays Telegram with a person who does not exist, so it must never open that database (it would
answer real people's pending requests into the fake server and mark them failed) nor write into that model
directory (its instance lock, a fine-tune, a rollback). It keeps ``var/sandbox.db`` and ``var/sandbox-models``
(relative to the working directory, like the production defaults), whatever the settings say.

It still chats with the model production serves: the one thing it reads of production's is the version that
``MODEL_DIR``'s ``ACTIVE`` pointer names, which it copies into its own directory and serves (the shipped base when
production has none yet). A copy, not a link: whatever the sandbox then does to its model directory cannot reach
production's files. Copied once per version (versions are immutable directories), and each start serves
production's active version again, so a sandbox ``/rollback`` or fine-tune lasts until the sandbox is restarted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection

from bot.db.engine import make_engine
from bot.db.models import Base
from bot.serving.model_store import ModelStore
from bot.settings import Settings

SANDBOX_DB = "sqlite+aiosqlite:///./var/sandbox.db"
SANDBOX_MODELS = Path("var/sandbox-models")


def sandbox_settings(settings: Settings, **overrides: Any) -> Settings:
    """``settings`` pointed at the sandbox's own database and models, with nothing that reaches production's
    machines: generation runs in this process (Celery workers would load production's model directory) and
    updates come by polling the local server, never a webhook."""
    changes: dict[str, Any] = {"database_url": SANDBOX_DB, "model_dir": SANDBOX_MODELS,
                               "generation_backend": "local", "webhook_url": None, **overrides}  # fmt: skip
    return settings.model_copy(update=changes)


def for_commands(settings: Settings) -> Settings:
    """``lyricbot --sandbox corpus|models|retrain|rollback|db``: the sandbox's database and models. Its model
    directory is seeded as the sandbox seeds it when it has no model yet (a corpus needs one to check new
    characters against); otherwise left as it is, so a sandbox rollback stays."""
    if ModelStore(SANDBOX_MODELS, settings.device).active_version() is None:
        seed_model(settings.model_dir, settings.device)
    return sandbox_settings(settings)


def seed_model(production_dir: Path, device: str = "auto", sandbox_dir: Path = SANDBOX_MODELS) -> str:
    """Serve in the sandbox the version production serves (read from ``production_dir``, which is never
    written to); the shipped base when production has no model yet. Returns the version."""
    version = ModelStore(production_dir, device).active_version()
    store = ModelStore(sandbox_dir, device)
    if version is None or not (production_dir / version / "meta.json").is_file():
        return store.install_base()
    target = sandbox_dir / version
    if not (target / "meta.json").is_file():
        sandbox_dir.mkdir(parents=True, exist_ok=True)
        partial = sandbox_dir / f".{version}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            shutil.copytree(production_dir / version, partial)
            os.replace(partial, target)  # appears whole or not at all
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    store.activate(version)
    return version


async def last_update_id(database_url: str = SANDBOX_DB) -> int:
    """The largest Telegram update id the database holds (0 for none, or no tables yet).

    The bot keys what it stored by update id and takes an update it has seen as a repeat, never answered twice.
    Telegram's ids only grow; a fake server started again must start after these, or it would hand the bot
    ids of requests from an earlier session, and the bot would stay silent.
    """

    def largest(connection: Connection) -> int:
        present = set(inspect(connection).get_table_names())
        tables = [t for t in Base.metadata.sorted_tables if t.name in present and "update_id" in t.c]
        return max((connection.execute(select(func.max(t.c.update_id))).scalar() or 0 for t in tables), default=0)

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.run_sync(largest))
    finally:
        await engine.dispose()
