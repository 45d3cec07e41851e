"""Requests get a ``sending`` status: the answer is on its way to Telegram.

A row is marked ``sending`` before the answer is sent and ``answered`` after Telegram accepted it. A
restart that finds a row still ``sending`` cannot know whether the message arrived, so it never sends
it again: one message per request, whatever step fails.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('queued', 'running', 'done', 'answered', 'failed')"
NEW = "status IN ('queued', 'running', 'done', 'sending', 'answered', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_constraint(op.f("ck_requests_status"), type_="check")
        batch.create_check_constraint(op.f("ck_requests_status"), NEW)


def downgrade() -> None:
    # A row caught mid-send cannot be told apart from a failed one in the old schema.
    op.execute("UPDATE requests SET status = 'failed', error = 'delivery unknown' WHERE status = 'sending'")
    with op.batch_alter_table("requests") as batch:
        batch.drop_constraint(op.f("ck_requests_status"), type_="check")
        batch.create_check_constraint(op.f("ck_requests_status"), OLD)
