"""Inline requests, styles, group settings and titles (issue 10).

- ``requests``: ``source`` (chat or inline), ``inline_message_id`` (a chosen inline result, for its rating
  buttons), ``style``, ``title``; ``chat_id`` may be null, since Telegram does not say where an inline result went.
- ``user_settings.style``; ``chat_settings``: a group's own settings.
- ``styles``: named lineages of model versions; ``model_versions.style`` and ``training_runs.style``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("chat_id", existing_type=sa.BigInteger(), nullable=True)
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="chat"))
        batch.add_column(sa.Column("inline_message_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("style", sa.String(32), nullable=True))
        batch.add_column(sa.Column("title", sa.Text(), nullable=True))
        batch.create_index("ix_requests_inline_message_id", ["inline_message_id"])
    with op.batch_alter_table("user_settings") as batch:
        batch.add_column(sa.Column("style", sa.String(32), nullable=True))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("style", sa.String(32), nullable=True))
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("style", sa.String(32), nullable=True))
    op.create_table(
        "chat_settings",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("length", sa.Integer(), nullable=True),
        sa.Column("rhyme", sa.Boolean(), nullable=True),
        sa.Column("style", sa.String(32), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], name="fk_chat_settings_chat_id_chats", ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("chat_id", name="pk_chat_settings"),
    )
    op.create_table(
        "styles",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("active_version", sa.String(64), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_styles"),
    )


# What a downgrade would drop, as (what it is, a count of the rows that hold it, the statement that lets it go),
# in an order the statements can run in (a style's versions point at its runs). The statements hold at every later
# revision, where the operator runs them: from 0012 on the default style is a row named 'default', not NULL.
LOST = (
    ("style(s)", "SELECT COUNT(*) FROM styles", "DELETE FROM styles WHERE name <> 'default'"),
    ("group(s)' settings", "SELECT COUNT(*) FROM chat_settings WHERE temperature IS NOT NULL OR length IS NOT NULL"
     " OR rhyme IS NOT NULL OR style IS NOT NULL", "DELETE FROM chat_settings"),
    ("person(s)' chosen style", "SELECT COUNT(*) FROM user_settings WHERE style IS NOT NULL",
     "UPDATE user_settings SET style = NULL"),
    # Left in place, a style's versions and runs would pass for the default style's (its /models, its rollback).
    ("model version(s) of styles", "SELECT COUNT(*) FROM model_versions WHERE style IS NOT NULL",
     "DELETE FROM model_versions WHERE style <> 'default'"),
    ("fine-tune run(s) of styles", "SELECT COUNT(*) FROM training_runs WHERE style IS NOT NULL",
     "DELETE FROM training_runs WHERE style <> 'default'"),
    # (Not ``requests.title``: each title is also the first line of its request's output.)
    ("request(s) written in a style or sent inline",
     "SELECT COUNT(*) FROM requests WHERE style IS NOT NULL OR inline_message_id IS NOT NULL OR source <> 'chat'",
     "UPDATE requests SET style = (SELECT name FROM styles WHERE name = 'default'), inline_message_id = NULL, "
     "source = 'chat'"),
)


def downgrade() -> None:
    bind = op.get_bind()
    # Inline requests have no chat, which the old schema requires: refuse rather than drop them.
    inline = bind.execute(sa.text("SELECT COUNT(*) FROM requests WHERE chat_id IS NULL")).scalar_one()
    if inline:
        raise RuntimeError(f"{inline} inline requests have no chat, which revision 0005 requires; "
                           "delete them (and their ratings) first if they may go")
    counts = [(bind.execute(sa.text(count)).scalar_one(), what, fix) for what, count, fix in LOST]
    if lost := [(n, what, fix) for n, what, fix in counts if n]:
        styles = [name for (name,) in bind.execute(sa.text("SELECT name FROM styles ORDER BY name"))]
        raise RuntimeError(
            "not downgrading below 0006, which would drop "
            + "; ".join(f"{n} {what}" for n, what, _ in lost)
            + (f" (styles: {', '.join(styles)})" if styles else "")
            + ". Nothing was changed. To go ahead, back up the database, let them go ("
            + "; ".join(fix for _, _, fix in lost)
            + ") and downgrade again"
        )
    op.drop_table("styles")
    op.drop_table("chat_settings")
    for table in ("training_runs", "model_versions", "user_settings"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("style")
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_inline_message_id")
        batch.drop_column("title")
        batch.drop_column("style")
        batch.drop_column("inline_message_id")
        batch.drop_column("source")
        batch.alter_column("chat_id", existing_type=sa.BigInteger(), nullable=False)
