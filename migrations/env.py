"""Alembic environment (the async template), shared by the ``alembic`` CLI and ``bot.db.migrate``.

The app passes its own connection in ``config.attributes["connection"]``. The CLI builds an engine from,
in order, ``-x url=...``, ``$DATABASE_URL`` or ``sqlalchemy.url`` in alembic.ini.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from bot.db.engine import make_engine
from bot.db.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name)  # CLI only: it would reset the app's logging


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations stay independent of app code: the column type the decorator stores is enough.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _sqlite_pragma(connection: Connection, pragma: str) -> Any:
    # Straight to the driver: through SQLAlchemy this would autobegin a transaction, and SQLite ignores
    # PRAGMA foreign_keys inside one.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else row[0]


def do_run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        if connection.in_transaction():
            raise RuntimeError("run SQLite migrations on a connection without an open transaction (engine.connect())")
        # Batch operations copy a table, drop the original and rename the copy; with foreign keys on, dropping
        # a referenced table would delete or reject its children (alembic docs, "Running batch migrations").
        _sqlite_pragma(connection, "foreign_keys=OFF")
        if _sqlite_pragma(connection, "foreign_keys") != 0:
            raise RuntimeError("could not turn SQLite foreign keys off for the migration")
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            render_item=render_item,
            # bot.db.engine emits BEGIN itself, which makes SQLite DDL transactional: all or nothing.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                # Keys were off: refuse to commit rows that point nowhere.
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if violations:
                    raise RuntimeError(f"migration left dangling foreign keys: {violations[:10]}")
    finally:
        if sqlite:
            _sqlite_pragma(connection, "foreign_keys=ON")


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    return url or config.get_main_option("sqlalchemy.url") or "sqlite+aiosqlite:///./var/lyricbot.db"


async def run_async_migrations() -> None:
    engine = make_engine(_cli_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_cli_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
