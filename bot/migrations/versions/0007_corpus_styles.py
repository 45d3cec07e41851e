"""Corpus text per style: ``corpus_documents.style`` (issue 10, styles).

Text an admin adds for a style fine-tunes that style's lineage only; NULL is the default style's corpus, which
is what every document added before this revision was.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("corpus_documents") as batch:
        batch.add_column(sa.Column("style", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corpus_documents") as batch:
        batch.drop_column("style")
