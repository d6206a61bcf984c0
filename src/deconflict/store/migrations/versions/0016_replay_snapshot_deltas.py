"""a whole replay snapshot may be stored as what changed since the one before it: ``delta_body`` (the rows
changed or added since the whole snapshot at the base entry, and the keys of those gone, zlib-compressed
canonical JSON) and ``delta_hash`` (its SHA-256), with ``body`` NULL; ``content_hash``, ``rows`` and ``size``
still describe the whole state it stands for (issue 17).

Every whole snapshot held the whole state, so their total grew with the square of the record: 161 MB beside
a 107 MB database after 14 months of operation, about 17 GB at 1M entries. A full body is now written at
every ``snapshots.FULL_EVERY``-th whole snapshot and a delta between.

Older code does not open a database at this revision (it does not know it). One that had it open already
replays correctly (it skips a snapshot with only a delta, ``body`` NULL, and starts from an older full
one), but its ``--check-snapshots`` names every such snapshot a problem ("is a live piece alone"): go back
with the downgrade, which makes them live pieces alone (``content_hash`` NULL), and the older code then
finds nothing wrong.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 23:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replay_snapshots") as batch:
        batch.add_column(sa.Column("delta_body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("delta_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE replay_snapshots SET content_hash = NULL, rows = 0, size = 0 WHERE body IS NULL")
    with op.batch_alter_table("replay_snapshots") as batch:
        batch.drop_column("delta_hash")
        batch.drop_column("delta_body")
