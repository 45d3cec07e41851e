"""The form a person or a group writes in by default (issue 17's /settings row): a ci tune's name, or free lines.

A request's own form (``requests.form``, 0010) still wins over the setting. A downgrade drops the setting:
everyone writes in free lines again unless a request names a form.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("user_settings", "chat_settings")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("form", sa.String(64), nullable=True))  # None: the bot's default, free lines


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("form")
