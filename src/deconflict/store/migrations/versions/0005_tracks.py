"""tracks: latest state per track and the history of position reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _state_columns() -> list[sa.Column]:
    return [
        sa.Column("mechanism_id", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("alt_m", sa.Float(), nullable=False),
        sa.Column("gs_mps", sa.Float(), nullable=False),
        sa.Column("trk_deg", sa.Float(), nullable=False),
        sa.Column("vs_mps", sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "track_reports",
        *_state_columns(),
        sa.ForeignKeyConstraint(
            ["mechanism_id"], ["mechanisms.id"], name=op.f("fk_track_reports_mechanism_id_mechanisms")
        ),
        sa.PrimaryKeyConstraint("mechanism_id", "party", "id", "at", name=op.f("pk_track_reports")),
    )
    op.create_table(
        "tracks",
        *_state_columns(),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"], name=op.f("fk_tracks_mechanism_id_mechanisms")),
        sa.PrimaryKeyConstraint("mechanism_id", "party", "id", name=op.f("pk_tracks")),
    )
    op.create_index("ix_tracks_at", "tracks", ["mechanism_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tracks_at", table_name="tracks")
    op.drop_table("tracks")
    op.drop_table("track_reports")
