"""signing keys, the service's custody keys, signed checkpoints

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("mechanism_id", "seq", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "custody_keys",
        sa.Column("owner", sa.String(length=140), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_custody_keys")),
    )
    op.create_table(
        "keys",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("custody", sa.String(length=32), nullable=False),
        sa.Column("registered_seq", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_keys_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "key_id", name=op.f("pk_keys")),
    )


def downgrade() -> None:
    op.drop_table("keys")
    op.drop_table("custody_keys")
    op.drop_table("checkpoints")
