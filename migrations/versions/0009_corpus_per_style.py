"""Corpus text is unique per style, not across styles (issue 18, item 19c).

``corpus_documents.sha256`` was unique on its own, so text added for one style was refused for another (and for
the default style) as a duplicate. Now the same text may be in several styles' corpora, once in each: a unique
constraint on ``(sha256, style)`` for the named styles, and a partial unique index on ``sha256`` where ``style``
is NULL for the default style (NULLs are never equal to each other in a unique constraint, on SQLite and
PostgreSQL alike, so the constraint alone would let the default style have the same text twice).

A downgrade refuses while some text is in more than one style's corpus (the old constraint cannot hold then),
saying which and how to go ahead, as 0007's does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_STYLE_ONLY = sa.text("style IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("corpus_documents") as batch:
        batch.drop_constraint("uq_corpus_documents_sha256", type_="unique")
        batch.create_unique_constraint("uq_corpus_documents_sha256_style", ["sha256", "style"])
    op.create_index("uq_corpus_documents_sha256_default", "corpus_documents", ["sha256"], unique=True,
                    sqlite_where=DEFAULT_STYLE_ONLY, postgresql_where=DEFAULT_STYLE_ONLY)


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT sha256, COUNT(*) FROM corpus_documents GROUP BY sha256 HAVING COUNT(*) > 1 ORDER BY sha256"
    )).all()
    if shared:
        extra = sum(n - 1 for _, n in shared)
        raise RuntimeError(
            f"not downgrading below 0009: {len(shared)} text(s) are in the corpora of several styles ({extra} "
            "document(s) more than one per text); before 0009 a text could be stored once only. Nothing was changed. "
            "To go ahead, keep the oldest copy of each: back up the database, delete the others (DELETE FROM "
            "corpus_documents WHERE id NOT IN (SELECT MIN(id) FROM corpus_documents GROUP BY sha256)) and downgrade "
            "again"
        )
    op.drop_index("uq_corpus_documents_sha256_default", table_name="corpus_documents")
    with op.batch_alter_table("corpus_documents") as batch:
        batch.drop_constraint("uq_corpus_documents_sha256_style", type_="unique")
        batch.create_unique_constraint("uq_corpus_documents_sha256", ["sha256"])
