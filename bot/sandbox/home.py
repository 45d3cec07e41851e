"""Where the sandbox keeps its state: a database and a model directory of its own, never production's.

``DATABASE_URL`` and ``MODEL_DIR`` (in ``.env`` or the environment) name the real bot's database and models.
The sandbox plays Telegram with a person who does not exist, so it must never write to that database (it would
answer real people's pending requests into the fake server and mark them failed) nor to that model directory
(its instance lock, a fine-tune, a rollback). It keeps ``var/sandbox.db`` and ``var/sandbox-models`` (relative
to the working directory, like the production defaults), whatever the settings say.

It still chats with the model production serves: the one thing it reads of production's is the version the
default style's row names (``production_version``: a read-only look that leaves no lock or journal file beside
production's SQLite file; the ``ACTIVE`` file of a model directory from before that row), which it copies into
its own directory and serves (the shipped base when production has none yet). A copy, not a link: whatever the
sandbox then does to its model directory cannot reach production's files. Copied once per version (versions are
immutable directories), and each start serves production's version again, so a sandbox ``/rollback`` or
fine-tune lasts until the sandbox is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.db.models import Base
from bot.domain import DEFAULT_STYLE
from bot.services.styles import StyleService
from bot.serving.model_store import VERSION_NAME, ModelStore
from bot.settings import Settings

log = logging.getLogger(__name__)
SANDBOX_DB = "sqlite+aiosqlite:///./var/sandbox.db"
SANDBOX_MODELS = Path("var/sandbox-models")
DEFAULT_ROW = "SELECT active_version FROM styles WHERE name = :name"


def sandbox_settings(settings: Settings, **overrides: Any) -> Settings:
    """``settings`` pointed at the sandbox's own database and models, with nothing that reaches production's
    machines: generation runs in this process (Celery workers would load production's model directory) and
    updates come by polling the local server, never a webhook."""
    changes: dict[str, Any] = {"database_url": SANDBOX_DB, "model_dir": SANDBOX_MODELS,
                               "generation_backend": "local", "webhook_url": None, **overrides}  # fmt: skip
    return settings.model_copy(update=changes)


def for_commands(settings: Settings, seed: bool = True) -> Settings:
    """``lyricbot --sandbox corpus|models|retrain|rollback|db``: the sandbox's database and models. With ``seed``
    (every command but ``db``, which must find the database as it is), a sandbox with no model yet is seeded as
    its chat seeds it (a corpus needs one to check new characters against); otherwise left as it is, so a
    sandbox rollback stays."""
    sandbox = sandbox_settings(settings)
    if seed:
        asyncio.run(seed_model(settings, sandbox, only_if_empty=True))
    return sandbox


async def seed_model(production: Settings, sandbox: Settings, only_if_empty: bool = False) -> str:
    """Serve in the sandbox (``sandbox``'s database and models) the version production serves, read from
    ``production``'s, which are never written to; the shipped base when production has no model yet. Returns the
    version the sandbox's default style serves."""
    engine = make_engine(sandbox.database_url)
    try:
        await upgrade(engine)
        styles = StyleService(make_sessionmaker(engine), ModelStore(sandbox.model_dir, sandbox.device))
        current = await styles.find(DEFAULT_STYLE)
        if only_if_empty and current is not None and current.version is not None:
            return current.version
        version = await production_version(production)
        if version is None:
            version = await asyncio.to_thread(styles.store.install_base)
        else:
            await asyncio.to_thread(styles.store.copy_in, production.model_dir / version, version)
        if current is None or current.version != version:
            await styles.replace(DEFAULT_STYLE, version)
        return version
    finally:
        await engine.dispose()


async def production_version(production: Settings) -> str | None:
    """The version production's default style serves, if its model directory holds it (None: no model yet, or
    a database that cannot be read now, which is logged)."""
    try:
        version = await asyncio.wait_for(_read_default_row(production.database_url), timeout=10.0)
    except Exception as exc:  # production's database away, or from before styles: the sandbox still starts
        log.warning("could not read which version production serves (%s); the sandbox serves its own", exc)
        version = None
    version = version or ModelStore(production.model_dir).legacy_active()
    if version is None or not VERSION_NAME.fullmatch(version):
        return None
    return version if (production.model_dir / version / "meta.json").is_file() else None


async def _read_default_row(database_url: str) -> str | None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or not path.is_file():
            return None

        def read() -> str | None:
            # Without a -wal file every commit is in the database file itself: read it as immutable, so SQLite takes
            # no lock and leaves no -wal or -shm file beside it. With one (production running), read through it.
            wal = path.with_name(path.name + "-wal")
            uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if wal.exists() else "&immutable=1")
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
                try:
                    row = connection.execute(DEFAULT_ROW.replace(":name", "?"), (DEFAULT_STYLE,)).fetchone()
                except sqlite3.OperationalError:  # no styles table yet
                    return None
            return row[0] if row else None

        return await asyncio.to_thread(read)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(sql_text(DEFAULT_ROW), {"name": DEFAULT_STYLE})).scalar()
    finally:
        await engine.dispose()


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
