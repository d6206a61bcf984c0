"""checkpoint notes (C2SP checkpoints over the record's Merkle root) and the parties' cosignatures

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "cosignatures",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=400), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mechanism_id", "seq"],
            ["checkpoints.mechanism_id", "checkpoints.seq"],
            name=op.f("fk_cosignatures_mechanism_id_checkpoints"),
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "seq", "party", name=op.f("pk_cosignatures")),
    )


def downgrade() -> None:
    op.drop_table("cosignatures")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("note")
