"""preview counts in the database: each member's previews and whose notices they reached, and the last
hour's admissions the rate limit counts (were kept in each server process's memory)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COUNT = sa.Integer().with_variant(sa.BigInteger(), "postgresql")
"""A count or a preview number: 64-bit on both stores, as the record's sequence numbers (0009)."""


def upgrade() -> None:
    op.create_table(
        "preview_tallies",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("reached_party", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("count", COUNT, nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mechanism_id"], ["mechanisms.id"], name=op.f("fk_preview_tallies_mechanism_id_mechanisms")
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "member_id", "reached_party", name=op.f("pk_preview_tallies")),
    )
    op.create_table(
        "preview_admissions",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("n", COUNT, autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mechanism_id"], ["mechanisms.id"], name=op.f("fk_preview_admissions_mechanism_id_mechanisms")
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "member_id", "n", name=op.f("pk_preview_admissions")),
    )


def downgrade() -> None:
    op.drop_table("preview_admissions")
    op.drop_table("preview_tallies")
