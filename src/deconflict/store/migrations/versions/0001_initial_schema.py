"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 02:18:25.805661
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ledger",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=True),
        sa.Column("signature", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("mechanism_id", "seq", name=op.f("pk_ledger")),
    )
    op.create_table(
        "mechanisms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mechanisms")),
    )
    op.create_table(
        "activities",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mechanism_id"], ["mechanisms.id"], name=op.f("fk_activities_mechanism_id_mechanisms")
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index("ix_activities_window", ["mechanism_id", "start", "end"], unique=False)

    op.create_table(
        "conflicts",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("activity", sa.String(length=64), nullable=False),
        sa.Column("other_activity", sa.String(length=64), nullable=True),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged", sa.JSON(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_conflicts_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "id", name=op.f("pk_conflicts")),
    )
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_conflicts_status", ["mechanism_id", "status"], unique=False)

    op.create_table(
        "members",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_members_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "id", name=op.f("pk_members")),
    )
    op.create_table(
        "zones",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_zones_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "id", name=op.f("pk_zones")),
    )
    op.create_table(
        "activity_versions",
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mechanism_id", "activity_id"],
            ["activities.mechanism_id", "activities.id"],
            name=op.f("fk_activity_versions_mechanism_id_activities"),
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "activity_id", "version", name=op.f("pk_activity_versions")),
    )


def downgrade() -> None:

    op.drop_table("activity_versions")
    op.drop_table("zones")
    op.drop_table("members")
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_conflicts_status")

    op.drop_table("conflicts")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_window")

    op.drop_table("activities")
    op.drop_table("mechanisms")
    op.drop_table("ledger")
