"""the messages indexed in the record's order: (mechanism_id, seq)

``GET .../messages?after=SEQ&limit=N`` answers the first N messages after SEQ that the caller may read,
reading the channel in order until it has them. With no index on the record's order each read of the
channel sorted all of it: a party paging one message at a time over a 20,000-message channel whose
messages were mostly not addressed to it took 0.47 s of CPU a request, 4.9 s at 100,000 (a review of the
change that made ``limit`` count only what the caller may read).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 11:10:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_seq", "messages", ["mechanism_id", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_seq", table_name="messages")
