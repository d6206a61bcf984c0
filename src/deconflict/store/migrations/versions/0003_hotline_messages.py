"""hotline messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 03:51:29.789428
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "messages",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("needs_ack", sa.Boolean(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("about_kind", sa.String(length=16), nullable=True),
        sa.Column("about_id", sa.String(length=64), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_messages_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_open", ["mechanism_id", "needs_ack", "acknowledged_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_open")

    op.drop_table("messages")
