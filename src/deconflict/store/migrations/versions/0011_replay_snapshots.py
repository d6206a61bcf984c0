"""replay snapshots: a mechanism's projected state at an entry of its record, compressed, so that replay at
an instant applies only the entries after the newest snapshot before it (issue 17)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SEQ = sa.Integer().with_variant(sa.BigInteger(), "postgresql")
"""A sequence number or a count: 64-bit on both stores, as the record's (0009)."""


def upgrade() -> None:
    op.create_table(
        "replay_snapshots",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("rows", SEQ, nullable=False),
        sa.Column("size", SEQ, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mechanism_id"], ["mechanisms.id"], name=op.f("fk_replay_snapshots_mechanism_id_mechanisms")
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "seq", name=op.f("pk_replay_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("replay_snapshots")
