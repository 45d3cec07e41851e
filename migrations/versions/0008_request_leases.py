"""Request ownership: ``requests.owner`` and ``requests.lease_until`` (issue 18, replicas).

Several webhook replicas share one database. The process that takes a request owns it while it works on it and
keeps renewing a short lease; a starting replica takes over only requests whose lease has run out (their owner
died), never one a live replica is still answering. Rows from before this revision have neither: nobody owns
them, so the next start takes them, as it always did.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_requests_owner", ["owner"])


def downgrade() -> None:
    # Nothing is lost: without the columns a start takes every unfinished request, as before this revision.
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_owner")
        batch.drop_column("lease_until")
        batch.drop_column("owner")
