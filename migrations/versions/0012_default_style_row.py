"""The default style is a row of ``styles`` like any other (issue 19).

Before, the default style's served version was the ``ACTIVE`` file in ``MODEL_DIR`` and every other style's a row's
``active_version``; a ``style`` of NULL meant the default in requests, runs, model versions and corpus documents.
Now the row ``default`` is its pointer (the bot fills it on its first start: the version ``ACTIVE`` names, where a
model directory from before has one, else the shipped base), and those four tables name the style of every row:
NULLs become ``default`` and the columns are NOT NULL, ``default`` unless a row says otherwise.
``corpus_documents`` needs no partial index for the default style's text any more: the unique constraint on
``(sha256, style)`` covers every style. ``user_settings.style`` and
``chat_settings.style`` stay nullable: NULL there is "never chose one".

A downgrade refuses while the default row serves a version, which the older code would only find in ``ACTIVE``:
it says how to go ahead (in an order where a bot started by mistake midway makes it refuse again, never lose the
version).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT = "default"
NAMED = ("requests", "training_runs", "model_versions", "corpus_documents")  # a row's style is always named now
DEFAULT_STYLE_ONLY = sa.text("style IS NULL")


def upgrade() -> None:
    bind = op.get_bind()
    # "default" was never a name people could give a style: no row holds it yet.
    insert = sa.text("INSERT INTO styles (name, title, active_version, created_by, created_at, deleted_at) "
                     "VALUES (:name, 'Default', NULL, NULL, :now, NULL)")
    bind.execute(insert.bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True))),
                 {"name": DEFAULT, "now": datetime.now(UTC)})
    for table in NAMED:
        bind.execute(sa.text(f"UPDATE {table} SET style = :name WHERE style IS NULL"), {"name": DEFAULT})
    op.drop_index("uq_corpus_documents_sha256_default", table_name="corpus_documents")
    for table in NAMED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("style", existing_type=sa.String(32), nullable=False, server_default=DEFAULT)


def downgrade() -> None:
    bind = op.get_bind()
    served = bind.execute(sa.text("SELECT active_version FROM styles WHERE name = :name"), {"name": DEFAULT}).first()
    if served is not None and served[0] is not None:
        raise RuntimeError(
            f"not downgrading below 0012: the default style serves {served[0]}, which the older bot reads from "
            "MODEL_DIR/ACTIVE. Nothing was changed. To go ahead, stop every bot on this database, clear the row's "
            "pointer (UPDATE styles SET active_version = NULL WHERE name = 'default'), then write the version into "
            f"the file (echo {served[0]} > $MODEL_DIR/ACTIVE) and downgrade again"
        )
    for table in NAMED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("style", existing_type=sa.String(32), nullable=True, server_default=None)
        bind.execute(sa.text(f"UPDATE {table} SET style = NULL WHERE style = :name"), {"name": DEFAULT})
    op.create_index("uq_corpus_documents_sha256_default", "corpus_documents", ["sha256"], unique=True,
                    sqlite_where=DEFAULT_STYLE_ONLY, postgresql_where=DEFAULT_STYLE_ONLY)
    bind.execute(sa.text("DELETE FROM styles WHERE name = :name"), {"name": DEFAULT})
