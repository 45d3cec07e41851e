"""Rhyme: a person's setting (``/rhyme on|off``) and the setting each request was written with.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_settings") as batch:
        batch.add_column(sa.Column("rhyme", sa.Boolean(), nullable=True))  # None: the bot's default
    with op.batch_alter_table("requests") as batch:
        # Requests from before rhymes existed were written without.
        batch.add_column(sa.Column("rhyme", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("rhyme")
    with op.batch_alter_table("user_settings") as batch:
        batch.drop_column("rhyme")
