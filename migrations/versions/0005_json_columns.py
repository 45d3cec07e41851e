"""JSON columns instead of JSON text: request candidates, and the document ids and metrics of runs and versions.

The stored text does not change. SQLite keeps JSON as text and Alembic copies it over uncast; PostgreSQL's json
type keeps the text as written, and refuses (rolling the whole migration back) any that does not parse.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (column, nullable), ...
COLUMNS = {
    "requests": (("candidates", True),),
    "training_runs": (("document_ids", False), ("metrics", True)),
    "model_versions": (("document_ids", False), ("metrics", True)),
}


def upgrade() -> None:
    _retype(sa.Text(), sa.JSON(), "json")


def downgrade() -> None:
    _retype(sa.JSON(), sa.Text(), "text")


def _retype(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any], pg_type: str) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:  # on SQLite, one copy of the table for all its columns
            for column, nullable in columns:
                batch.alter_column(
                    column,
                    type_=new,
                    existing_type=old,
                    existing_nullable=nullable,
                    # PostgreSQL casts neither way implicitly; SQLite ignores this. Metrics written as text
                    # may hold NaN or Infinity (Python's json writes them), which json refuses: null instead.
                    postgresql_using=(
                        f"regexp_replace({column}, '-?Infinity|NaN', 'null', 'g')::json"
                        if column == "metrics" and pg_type == "json" else f"{column}::{pg_type}"
                    ),
                )
