"""sequence numbers as 64-bit integers on PostgreSQL (SQLite's INTEGER is 64-bit already)

A record's sequence numbers (ledger, activity versions, messages, keys, checkpoints, cosignatures) are
compared with numbers callers give (``after=…`` up to 2**62); PostgreSQL's INTEGER is 32-bit and refused
them ("integer out of range"). Nothing changes on SQLite.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("ledger", "seq", False),
    ("activity_versions", "seq", False),
    ("messages", "seq", False),
    ("keys", "registered_seq", False),
    ("keys", "revoked_seq", True),
    ("checkpoints", "seq", False),
    ("cosignatures", "seq", False),
)
"""(table, column, nullable) of every sequence number."""


def _retype(to: sa.types.TypeEngine, was: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=to, existing_type=was, existing_nullable=nullable)


def upgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())
