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
    # Without the column a style's text would be the default style's corpus, and the next fine-tune of the
    # default model would train on another style's songs: refuse, and say how to go ahead.
    styled = op.get_bind().execute(sa.text(
        "SELECT style, COUNT(*) FROM corpus_documents WHERE style IS NOT NULL GROUP BY style ORDER BY style"
    )).all()
    if styled:
        count = sum(n for _, n in styled)
        raise RuntimeError(
            f"not downgrading below 0007: {count} corpus document(s) belong to styles "
            f"({', '.join(f'{style}: {n}' for style, n in styled)}); without 0007 they would become the default "
            "style's corpus, and its next fine-tune would train on them. Nothing was changed. To go ahead, back up "
            "the database, delete them (DELETE FROM corpus_documents WHERE style <> 'default') and downgrade again"
        )
    with op.batch_alter_table("corpus_documents") as batch:
        batch.drop_column("style")
