"""The form a request is written in (issue 17): a ci tune's name or a pattern of line lengths, so that "write
again" and a restart write the same form.

A downgrade drops both: requests keep their words and settings, and one written again is written in free lines.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("form", sa.String(64), nullable=True))  # None: free lines, as before
        batch.add_column(sa.Column("pattern", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("pattern")
        batch.drop_column("form")
