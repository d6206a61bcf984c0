"""replay snapshots carry a live piece beside the whole state: the rows in force, open or awaited around the
snapshot's entry, so that replay around an instant reads that piece, not the whole state; and a snapshot may
be a live piece alone (no whole state: body and content_hash NULL), written between two whole ones (issue 17)

Snapshots written before this have no piece (the columns stay NULL): replay around an instant skips them,
whole-state replay and ``--check-snapshots`` use them as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SEQ = sa.Integer().with_variant(sa.BigInteger(), "postgresql")
"""A count: 64-bit on both stores, as the record's (0009)."""


def upgrade() -> None:
    with op.batch_alter_table("replay_snapshots") as batch:
        batch.add_column(sa.Column("live_body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("live_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("live_rows", SEQ, nullable=True))
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
        batch.alter_column("content_hash", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM replay_snapshots WHERE body IS NULL")
    with op.batch_alter_table("replay_snapshots") as batch:
        batch.alter_column("content_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("live_rows")
        batch.drop_column("live_hash")
        batch.drop_column("live_body")
